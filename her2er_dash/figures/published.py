"""Published trials: pCR by hormone-receptor status per arm (descriptive)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go
from ._style import _LINE, _MARKER, _finish, _new_figure, _require, group_colors
from .forest import _escape

# Published trials (trial-level, descriptive)
# ---------------------------------------------------------------------------------------------


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def published_figure(
    trials: pd.DataFrame, *, title: str | None = None, presenter: bool = False
) -> go.Figure:
    """Dumbbell plot of published pCR in HR+ vs HR− tumours, one row per trial arm.

    Reads ``trial, arm, chemo, pcr_rate_hr_pos, pcr_rate_hr_neg`` (fractions) and draws them as
    given: the rates are descriptive (most sources print percentages without counts), so no
    interval is drawn. Arms without any cytotoxic drug are drawn with open markers; with an optional
    ``regimen_class`` column, antibody-drug-conjugate arms are drawn as diamonds.
    """
    _require(trials, ["trial", "arm", "chemo", "pcr_rate_hr_pos", "pcr_rate_hr_neg"], "published trials")
    rows = trials.reset_index(drop=True)
    labels = [
        _escape(f"{str(t).split(' (')[0]} · {_shorten(str(a), 40)}")
        for t, a in zip(rows["trial"], rows["arm"], strict=True)
    ]
    no_chemo = rows["chemo"].astype(str).str.startswith("no").to_numpy()
    adc = np.zeros(len(rows), dtype=bool)
    if "regimen_class" in rows:
        adc = (rows["regimen_class"].astype(str) == "anti-HER2 ADC").to_numpy()
    fig = _new_figure()
    pos = pd.to_numeric(rows["pcr_rate_hr_pos"], errors="coerce").to_numpy(float)
    neg = pd.to_numeric(rows["pcr_rate_hr_neg"], errors="coerce").to_numpy(float)
    both = np.isfinite(pos) & np.isfinite(neg)
    xs, ys = [], []
    for i in np.flatnonzero(both):
        xs += [pos[i], neg[i], None]
        ys += [labels[i], labels[i], None]
    fig.add_scatter(x=xs, y=ys, mode="lines", line={"color": "#BBBBBB", "width": _LINE[presenter]},
                    hoverinfo="skip", showlegend=False, name="gap")
    palette = group_colors(["HR-positive", "HR-negative"])
    for name, values in (("HR-positive", pos), ("HR-negative", neg)):
        color = palette[name]
        symbols = np.where(adc, "diamond", np.where(no_chemo, "circle-open", "circle"))
        fig.add_scatter(
            x=values, y=labels, mode="markers", name=name,
            marker={"color": color, "size": _MARKER[presenter] + 2, "symbol": symbols.tolist(),
                    "line": {"width": 2, "color": color}},
            hovertemplate="%{y}<br>" + name + " pCR %{x:.1%}<extra></extra>",
        )
    fig.update_xaxes(title_text="pCR rate as published (open: no cytotoxic drug; diamond: ADC)",
                     tickformat=".0%", range=[0, 1])
    fig.update_yaxes(title_text="Trial · arm", autorange="reversed", automargin=True)
    fig.update_layout(legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return _finish(fig, title=title, presenter=presenter, watermark=None,
                   height=max(360, 26 * len(rows) + 140))


_PROGNOSIS_GROUPS = {"positive": "HR-positive", "negative": "HR-negative", "all": "All"}


def prognosis_figure(
    rows: pd.DataFrame, *, title: str | None = None, presenter: bool = False
) -> go.Figure:
    """Forest of published hazard ratios of pCR vs residual disease, by HR status.

    Reads ``study, endpoint, hr_status`` ("positive", "negative", "all"), ``hr, ci_low,
    ci_high`` (as printed, 95 %) and ``verification`` (e.g. ``evidence.prognosis_rows``); one row
    per printed estimate, coloured by HR group, on a log axis with the printed value and the
    verification level beside it. Nothing is pooled here.
    """

    from ._style import OKABE_ITO, _fmt_ratio
    from .forest import _log_range, _log_ticks

    _require(rows, ["study", "endpoint", "hr_status", "hr", "ci_low", "ci_high", "verification"],
             "published prognosis")
    table = rows.reset_index(drop=True)
    groups = table["hr_status"].astype(str).map(_PROGNOSIS_GROUPS).fillna(table["hr_status"].astype(str))
    labels = [
        _escape(f"{str(s).split(' (')[0]} · {e} · {g}")
        for s, e, g in zip(table["study"], table["endpoint"], groups, strict=True)
    ]
    hr, low, high = (table[c].to_numpy(float) for c in ("hr", "ci_low", "ci_high"))
    fig = _new_figure()
    palette = group_colors(list(_PROGNOSIS_GROUPS.values()))
    for group in dict.fromkeys(groups):
        at = np.flatnonzero((groups == group).to_numpy())
        xs, ys = [], []
        for i in at:
            xs += [low[i], high[i], None]
            ys += [labels[i], labels[i], None]
        color = palette.get(group, OKABE_ITO["black"])
        fig.add_scatter(x=xs, y=ys, mode="lines", line={"color": color, "width": _LINE[presenter]},
                        hoverinfo="skip", showlegend=False, name=f"{group} CI")
        fig.add_scatter(
            x=hr[at], y=[labels[i] for i in at], mode="markers", name=group,
            marker={"color": color, "size": _MARKER[presenter] + 2, "symbol": "square"},
            customdata=np.column_stack([low[at], high[at], table["verification"].astype(str).to_numpy()[at]]),
            hovertemplate="%{y}: HR %{x:.2f} (%{customdata[0]:.2f}–%{customdata[1]:.2f}), "
            "%{customdata[2]}<extra></extra>",
        )
    span = _log_range(low, high, 1.0)
    fig.add_vline(x=1.0, line={"color": "#666666", "dash": "dash", "width": 1})
    fig.update_xaxes(type="log", range=span, tickvals=_log_ticks(span), domain=[0.0, 0.72],
                     title_text="Hazard ratio, pCR vs residual disease (95% CI, log scale; below 1: "
                     "pCR patients fare better)")
    fig.update_yaxes(autorange="reversed", automargin=True, title_text="")
    for label, h, lo, hi, level in zip(labels, hr, low, high, table["verification"].astype(str),
                                       strict=True):
        fig.add_annotation(x=1.0, xref="paper", y=label, yref="y", xanchor="right", showarrow=False,
                           text=f"{_fmt_ratio(h)} ({_fmt_ratio(lo)}–{_fmt_ratio(hi)}) · {level}")
    fig.update_layout(legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return _finish(fig, title=title, presenter=presenter, watermark=None,
                   height=max(320, 30 * len(table) + 160))
