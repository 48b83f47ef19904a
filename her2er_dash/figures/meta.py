"""Meta-analysis diagnostics: leave-one-out influence plot and funnel plot.

Both are drawn from result tables only (``LeaveOneOutResult.summary_frame()``,
``FunnelResult.table``/``region``), back-transformed for ratios and proportions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go

from ._rows import Column, Labels, axis_block_px, row_px, side_columns, stacked_columns
from ._rows import escape as _escape
from ._style import (
    _LINE,
    _MARKER,
    OKABE_ITO,
    _compose,
    _finish,
    _fmt_p,
    _fmt_ratio,
    _new_figure,
    _require,
    title_px,
)
from .forest import (
    _SCALE_LABELS,
    _diamond_trace,
    _log_range,
    _log_ticks,
    _whiskers,
)


def leave_one_out_figure(
    result,
    *,
    measure_label: str | None = None,
    conf_level: float = 0.95,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
    narrow: bool = False,
) -> go.Figure:
    """Influence plot: the pooled estimate with each study left out in turn (``leave1out``).

    Parameters
    ----------
    result : a ``LeaveOneOutResult`` or its ``summary_frame()`` (``label, kind`` "omitted" /
        "pooled", ``estimate, ci_low, ci_high, change``, back-transformed).

    One row per omitted study (point and interval of the re-pooled estimate), the all-studies
    estimate as a diamond, a dashed line and a shaded band at its interval, so a study whose
    omission moves the estimate outside the band stands out. ``narrow``: the stacked layout for
    phone screens (see ``forest_figure``).
    """
    import plotly.graph_objects as go

    frame = result if isinstance(result, pd.DataFrame) else result.summary_frame(exponentiate=True)
    _require(frame, ["label", "kind", "estimate", "ci_low", "ci_high"], "leave-one-out")
    scale = str(frame.attrs.get("scale", ""))
    ratio = scale != "proportion"
    measure_label = measure_label or _SCALE_LABELS.get(scale, scale or "Estimate")
    omitted = frame[frame["kind"] == "omitted"].reset_index(drop=True)
    pooled = frame[frame["kind"] == "pooled"].iloc[0]
    y = -np.arange(len(omitted), dtype=float)
    y_pooled = -float(len(omitted)) - 0.5
    low, high, est = (omitted[c].to_numpy(float) for c in ("ci_low", "ci_high", "estimate"))
    traces = [
        _whiskers(low, high, y, presenter),
        go.Scatter(
            x=est,
            y=y,
            mode="markers",
            name="Pooled without the study",
            marker={"symbol": "circle", "size": _MARKER[presenter], "color": OKABE_ITO["blue"]},
            customdata=np.column_stack([low, high]),
            text=[_escape(v) for v in omitted["label"].astype(str)],
            hovertemplate="%{text}: %{x:.3g} (%{customdata[0]:.3g}–%{customdata[1]:.3g})"
            "<extra></extra>",
            showlegend=False,
        ),
        _diamond_trace(pooled["estimate"], pooled["ci_low"], pooled["ci_high"], y_pooled,
                       str(pooled["label"])),
    ]  # fmt: skip
    rows = pd.concat([omitted, frame[frame["kind"] == "pooled"]], ignore_index=True)
    all_y = np.r_[y, y_pooled]
    estimates = [
        f"{_fmt_ratio(e)} ({_fmt_ratio(lo)}–{_fmt_ratio(hi)})"
        for e, lo, hi in zip(rows["estimate"], rows["ci_low"], rows["ci_high"], strict=True)
    ]
    label = Labels("Study left out", rows["label"].astype(str).tolist(),
                   bold=(rows["kind"] == "pooled").tolist())
    right = [Column(f"Pooled ({conf_level:.0%} CI)", estimates)]
    if "i2" in rows.columns:  # heterogeneity left without each study
        right.append(Column("I²", [f"{v:.0f}%" for v in rows["i2"]], align="right", inline=""))
    lay = stacked_columns if narrow else side_columns
    annotations, margin_l, margin_r = lay(label, right, all_y, presenter)
    axis = {
        "title": {"text": f"{measure_label} ({conf_level:.0%} CI{', log scale' if ratio else ''})"},
        "zeroline": False,
    }
    shapes = [
        {"type": "rect", "xref": "x", "yref": "paper", "x0": pooled["ci_low"], "x1": pooled["ci_high"],
         "y0": 0, "y1": 1, "fillcolor": "rgba(0,114,178,0.10)", "line": {"width": 0}, "layer": "below"},
        {"type": "line", "xref": "x", "yref": "paper", "x0": pooled["estimate"], "x1": pooled["estimate"],
         "y0": 0, "y1": 1, "line": {"color": OKABE_ITO["blue"], "dash": "dash", "width": 1}},
    ]  # fmt: skip
    if ratio:
        span = _log_range(np.r_[low, pooled["ci_low"]], np.r_[high, pooled["ci_high"]], 1.0)
        axis.update(type="log", range=span, tickvals=_log_ticks(span))
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": 1.0, "x1": 1.0, "y0": 0,
                       "y1": 1, "line": {"color": "#666666", "dash": "dot", "width": 1}})  # fmt: skip
    heading = title or f"{measure_label}: leave-one-out sensitivity"
    top = title_px(heading, presenter, narrow)
    layout = {
        "xaxis": axis,
        "yaxis": {"visible": False, "range": [y_pooled - 0.8, 1.7]},
        "margin": {"l": margin_l, "r": margin_r, "t": top, "b": axis_block_px(presenter)},
        "annotations": annotations,
        "shapes": shapes,
        "showlegend": False,
    }
    height = top + row_px(presenter, narrow) * (len(rows) + 3) + axis_block_px(presenter)
    return _compose(traces, layout, title=heading, presenter=presenter, watermark=watermark,
                    height=height, narrow=narrow)  # fmt: skip


def funnel_figure(
    result,
    *,
    egger=None,
    measure_label: str | None = None,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """Funnel plot: study estimates against their standard errors, around the pooled estimate.

    Parameters
    ----------
    result : a ``FunnelResult`` (``table``: study, estimate, se on the analysis scale;
        ``region``: pseudo-confidence limits at se = 0 and the largest se; ``pooled``).
    egger : optional ``EggerResult``; its test is written under the title.

    The y axis (standard error) runs downwards from 0, as usual; ratios are drawn on a log axis
    (the funnel's straight edges stay straight).
    """
    import plotly.graph_objects as go

    table, region = result.table, result.region
    _require(table, ["study", "estimate", "se"], "funnel")
    scale = result.scale
    back = np.exp if scale.startswith("log ") else (
        (lambda x: 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float))))
        if scale == "logit proportion"
        else (lambda x: np.asarray(x, dtype=float))
    )
    ratio = scale.startswith("log ")
    display = "proportion" if scale == "logit proportion" else scale.removeprefix("log ")
    measure_label = measure_label or _SCALE_LABELS.get(display, display or "Estimate")
    centre = back(result.pooled.estimate)
    fig = _new_figure()
    fig.add_trace(
        go.Scatter(
            x=back(np.r_[region["ci_low"].iloc[1], region["ci_low"].iloc[0], region["ci_high"].iloc[1]]),
            y=[region["se"].iloc[1], 0.0, region["se"].iloc[1]],
            mode="lines",
            name=f"Pseudo {1 - result.alpha:.0%} region",
            line={"color": "#888888", "dash": "dash", "width": _LINE[presenter] / 2},
            fill="toself",
            fillcolor="rgba(0,0,0,0.04)",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[centre, centre],
            y=[0.0, region["se"].iloc[1]],
            mode="lines",
            name=f"Pooled ({result.pooled.method})",
            line={"color": OKABE_ITO["black"], "width": _LINE[presenter] / 2},
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=back(table["estimate"].to_numpy(float)),
            y=table["se"].to_numpy(float),
            mode="markers",
            name="Study",
            marker={"size": _MARKER[presenter] + 2, "color": OKABE_ITO["blue"],
                    "line": {"width": 1, "color": "white"}},
            text=table["study"].astype(str),
            hovertemplate="%{text}: %{x:.3g}, SE %{y:.3g}<extra></extra>",
        )
    )
    xaxis = {"title": {"text": f"{measure_label}{' (log scale)' if ratio else ''}"}}
    if ratio:
        values = back(np.r_[region["ci_low"], region["ci_high"], table["estimate"]])
        span = _log_range(values, values, 1.0)
        xaxis.update(type="log", range=span, tickvals=_log_ticks(span))
    fig.update_layout(
        xaxis=xaxis,
        yaxis={"title": {"text": "Standard error"}, "autorange": "reversed", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.2},
    )
    heading = title or f"Funnel plot ({result.pooled.k} studies)"
    if egger is not None:
        statistic = "z" if egger.df is None else f"t({egger.df})"
        heading += (
            f"<br><sup>Egger's test ({egger.model}, {egger.predictor}): {statistic} = "
            f"{egger.statistic:.2f}, p = {_fmt_p(egger.p)}</sup>"
        )
    return _finish(fig, title=heading, presenter=presenter, watermark=watermark)
