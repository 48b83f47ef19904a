"""Plotly figures built from result tables.

Every builder reads the tables of an analysis result (never the patient data) and draws exactly
their numbers, so a figure and the table shown beside it cannot disagree. Builders share the
keywords ``title``, ``presenter`` (larger fonts and lines for projectors) and ``watermark`` (a
faint label such as "SYNTHETIC" across the plot).

Colours come from the Okabe–Ito palette, which stays distinguishable with the common forms of
colour-vision deficiency; :func:`group_colors` gives each level name the same colour on every page.

``plotly.graph_objects`` is imported inside the builders so that importing this module is cheap.
"""

from __future__ import annotations

import math
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .schema import ER_MEASURES, column_label

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go

# ---------------------------------------------------------------------------------------------
# Colours
# ---------------------------------------------------------------------------------------------

#: The Okabe–Ito palette (Okabe & Ito 2008), by name.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
GREY = "#999999"

#: Order in which unknown levels are hashed into the palette. Yellow is last because thin yellow
#: lines are hard to see on white; black is kept for "All"/"Overall".
_HASH_PALETTE: tuple[str, ...] = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["black"],
    OKABE_ITO["yellow"],
)

#: Fixed colours for names met across the dashboard (keys are normalised, see ``_norm``).
_FIXED_COLORS: dict[str, str] = {
    "all": OKABE_ITO["black"],
    "all patients": OKABE_ITO["black"],
    "overall": OKABE_ITO["black"],
    "er-negative": OKABE_ITO["vermillion"],
    "er-low": OKABE_ITO["orange"],
    "er-positive": OKABE_ITO["blue"],
    "er-": OKABE_ITO["vermillion"],
    "er+": OKABE_ITO["blue"],
    "negative": OKABE_ITO["vermillion"],
    "positive": OKABE_ITO["blue"],
    "hr-negative": OKABE_ITO["vermillion"],
    "hr-positive": OKABE_ITO["blue"],
    "her2-positive": OKABE_ITO["reddish_purple"],
    "her2-low": OKABE_ITO["sky_blue"],
    "her2-zero": OKABE_ITO["bluish_green"],
    "chemo + trastuzumab": OKABE_ITO["bluish_green"],
    "chemo + trastuzumab + pertuzumab": OKABE_ITO["reddish_purple"],
    "trastuzumab + pertuzumab (no chemo)": OKABE_ITO["sky_blue"],
    "trastuzumab + pertuzumab + endocrine (no chemo)": OKABE_ITO["orange"],
    "chemotherapy alone (her2-negative)": GREY,
    "hormone therapy": OKABE_ITO["bluish_green"],
    "no hormone therapy": OKABE_ITO["orange"],
    "pcr": OKABE_ITO["bluish_green"],
    "no pcr": OKABE_ITO["vermillion"],
    "missing": GREY,
    "unknown": GREY,
}


def _norm(name: str) -> str:
    # Unicode minus and en dash are common in labels ("ER−"); compare names without them.
    text = unicodedata.normalize("NFKC", str(name)).replace("\u2212", "-").replace("\u2013", "-")
    return " ".join(text.lower().split())


def _hashed_start(name: str) -> int:
    # crc32, not hash(): Python's str hash is salted per process, colours must not be.
    return zlib.crc32(_norm(name).encode("utf-8")) % len(_HASH_PALETTE)


def group_colors(levels: Iterable) -> dict[str, str]:
    """A colour per level name, independent of the order of ``levels``.

    Known names ("ER-negative", "ER-low", "ER-positive", "positive", "negative", the bundled
    trial arms, "All"...) always get their fixed colour. Other names are hashed into the
    Okabe–Ito palette; when two names of the same figure would share a colour, the one later in
    alphabetical order moves to the next free colour (so the result depends on the set of levels,
    never on their order). Beyond eight levels colours repeat.

    Returns a dict keyed by ``str(level)``.
    """
    names = sorted({"Missing" if _is_missing(v) else str(v) for v in levels})
    colors: dict[str, str] = {}
    used: set[str] = set()
    deferred = []
    for name in names:
        fixed = _FIXED_COLORS.get(_norm(name))
        if fixed is not None and fixed not in used:
            colors[name] = fixed
            used.add(fixed)
        else:
            deferred.append(name)
    for name in deferred:
        start = _hashed_start(name)
        order = [_HASH_PALETTE[(start + i) % len(_HASH_PALETTE)] for i in range(len(_HASH_PALETTE))]
        free = [c for c in order if c not in used]
        colors[name] = free[0] if free else order[0]
        used.add(colors[name])
    return colors


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# ---------------------------------------------------------------------------------------------
# Shared layout
# ---------------------------------------------------------------------------------------------

_FONT = {False: 13, True: 20}
_LINE = {False: 2.0, True: 4.0}
_MARKER = {False: 8, True: 13}


def _new_figure() -> go.Figure:
    import plotly.graph_objects as go

    return go.Figure()


def _finish(
    fig: go.Figure,
    *,
    title: str | None,
    presenter: bool,
    watermark: str | None,
    height: int | None = None,
) -> go.Figure:
    """Apply the house layout: white template, font size, title and optional watermark."""
    size = _FONT[presenter]
    fig.update_layout(
        template="plotly_white",
        font={"size": size, "family": "Arial, Helvetica, sans-serif"},
        hoverlabel={"font_size": size},
        legend={"font": {"size": size}},
    )
    if title:
        fig.update_layout(
            title={"text": title, "x": 0.0, "xanchor": "left", "font": {"size": size + 4}}
        )
    if height is not None:
        fig.update_layout(height=height)
    if watermark:
        fig.add_annotation(
            text=watermark,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            showarrow=False,
            textangle=-20,
            font={"size": 3 * size + 20, "color": "rgba(0,0,0,0.10)"},
            name="watermark",
        )
    return fig


def _fmt_count(value) -> str:
    return "" if _is_missing(value) else f"{int(value):,}"


def _fmt_ratio(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.2f}" if 0.01 <= abs(value) < 100 else f"{value:.2g}"


def _fmt_p(value) -> str:
    if value is None or _is_missing(value) or not np.isfinite(value):
        return ""
    if value < 0.001:
        return "<0.001"
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    from .errors import AnalysisError

    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise AnalysisError(
            f"The {what} table lacks column(s) {', '.join(missing)}: pass the table returned by "
            "the matching her2er_dash analysis."
        )


def _table_of(result, attribute: str) -> pd.DataFrame:
    """``result`` itself when it is a DataFrame, else its ``attribute`` table."""
    return result if isinstance(result, pd.DataFrame) else getattr(result, attribute)


# ---------------------------------------------------------------------------------------------
# Kaplan–Meier
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# pCR rates
# ---------------------------------------------------------------------------------------------


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
    fig = _new_figure()
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
            trace = go.Bar(
                marker_color=marker_color,
                textposition="inside",
                insidetextanchor="start",
                textangle=0,
                **common,
            )
        else:
            trace = go.Scatter(
                mode="markers+text",
                textposition="middle right",
                marker={"color": marker_color, "size": _MARKER[presenter] * 1.4},
                **common,
            )
        fig.add_trace(trace)
    fig.update_layout(
        barmode="group",
        scattermode="group",
        xaxis={"title": {"text": x_label or column_label(x)}, "type": "category"},
        yaxis={"title": {"text": "pCR rate"}, "range": [0, 1], "tickformat": ".0%"},
        legend={"title": {"text": column_label(color)}} if color else {},
    )
    return _finish(fig, title=title, presenter=presenter, watermark=watermark)


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

    Marker area is proportional to the number of patients in the bin. The x label defaults to the
    ER measure's label from :data:`her2er_dash.schema.ER_MEASURES`.
    """
    import plotly.graph_objects as go

    curve, observed = result.curve, result.observed
    _require(curve, ["er", "probability", "ci_low", "ci_high"], "dose-response curve")
    _require(observed, ["er_mid", "n", "pcr", "rate", "ci_low", "ci_high"], "observed-rate")
    er = getattr(result, "er", None)
    fig = _new_figure()
    x = curve["er"].to_numpy(float)
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
            hovertemplate="ER %{x:.4g}: %{y:.1%}<extra>fit</extra>",
        )
    )
    shown = observed[observed["n"] > 0]
    rate = shown["rate"].to_numpy(float)
    n = shown["n"].to_numpy(float)
    biggest = _MARKER[presenter] * 4
    labels = shown["bin"].astype(str).to_numpy() if "bin" in shown.columns else None
    fig.add_trace(
        go.Scatter(
            x=shown["er_mid"].to_numpy(float),
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
        xaxis={"title": {"text": x_label or ER_MEASURES.get(er, er or "ER level")}},
        yaxis={"title": {"text": y_label}, "range": [0, 1], "tickformat": ".0%"},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )
    return _finish(fig, title=title, presenter=presenter, watermark=watermark)


# ---------------------------------------------------------------------------------------------
# Forest plots
# ---------------------------------------------------------------------------------------------

_MEASURE_NAMES = {"OR": "Odds ratio", "HR": "Hazard ratio", "RR": "Risk ratio"}


def _measure_code(measure: str | None, table: pd.DataFrame) -> str:
    if measure is None and "measure" in table.columns and table["measure"].notna().any():
        measure = str(table["measure"].dropna().iloc[0])
    text = _norm(measure or "OR")
    if text in ("hr", "hazard ratio") or "hazard" in text:
        return "HR"
    if text in ("rr", "risk ratio") or "risk" in text:
        return "RR"
    return "OR"


def _log_range(low: np.ndarray, high: np.ndarray, reference: float) -> list[float]:
    """log10 axis range covering the CIs and the reference line, clipped to 1/1000..1000."""
    values = np.r_[low, high, reference]
    values = values[np.isfinite(values) & (values > 0)]
    lo, hi = np.log10(values.min()), np.log10(values.max())
    pad = max(0.08 * (hi - lo), 0.05)
    return [max(lo - pad, -3.0), min(hi + pad, 3.0)]


def _log_ticks(log_range: Sequence[float]) -> list[float]:
    """Round ratio ticks (…, 0.2, 0.5, 1, 2, 5, …) inside a log10 range; finer when it is narrow."""
    lo, hi = log_range
    span = hi - lo
    mantissas = (
        (1,)
        if span > 3.5
        else (1, 3)
        if span > 2
        else (1, 2, 5)
        if span > 1.2
        else (1, 1.5, 2, 3, 5, 7)
    )
    decades = range(math.floor(lo), math.ceil(hi) + 1)
    ticks = [m * 10.0**d for d in decades for m in mantissas]
    return [t for t in ticks if lo <= math.log10(t) <= hi]


def _diamond(estimate: float, low: float, high: float, y: float, half: float = 0.32):
    return [low, estimate, high, estimate, low], [y, y + half, y, y - half, y]


def _forest_rows(table: pd.DataFrame) -> list[dict]:
    """Display rows top to bottom: the overall row(s), then a header and the levels of each subgroup."""
    rows: list[dict] = []
    is_overall = table["subgroup"].astype(str).str.lower().eq("overall")
    for rec in table[is_overall].to_dict("records"):
        rows.append({**rec, "kind": "overall", "label": str(rec.get("level") or "All patients")})
    for subgroup, part in table[~is_overall].groupby("subgroup", sort=False):
        p_int = part["p_interaction"].dropna() if "p_interaction" in part.columns else pd.Series()
        rows.append(
            {
                "kind": "header",
                "label": column_label(str(subgroup)),
                "p_interaction": float(p_int.iloc[0]) if len(p_int) else np.nan,
            }
        )
        for rec in part.to_dict("records"):
            rows.append({**rec, "kind": "level", "label": str(rec["level"])})
    return rows


def _estimate_text(row: dict) -> str:
    estimate = row.get("estimate", np.nan)
    if estimate is None or not np.isfinite(estimate):
        # The reason (too few patients, one exposure group...) is in the table's warning column;
        # a long sentence here would run over the neighbouring text column.
        warning = row.get("warning")
        return "— (no estimate)" if isinstance(warning, str) and warning else "—"
    return f"{_fmt_ratio(estimate)} ({_fmt_ratio(row['ci_low'])}–{_fmt_ratio(row['ci_high'])})"


def _n_events_text(row: dict) -> str:
    if row["kind"] == "header":
        return ""
    events = row.get("events")
    return (
        f"{_fmt_count(row.get('n'))} / {_fmt_count(events)}"
        if events is not None
        else _fmt_count(row.get("n"))
    )


def forest_figure(
    table: pd.DataFrame,
    *,
    measure: str | None = None,
    reference_line: float = 1.0,
    outcome_label: str | None = None,
    x_label: str | None = None,
    alpha: float = 0.05,
    conf_level: float = 0.95,
    favours: tuple[str, str] | None = None,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """Subgroup forest plot from a ``subgroups.forest`` table.

    Rows: the overall row first (drawn as a diamond), then each subgroup as a bold header carrying
    its interaction p-value, followed by its levels. Text columns: "n / events", "estimate (CI)"
    and "p interaction". Levels without an estimate show "—" and their ``warning``. The caption
    states how many interaction tests are shown and how many false positives to expect by chance.

    Parameters
    ----------
    measure : "OR", "HR" or "RR"; default read from the table's ``measure`` column, else "OR".
    outcome_label : e.g. "pCR" or "EFS", used in the default x label.
    favours : optional labels drawn below the axis left and right of the reference line.
    """
    import plotly.graph_objects as go

    _require(table, ["subgroup", "level", "n", "estimate", "ci_low", "ci_high"], "forest")
    code = _measure_code(measure, table)
    outcome_label = outcome_label or ("pCR" if code == "OR" else None)
    name = _MEASURE_NAMES[code]
    x_label = x_label or (
        f"{name}{' for ' + outcome_label if outcome_label else ''} ({conf_level:.0%} CI, log scale)"
    )
    rows = _forest_rows(table)
    y = -np.arange(len(rows), dtype=float)
    at = np.array([i for i, r in enumerate(rows) if r["kind"] == "level"], dtype=int)
    est, low, high, n = (
        np.array([rows[i][c] for i in at], dtype=float)
        for c in ("estimate", "ci_low", "ci_high", "n")
    )
    fig = _new_figure()
    fig.add_trace(_whiskers(low, high, y[at], presenter))
    fig.add_trace(
        go.Scatter(
            x=est,
            y=y[at],
            mode="markers",
            name="Subgroup estimate",
            showlegend=False,
            marker=_area_marker(n, OKABE_ITO["blue"], _MARKER[presenter] * 2.2, symbol="square"),
            customdata=np.column_stack([low, high, n]),
            text=[rows[i]["label"] for i in at],
            hovertemplate="%{text}: %{x:.3g} (%{customdata[0]:.3g}–%{customdata[1]:.3g}), "
            "n = %{customdata[2]:,}<extra></extra>",
        )
    )
    for i, row in enumerate(rows):
        if row["kind"] == "overall" and np.isfinite(row.get("estimate", np.nan)):
            fig.add_trace(
                _diamond_trace(row["estimate"], row["ci_low"], row["ci_high"], y[i], row["label"])
            )
    fig.add_vline(x=reference_line, line={"color": "#666666", "dash": "dash", "width": 1})
    _forest_text_columns(fig, rows, y, presenter)
    every = np.r_[
        low,
        high,
        [r["ci_low"] for r in rows if r["kind"] == "overall"],
        [r["ci_high"] for r in rows if r["kind"] == "overall"],
    ].astype(float)
    fig.update_layout(
        xaxis={
            "type": "log",
            "title": {"text": x_label},
            "domain": [0.34, 0.64],
            "range": (span := _log_range(every, every, reference_line)),
            "tickvals": _log_ticks(span),
            "zeroline": False,
        },
        yaxis={"visible": False, "range": [y.min() - 0.8 if len(y) else -1, 1.2]},
        margin={"l": 10, "r": 10, "t": 90},
    )
    if favours:
        _add_favours(fig, favours, reference_line, presenter)
    heading = (
        f"{title or name + ' by subgroup'}<br><sup>{_multiplicity_caption(table, alpha)}</sup>"
    )
    height = max(360, 120 + (34 if presenter else 24) * (len(rows) + 1))
    return _finish(fig, title=heading, presenter=presenter, watermark=watermark, height=height)


def interaction_test_count(table: pd.DataFrame) -> int:
    """Number of subgroup variables with an interaction p-value in a forest table."""
    if "p_interaction" not in table.columns:
        return 0
    subgroups = table.loc[~table["subgroup"].astype(str).str.lower().eq("overall")]
    return int(subgroups.dropna(subset=["p_interaction"])["subgroup"].nunique())


def _multiplicity_caption(table: pd.DataFrame, alpha: float) -> str:
    k = interaction_test_count(table)
    return (
        f"{k} interaction test{'' if k == 1 else 's'} shown: expect "
        f"~{k * alpha:.1f} false positives at α = {alpha:g}"
    )


def _add_favours(fig, favours: tuple[str, str], reference_line: float, presenter: bool) -> None:
    # Drawn in the header row, either side of the reference line, where they cannot hide data.
    # (Few annotations, so add_annotation is cheap here.)
    for text, anchor in ((f"← {favours[0]}", "right"), (f"{favours[1]} →", "left")):
        fig.add_annotation(
            text=_escape(text),
            x=math.log10(reference_line),
            xref="x",
            y=1.0,
            yref="y",
            xshift=-4 if anchor == "right" else 4,
            showarrow=False,
            xanchor=anchor,
            font={"size": _FONT[presenter] - 3, "color": "#555555"},
        )


_FOREST_COLUMNS = (
    ("Subgroup", 0.0, "left"),
    ("n / events", 0.72, "center"),
    ("Estimate (CI)", 0.84, "center"),
    ("p interaction", 1.0, "right"),
)


def _text_columns(
    fig, columns: list[tuple[str, float, str, list[str], list[str]]], y, size
) -> None:
    """Draw table columns beside a plot as text traces on two hidden x axes sharing the rows.

    Each column is (header, x position in figure width 0..1, "left"/"center"/"right", cell
    texts, cell colours). Text traces are used rather than annotations because plotly
    re-validates every annotation whenever one is added, which takes seconds for a big forest.
    """
    import plotly.graph_objects as go

    position = {"left": "middle right", "center": "middle center", "right": "middle left"}
    for header, xpos, anchor, texts, colors in columns:
        axis = "x2" if xpos < 0.5 else "x3"
        domain = (0.0, 0.34) if axis == "x2" else (0.66, 1.0)
        local = (xpos - domain[0]) / (domain[1] - domain[0])
        fig.add_trace(
            go.Scatter(
                x=np.full(len(texts) + 1, local),
                y=np.r_[1.0, y],
                text=[f"<b>{header}</b>", *texts],
                mode="text",
                cliponaxis=False,
                textposition=position[anchor],
                textfont={"size": size, "color": ["#222222", *colors]},
                xaxis=axis,
                name=f"column: {header}",
                hoverinfo="skip",
                showlegend=False,
            )
        )
    hidden = {"range": [0, 1], "visible": False, "fixedrange": True, "anchor": "y"}
    fig.update_layout(
        xaxis2={**hidden, "domain": [0.0, 0.34]}, xaxis3={**hidden, "domain": [0.66, 1.0]}
    )


def _forest_text_columns(fig, rows: list[dict], y: np.ndarray, presenter: bool) -> None:
    labels, counts, estimates, p_values, muted = [], [], [], [], []
    for row in rows:
        label = _escape(row["label"])
        header = row["kind"] == "header"
        bold = header or row["kind"] == "overall"
        labels.append(f"<b>{label}</b>" if bold else "\u2003" + label)
        counts.append("" if header else _n_events_text(row))
        estimates.append("" if header else _escape(_estimate_text(row)))
        p_values.append(_fmt_p(row.get("p_interaction")) if header else "")
        muted.append(not header and not np.isfinite(row.get("estimate", np.nan)))
    dark = ["#222222"] * len(rows)
    grey = ["#777777" if m else "#222222" for m in muted]
    columns = [
        ("Subgroup", 0.0, "left", labels, dark),
        ("n / events", 0.72, "center", counts, dark),
        ("Estimate (CI)", 0.84, "center", estimates, grey),
        ("p interaction", 1.0, "right", p_values, dark),
    ]
    _text_columns(fig, columns, y, _FONT[presenter])


def _escape(text: str) -> str:
    # Plotly renders a subset of HTML in text: show user-supplied labels literally.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_SCALE_LABELS = {
    "OR": "Odds ratio",
    "HR": "Hazard ratio",
    "RR": "Risk ratio",
    "proportion": "Proportion",
}


def meta_forest_figure(
    summary_frame,
    *,
    measure_label: str | None = None,
    heterogeneity: str | None = None,
    reference_line: float | None = None,
    log_scale: bool | None = None,
    conf_level: float = 0.95,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """Meta-analysis forest plot from ``MetaResult.summary_frame()`` (or the ``MetaResult``).

    Study squares have area proportional to their weight; the pooled row is a diamond and the
    prediction-interval row a bar; excluded studies are listed with their reason.

    Parameters
    ----------
    summary_frame : columns ``label`` (or ``study``), ``kind`` ("study", "excluded", "pooled",
        "prediction"), ``estimate, ci_low, ci_high, weight, excluded``, back-transformed; or a
        ``MetaResult``, whose ``summary_frame(exponentiate=True)`` is used.
    measure_label : axis name, e.g. "Odds ratio for pCR"; default from ``attrs["scale"]``.
    heterogeneity : text under the title (e.g. "τ² = 0.04; I² = 31%"); written from the
        result's ``tau2``, ``i2``, ``q`` and ``p_heterogeneity`` when a ``MetaResult`` is passed.
    reference_line, log_scale : default 1 and a log axis for ratios; none and linear for
        proportions.
    """
    import plotly.graph_objects as go

    frame, heterogeneity = _meta_frame_and_text(summary_frame, heterogeneity)
    names = "label" if "label" in frame.columns else "study"
    _require(frame, [names, "estimate", "ci_low", "ci_high"], "meta-analysis summary")
    scale = str(frame.attrs.get("scale", ""))
    ratio = scale != "proportion"
    log_scale = ratio if log_scale is None else log_scale
    reference_line = (1.0 if ratio else None) if reference_line is None else reference_line
    measure_label = measure_label or _SCALE_LABELS.get(scale, scale or "Estimate")
    kinds = _meta_row_kinds(frame)
    labels = frame[names].astype(str).to_numpy()
    y = -np.arange(len(frame), dtype=float)
    est, low, high = (frame[c].to_numpy(float) for c in ("estimate", "ci_low", "ci_high"))
    studies = np.flatnonzero(kinds == "study")
    weight = (
        frame["weight"].to_numpy(float)[studies]
        if "weight" in frame.columns
        else np.ones(len(studies))
    )
    fig = _new_figure()
    fig.add_trace(_whiskers(low[studies], high[studies], y[studies], presenter))
    fig.add_trace(
        go.Scatter(
            x=est[studies],
            y=y[studies],
            mode="markers",
            name="Study",
            marker=_area_marker(
                np.nan_to_num(weight, nan=0.0),
                OKABE_ITO["blue"],
                _MARKER[presenter] * 2.6,
                symbol="square",
            ),
            customdata=np.column_stack([low[studies], high[studies], weight]),
            text=labels[studies],
            hovertemplate="%{text}: %{x:.3g} (%{customdata[0]:.3g}–%{customdata[1]:.3g}), "
            "weight %{customdata[2]:.1f}%<extra></extra>",
            showlegend=False,
        )
    )
    for i in np.flatnonzero(kinds == "pooled"):
        fig.add_trace(_diamond_trace(est[i], low[i], high[i], y[i], labels[i]))
    for i in np.flatnonzero(kinds == "prediction"):
        fig.add_trace(
            go.Scatter(
                x=[low[i], high[i]],
                y=[y[i], y[i]],
                mode="lines",
                name=labels[i],
                line={"color": OKABE_ITO["vermillion"], "width": _LINE[presenter] * 3},
                hovertemplate="Prediction interval %{x:.3g}<extra></extra>",
                showlegend=False,
            )
        )
    if reference_line is not None:
        fig.add_vline(x=reference_line, line={"color": "#666666", "dash": "dash", "width": 1})
    _meta_text_columns(fig, frame.assign(_label=labels), kinds, y, presenter, conf_level)
    heading = title or f"{measure_label}: meta-analysis"
    if heterogeneity:
        heading += f"<br><sup>{_escape(heterogeneity)}</sup>"
    axis = {
        "title": {
            "text": f"{measure_label} ({conf_level:.0%} CI{', log scale' if log_scale else ''})"
        },
        "domain": [0.34, 0.64],
        "zeroline": False,
    }
    if log_scale:
        span = _log_range(low, high, reference_line or 1.0)
        axis.update(type="log", range=span, tickvals=_log_ticks(span))
    fig.update_layout(
        xaxis=axis,
        yaxis={"visible": False, "range": [y.min() - 0.8, 1.2]},
        margin={"l": 10, "r": 10, "t": 90},
    )
    height = max(340, 130 + (34 if presenter else 24) * (len(frame) + 1))
    return _finish(fig, title=heading, presenter=presenter, watermark=watermark, height=height)


def _whiskers(low: np.ndarray, high: np.ndarray, y: np.ndarray, presenter: bool):
    """One line trace holding every CI segment, separated by gaps."""
    import plotly.graph_objects as go

    gap = np.full(len(low), np.nan)
    return go.Scatter(
        x=np.column_stack([low, high, gap]).ravel(),
        y=np.column_stack([y, y, gap]).ravel(),
        mode="lines",
        name="CI",
        hoverinfo="skip",
        showlegend=False,
        line={"color": "#222222", "width": _LINE[presenter] * 0.75},
    )


def _area_marker(size: np.ndarray, color: str, biggest: float, symbol: str = "circle") -> dict:
    """Marker whose area is proportional to ``size`` (the largest ``biggest`` px across)."""
    top = float(size.max()) if len(size) and size.max() > 0 else 1.0
    return {
        "symbol": symbol,
        "color": color,
        "size": size,
        "sizemode": "area",
        "sizemin": 4,
        "sizeref": 2.0 * top / biggest**2,
        "line": {"width": 1, "color": "white"},
    }


def _diamond_trace(estimate: float, low: float, high: float, y: float, name: str):
    import plotly.graph_objects as go

    dx, dy = _diamond(estimate, low, high, y)
    return go.Scatter(
        x=dx,
        y=dy,
        mode="lines",
        fill="toself",
        name=name,
        fillcolor=OKABE_ITO["black"],
        line={"color": OKABE_ITO["black"]},
        hoverinfo="name+x",
        showlegend=False,
    )


def _meta_frame_and_text(summary, heterogeneity: str | None) -> tuple[pd.DataFrame, str | None]:
    if isinstance(summary, pd.DataFrame):
        return summary, heterogeneity
    frame = summary.summary_frame(exponentiate=True)
    if heterogeneity is None:
        heterogeneity = heterogeneity_text(summary)
    return frame, heterogeneity


def heterogeneity_text(result) -> str:
    """ "τ² = …; I² = …%; Q = … on k df, p = …; REML" from a ``MetaResult``'s attributes."""
    parts = []
    if getattr(result, "tau2", None) is not None:
        parts.append(f"τ² = {result.tau2:.3g}")
    if getattr(result, "i2", None) is not None:
        parts.append(f"I² = {result.i2:.0f}%")
    if getattr(result, "q", None) is not None:
        q_text = f"Q = {result.q:.2f}"
        if getattr(result, "q_df", None) is not None:
            q_text += f" on {result.q_df} df"
        if getattr(result, "p_heterogeneity", None) is not None:
            q_text += f", p = {_fmt_p(result.p_heterogeneity)}"
        parts.append(q_text)
    method = getattr(result, "method", None)
    if method:
        parts.append(f"{method}{' + Hartung–Knapp' if getattr(result, 'hksj', False) else ''}")
    return "; ".join(parts)


def _meta_row_kinds(frame: pd.DataFrame) -> np.ndarray:
    """ "study", "excluded", "pooled" or "prediction" per row (``kind`` column, else the names)."""
    names = "label" if "label" in frame.columns else "study"
    source = frame["kind"] if "kind" in frame.columns else frame[names]
    raw = source.astype(str).str.lower()
    kinds = np.where(
        raw.str.startswith("pool"),
        "pooled",
        np.where(raw.str.startswith("predict"), "prediction", "study"),
    )
    if "excluded" in frame.columns:
        excluded = frame["excluded"].fillna("").astype(str).str.len().gt(0).to_numpy()
        kinds = np.where(excluded & (kinds == "study"), "excluded", kinds)
    return kinds


def _meta_estimate_text(row: dict, kind: str) -> str:
    interval = f"({_fmt_ratio(row['ci_low'])}–{_fmt_ratio(row['ci_high'])})"
    if kind == "excluded":
        return "excluded: " + _escape(row["excluded"])
    if kind == "prediction":
        return interval
    return f"{_fmt_ratio(row['estimate'])} {interval}"


def _meta_text_columns(fig, frame, kinds, y, presenter, conf_level) -> None:
    labels, estimates, weights, colors = [], [], [], []
    for kind, row in zip(kinds, frame.to_dict("records"), strict=True):
        label = _escape(row["_label"])
        labels.append(f"<b>{label}</b>" if kind in ("pooled", "prediction") else label)
        estimates.append(_meta_estimate_text(row, kind))
        weight = row.get("weight")
        shown = kind == "study" and weight is not None and np.isfinite(weight)
        weights.append(f"{weight:.1f}%" if shown else "")
        colors.append("#777777" if kind == "excluded" else "#222222")
    columns = [
        ("Study", 0.0, "left", labels, colors),
        (f"Estimate ({conf_level:.0%} CI)", 0.82, "center", estimates, colors),
        ("Weight", 1.0, "right", weights, colors),
    ]
    _text_columns(fig, columns, y, _FONT[presenter])


# ---------------------------------------------------------------------------------------------
# Patient flow
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
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
    interval is drawn. Arms without chemotherapy are drawn with open markers.
    """
    _require(trials, ["trial", "arm", "chemo", "pcr_rate_hr_pos", "pcr_rate_hr_neg"], "published trials")
    rows = trials.reset_index(drop=True)
    labels = [
        _escape(f"{str(t).split(' (')[0]} · {_shorten(str(a), 40)}")
        for t, a in zip(rows["trial"], rows["arm"], strict=True)
    ]
    no_chemo = rows["chemo"].astype(str).str.startswith("no").to_numpy()
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
        symbols = np.where(no_chemo, "circle-open", "circle")
        fig.add_scatter(
            x=values, y=labels, mode="markers", name=name,
            marker={"color": color, "size": _MARKER[presenter] + 2, "symbol": symbols.tolist(),
                    "line": {"width": 2, "color": color}},
            hovertemplate="%{y}<br>" + name + " pCR %{x:.1%}<extra></extra>",
        )
    fig.update_xaxes(title_text="pCR rate as published (open markers: no chemotherapy)",
                     tickformat=".0%", range=[0, 1])
    fig.update_yaxes(title_text="Trial · arm", autorange="reversed", automargin=True)
    fig.update_layout(legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return _finish(fig, title=title, presenter=presenter, watermark=None,
                   height=max(360, 26 * len(rows) + 140))
