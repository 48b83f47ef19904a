"""Restricted mean survival time and survival at a milestone (as R print(survfit, rmean=))."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._data import Exclusions, z_value
from ..errors import AnalysisError
from ._common import CONF_TYPES, _check_choice, _two_sided_p
from .km import _collapse_degenerate, _conf_bounds, _km_steps, _prepare_groups


def _contrasts(labels: list[str], estimate: np.ndarray, se: np.ndarray, z: float) -> pd.DataFrame:
    """Each group minus the first: estimate, se, normal-approximation CI and p."""
    diff = estimate[1:] - estimate[0]
    se_diff = np.sqrt(se[1:] ** 2 + se[0] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = _two_sided_p(diff / se_diff)
    return pd.DataFrame(
        {
            "contrast": [f"{lab} - {labels[0]}" for lab in labels[1:]],
            "estimate": diff,
            "se": se_diff,
            "ci_low": diff - z * se_diff,
            "ci_high": diff + z * se_diff,
            "p": p,
        }
    )


def _rmst_one(
    times: np.ndarray, surv: np.ndarray, risk: np.ndarray, deaths: np.ndarray, tau: float
) -> tuple[float, float]:
    """Area under one KM curve up to ``tau`` and its SE (R's survmean, start time 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = np.where(risk - deaths == 0, 0.0, deaths / (risk * (risk - deaths)))
    keep = times <= tau
    knots = np.append(times[keep], tau)
    heights = np.concatenate(([1.0], surv[keep]))  # survival on each interval up to the knot
    hh = np.append(hh[keep], 0.0)
    rect = np.diff(np.concatenate(([0.0], knots))) * heights
    tail_area = np.cumsum(rect[::-1])[::-1]  # area from each knot's start to tau
    # The area beyond the i-th event time multiplies that event's Greenwood increment.
    variance = float(np.sum(tail_area[1:] ** 2 * hh[:-1]))
    return float(rect.sum()), variance**0.5


@dataclass(frozen=True)
class RMSTResult:
    """Restricted mean survival time up to ``tau`` per group (R ``print(survfit, rmean=tau)``).

    ``table``: group, rmst, se, ci_low, ci_high. ``difference``: contrast ("B - A", each group
    against the first), estimate, se, ci_low, ci_high, p (normal approximation).
    """

    table: pd.DataFrame
    difference: pd.DataFrame
    tau: float
    alpha: float
    exclusions: Exclusions


def rmst(
    df: pd.DataFrame, time: str, event: str, by: str, *, tau: float, alpha: float = 0.05
) -> RMSTResult:
    """Restricted mean survival time (area under the KM curve from 0 to ``tau``) per group."""
    z = z_value(alpha)
    if not np.isfinite(tau) or tau <= 0:
        raise AnalysisError(f"tau must be a positive time (in the units of {time}); got {tau!r}.")
    t, e, codes, labels, excl, w = _prepare_groups(df, time, event, by, "restricted mean survival")
    steps = _km_steps(t, e, codes, w)
    est, se = np.empty(len(labels)), np.empty(len(labels))
    for code in range(len(labels)):
        part = steps["group"] == code
        est[code], se[code] = _rmst_one(
            steps["time"][part],
            steps["survival"][part],
            steps["n_at_risk"][part],
            steps["n_event"][part],
            tau,
        )
    table = pd.DataFrame(
        {"group": labels, "rmst": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se}
    )
    return RMSTResult(table, _contrasts(labels, est, se, z), float(tau), alpha, excl)


@dataclass(frozen=True)
class MilestoneResult:
    """Survival at a fixed time per group (R ``summary(survfit, times=at)``) and differences.

    ``table``: group, time, n_at_risk, survival, se, ci_low, ci_high. ``difference``: contrast
    (each group minus the first), estimate, se (Greenwood), ci_low, ci_high, p.
    """

    table: pd.DataFrame
    difference: pd.DataFrame
    at: float
    conf_type: str
    alpha: float
    exclusions: Exclusions


def _value_at(steps: dict[str, np.ndarray], code: int, at: float, label: str) -> tuple:
    part = steps["group"] == code
    times = steps["time"][part]
    if at > times[-1]:
        raise AnalysisError(
            f"No patient in group {label} is followed up to {at:g} (last time {times[-1]:g}); "
            "choose an earlier milestone."
        )
    idx = np.searchsorted(times, at, side="right") - 1  # last time <= at
    after = np.searchsorted(times, at, side="left")  # first time >= at
    risk = int(steps["n_at_risk"][part][after])
    if idx < 0:
        return risk, 1.0, 0.0
    return risk, float(steps["survival"][part][idx]), float(steps["var_log"][part][idx])


def milestone(
    df: pd.DataFrame,
    time: str,
    event: str,
    by: str,
    *,
    at: float,
    conf_type: str = "log-log",
    alpha: float = 0.05,
) -> MilestoneResult:
    """Kaplan-Meier survival at time ``at`` per group, with CI, and its difference between groups."""
    _check_choice(conf_type, CONF_TYPES, "conf_type")
    z = z_value(alpha)
    if not np.isfinite(at) or at < 0:
        raise AnalysisError(f"The milestone time must be >= 0; got {at!r}.")
    t, e, codes, labels, excl, w = _prepare_groups(df, time, event, by, "milestone survival")
    steps = _km_steps(t, e, codes, w)
    risk, surv, var_log = zip(
        *(_value_at(steps, code, at, label) for code, label in enumerate(labels)), strict=True
    )
    surv, se_log = np.array(surv), np.sqrt(np.array(var_log))
    low, high = _conf_bounds(surv, se_log, conf_type, z)
    # When the curve has dropped to 0 Greenwood's variance is infinite (R: NaN); the estimate
    # is then certain, so its SE is reported as 0, like its collapsed interval.
    se = np.where(surv == 0, 0.0, surv * np.where(np.isfinite(se_log), se_log, 0.0))
    table = pd.DataFrame(
        {
            "group": labels,
            "time": float(at),
            "n_at_risk": list(risk),
            "survival": surv,
            "se": se,
            "ci_low": _collapse_degenerate(surv, low),
            "ci_high": _collapse_degenerate(surv, high),
        }
    )
    return MilestoneResult(
        table, _contrasts(labels, surv, se, z), float(at), conf_type, alpha, excl
    )


