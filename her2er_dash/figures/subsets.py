"""The ER-driven subset: the two-signature pCR surface and marker slopes by regimen group."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..schema import column_label
from ._style import _HASH_PALETTE, _LINE, _MARKER, _finish, _new_figure, _require
from .response import rates_figure

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go

#: Perceptually uniform and readable with colour-vision deficiency (Nuñez et al. 2018).
SURFACE_COLORSCALE = "Cividis"


#: Opacity of bars for groups too small for a p-value.
SMALL_OPACITY = 0.35


def subtype_rates_figure(
    result,
    *,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """pCR by subtype (x) and receptor status (colour) with CIs, from a
    ``subsets.SubtypeResponse`` table (the pooled "all" subtype rows are left out); bars of groups
    flagged ``small`` are faded, and a note says why."""
    table = result.table[result.table[result.subtype] != "all"]
    fig = rates_figure(table, x=result.subtype, color=result.receptor, title=title,
                       presenter=presenter, watermark=watermark)
    for trace in fig.data:
        part = table[table[result.receptor].astype(str) == trace.name]
        trace.marker.opacity = np.where(part["small"], SMALL_OPACITY, 1.0).tolist()
    if table["small"].any():
        fig.add_annotation(
            text="Faded: fewer than 10 patients or 5 responders/non-responders (no p-value)",
            xref="paper", yref="paper", x=0, y=1.02, showarrow=False, xanchor="left",
            yanchor="bottom", font={"size": 11 if not presenter else 16, "color": "#555555"},
            name="small-group note",
        )
    return fig


def _bin_label(row) -> str:
    if row.n == 0:
        return "n = 0"
    if row.small:
        return f"n = {int(row.n)}"
    return f"{row.rate:.0%} ({int(row.pcr)}/{int(row.n)})"


def surface_figure(
    result,
    *,
    x_label: str | None = None,
    y_label: str | None = None,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """Fitted pCR probability over two signatures, with the observed 2-D bins drawn on top.

    ``result`` is a ``subsets.SurfaceResult``: the heatmap and its contour lines are
    ``result.surface`` (``probability`` where ``supported``, blank elsewhere: no extrapolation is
    drawn), the rectangles and their labels are ``result.observed`` (rate and pCR/n per bin; only
    "n = k" for bins flagged ``small``).
    """
    import plotly.graph_objects as go

    surface, observed = result.surface, result.observed
    _require(surface, ["x", "y", "probability", "supported"], "surface")
    _require(observed, ["x_from", "x_to", "y_from", "y_to", "n", "pcr", "rate", "ci_low",
                        "ci_high", "small"], "observed-bin")
    shown = surface.assign(probability=surface["probability"].where(surface["supported"]))
    z = shown.pivot(index="y", columns="x", values="probability")
    gx, gy = z.columns.to_numpy(float), z.index.to_numpy(float)
    fig = _new_figure()
    fig.add_trace(go.Heatmap(
        x=gx, y=gy, z=z.to_numpy(), zmin=0, zmax=1, colorscale=SURFACE_COLORSCALE,
        name="Fitted P(pCR)", colorbar={"title": {"text": "Fitted P(pCR)"}, "tickformat": ".0%"},
        hovertemplate="x %{x:.3g}, y %{y:.3g}: fitted %{z:.1%}<extra></extra>",
    ))  # fmt: skip
    fig.add_trace(go.Contour(
        x=gx, y=gy, z=z.to_numpy(), showscale=False, name="Fitted contours",
        contours={"coloring": "lines", "showlabels": True, "start": 0.1, "end": 0.9, "size": 0.1,
                  "labelformat": ".0%"},
        line={"width": _LINE[presenter] * 0.6}, colorscale=[[0, "white"], [1, "white"]],
        hoverinfo="skip",
    ))  # fmt: skip
    for row in observed.itertuples():
        fig.add_shape(type="rect", x0=row.x_from, x1=row.x_to, y0=row.y_from, y1=row.y_to,
                      line={"color": "#333333", "width": 1}, fillcolor="rgba(0,0,0,0)")
    centre_x = (observed["x_from"] + observed["x_to"]) / 2
    centre_y = (observed["y_from"] + observed["y_to"]) / 2
    custom = np.column_stack([observed["pcr"], observed["n"], observed["ci_low"], observed["ci_high"]])
    fig.add_trace(go.Scatter(
        x=centre_x, y=centre_y, mode="text", name="Observed rate by bin",
        text=[_bin_label(r) for r in observed.itertuples()],
        textfont={"size": 11 if not presenter else 16, "color": "black"},
        customdata=custom,
        hovertemplate=("observed pCR %{customdata[0]}/%{customdata[1]}<br>95% CI "
                       "%{customdata[2]:.0%}–%{customdata[3]:.0%}<extra></extra>"),
    ))  # fmt: skip
    fig.update_layout(
        xaxis={"title": {"text": x_label or column_label(result.x)}},
        yaxis={"title": {"text": y_label or column_label(result.y)}},
        showlegend=False,
        height=620,
    )
    return _finish(fig, title=title, presenter=presenter, watermark=watermark)


def slopes_figure(
    result,
    *,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """Odds ratio of pCR per SD (or unit) of each marker within each regimen group, with CIs.

    ``result`` is a ``subsets.InteractionResult``; points and bars are ``result.slopes``; the
    interaction p-value of each marker (``result.tests``) is written beside its label.
    """
    import plotly.graph_objects as go

    slopes = result.slopes
    fig = _new_figure()
    if slopes.empty:
        return _finish(fig, title=title, presenter=presenter, watermark=watermark)
    _require(slopes, ["marker", "group", "odds_ratio", "ci_low", "ci_high", "n", "pcr"], "slopes")
    markers = list(pd.unique(slopes["marker"]))
    groups = list(pd.unique(slopes["group"]))
    # fixed order (blue, vermillion, green...): the reference group is always blue
    palette = {str(g): _HASH_PALETTE[i % len(_HASH_PALETTE)] for i, g in enumerate(groups)}
    tests = result.tests.set_index(["marker", "test"])["p_value"] if len(result.tests) else None
    offsets = np.linspace(-0.2, 0.2, len(groups)) if len(groups) > 1 else np.zeros(1)
    for offset, group in zip(offsets, groups, strict=True):
        part = slopes[slopes["group"] == group]
        y = np.array([markers.index(m) for m in part["marker"]], float) + offset
        fig.add_trace(go.Scatter(
            x=part["odds_ratio"], y=y, mode="markers", name=str(group),
            marker={"color": palette[str(group)], "size": _MARKER[presenter]},
            error_x={"type": "data", "symmetric": False,
                     "array": part["ci_high"] - part["odds_ratio"],
                     "arrayminus": part["odds_ratio"] - part["ci_low"],
                     "thickness": _LINE[presenter] * 0.8},
            customdata=np.column_stack([part["ci_low"], part["ci_high"], part["pcr"], part["n"]]),
            hovertemplate=("OR %{x:.2f} (95% CI %{customdata[0]:.2f}–%{customdata[1]:.2f}); "
                           "pCR %{customdata[2]}/%{customdata[3]}<extra>%{fullData.name}</extra>"),
        ))  # fmt: skip

    def label(marker: str) -> str:
        p = tests.get((marker, "interaction"), np.nan) if tests is not None else np.nan
        return column_label(marker) + ("" if not np.isfinite(p) else f"<br>interaction p = {p:.3g}")

    per = "SD" if result.scale == "sd" else "unit"
    ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50)
             if slopes["ci_low"].min() / 2 <= t <= slopes["ci_high"].max() * 2]
    fig.add_vline(x=1, line={"color": "#666666", "dash": "dash", "width": 1})
    fig.update_layout(
        xaxis={"title": {"text": f"Odds ratio of pCR per {per} of the marker (log scale)"},
               "type": "log", "tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]},
        yaxis={"tickvals": list(range(len(markers))), "ticktext": [label(m) for m in markers],
               "autorange": "reversed"},
        legend={"title": {"text": "Regimen group"}, "orientation": "h", "y": 1.02,
                "yanchor": "bottom", "x": 0},
        height=140 + 110 * len(markers),
    )
    return _finish(fig, title=title, presenter=presenter, watermark=watermark)
