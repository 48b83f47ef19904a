"""Patient flow through the filters."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go
from ._rows import escape as _escape
from ._style import OKABE_ITO, _finish, _new_figure, _require


def flow_figure(
    flow: pd.DataFrame,
    *,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """Patients remaining after each filter criterion (``FilterResult.flow``), as a funnel of bars."""
    import plotly.graph_objects as go

    _require(flow, ["criterion", "n_remaining", "n_excluded"], "filter flow")
    labels = [_escape(c) for c in flow["criterion"].astype(str)]
    remaining = flow["n_remaining"].to_numpy()
    excluded = flow["n_excluded"].to_numpy()
    notes = (
        flow["note"].fillna("").astype(str).to_numpy()
        if "note" in flow.columns
        else [""] * len(flow)
    )
    text = [
        f"{r:,}" + (f"  (−{e:,})" if e else "") for r, e in zip(remaining, excluded, strict=True)
    ]
    fig = _new_figure()
    fig.add_trace(
        go.Bar(
            x=remaining,
            y=labels,
            orientation="h",
            text=text,
            textposition="auto",
            cliponaxis=False,  # a short bar's count may run past the axis end
            marker_color=OKABE_ITO["blue"],
            customdata=np.column_stack([excluded, notes]),
            hovertemplate="%{y}<br>%{x:,} remaining; %{customdata[0]:,} excluded<br>%{customdata[1]}<extra></extra>",
            name="Patients remaining",
            showlegend=False,
        )
    )
    # Each step is named above its bar, across the plot, instead of beside it: in the Cohort
    # page's narrow column the names beside the bars left the bars a few pixels and cut both the
    # names and the counts. Categories are rows 0, 1, ... top down; a bar spans its row ± 0.25.
    for row, label in enumerate(labels):
        fig.add_annotation(x=0, y=row - 0.31, xref="x", yref="y", text=label, showarrow=False,
                           xanchor="left", yanchor="bottom", align="left")
    fig.update_layout(
        xaxis={"title": {"text": "Patients remaining"}, "rangemode": "tozero", "nticks": 5,
               "tickformat": ",d", "tickangle": 0},
        yaxis={"type": "category", "visible": False, "range": [len(flow) - 0.55, -0.9]},
        bargap=0.4,
    )
    height = max(200, 70 + (78 if presenter else 56) * len(flow))
    fig = _finish(fig, title=title, presenter=presenter, watermark=watermark, height=height)
    # (Plotly's default margins keep 80 px left for tick labels this figure does not have.)
    return fig.update_layout(margin={"l": 8, "r": 56, "t": 56 if title else 8, "b": 8})


