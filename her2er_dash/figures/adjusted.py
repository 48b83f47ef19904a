"""Confounder-adjusted (IPTW) survival curves and the covariate balance ("love") plot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go

from ._style import (
    _FIXED_COLORS,
    _LINE,
    _MARKER,
    GREY,
    OKABE_ITO,
    _finish,
    _new_figure,
    _norm,
    _require,
    group_colors,
)
from .km import STEP_TOLERANCE, km_figure, thin_steps

#: |SMD| below this is the usual mark of adequate balance (Austin 2009).
BALANCE_THRESHOLD = 0.1


def exposure_colors(levels: list[str]) -> dict[str, str]:
    """Reference level blue, exposed level vermillion (levels in (reference, exposed) order);
    names with a fixed dashboard colour (ER groups, pCR...) keep it."""
    if len(levels) == 2 and not any(_norm(name) in _FIXED_COLORS for name in levels):
        return dict(zip(levels, [OKABE_ITO["blue"], OKABE_ITO["vermillion"]], strict=True))
    return group_colors(levels)


def adjusted_figure(
    result,
    *,
    unadjusted=None,
    time_label: str = "Time (months)",
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
    **km_options,
) -> go.Figure:
    """IPTW-adjusted Kaplan-Meier curves (solid, with robust CI bands and the patients at risk),
    optionally with the unadjusted curves of the same groups dashed for comparison.

    ``result``: a ``survival.AdjustedSurvivalResult`` (its ``table`` and ``at_risk``);
    ``unadjusted``: a ``survival.KaplanMeierResult`` of the same exposure (its ``table``).
    """
    import plotly.graph_objects as go

    levels = [str(g) for g in pd.unique(result.table["group"])]
    palette = exposure_colors(levels)
    km_options.setdefault("show_censor", False)  # weighted curves: marks would mislead
    fig = km_figure(result, time_label=time_label, y_label="Survival probability (IPTW-adjusted)",
                    colors=palette, title=title, presenter=presenter, watermark=watermark,
                    **km_options)  # fmt: skip
    if unadjusted is None:
        return fig
    table = unadjusted.table if hasattr(unadjusted, "table") else unadjusted
    _require(table, ["group", "time", "survival"], "Kaplan–Meier")
    for group, part in table.groupby("group", sort=False):
        name = str(group)
        color = palette.get(name, GREY)
        time, surv = part["time"].to_numpy(float), part["survival"].to_numpy(float)
        if len(part) > 1000:
            keep = thin_steps([surv], STEP_TOLERANCE)
            time, surv = time[keep], surv[keep]
        fig.add_trace(
            go.Scatter(
                x=np.r_[0.0, time], y=np.r_[1.0, surv], mode="lines",
                name=f"{name} (unadjusted)", legendgroup=f"{name} unadjusted",
                line={"color": color, "width": _LINE[presenter] / 1.5,
                      "dash": "dash", "shape": "hv"},
                hovertemplate=f"{name}, unadjusted<br>{time_label}: %{{x:.4g}}<br>Survival: "
                              "%{y:.3f}<extra></extra>",
            )
        )  # fmt: skip
    return fig


def balance_figure(
    balance: pd.DataFrame,
    *,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """Standardised mean differences before (open circles) and after weighting (filled), one row
    per covariate or level, with the |SMD| = 0.1 guide lines (from the balance table)."""
    import plotly.graph_objects as go

    _require(balance, ["variable", "level", "smd_before", "smd_after"], "balance")
    labels = [f"{v}: {lv}" if str(lv) else str(v) for v, lv in zip(balance["variable"],
                                                                     balance["level"], strict=True)]
    fig = _new_figure()
    for column, name, symbol, color in (
        ("smd_before", "Before weighting", "circle-open", GREY),
        ("smd_after", "After weighting", "circle", OKABE_ITO["blue"]),
    ):
        fig.add_trace(
            go.Scatter(
                x=balance[column].to_numpy(float), y=labels, mode="markers", name=name,
                marker={"symbol": symbol, "size": _MARKER[presenter] + 2, "color": color,
                        "line": {"width": 2, "color": color}},
                hovertemplate="%{y}<br>SMD %{x:.3f}<extra>" + name + "</extra>",
            )
        )  # fmt: skip
    for x in (-BALANCE_THRESHOLD, BALANCE_THRESHOLD):
        fig.add_vline(x=x, line={"dash": "dot", "color": GREY, "width": 1})
    fig.add_vline(x=0, line={"color": GREY, "width": 1})
    span = float(np.nanmax(np.abs(balance[["smd_before", "smd_after"]].to_numpy(float)))) if len(
        balance) else 0.2  # fmt: skip
    fig.update_layout(
        xaxis={"title": {"text": "Standardised mean difference (exposed − reference)"},
               "range": [-max(0.25, 1.1 * span), max(0.25, 1.1 * span)]},
        yaxis={"autorange": "reversed", "type": "category"},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )  # fmt: skip
    return _finish(fig, title=title, presenter=presenter, watermark=watermark,
                   height=int((160 + 26 * len(labels)) * (1.3 if presenter else 1.0)))  # fmt: skip
