"""Published trials: pCR by hormone-receptor status per arm (descriptive)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go
from ._rows import Column, Labels, axis_block_px, escape, row_px, side_columns, stacked_columns
from ._style import _LINE, _MARKER, _compose, _require, group_colors, legend_px, title_px

# Published trials (trial-level, descriptive)
# ---------------------------------------------------------------------------------------------


def published_figure(
    trials: pd.DataFrame, *, title: str | None = None, presenter: bool = False, narrow: bool = False
) -> go.Figure:
    """Dumbbell plot of published pCR in HR+ vs HR− tumours, one row per trial arm.

    Reads ``trial, arm, chemo, pcr_rate_hr_pos, pcr_rate_hr_neg`` (fractions) and draws them as
    given: the rates are descriptive (most sources print percentages without counts), so no
    interval is drawn. Arms without any cytotoxic drug are drawn with open markers; with an optional
    ``regimen_class`` column, antibody-drug-conjugate arms are drawn as diamonds. Row labels are
    "trial · arm", cut to ``_rows.LABEL_CHARS`` with the full text in the hover; ``narrow`` writes
    them above their rows (phone screens). Published data: never watermarked.
    """
    import plotly.graph_objects as go

    _require(trials, ["trial", "arm", "chemo", "pcr_rate_hr_pos", "pcr_rate_hr_neg"], "published trials")
    rows = trials.reset_index(drop=True)
    full = [f"{str(t).split(' (')[0]} · {a}" for t, a in zip(rows["trial"], rows["arm"], strict=True)]
    no_chemo = rows["chemo"].astype(str).str.startswith("no").to_numpy()
    adc = np.zeros(len(rows), dtype=bool)
    if "regimen_class" in rows:
        adc = (rows["regimen_class"].astype(str) == "anti-HER2 ADC").to_numpy()
    pos = pd.to_numeric(rows["pcr_rate_hr_pos"], errors="coerce").to_numpy(float)
    neg = pd.to_numeric(rows["pcr_rate_hr_neg"], errors="coerce").to_numpy(float)
    y = -np.arange(len(rows), dtype=float)
    both = np.isfinite(pos) & np.isfinite(neg)
    gap = np.full(int(both.sum()), np.nan)
    traces = [go.Scatter(
        x=np.column_stack([pos[both], neg[both], gap]).ravel(),
        y=np.column_stack([y[both], y[both], gap]).ravel(), mode="lines",
        line={"color": "#BBBBBB", "width": _LINE[presenter]}, hoverinfo="skip", showlegend=False,
        name="gap",
    )]  # fmt: skip
    palette = group_colors(["HR-positive", "HR-negative"])
    symbols = np.where(adc, "diamond", np.where(no_chemo, "circle-open", "circle")).tolist()
    for name, values in (("HR-positive", pos), ("HR-negative", neg)):
        color = palette[name]
        traces.append(go.Scatter(
            x=values, y=y, mode="markers", name=name, text=[escape(f) for f in full],
            marker={"color": color, "size": _MARKER[presenter] + 2, "symbol": symbols,
                    "line": {"width": 2, "color": color}},
            hovertemplate="%{text}<br>" + name + " pCR %{x:.1%}<extra></extra>",
        ))  # fmt: skip
    label = Labels("Trial · arm", full)
    lay = stacked_columns if narrow else side_columns
    annotations, margin_l, margin_r = lay(label, [], y, presenter)
    top = title_px(title, presenter, narrow) + legend_px(presenter, ["HR-positive", "HR-negative"])
    layout = {
        "xaxis": {"title": {"text": "pCR rate as published (open: no cytotoxic drug; diamond: ADC)"},
                  "tickformat": ".0%", "range": [0, 1]},
        "yaxis": {"visible": False, "range": [y.min() - 0.8 if len(y) else -1, 1.5]},
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
        "margin": {"l": margin_l, "r": max(margin_r, 16), "t": top, "b": axis_block_px(presenter)},
        "annotations": annotations,
    }  # fmt: skip
    height = top + row_px(presenter, narrow) * (len(rows) + 2) + axis_block_px(presenter)
    return _compose(traces, layout, title=title, presenter=presenter, watermark=None, height=height,
                    narrow=narrow)


_PROGNOSIS_GROUPS = {"positive": "HR-positive", "negative": "HR-negative", "all": "All"}


def prognosis_figure(
    rows: pd.DataFrame, *, title: str | None = None, presenter: bool = False, narrow: bool = False
) -> go.Figure:
    """Forest of published hazard ratios of pCR vs residual disease, by HR status.

    Reads ``study, endpoint, hr_status`` ("positive", "negative", "all"), ``hr, ci_low,
    ci_high`` (as printed, 95 %) and ``verification`` (e.g. ``evidence.prognosis_rows``); one row
    per printed estimate, coloured by HR group, on a log axis with the printed value and the
    verification level in columns beside it (``narrow``: the verification above the row).
    Nothing is pooled here. Published data: never watermarked.
    """
    import plotly.graph_objects as go

    from ._style import OKABE_ITO, _fmt_ratio
    from .forest import _log_range, _log_ticks, _reference_line

    _require(rows, ["study", "endpoint", "hr_status", "hr", "ci_low", "ci_high", "verification"],
             "published prognosis")
    table = rows.reset_index(drop=True)
    groups = table["hr_status"].astype(str).map(_PROGNOSIS_GROUPS).fillna(table["hr_status"].astype(str))
    full = [f"{str(s).split(' (')[0]} · {e} · {g}"
            for s, e, g in zip(table["study"], table["endpoint"], groups, strict=True)]  # fmt: skip
    hr, low, high = (table[c].to_numpy(float) for c in ("hr", "ci_low", "ci_high"))
    y = -np.arange(len(table), dtype=float)
    palette = group_colors(list(_PROGNOSIS_GROUPS.values()))
    traces = []
    for group in dict.fromkeys(groups):
        at = np.flatnonzero((groups == group).to_numpy())
        gap = np.full(len(at), np.nan)
        color = palette.get(group, OKABE_ITO["black"])
        traces.append(go.Scatter(
            x=np.column_stack([low[at], high[at], gap]).ravel(),
            y=np.column_stack([y[at], y[at], gap]).ravel(), mode="lines",
            line={"color": color, "width": _LINE[presenter]}, hoverinfo="skip", showlegend=False,
            name=f"{group} CI",
        ))  # fmt: skip
        traces.append(go.Scatter(
            x=hr[at], y=y[at], mode="markers", name=group, text=[escape(full[i]) for i in at],
            marker={"color": color, "size": _MARKER[presenter] + 2, "symbol": "square"},
            customdata=np.column_stack([low[at], high[at],
                                        table["verification"].astype(str).to_numpy()[at]]),
            hovertemplate="%{text}: HR %{x:.2f} (%{customdata[0]:.2f}–%{customdata[1]:.2f}), "
            "%{customdata[2]}<extra></extra>",
        ))  # fmt: skip
    label = Labels("Study · endpoint · HR status", full)
    right = [
        Column("HR (95% CI)", [f"{_fmt_ratio(h)} ({_fmt_ratio(lo)}–{_fmt_ratio(hi)})"
                               for h, lo, hi in zip(hr, low, high, strict=True)]),
        Column("Verification", table["verification"].astype(str).map(escape).tolist(), inline=""),
    ]  # fmt: skip
    lay = stacked_columns if narrow else side_columns
    annotations, margin_l, margin_r = lay(label, right, y, presenter)
    span = _log_range(low, high, 1.0)
    top = title_px(title, presenter, narrow) + legend_px(presenter, list(dict.fromkeys(groups)))
    layout = {
        "xaxis": {"type": "log", "range": span, "tickvals": _log_ticks(span),
                  "title": {"text": "Hazard ratio, pCR vs residual disease (95% CI, log scale; "
                            "below 1: pCR patients fare better)"}},
        "yaxis": {"visible": False, "range": [y.min() - 0.8 if len(y) else -1, 1.5]},
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
        "margin": {"l": margin_l, "r": margin_r, "t": top, "b": axis_block_px(presenter)},
        "annotations": annotations,
        "shapes": [_reference_line(1.0)],
    }  # fmt: skip
    height = top + row_px(presenter, narrow) * (len(table) + 2) + axis_block_px(presenter)
    return _compose(traces, layout, title=title, presenter=presenter, watermark=None, height=height,
                    narrow=narrow)
