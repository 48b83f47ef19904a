"""Forest plots: subgroup effects with interaction tests, and meta-analyses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..schema import column_label
from ..wording import expected_by_chance

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go
from ._rows import Column, Labels, axis_block_px, row_px, side_columns, stacked_columns
from ._rows import escape as _escape
from ._style import (
    _LINE,
    _MARKER,
    OKABE_ITO,
    _compose,
    _fmt_count,
    _fmt_p,
    _fmt_ratio,
    _norm,
    _require,
    font_px,
    title_px,
)

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
    narrow: bool = False,
) -> go.Figure:
    """Subgroup forest plot from a ``subgroups.forest`` table.

    Rows: the overall row first (drawn as a diamond), then each subgroup as a bold header carrying
    its interaction p-value, followed by its levels. Text columns: "n / events", "estimate (CI)"
    and "p interaction", each as wide as its content (see ``_rows``); labels longer than
    ``_rows.LABEL_CHARS`` are cut, with the full text in the hover. Levels without an estimate
    show "—" and their ``warning``. The caption states how many interaction tests are shown and
    how many false positives to expect by chance.

    Parameters
    ----------
    measure : "OR", "HR" or "RR"; default read from the table's ``measure`` column, else "OR".
    outcome_label : e.g. "pCR" or "EFS", used in the default x label.
    favours : optional labels drawn below the axis left and right of the reference line.
    narrow : the stacked layout for phone screens: labels above their rows (with n / events and
        the interaction p-value), only the estimate as a column.
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
    traces = [
        _whiskers(low, high, y[at], presenter),
        go.Scatter(
            x=est,
            y=y[at],
            mode="markers",
            name="Subgroup estimate",
            showlegend=False,
            marker=_area_marker(n, OKABE_ITO["blue"], _MARKER[presenter] * 2.2, symbol="square"),
            customdata=np.column_stack([low, high, n]),
            text=[_escape(rows[i]["label"]) for i in at],
            hovertemplate="%{text}: %{x:.3g} (%{customdata[0]:.3g}–%{customdata[1]:.3g}), "
            "n = %{customdata[2]:,}<extra></extra>",
        ),
    ]
    for i, row in enumerate(rows):
        if row["kind"] == "overall" and np.isfinite(row.get("estimate", np.nan)):
            traces.append(
                _diamond_trace(row["estimate"], row["ci_low"], row["ci_high"], y[i], row["label"])
            )
    every = np.r_[
        low,
        high,
        [r["ci_low"] for r in rows if r["kind"] == "overall"],
        [r["ci_high"] for r in rows if r["kind"] == "overall"],
    ].astype(float)
    span = _log_range(every, every, reference_line)
    label, right = _forest_columns(rows, code, conf_level)
    lay = stacked_columns if narrow else side_columns
    annotations, margin_l, margin_r = lay(label, right, y, presenter)
    if favours:
        annotations += _favours(favours, reference_line, presenter)
    heading = (
        f"{title or name + ' by subgroup'}<br><sup>{_multiplicity_caption(table, alpha)}</sup>"
    )
    top = title_px(heading, presenter, narrow)
    plot = row_px(presenter, narrow) * (len(rows) + 2.5)
    layout = {
        "xaxis": {
            "type": "log",
            "title": {"text": x_label},
            "range": span,
            "tickvals": _log_ticks(span),
            "zeroline": False,
        },
        "yaxis": {"visible": False, "range": [y.min() - 0.8 if len(y) else -1, 1.7]},
        "margin": {"l": margin_l, "r": margin_r, "t": top, "b": axis_block_px(presenter)},
        "annotations": annotations,
        "shapes": [_reference_line(reference_line)],
        "showlegend": False,
    }
    height = top + plot + axis_block_px(presenter)
    return _compose(traces, layout, title=heading, presenter=presenter, watermark=watermark,
                    height=height, narrow=narrow)  # fmt: skip


def _reference_line(x: float) -> dict:
    return {"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
            "line": {"color": "#666666", "dash": "dash", "width": 1}}  # fmt: skip


def _forest_columns(rows: list[dict], code: str, conf_level: float) -> tuple[Labels, list[Column]]:
    counts, estimates, p_values, grey = [], [], [], []
    for row in rows:
        header = row["kind"] == "header"
        counts.append("" if header else _n_events_text(row))
        estimates.append("" if header else _escape(_estimate_text(row)))
        p_values.append(_fmt_p(row.get("p_interaction")) if header else "")
        missing = not header and not np.isfinite(row.get("estimate", np.nan))
        grey.append("#777777" if missing else "#222222")
    labels = Labels("Subgroup", [r["label"] for r in rows],
                    bold=[r["kind"] in ("header", "overall") for r in rows],
                    indent=[r["kind"] == "level" for r in rows])  # fmt: skip
    right = [
        Column("n / events", counts, align="right", inline=""),
        Column(f"{code} ({conf_level:.0%} CI)", estimates, colors=grey),
        Column("p interaction", p_values, align="right", inline="p interaction "),
    ]
    return labels, right


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
        f"~{expected_by_chance(k, alpha)} false positives at α = {alpha:g}"
    )


def _favours(favours: tuple[str, str], reference_line: float, presenter: bool) -> list[dict]:
    # Drawn in the header row, either side of the reference line, where they cannot hide data.
    return [
        {"text": _escape(text), "x": math.log10(reference_line), "xref": "x", "y": 1.0,
         "yref": "y", "xshift": -4 if anchor == "right" else 4, "showarrow": False,
         "xanchor": anchor, "name": "favours",
         "font": {"size": font_px(presenter, 0.8), "color": "#555555"}}
        for text, anchor in ((f"← {favours[0]}", "right"), (f"{favours[1]} →", "left"))
    ]  # fmt: skip


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
    influence=None,
    narrow: bool = False,
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
    influence : optional ``LeaveOneOutResult`` of the same analysis (or its ``summary_frame()``):
        each study row then also shows, as an open diamond and in a column, the pooled estimate
        without that study.
    narrow : the stacked layout for phone screens (labels above their rows, with the weight).
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
    traces = [
        _whiskers(low[studies], high[studies], y[studies], presenter),
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
            text=[_escape(v) for v in labels[studies]],
            hovertemplate="%{text}: %{x:.3g} (%{customdata[0]:.3g}–%{customdata[1]:.3g}), "
            "weight %{customdata[2]:.1f}%<extra></extra>",
            showlegend=False,
        ),
    ]
    without = _leave_one_out_by_label(influence, labels)
    if without is not None:
        shown = studies[np.isfinite(without[studies])]
        traces.append(
            go.Scatter(
                x=without[shown],
                y=y[shown],
                mode="markers",
                name="Pooled without this study",
                marker={
                    "symbol": "diamond-open",
                    "size": _MARKER[presenter] + 2,
                    "color": OKABE_ITO["vermillion"],
                    "line": {"width": 2},
                },
                text=[_escape(v) for v in labels[shown]],
                hovertemplate="Pooled without %{text}: %{x:.3g}<extra></extra>",
                showlegend=False,
            )
        )
    for i in np.flatnonzero(kinds == "pooled"):
        traces.append(_diamond_trace(est[i], low[i], high[i], y[i], labels[i]))
    for i in np.flatnonzero(kinds == "prediction"):
        traces.append(
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
    label, right = _meta_columns(frame.assign(_label=labels), kinds, conf_level, without)
    lay = stacked_columns if narrow else side_columns
    annotations, margin_l, margin_r = lay(label, right, y, presenter)
    heading = title or f"{measure_label}: meta-analysis"
    if heterogeneity:
        heading += f"<br><sup>{_escape(heterogeneity)}</sup>"
    axis = {
        "title": {
            "text": f"{measure_label} ({conf_level:.0%} CI{', log scale' if log_scale else ''})"
        },
        "zeroline": False,
    }
    if log_scale:
        span = _log_range(low, high, reference_line or 1.0)
        axis.update(type="log", range=span, tickvals=_log_ticks(span))
    top = title_px(heading, presenter, narrow)
    layout = {
        "xaxis": axis,
        "yaxis": {"visible": False, "range": [y.min() - 0.8, 1.7]},
        "margin": {"l": margin_l, "r": margin_r, "t": top, "b": axis_block_px(presenter)},
        "annotations": annotations,
        "shapes": [] if reference_line is None else [_reference_line(reference_line)],
        "showlegend": False,
    }
    height = top + row_px(presenter, narrow) * (len(frame) + 2.5) + axis_block_px(presenter)
    return _compose(traces, layout, title=heading, presenter=presenter, watermark=watermark,
                    height=height, narrow=narrow)  # fmt: skip


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


def _meta_columns(frame, kinds, conf_level, without=None) -> tuple[Labels, list[Column]]:
    estimates, weights, colors = [], [], []
    for kind, row in zip(kinds, frame.to_dict("records"), strict=True):
        estimates.append(_meta_estimate_text(row, kind))
        weight = row.get("weight")
        shown = kind == "study" and weight is not None and np.isfinite(weight)
        weights.append(f"{weight:.1f}%" if shown else "")
        colors.append("#777777" if kind == "excluded" else "#222222")
    labels = Labels("Study", frame["_label"].astype(str).tolist(),
                    bold=[k in ("pooled", "prediction") for k in kinds], colors=colors)
    right = [
        Column(f"Estimate ({conf_level:.0%} CI)", estimates, colors=colors),
        Column("Weight", weights, align="right", colors=colors, inline=""),
    ]
    if without is not None:
        omitted = [_fmt_ratio(v) if np.isfinite(v) else "" for v in without]
        right.append(Column("Without study", omitted, align="right", colors=colors,
                            inline="without it "))  # fmt: skip
    return labels, right


def _leave_one_out_by_label(influence, labels: np.ndarray) -> np.ndarray | None:
    """The leave-one-out pooled estimate of each forest row (NaN for non-study rows)."""
    if influence is None:
        return None
    frame = (
        influence
        if isinstance(influence, pd.DataFrame)
        else influence.summary_frame(exponentiate=True)
    )
    _require(frame, ["label", "kind", "estimate"], "leave-one-out")
    omitted = frame[frame["kind"] == "omitted"]
    by_study = dict(
        zip(omitted["label"].astype(str).str.removeprefix("Omitting "), omitted["estimate"],
            strict=True)
    )
    return np.array([by_study.get(str(label), np.nan) for label in labels], dtype=float)


