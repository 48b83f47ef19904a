"""pCR rates by group and the ER dose–response curve."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..schema import column_label

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go
from ._style import (
    _LINE,
    _MARKER,
    OKABE_ITO,
    _compose,
    _finish,
    _new_figure,
    _require,
    _rgba,
    font_px,
    group_colors,
    legend_px,
    text_scale,
    title_px,
)


def rates_figure(
    rates: pd.DataFrame,
    *,
    x: str | None = None,
    color: str | None = None,
    style: str = "bar",
    x_label: str | None = None,
    conf_level: float = 0.95,
    colors: dict[str, str] | None = None,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """pCR rates with asymmetric CI error bars (``response.pcr_rates`` table).

    Parameters
    ----------
    rates : columns ``<by...>, n, pcr, rate, ci_low, ci_high`` with rates as fractions.
    x : column on the x axis (default: the first column that is not a count or rate).
    color : optional second grouping column: one bar colour per level, bars side by side.
    style : "bar" or "point".
    conf_level : only used for the hover text ("95% CI").
    """
    import plotly.graph_objects as go

    _require(rates, ["n", "pcr", "rate", "ci_low", "ci_high"], "pCR rate")
    x = x or next(c for c in rates.columns if c not in ("n", "pcr", "rate", "ci_low", "ci_high"))
    _require(rates, [x] + ([color] if color else []), "pCR rate")
    if style not in ("bar", "point"):
        raise ValueError(f"style must be 'bar' or 'point', not {style!r}")
    split = rates.groupby(color, sort=False, observed=True) if color else [(None, rates)]
    levels = [str(v) for v in (pd.unique(rates[color]) if color else pd.unique(rates[x]))]
    palette = {**group_colors(levels), **(colors or {})}
    level_pct = f"{conf_level:.0%}"
    traces = []
    for level, part in split:
        rate = part["rate"].to_numpy(float)
        error = {
            "type": "data",
            "symmetric": False,
            "array": part["ci_high"].to_numpy(float) - rate,
            "arrayminus": rate - part["ci_low"].to_numpy(float),
            "thickness": _LINE[presenter] * 0.8,
            "width": 6,
            "color": "#333333",
        }
        marker_color = palette[str(level)] if color else [palette[str(v)] for v in part[x]]
        custom = np.column_stack([part["pcr"], part["n"], part["ci_low"], part["ci_high"]])
        common = {
            "x": part[x].astype(str).to_numpy(),
            "y": rate,
            "name": str(level) if color else "pCR rate",
            "customdata": custom,
            "error_y": error,
            "text": [f"{int(k)}/{int(n)}" for k, n in zip(part["pcr"], part["n"], strict=True)],
            "hovertemplate": (
                "%{x}<br>pCR %{customdata[0]:,} of %{customdata[1]:,} = %{y:.1%}"
                f"<br>{level_pct} CI %{{customdata[2]:.1%}}–%{{customdata[3]:.1%}}<extra>%{{fullData.name}}</extra>"
            ),
            "showlegend": bool(color),
        }
        if style == "bar":
            # pCR/n at the foot of the bar, horizontal; where a bar is too narrow or short for it
            # at a readable size, plotly hides it (layout.uniformtext) and the hover still says it.
            traces.append(go.Bar(
                marker_color=marker_color, textposition="inside", insidetextanchor="start",
                textangle=0, insidetextfont={"color": "white", "size": font_px(presenter)},
                constraintext="inside", **common,
            ))  # fmt: skip
        else:
            traces.append(go.Scatter(
                mode="markers+text", textposition="middle right",
                marker={"color": marker_color, "size": _MARKER[presenter] * 1.4}, **common,
            ))  # fmt: skip
    layout = {
        "barmode": "group",
        "scattermode": "group",
        "uniformtext": {"minsize": font_px(presenter, 0.85), "mode": "hide"},
        "xaxis": {"title": {"text": x_label or column_label(x)}, "type": "category"},
        "yaxis": {"title": {"text": "pCR rate"}, "range": [0, 1], "tickformat": ".0%"},
        "margin": {"t": title_px(title, presenter) + 8, "l": 10, "r": 10, "b": 10},
    }
    if color:
        # Above the plot, in rows: a legend at the side took up to half the width.
        layout["legend"] = {"title": {"text": column_label(color) + ":"}, "orientation": "h",
                            "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"}
        layout["margin"]["t"] += legend_px(presenter, [column_label(color), *levels])
    height = round(440 * text_scale(presenter)) + layout["margin"]["t"]
    return _compose(traces, layout, title=title, presenter=presenter, watermark=watermark,
                    height=height)


# ---------------------------------------------------------------------------------------------
# ER dose-response
# ---------------------------------------------------------------------------------------------


def dose_response_figure(
    result,
    *,
    x_label: str | None = None,
    y_label: str = "Probability of pCR",
    color: str = OKABE_ITO["blue"],
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """Spline curve with CI band (``result.curve``) and observed binned rates (``result.observed``).

    ``result`` is a ``response.DoseResponseResult`` (or any object with ``curve``, ``observed``
    and ``er``/``variable``); its ``axis`` names the x column of both tables (``"er"`` when
    absent). Marker area is proportional to the number of patients in the bin. The x label
    defaults to the variable's label (:func:`her2er_dash.schema.column_label`).
    """
    import plotly.graph_objects as go

    curve, observed = result.curve, result.observed
    axis = getattr(result, "axis", "er")
    _require(curve, [axis, "probability", "ci_low", "ci_high"], "dose-response curve")
    _require(observed, [f"{axis}_mid", "n", "pcr", "rate", "ci_low", "ci_high"], "observed-rate")
    variable = getattr(result, "variable", None) or getattr(result, "er", None)
    fig = _new_figure()
    x = curve[axis].to_numpy(float)
    band = {"mode": "lines", "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False}
    fig.add_trace(go.Scatter(x=x, y=curve["ci_high"].to_numpy(float), name="upper CI", **band))
    fig.add_trace(
        go.Scatter(
            x=x,
            y=curve["ci_low"].to_numpy(float),
            name="lower CI",
            fill="tonexty",
            fillcolor=_rgba(color, 0.18),
            **band,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=curve["probability"].to_numpy(float),
            mode="lines",
            name="Spline fit (95% CI band)",
            line={"color": color, "width": _LINE[presenter]},
            hovertemplate="%{x:.4g}: %{y:.1%}<extra>fit</extra>",
        )
    )
    shown = observed[observed["n"] > 0]
    rate = shown["rate"].to_numpy(float)
    n = shown["n"].to_numpy(float)
    biggest = _MARKER[presenter] * 4
    labels = shown["bin"].astype(str).to_numpy() if "bin" in shown.columns else None
    fig.add_trace(
        go.Scatter(
            x=shown[f"{axis}_mid"].to_numpy(float),
            y=rate,
            mode="markers",
            name="Observed rate by bin (area ∝ n)",
            marker={
                "size": n,
                "sizemode": "area",
                "sizemin": 4,
                "sizeref": 2.0 * (n.max() if len(n) else 1.0) / biggest**2,
                "color": OKABE_ITO["vermillion"],
                "line": {"width": 1, "color": "white"},
            },
            error_y={
                "type": "data",
                "symmetric": False,
                "array": shown["ci_high"].to_numpy(float) - rate,
                "arrayminus": rate - shown["ci_low"].to_numpy(float),
                "color": OKABE_ITO["vermillion"],
                "thickness": _LINE[presenter] * 0.8,
            },
            customdata=np.column_stack([shown["pcr"], shown["n"]]),
            text=labels,
            hovertemplate="%{text}<br>pCR %{customdata[0]:,}/%{customdata[1]:,} = %{y:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis={"title": {"text": x_label or (column_label(variable) if variable else "ER level")}},
        yaxis={"title": {"text": y_label}, "range": [0, 1], "tickformat": ".0%"},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )
    return _finish(fig, title=title, presenter=presenter, watermark=watermark)


