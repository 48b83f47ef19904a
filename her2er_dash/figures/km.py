"""Kaplan–Meier figure with confidence bands, censor marks and numbers at risk."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go
from ._style import (
    _FONT,
    _LINE,
    _MARKER,
    _finish,
    _fmt_count,
    _new_figure,
    _require,
    _rgba,
    _table_of,
    group_colors,
)

#: Steps smaller than this (in survival probability) are merged when a curve is thinned.
STEP_TOLERANCE = 0.001


def thin_steps(series: Sequence[np.ndarray], tolerance: float = STEP_TOLERANCE) -> np.ndarray:
    """Rows of a step function to keep so that no series moves by more than ``tolerance`` unseen.

    A row is kept when any series enters a new ``tolerance``-wide band (so every step larger than
    ``tolerance`` is kept), plus the first and last rows. Between two kept rows each series stays
    within one band, so drawing only the kept rows (``line_shape="hv"``) is off by < tolerance.
    NaN values form a band of their own. Returns a boolean mask.
    """
    n = len(series[0])
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    keep[[0, -1]] = True
    for values in series:
        bands = np.floor(np.nan_to_num(np.asarray(values, float), nan=-1.0) / tolerance)
        keep[1:] |= bands[1:] != bands[:-1]
    return keep


def _thin_band(low: np.ndarray, high: np.ndarray, budget: int) -> np.ndarray:
    """Rows of a CI band to keep: steps of 0.001, coarsened (doubling) until ``budget`` rows remain.

    The band is an unoutlined semi-transparent fill, so an edge off by a few thousandths (about
    one pixel) is invisible; the curve itself is always kept at :data:`STEP_TOLERANCE`.
    """
    tolerance = STEP_TOLERANCE
    keep = thin_steps([low, high], tolerance)
    while keep.sum() > budget and tolerance < 0.05:
        tolerance *= 2
        keep = thin_steps([low, high], tolerance)
    return keep


def _thin_marks(times: np.ndarray, t_max: float, n_bins: int) -> np.ndarray:
    """Indices of censor marks to keep: the first in each of ``n_bins`` time bins.

    A mark is several pixels wide, so with more marks than bins they overlap into a solid row.
    """
    width = t_max / n_bins if t_max > 0 else 1.0
    bins = np.minimum(np.floor(times / width), n_bins - 1)  # the last time closes the last bin
    _, first = np.unique(bins, return_index=True)
    return np.sort(first)


def _nice_ticks(t_max: float, months: bool) -> np.ndarray:
    """About 4–8 round tick positions from 0 to ``t_max`` (multiples of 12 for months when long)."""
    if not np.isfinite(t_max) or t_max <= 0:
        return np.array([0.0])
    magnitude = 10 ** math.floor(math.log10(t_max))
    steps = [m * magnitude / 10 for m in (1, 2, 2.5, 5, 10, 20, 25, 50, 100)]
    if months and t_max >= 24:
        steps = [6, 12, 24, 36, 48, 60, 120, 240, 600, 1200]
    step = next((s for s in steps if t_max / s <= 7), steps[-1])
    return np.arange(0.0, t_max + 1e-9 * t_max, step)


def _at_risk_from_table(table: pd.DataFrame, times: Sequence[float]) -> pd.DataFrame:
    """Number at risk read off a KM table with one row per time (censored times included)."""
    rows = []
    times = np.asarray(times, float)
    for group, part in table.groupby("group", sort=False):
        t = part["time"].to_numpy(float)
        at = part["n_at_risk"].to_numpy()
        idx = np.searchsorted(t, times, side="left")
        values = np.where(idx < len(t), at[np.minimum(idx, len(t) - 1)], 0)
        rows.append(pd.DataFrame({"group": group, "time": times, "n_at_risk": values}))
    return pd.concat(rows, ignore_index=True)


def _km_group_traces(
    part: pd.DataFrame,
    *,
    color: str,
    name: str,
    max_points: int,
    t_max: float,
    show_ci: bool,
    show_censor: bool,
    presenter: bool,
    time_label: str,
) -> list:
    import plotly.graph_objects as go

    time = part["time"].to_numpy(float)
    surv = part["survival"].to_numpy(float)
    has_ci = show_ci and {"ci_low", "ci_high"} <= set(part.columns)
    low = part["ci_low"].to_numpy(float) if has_ci else None
    high = part["ci_high"].to_numpy(float) if has_ci else None
    keep = np.ones(len(part), dtype=bool)
    band = np.isfinite(low) & np.isfinite(high) if has_ci else keep
    if len(part) > max_points:
        keep = thin_steps([surv])
        if has_ci:
            band &= _thin_band(low, high, budget=max_points // 2)
    traces = []
    if has_ci:
        common = {
            "mode": "lines",
            "line": {"width": 0, "shape": "hv"},
            "legendgroup": name,
            "showlegend": False,
            "hoverinfo": "skip",
        }
        traces.append(
            go.Scatter(
                x=np.r_[0.0, time[band]],
                y=np.r_[1.0, high[band]],
                name=f"{name} upper CI",
                **common,
            )
        )
        traces.append(
            go.Scatter(
                x=np.r_[0.0, time[band]],
                y=np.r_[1.0, low[band]],
                name=f"{name} lower CI",
                fill="tonexty",
                fillcolor=_rgba(color, 0.18),
                **common,
            )
        )
    traces.append(
        go.Scatter(
            x=np.r_[0.0, time[keep]],
            y=np.r_[1.0, surv[keep]],
            mode="lines",
            name=name,
            legendgroup=name,
            line={"color": color, "width": _LINE[presenter], "shape": "hv"},
            hovertemplate=f"{name}<br>{time_label}: %{{x:.4g}}<br>Survival: %{{y:.3f}}<extra></extra>",
        )
    )
    if show_censor and "n_censor" in part.columns:
        censored = np.flatnonzero(part["n_censor"].to_numpy() > 0)
        if len(censored) > max_points // 8:
            censored = censored[_thin_marks(time[censored], t_max, max_points // 8)]
        traces.append(
            go.Scatter(
                x=time[censored],
                y=surv[censored],
                mode="markers",
                name=f"{name} censored",
                legendgroup=name,
                showlegend=False,
                marker={
                    "symbol": "cross-thin-open",
                    "size": _MARKER[presenter],
                    "color": color,
                    "line": {"width": _LINE[presenter] / 1.5, "color": color},
                },
                hovertemplate=f"{name}: censored at %{{x:.4g}}<extra></extra>",
            )
        )
    return traces


def km_figure(
    km,
    *,
    at_risk_times: Sequence[float] | None = None,
    show_ci: bool = True,
    show_censor: bool = True,
    show_at_risk: bool = True,
    time_label: str = "Time (months)",
    y_label: str = "Survival probability",
    max_points: int = 2000,
    colors: dict[str, str] | None = None,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """Kaplan–Meier curves with CI bands, censor marks and a number-at-risk table below.

    Parameters
    ----------
    km : a ``survival.KaplanMeierResult`` (its ``.table`` and ``.at_risk(times)`` are read), or
        its table (columns ``group, time, n_at_risk, n_event, n_censor, survival, ci_low,
        ci_high``; one row per distinct time, censored times included).
    at_risk_times : times for the number-at-risk row and the x ticks; default round numbers.
    max_points : a budget for the whole figure: when the groups together have more rows, each
        group gets an equal share and is thinned with :func:`thin_steps` (steps below 0.001
        merged) and its censor marks to one per pixel-sized cell, so the figure stays small at any
        n; the drawn curve is within 0.001 of the table everywhere.
    time_label : x-axis title, with units.
    colors : override :func:`group_colors`.
    """
    table = _table_of(km, "table")
    _require(table, ["group", "time", "survival"], "Kaplan–Meier")
    groups = [str(g) for g in pd.unique(table["group"])]
    palette = {**group_colors(groups), **(colors or {})}
    t_max = float(np.nanmax(table["time"])) if len(table) else 0.0
    ticks = np.asarray(
        at_risk_times
        if at_risk_times is not None
        else _nice_ticks(t_max, "month" in time_label.lower()),
        float,
    )
    fig = _new_figure()
    # One budget for the figure (not per group), so that many mid-sized groups stay small too.
    per_group = max_points if len(table) <= max_points else max(200, max_points // len(groups))
    for group, part in table.groupby("group", sort=False):
        name = str(group)
        fig.add_traces(
            _km_group_traces(
                part,
                color=palette[name],
                name=name,
                max_points=per_group,
                t_max=t_max,
                show_ci=show_ci,
                show_censor=show_censor,
                presenter=presenter,
                time_label=time_label,
            )
        )
    table_share = min(0.35, 0.06 * (len(groups) + 1)) if show_at_risk else 0.0
    gap = 0.14 if show_at_risk else 0.0
    fig.update_layout(
        xaxis={
            "title": {"text": time_label},
            # Start a little left of 0 so the at-risk counts at time 0 are not clipped.
            "range": [-0.05 * (t_max or 1.0), 1.03 * (t_max or 1.0)],
            "tickvals": ticks,
            "zeroline": False,
            "anchor": "y",
        },
        yaxis={
            "title": {"text": y_label},
            "range": [0, 1.02],
            "tickformat": ".1f",
            "domain": [table_share + gap, 1.0],
        },
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "xanchor": "left"},
        hovermode="closest",
    )
    if show_at_risk:
        _add_at_risk_rows(fig, km, table, ticks, groups, palette, presenter, table_share)
    height = 520 + 28 * len(groups) * show_at_risk
    return _finish(
        fig,
        title=title,
        presenter=presenter,
        watermark=watermark,
        height=int(height * (1.3 if presenter else 1.0)),
    )


def _add_at_risk_rows(fig, km, table, ticks, groups, palette, presenter, table_share) -> None:
    import plotly.graph_objects as go

    at_risk = km.at_risk(ticks) if hasattr(km, "at_risk") else _at_risk_from_table(table, ticks)
    for group in groups:
        rows = at_risk[at_risk["group"].astype(str) == group]
        fig.add_trace(
            go.Scatter(
                x=rows["time"].to_numpy(float),
                y=[group] * len(rows),
                text=[_fmt_count(v) for v in rows["n_at_risk"]],
                mode="text",
                textfont={"color": palette[group], "size": _FONT[presenter]},
                name=f"{group} at risk",
                showlegend=False,
                yaxis="y2",
                hovertemplate=f"{group}: %{{text}} at risk at %{{x:.4g}}<extra></extra>",
            )
        )
    fig.update_layout(
        yaxis2={
            "domain": [0.0, table_share],
            "anchor": "x",
            "type": "category",
            "categoryorder": "array",
            "categoryarray": list(reversed(groups)),
            "showgrid": False,
            "zeroline": False,
            "title": {"text": "Number at risk"},
            "tickfont": {"size": _FONT[presenter]},
        },
    )


