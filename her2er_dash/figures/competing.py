"""Cumulative incidence figures: causes side by side, or stacked with event-free survival."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go

from ._style import (
    _FONT,
    _LINE,
    GREY,
    OKABE_ITO,
    _finish,
    _fmt_count,
    _require,
    _rgba,
    group_colors,
)
from .km import STEP_TOLERANCE, _nice_ticks, thin_steps

#: Colours of causes in the stacked view: the event of interest first.
CAUSE_COLORS = (OKABE_ITO["vermillion"], OKABE_ITO["sky_blue"], OKABE_ITO["orange"],
                OKABE_ITO["reddish_purple"], OKABE_ITO["bluish_green"])  # fmt: skip
MODES = ("side by side", "stacked")


def _cause_name(cause: int, labels: Mapping[int, str] | None) -> str:
    if labels and int(cause) in labels:
        text = str(labels[int(cause)])
        return text[0].upper() + text[1:]
    return f"Cause {int(cause)}"


def _curve(part: pd.DataFrame, end: float, max_points: int) -> tuple[np.ndarray, ...]:
    """Step corners of one curve, continued flat to the group's last follow-up time."""
    time = part["time"].to_numpy(float)
    cif = part["cif"].to_numpy(float)
    low = part["ci_low"].to_numpy(float) if "ci_low" in part else cif
    high = part["ci_high"].to_numpy(float) if "ci_high" in part else cif
    if len(part) > max_points:
        keep = thin_steps([cif], STEP_TOLERANCE) | thin_steps([low, high], 0.005)
        time, cif, low, high = time[keep], cif[keep], low[keep], high[keep]
    if end > time[-1]:
        time, cif = np.append(time, end), np.append(cif, cif[-1])
        low, high = np.append(low, low[-1]), np.append(high, high[-1])
    return time, cif, low, high


def _at_risk(risk: pd.DataFrame, ticks: np.ndarray) -> pd.DataFrame:
    rows = []
    for group, part in risk.groupby("group", sort=False):
        t = part["time"].to_numpy(float)
        idx = np.searchsorted(t, ticks, side="left")
        n = np.append(part["n_at_risk"].to_numpy(), 0)[idx]
        rows.append(pd.DataFrame({"group": group, "time": ticks, "n_at_risk": n}))
    return pd.concat(rows, ignore_index=True)


def cif_figure(
    result,
    *,
    mode: str = "side by side",
    cause_labels: Mapping[int, str] | None = None,
    causes: Sequence[int] | None = None,
    show_ci: bool = True,
    show_at_risk: bool = True,
    at_risk_times: Sequence[float] | None = None,
    time_label: str = "Time (months)",
    max_points: int = 1500,
    title: str | None = None,
    presenter: bool = False,
    watermark: str | None = None,
) -> go.Figure:
    """Cumulative incidence curves from a ``survival.CumulativeIncidenceResult``.

    ``mode="side by side"``: one panel per cause, one curve per group with its pointwise CI band;
    ``mode="stacked"``: one panel per group, the causes stacked on each other and event-free
    survival on top, so the areas add up to 1 at every time. Numbers at risk per group are shown
    under every panel. Only the result's tables (``table``: group, cause, time, cif, ci_low,
    ci_high; ``risk``: group, time, n_at_risk) are read.
    """
    from plotly.subplots import make_subplots

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    table, risk = result.table, result.risk
    _require(table, ["group", "cause", "time", "cif"], "cumulative incidence")
    _require(risk, ["group", "time", "n_at_risk"], "numbers at risk")
    groups = [str(g) for g in pd.unique(table["group"])]
    all_causes = [int(c) for c in sorted(pd.unique(table["cause"]))]
    shown = [c for c in (causes or all_causes) if c in all_causes]
    panels = shown if mode == "side by side" else groups
    palette = group_colors(groups)
    ends = risk.groupby("group", sort=False)["time"].max()
    t_max = float(ends.max()) if len(ends) else 0.0
    ticks = np.asarray(at_risk_times if at_risk_times is not None
                       else _nice_ticks(t_max, "month" in time_label.lower()), float)  # fmt: skip
    n_rows = 2 if show_at_risk else 1
    titles = [(_cause_name(c, cause_labels) if mode == "side by side" else str(c)) for c in panels]
    fig = make_subplots(
        rows=n_rows, cols=len(panels), shared_xaxes=True, horizontal_spacing=0.06,
        vertical_spacing=0.12, subplot_titles=titles + [""] * (len(panels) if show_at_risk else 0),
        row_heights=[0.78, 0.22] if show_at_risk else [1.0],
    )  # fmt: skip
    per_curve = max(200, max_points // max(1, len(groups) * len(shown)))
    for col, panel in enumerate(panels, start=1):
        if mode == "side by side":
            for group in groups:
                part = table[(table["group"].astype(str) == group) & (table["cause"] == panel)]
                if part.empty:
                    continue
                _add_curve(fig, part, float(ends[part["group"].iloc[0]]), palette[group], group,
                           col, show_ci, presenter, per_curve, legend=col == 1,
                           time_label=time_label)  # fmt: skip
        else:
            _add_stack(fig, table, risk, panel, shown, cause_labels, col, presenter,
                       legend=col == 1, time_label=time_label)  # fmt: skip
        fig.update_yaxes(range=[0, 1.0 if mode == "stacked" else None], row=1, col=col,
                         tickformat=".0%")  # fmt: skip
        fig.update_xaxes(range=[-0.04 * (t_max or 1), 1.03 * (t_max or 1)], tickvals=ticks,
                         row=n_rows, col=col)  # fmt: skip
        if show_at_risk:
            rows = groups if mode == "side by side" else [panel]
            _add_at_risk(fig, _at_risk(risk, ticks), rows, palette, col, presenter)
    fig.update_yaxes(title_text="Cumulative incidence" if mode == "side by side"
                     else "Probability", row=1, col=1)  # fmt: skip
    for col in range(1, len(panels) + 1):
        fig.update_xaxes(title_text=time_label, row=n_rows, col=col)
    if mode == "side by side":
        cap = float(np.nanmax(table.get("ci_high", table["cif"]))) if len(table) else 1.0
        fig.update_yaxes(range=[0, min(1.0, max(0.05, cap * 1.08))], row=1)
    fig.update_layout(
        legend={"orientation": "h", "y": 1.08, "yanchor": "bottom", "x": 0, "xanchor": "left"},
        hovermode="closest",
    )
    height = 560 + (28 * (len(groups) if mode == "side by side" else 1) if show_at_risk else 0)
    return _finish(fig, title=title, presenter=presenter, watermark=watermark,
                   height=int(height * (1.3 if presenter else 1.0)))  # fmt: skip


def _add_curve(fig, part, end, color, name, col, show_ci, presenter, max_points, *, legend,
               time_label) -> None:  # fmt: skip
    import plotly.graph_objects as go

    time, cif, low, high = _curve(part, end, max_points)
    if show_ci and "ci_low" in part:
        common = {"mode": "lines", "line": {"width": 0, "shape": "hv"}, "showlegend": False,
                  "hoverinfo": "skip", "legendgroup": name}  # fmt: skip
        fig.add_trace(go.Scatter(x=time, y=high, name=f"{name} upper CI", **common), row=1, col=col)
        fig.add_trace(go.Scatter(x=time, y=low, name=f"{name} lower CI", fill="tonexty",
                                 fillcolor=_rgba(color, 0.18), **common), row=1, col=col)  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=time, y=cif, mode="lines", name=name, legendgroup=name, showlegend=legend,
            line={"color": color, "width": _LINE[presenter], "shape": "hv"},
            hovertemplate=f"{name}<br>{time_label}: %{{x:.4g}}<br>Cumulative incidence: "
                          "%{y:.3f}<extra></extra>",
        ),
        row=1, col=col,
    )  # fmt: skip


def _add_stack(fig, table, risk, group, causes, cause_labels, col, presenter, *, legend,
               time_label) -> None:  # fmt: skip
    """Causes stacked from 0 upwards on the group's time grid, event-free survival on top."""
    import plotly.graph_objects as go

    grid_rows = risk[risk["group"].astype(str) == group]
    grid = np.concatenate(([0.0], grid_rows["time"].to_numpy(float)))
    stacks, lower = [], np.zeros(len(grid))
    for cause in causes:
        part = table[(table["group"].astype(str) == group) & (table["cause"] == cause)]
        if part.empty:
            continue
        idx = np.searchsorted(part["time"].to_numpy(float), grid, side="right") - 1
        lower = lower + part["cif"].to_numpy(float)[idx]
        stacks.append((cause, lower))
    keep = thin_steps([upper for _, upper in stacks]) if stacks else np.ones(len(grid), bool)
    grid = grid[keep]
    lower = np.zeros(len(grid))
    for k, (cause, cumulative) in enumerate(stacks):
        upper = cumulative[keep]
        name = _cause_name(cause, cause_labels)
        color = CAUSE_COLORS[k % len(CAUSE_COLORS)]
        fig.add_trace(go.Scatter(x=grid, y=lower, mode="lines", line={"width": 0, "shape": "hv"},
                                 showlegend=False, hoverinfo="skip", legendgroup=name),
                      row=1, col=col)  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=grid, y=upper, mode="lines", name=name, legendgroup=name, showlegend=legend,
                fill="tonexty", fillcolor=_rgba(color, 0.55),
                line={"color": color, "width": _LINE[presenter] / 2, "shape": "hv"},
                customdata=upper - lower,
                hovertemplate=f"{name}<br>{time_label}: %{{x:.4g}}<br>Cumulative incidence: "
                              "%{customdata:.3f}<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip
        lower = upper
    fig.add_trace(
        go.Scatter(
            x=grid, y=np.ones(len(grid)), mode="lines", name="Event-free", legendgroup="free",
            showlegend=legend, fill="tonexty", fillcolor=_rgba(GREY, 0.12),
            line={"color": GREY, "width": 0.5, "shape": "hv"}, customdata=1 - lower,
            hovertemplate=f"Event-free<br>{time_label}: %{{x:.4g}}<br>Probability: "
                          "%{customdata:.3f}<extra></extra>",
        ),
        row=1, col=col,
    )  # fmt: skip


def _add_at_risk(fig, at_risk, groups, palette, col, presenter) -> None:
    import plotly.graph_objects as go

    for group in groups:
        rows = at_risk[at_risk["group"].astype(str) == group]
        fig.add_trace(
            go.Scatter(
                x=rows["time"].to_numpy(float), y=[group] * len(rows),
                text=[_fmt_count(v) for v in rows["n_at_risk"]], mode="text",
                textfont={"color": palette[group], "size": _FONT[presenter] - 1},
                name=f"{group} at risk", showlegend=False,
                hovertemplate=f"{group}: %{{text}} at risk at %{{x:.4g}}<extra></extra>",
            ),
            row=2, col=col,
        )  # fmt: skip
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=list(reversed(groups)),
                     showgrid=False, zeroline=False, row=2, col=col,
                     title_text="At risk" if col == 1 else None)  # fmt: skip
