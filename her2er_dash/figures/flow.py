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
            marker_color=OKABE_ITO["blue"],
            customdata=np.column_stack([excluded, notes]),
            hovertemplate="%{y}<br>%{x:,} remaining; %{customdata[0]:,} excluded<br>%{customdata[1]}<extra></extra>",
            name="Patients remaining",
            showlegend=False,
        )
    )
    fig.update_layout(
        xaxis={"title": {"text": "Patients remaining"}, "rangemode": "tozero"},
        yaxis={"title": {"text": "Selection step"}, "autorange": "reversed", "type": "category"},
    )
    height = max(260, 90 + (46 if presenter else 34) * len(flow))
    return _finish(fig, title=title, presenter=presenter, watermark=watermark, height=height)


