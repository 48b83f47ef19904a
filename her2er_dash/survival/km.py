"""Kaplan-Meier curves with pointwise intervals, medians and numbers at risk (as R survfit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._data import Exclusions, as_list, survival_frame, z_value
from ..counts import unpack, weights
from ._common import _HALF_TOL, ALL_LABEL, CONF_TYPES, _check_choice, _columns, _group_codes


def _group_time_order(time: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Rows sorted by group, then time (a quicksort on time, then a radix sort on small codes)."""
    order = np.argsort(time)
    small = codes.astype(np.int16) if len(codes) and codes.max() < 2**15 else codes
    return order[np.argsort(small[order], kind="stable")]


def _km_steps(
    time: np.ndarray, event: np.ndarray, codes: np.ndarray, counts: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """One row per distinct (group, time): counts, KM survival and Greenwood variance of log S.

    ``counts``: patients per row (a count table); None for one patient per row.
    """
    order = _group_time_order(time, codes)
    t, e, g = time[order], event[order], codes[order]
    n = len(t)
    new = np.ones(n, dtype=bool)
    new[1:] = (t[1:] != t[:-1]) | (g[1:] != g[:-1])
    start = np.flatnonzero(new)
    group = g[start]
    group_stop = np.searchsorted(g, group, side="right")
    if counts is None:
        size = np.diff(np.append(start, n))
        deaths = np.add.reduceat(e.astype(np.int64), start)
        at_risk = group_stop - start
    else:
        c = counts[order]
        size = np.add.reduceat(c, start)
        deaths = np.add.reduceat(e.astype(np.int64) * c, start)
        # Patients at risk: everyone of the group from this row on (a reverse cumulative sum).
        after = np.concatenate(([0], np.cumsum(c)))
        at_risk = after[group_stop] - after[start]
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = deaths / at_risk
        greenwood_step = deaths / (at_risk * (at_risk - deaths))
    surv = np.empty(len(start))
    var_log = np.empty(len(start))
    for code in np.unique(group):  # a loop per group only; each one is a cumulative product
        part = slice(*np.searchsorted(group, [code, code + 1]))
        surv[part] = np.cumprod(1 - hazard[part])
        var_log[part] = np.cumsum(greenwood_step[part])
    return {
        "group": group,
        "time": t[start],
        "n_at_risk": at_risk,
        "n_event": deaths,
        "n_censor": size - deaths,
        "survival": surv,
        "var_log": var_log,
    }


def _conf_bounds(
    surv: np.ndarray, se_log: np.ndarray, conf_type: str, z: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits exactly as R's survfit (NaN where R gives NA)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            half = z * se_log * surv
            return np.maximum(surv - half, 0), np.minimum(surv + half, 1)
        if conf_type == "log":
            s = np.where(surv == 0, np.nan, surv)
            return np.exp(np.log(s) - z * se_log), np.minimum(np.exp(np.log(s) + z * se_log), 1)
        s = np.where((surv == 0) | (surv == 1), np.nan, surv)
        shift = z * se_log / np.log(s)
        loglog = np.log(-np.log(s))
        return np.exp(-np.exp(loglog - shift)), np.exp(-np.exp(loglog + shift))


def _collapse_degenerate(surv: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Where R reports NA because the estimate is exactly 1 or 0, use the estimate itself."""
    return np.where(np.isnan(bound) & ((surv == 1) | (surv == 0)), surv, bound)


def _first_below_half(curve: np.ndarray, times: np.ndarray) -> float:
    """Earliest time the curve is <= 0.5 (R's ``minmin``: a flat 0.5 gives the midpoint)."""
    keep = ~np.isnan(curve) & (curve < 0.5 + _HALF_TOL)
    if not keep.any():
        return np.nan
    x, y = times[keep], curve[keep]
    if abs(y[0] - 0.5) < _HALF_TOL and (y < y[0]).any():
        return float((x[0] + x[np.argmax(y < y[0])]) / 2)
    return float(x[0])


@dataclass(frozen=True)
class KaplanMeierResult:
    """Kaplan-Meier curves (one per group) as R's ``summary(survfit(...), censored=TRUE)``.

    ``table``: group, time, n_at_risk, n_event, n_censor, survival, ci_low, ci_high (one row per
    distinct time per group, censored times included). Where R gives NA limits because the
    estimate is exactly 1 or 0, the limits equal the estimate.
    ``medians``: group, n, events, median, ci_low, ci_high (as R's ``print(survfit)``; NaN when
    not reached).
    """

    table: pd.DataFrame
    medians: pd.DataFrame
    exclusions: Exclusions
    conf_type: str
    alpha: float
    by: str | None

    def at_risk(self, times: Sequence[float]) -> pd.DataFrame:
        """Number at risk (time >= t) and cumulative events (time <= t) per group at ``times``."""
        grid = np.asarray(sorted(float(t) for t in times))
        frames = []
        sizes = self.medians.set_index("group")["n"]
        for label, part in self.table.groupby("group", sort=False):
            t = part["time"].to_numpy()
            first_at_or_after = np.searchsorted(t, grid, side="left")
            risk = np.append(part["n_at_risk"].to_numpy(), 0)[first_at_or_after]
            risk = np.where(first_at_or_after == 0, sizes[label], risk)
            events = np.append(0, np.cumsum(part["n_event"].to_numpy()))
            frames.append(
                pd.DataFrame(
                    {
                        "group": label,
                        "time": grid,
                        "n_at_risk": risk.astype(np.int64),
                        "n_events_cumulative": events[np.searchsorted(t, grid, side="right")],
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


def _prepare_groups(
    df, time: str, event: str, by: str | None, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], Exclusions, np.ndarray | None]:
    """Time, event, group codes, labels, exclusions and patients per row (None: one each) of
    patient rows or a :class:`~her2er_dash.counts.Counts`."""
    frame, count = unpack(df)
    needed = _columns(frame, [time, event, *as_list(by), *as_list(count)])
    clean, excl = survival_frame(needed, time, event, as_list(by), what=what, count=count)
    if by is None:
        codes, labels = np.zeros(len(clean), dtype=np.int64), [ALL_LABEL]
    else:
        codes, labels = _group_codes(clean[by])
    t = clean[time].to_numpy(dtype=float)
    e = clean[event].to_numpy(dtype=np.int64)
    return t, e, codes, labels, excl, weights(clean, count)


def _km_table(t, e, codes, labels, conf_type, z, counts=None) -> tuple[pd.DataFrame, tuple]:
    """The KM table, plus (group codes, raw R-style limits) for reading medians off the curves."""
    steps = _km_steps(t, e, codes, counts)
    se_log = np.sqrt(steps["var_log"])
    low, high = _conf_bounds(steps["survival"], se_log, conf_type, z)
    surv = steps["survival"]
    table = pd.DataFrame(
        {
            "group": np.asarray(labels, dtype=object)[steps["group"]],
            "time": steps["time"],
            "n_at_risk": steps["n_at_risk"],
            "n_event": steps["n_event"],
            "n_censor": steps["n_censor"],
            "survival": surv,
            "ci_low": _collapse_degenerate(surv, low),
            "ci_high": _collapse_degenerate(surv, high),
        }
    )
    return table, (steps["group"], low, high)


def _medians(table: pd.DataFrame, raw: tuple, labels: list[str]) -> pd.DataFrame:
    group, low, high = raw
    rows = []
    for code, label in enumerate(labels):
        part = group == code
        times = table["time"].to_numpy()[part]
        surv = table["survival"].to_numpy()[part]
        rows.append(
            {
                "group": label,
                "n": int(table["n_at_risk"].to_numpy()[part][0]),
                "events": int(table["n_event"].to_numpy()[part].sum()),
                "median": _first_below_half(surv, times),
                "ci_low": _first_below_half(low[part], times),
                "ci_high": _first_below_half(high[part], times),
            }
        )
    return pd.DataFrame(rows)


def kaplan_meier(
    df,
    time: str,
    event: str,
    *,
    by: str | None = None,
    conf_type: str = "log-log",
    alpha: float = 0.05,
) -> KaplanMeierResult:
    """Kaplan-Meier estimates with Greenwood pointwise intervals, overall or per level of ``by``.

    Parameters
    ----------
    df : patient rows, or a :class:`~her2er_dash.counts.Counts` of (``time``, ``event``,
        ``by``) cells (the same curves).
    conf_type : "log-log" (R ``conf.type="log-log"``), "log" (R's default) or "plain".
    alpha : 1 - confidence level of the intervals.
    """
    _check_choice(conf_type, CONF_TYPES, "conf_type")
    z = z_value(alpha)
    t, e, codes, labels, excl, w = _prepare_groups(df, time, event, by, "a Kaplan-Meier curve")
    table, raw = _km_table(t, e, codes, labels, conf_type, z, w)
    return KaplanMeierResult(
        table=table,
        medians=_medians(table, raw, labels),
        exclusions=excl,
        conf_type=conf_type,
        alpha=alpha,
        by=by,
    )


