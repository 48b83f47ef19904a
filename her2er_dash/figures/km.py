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
    _LINE,
    _MARKER,
    LINE_HEIGHT,
    _compose,
    _fmt_count,
    _require,
    _rgba,
    _table_of,
    font_px,
    group_colors,
    legend_px,
    text_px,
    text_scale,
    title_px,
    truncate,
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
            name=truncate(name, LEGEND_CHARS),  # the legend; the hover names the group in full
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


#: Group names longer than these are cut (with "…") in the legend and in the at-risk row labels
#: (which take room from the plot); the full name is in the hover of the curve and of the label.
LEGEND_CHARS = 40
LABEL_CHARS = 18


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

    The numbers at risk are a table of annotations (named "<group> at risk") placed in pixels
    below the x-axis title, one row per group under a "Number at risk" header, so they never
    collide with the axis whatever the figure's size. Long group names are cut in the legend
    (:data:`LEGEND_CHARS`) and the row labels (:data:`LABEL_CHARS`), with the full name in the
    hover, so they cannot squeeze the plot.
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
    traces = []
    # One budget for the figure (not per group), so that many mid-sized groups stay small too.
    per_group = max_points if len(table) <= max_points else max(200, max_points // len(groups))
    for group, part in table.groupby("group", sort=False):
        name = str(group)
        traces += _km_group_traces(
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
    layout = {
        "xaxis": {
            "title": {"text": time_label, "standoff": AXIS_STANDOFF},
            # Start left of 0 so the at-risk counts at time 0 are not cut by the plot's edge.
            "range": [-0.05 * (t_max or 1.0), 1.03 * (t_max or 1.0)],
            "tickvals": ticks,
        },
        "yaxis": {"title": {"text": y_label}, "range": [0, 1.02], "tickformat": ".1f"},
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "xanchor": "left"},
        "hovermode": "closest",
        "margin": {"t": title_px(title, presenter) + 4
                   + legend_px(presenter, [truncate(g, LEGEND_CHARS) for g in groups]),
                   "r": 16, "l": 10, "b": 10},
    }
    plot_px = round(300 * text_scale(presenter))
    if show_at_risk:
        at_risk = km.at_risk(ticks) if hasattr(km, "at_risk") else _at_risk_from_table(table, ticks)
        annotations, margin_b, margin_l = at_risk_table(at_risk, groups, palette, presenter)
        layout["annotations"] = annotations
        layout["margin"].update(b=margin_b, l=margin_l)
    height = layout["margin"]["t"] + plot_px + layout["margin"]["b"]
    return _compose(traces, layout, title=title, presenter=presenter, watermark=watermark,
                    height=height)  # fmt: skip


#: Pixels between the x tick labels and the x-axis title (``xaxis.title.standoff``).
AXIS_STANDOFF = 8


def at_risk_offsets(presenter: bool, rows: int) -> tuple[int, list[int], int]:
    """Pixel offsets below the x axis of a number-at-risk table: (header, each row, margin).

    The axis block (tick marks, tick labels, standoff, axis title) comes first, then the
    "Number at risk" header and one row per group; the last value is the bottom margin that holds
    them all.
    """
    size = font_px(presenter)
    line = size * LINE_HEIGHT
    axis_block = 5 + line + AXIS_STANDOFF + line + 0.6 * size  # ticks, labels, standoff, title, gap
    row = round(size * 1.45)
    header = round(axis_block)
    offsets = [header + row * (i + 1) for i in range(rows)]
    return header, offsets, (offsets[-1] if offsets else header) + row + 4


def at_risk_table(at_risk: pd.DataFrame, groups: Sequence[str], palette: dict[str, str],
                  presenter: bool, *, xref: str = "x", labels: bool = True) -> tuple[list[dict], int, int]:
    """Annotations of a number-at-risk table under an x axis, and the margins it needs.

    ``at_risk``: columns ``group, time, n_at_risk``. Returns (annotations, bottom margin, left
    margin). Each count is an annotation named "<group> at risk" at its time (``xref``) and a
    fixed pixel offset below the plot; row labels (cut to :data:`LABEL_CHARS`, full name in the
    hover) sit in the left margin, right-aligned clear of the first count.
    """
    size = font_px(presenter)
    header, offsets, margin_b = at_risk_offsets(presenter, len(groups))
    annotations: list[dict] = []
    widest = 0.0
    for group, offset in zip(groups, offsets, strict=True):
        rows = at_risk[at_risk["group"].astype(str) == group]
        for t, n in zip(rows["time"].to_numpy(float), rows["n_at_risk"], strict=True):
            text = _fmt_count(n)
            widest = max(widest, text_px(text, size))
            annotations.append({
                "name": f"{group} at risk", "text": text, "x": float(t), "xref": xref, "y": 0,
                "yref": "paper", "yanchor": "top", "yshift": -offset, "showarrow": False,
                "font": {"color": palette[group], "size": size},
                "hovertext": f"{_escape(group)}: {text} at risk at {t:g}",
            })  # fmt: skip
    margin_l = 10
    if labels:
        shift = round(widest / 2 + 10)  # clear of the count at time 0, centred near the edge
        cut = [truncate(g, LABEL_CHARS) for g in groups]
        for group, short, offset in zip(groups, cut, offsets, strict=True):
            annotations.append({
                "name": "at-risk label", "text": _escape(short), "x": 0, "xref": "paper",
                "xanchor": "right", "xshift": -shift, "y": 0, "yref": "paper", "yanchor": "top",
                "yshift": -offset, "showarrow": False,
                "font": {"color": palette[group], "size": size},
                **({"hovertext": _escape(group)} if short != group else {}),
            })  # fmt: skip
        label_px = max(text_px(c, size) for c in cut) if cut else 0.0
        margin_l = round(label_px + shift + 6)
        # The header starts at the figure's left edge: it has a row of its own, so it may run on
        # under the plot without touching a count.
        annotations.append({
            "name": "at-risk header", "text": "<b>Number at risk</b>", "x": 0, "xref": "paper",
            "xanchor": "left", "xshift": -(margin_l - 4), "y": 0, "yref": "paper",
            "yanchor": "top", "yshift": -header, "showarrow": False, "font": {"size": size},
        })  # fmt: skip
    return annotations, margin_b, margin_l


def _escape(text: str) -> str:
    # Plotly renders a subset of HTML in text: show user-supplied labels literally.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
