"""Confounder-adjusted survival curves: inverse probability of treatment weighting (IPTW).

For a two-level exposure (e.g. chemotherapy yes/no) and chosen confounders, a logistic model gives
each patient's propensity P(exposed | confounders); the (stabilised) weights P(A = a) / P(A = a | X)
create a pseudo-population in which the confounders are balanced between the exposure groups.
Weighted Kaplan-Meier curves in that population estimate the survival had everyone, or no one,
been exposed (the method of R ``adjustedCurves``, ``method = "iptw_km"``). Balance is shown as
standardised mean differences before and after weighting; extreme weights can be truncated.

Variance: R's ``survfit(weights = w)`` (survival >= 3) uses the infinitesimal jackknife (robust)
variance, Var S(t) = sum_i (w_i dS(t)/dw_i)^2; :func:`weighted_kaplan_meier` reproduces it to 1e-6
with cumulative sums instead of survfit's n x t influence matrix, and the restricted mean survival
time gets its robust standard error from the same influence values. Both treat the weights as
known (they ignore the estimation of the propensity model, as survfit does), which is usually
conservative for IPTW. Checked against R in ``tests/test_adjusted.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .._data import Exclusions, as_list, is_numeric, survival_frame, z_value
from .._logit import build_design, fit_or_raise, wald_table
from ..errors import AnalysisError
from ._common import ALL_LABEL, CONF_TYPES, _check_choice, _columns, _group_codes, _two_sided_p
from .km import _collapse_degenerate, _conf_bounds

# --------------------------------------------------------------------------------------------
# Weighted Kaplan-Meier with the infinitesimal-jackknife variance


def _weighted_steps(time: np.ndarray, event: np.ndarray, weight: np.ndarray):
    """Distinct times of one group: weighted risk set, events, KM and the pieces of each
    patient's influence. ``a[k]`` is the sum of d/(n(n - d)) over event times up to the k-th
    distinct time."""
    uniq, inverse = np.unique(time, return_inverse=True)
    w_all = np.bincount(inverse, weights=weight, minlength=len(uniq))
    w_dead = np.bincount(inverse, weights=weight * event, minlength=len(uniq))
    count = np.bincount(inverse, minlength=len(uniq))
    dead = np.bincount(inverse, weights=event, minlength=len(uniq))
    n_risk = np.cumsum(w_all[::-1])[::-1]
    at_risk = np.cumsum(count[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1 - w_dead / n_risk)
        step = np.where(w_dead > 0, w_dead / (n_risk * (n_risk - w_dead)), 0.0)
        jump = np.where(w_dead > 0, 1 / (n_risk - w_dead), 0.0)  # a death's own term
    return {
        "time": uniq,
        "inverse": inverse,
        "n_risk": n_risk,
        "n_event": w_dead,
        "at_risk": at_risk,
        "deaths": dead,
        "censored": count - dead,
        "surv": surv,
        "a": np.cumsum(step),
        "jump": jump,
    }


def _ij_variance(steps: dict, event: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """sum_i (w_i dS(t)/dw_i)^2 at every distinct time t.

    dS(t)/dw_i = S(t) D_i(t) with D_i(t) = a(min(t, T_i)) - [i died at or before t] / (n - d)
    at its death time. Splitting the patients into those whose time is <= t and those still at
    risk turns the sum over patients into cumulative sums over the sorted times.
    """
    k = steps["inverse"]
    a = steps["a"]
    with np.errstate(invalid="ignore"):
        own = np.where(event > 0, steps["jump"][k], 0.0)
        d_i = a[k] - own  # D_i for any t >= T_i
        w2 = weight**2
        done = np.cumsum(np.bincount(k, weights=w2 * d_i**2, minlength=len(a)))
        beyond = np.cumsum(np.bincount(k, weights=w2, minlength=len(a))[::-1])[::-1]
        beyond = np.append(beyond[1:], 0.0)  # patients with time > t
        variance = steps["surv"] ** 2 * (done + a**2 * beyond)
    # Once everyone at risk has died the curve is 0 with no uncertainty left (R: std.err 0).
    return np.where(steps["surv"] > 0, variance, 0.0)


def _rmst_influence(steps: dict, event: np.ndarray, weight: np.ndarray, tau: float):
    """Area under the curve to ``tau`` and the robust SE: each patient's influence on the area is
    the integral of w_i dS(t)/dw_i over [0, tau], summed in closed form per patient."""
    times, surv, a = steps["time"], steps["surv"], steps["a"]
    keep = times <= tau
    knots = np.append(times[keep], tau)
    heights = np.concatenate(([1.0], surv[keep]))
    widths = np.diff(np.concatenate(([0.0], knots)))
    area = float(widths @ heights)
    # Interval j runs from knot j-1 to knot j with height S(t_{j-1}) (S = 1 before the first
    # time); over interval j >= 1 the influence is S(t_{j-1}) D_i(t_{j-1}) per unit time.
    m = int(keep.sum())
    s_int = surv[:m] * widths[1:]  # S over intervals 1..m
    # Where the curve has reached 0 the influence is 0 (a(t) is infinite there: n = d).
    with np.errstate(invalid="ignore"):
        cum_sa = np.concatenate(([0.0], np.cumsum(np.where(s_int > 0, s_int * a[:m], 0.0))))
    cum_s = np.concatenate(([0.0], np.cumsum(s_int)))
    k = steps["inverse"]
    # Over intervals starting before the patient's time T_i, D_i(t) = a(t); over the others it
    # is a(T_i) minus the patient's own death term.
    idx = np.minimum(k, m)  # intervals starting at times < T_i: 0..idx-1 (1-based j = 1..idx)
    after = cum_s[m] - cum_s[idx]  # area of the intervals starting at or after T_i
    own = np.where((event > 0) & (k < m), steps["jump"][k], 0.0)
    with np.errstate(invalid="ignore"):
        tail = np.where(after > 0, (a[np.minimum(k, len(a) - 1)] - own) * after, 0.0)
    influence = weight * (cum_sa[idx] + np.where(k < m, tail, 0.0))
    return area, float(np.sqrt(np.sum(influence**2)))


@dataclass(frozen=True)
class WeightedKaplanMeierResult:
    """Weighted Kaplan-Meier curves with robust (infinitesimal jackknife) standard errors, as R
    ``survfit(Surv(time, event) ~ group, weights = w)`` (robust by default with weights).

    ``table``: group, time, n_at_risk (patients), n_risk_weighted, n_event_weighted, survival,
    se (of the survival probability, survfit's ``std.err``), ci_low, ci_high.
    """

    table: pd.DataFrame
    conf_type: str
    alpha: float
    by: str | None
    exclusions: Exclusions
    _steps: tuple = ()

    def at_risk(self, times: Sequence[float]) -> pd.DataFrame:
        """Patients (unweighted) at risk per group at ``times``, for the figure's table."""
        grid = np.asarray(sorted(float(t) for t in times))
        frames = []
        for group, part in self.table.groupby("group", sort=False):
            t = part["time"].to_numpy()
            idx = np.searchsorted(t, grid, side="left")
            risk = np.append(part["n_at_risk"].to_numpy(), 0)[idx]
            frames.append(pd.DataFrame({"group": group, "time": grid, "n_at_risk": risk}))
        return pd.concat(frames, ignore_index=True)


def _weighted_km_table(t, e, w, codes, labels, conf_type, z) -> tuple[pd.DataFrame, list]:
    frames, steps_list = [], []
    for code, label in enumerate(labels):
        part = codes == code
        steps = _weighted_steps(t[part], e[part], w[part])
        var = _ij_variance(steps, e[part], w[part])
        surv = steps["surv"]
        se = np.sqrt(var)
        with np.errstate(divide="ignore", invalid="ignore"):
            se_log = np.where(surv > 0, se / surv, np.nan)
        low, high = _conf_bounds(surv, se_log, conf_type, z)
        frames.append(
            pd.DataFrame(
                {
                    "group": label,
                    "time": steps["time"],
                    "n_at_risk": steps["at_risk"],
                    "n_event": steps["deaths"].astype(np.int64),
                    "n_censor": steps["censored"].astype(np.int64),
                    "n_risk_weighted": steps["n_risk"],
                    "n_event_weighted": steps["n_event"],
                    "survival": surv,
                    "se": se,
                    "ci_low": _collapse_degenerate(surv, low),
                    "ci_high": _collapse_degenerate(surv, high),
                }
            )
        )
        steps_list.append((label, steps, e[part], w[part]))
    return pd.concat(frames, ignore_index=True), steps_list


def weighted_kaplan_meier(
    df: pd.DataFrame,
    time: str,
    event: str,
    *,
    weights: str,
    by: str | None = None,
    conf_type: str = "log",
    alpha: float = 0.05,
) -> WeightedKaplanMeierResult:
    """Kaplan-Meier curves with case weights (column ``weights``, > 0) and robust SEs.

    ``conf_type``: "log" (survfit's default), "log-log" or "plain"; the robust SE of S is turned
    into the SE of log S as survfit does (se / S).
    """
    _check_choice(conf_type, CONF_TYPES, "conf_type")
    z = z_value(alpha)
    needed = _columns(df, [time, event, weights, *as_list(by)])
    clean, excl = survival_frame(needed, time, event, [weights, *as_list(by)],
                                 what="a weighted Kaplan-Meier curve")  # fmt: skip
    w = pd.to_numeric(clean[weights], errors="coerce").to_numpy(dtype=float)
    if not (np.all(np.isfinite(w)) and np.all(w > 0)):
        raise AnalysisError(f"The weights in {weights!r} must be positive numbers.")
    codes, labels = (
        (np.zeros(len(clean), dtype=np.int64), [ALL_LABEL]) if by is None
        else _group_codes(clean[by])
    )  # fmt: skip
    table, steps = _weighted_km_table(
        clean[time].to_numpy(dtype=float), clean[event].to_numpy(dtype=float), w, codes, labels,
        conf_type, z,
    )  # fmt: skip
    return WeightedKaplanMeierResult(table, conf_type, alpha, by, excl, tuple(steps))


# --------------------------------------------------------------------------------------------
# Propensity score, weights and balance


def _exposure_indicator(values: pd.Series, name: str, reference) -> tuple[np.ndarray, list[str]]:
    """1 for the exposed level, 0 for the reference; the two labels as (reference, exposed)."""
    codes, levels = _group_codes(values)
    if len(levels) != 2:
        raise AnalysisError(
            f"The exposure {name!r} must have exactly two levels among the analysed patients "
            f"(found {len(levels)}: {levels[:6]}). Choose a two-level exposure."
        )
    ref = levels[0] if reference is None else str(reference)
    if ref not in levels:
        raise AnalysisError(f"Reference level {reference!r} is not a level of {name!r} ({levels}).")
    other = levels[1] if ref == levels[0] else levels[0]
    return (codes == levels.index(other)).astype(float), [ref, other]


def _group_sums(frame: pd.DataFrame, confounders: list[str], weights: np.ndarray):
    """Per balance row (a number, or one level of a categorical): its sums under each column of
    ``weights`` (n x 4) and its sums of squares under the first two. Categoricals are summed per
    level code with ``bincount`` (an indicator squared is itself), so no n x k matrix is built."""
    names, levels, sums, squares = [], [], [], []
    for name in confounders:
        values = frame[name]
        if is_numeric(values):
            x = values.to_numpy(dtype=float)
            names.append(name)
            levels.append("")
            sums.append(x @ weights)
            squares.append((x * x) @ weights[:, :2])
            continue
        codes, labels = _group_codes(values)
        per_level = np.column_stack(
            [np.bincount(codes, weights=weights[:, j], minlength=len(labels)) for j in range(4)]
        )
        names += [name] * len(labels)
        levels += labels
        sums += list(per_level)
        squares += list(per_level[:, :2])
    return names, levels, np.array(sums), np.array(squares)


def balance_table(frame: pd.DataFrame, confounders: list[str], a: np.ndarray, w: np.ndarray,
                  labels: list[str]) -> pd.DataFrame:  # fmt: skip
    """Standardised mean differences (exposed - reference) before and after weighting.

    The denominator is the pooled SD of the unweighted groups, sqrt((s1^2 + s0^2) / 2), both
    before and after weighting (as R cobalt's default), so the change shows the mean shift only.
    For levels of a categorical confounder the "mean" is the proportion.
    """
    group_weights = np.column_stack([a, 1 - a, a * w, (1 - a) * w])
    names, levels, sums, squares = _group_sums(frame, confounders, group_weights)
    totals = group_weights.sum(axis=0)
    means = sums / totals
    n1, n0 = totals[0], totals[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        var1 = (squares[:, 0] - n1 * means[:, 0] ** 2) / (n1 - 1)
        var0 = (squares[:, 1] - n0 * means[:, 1] ** 2) / (n0 - 1)
        pooled = np.sqrt(np.maximum((var1 + var0) / 2, 0.0))
        before = np.where(pooled > 0, (means[:, 0] - means[:, 1]) / pooled, np.nan)
        after = np.where(pooled > 0, (means[:, 2] - means[:, 3]) / pooled, np.nan)
    return pd.DataFrame(
        {
            "variable": names,
            "level": levels,
            f"mean_{labels[1]}": means[:, 0],
            f"mean_{labels[0]}": means[:, 1],
            "smd_before": before,
            f"weighted_mean_{labels[1]}": means[:, 2],
            f"weighted_mean_{labels[0]}": means[:, 3],
            "smd_after": after,
        }
    )


@dataclass(frozen=True)
class PropensityWeights:
    """Propensity scores and IPTW weights for a two-level exposure.

    ``weights``: per analysed row (index of the input), the weight used (after truncation).
    ``propensity``: P(exposed | confounders) per row. ``exposed``: 1 exposed, 0 reference, per
    row. These three are None when asked for without them (``per_patient=False``): everything
    else is summarised per group or per confounder. ``model``: the propensity model's odds
    ratios (term, odds_ratio, ci_low, ci_high, p). ``balance``: see :func:`balance_table`.
    ``summary``: group, n, sum_weights, min, median, max, ess (Kish effective sample size).
    ``truncation``: {"quantiles", "lower", "upper", "n_truncated"} (quantiles None: none).
    ``levels``: (reference, exposed).
    """

    weights: pd.Series | None
    propensity: pd.Series | None
    exposed: pd.Series | None
    model: pd.DataFrame
    balance: pd.DataFrame
    summary: pd.DataFrame
    truncation: dict
    stabilized: bool
    levels: tuple[str, str]


def _weight_summary(a: np.ndarray, w: np.ndarray, labels: list[str]) -> pd.DataFrame:
    rows = []
    for value, label in ((0, labels[0]), (1, labels[1])):
        part = w[a == value]
        rows.append((label, len(part), part.sum(), part.min(), np.median(part), part.max(),
                     part.sum() ** 2 / np.sum(part**2)))  # fmt: skip
    return pd.DataFrame(rows, columns=["group", "n", "sum_weights", "min", "median", "max", "ess"])


def _truncate(w: np.ndarray, truncate: tuple[float, float] | None) -> tuple[np.ndarray, dict]:
    if truncate is None:
        return w, {"quantiles": None, "lower": float(w.min()), "upper": float(w.max()),
                   "n_truncated": 0}  # fmt: skip
    low_q, high_q = (float(q) for q in truncate)
    if not 0 <= low_q < high_q <= 1:
        raise AnalysisError(
            f"Weight truncation needs two quantiles 0 <= lower < upper <= 1 (e.g. 0.01, 0.99); "
            f"got {truncate!r}."
        )
    lower, upper = np.quantile(w, [low_q, high_q])
    clipped = np.clip(w, lower, upper)
    return clipped, {"quantiles": (low_q, high_q), "lower": float(lower), "upper": float(upper),
                     "n_truncated": int(np.sum(clipped != w))}  # fmt: skip


def _propensity_design(frame: pd.DataFrame, confounders: list[str]):
    try:
        return build_design(frame, confounders, {})
    except AnalysisError as err:
        raise AnalysisError(f"The propensity model cannot be fitted: {err}") from None


def propensity_weights(
    df: pd.DataFrame,
    exposure: str,
    confounders: str | Sequence[str],
    *,
    reference=None,
    stabilized: bool = True,
    truncate: tuple[float, float] | None = None,
    per_patient: bool = True,
) -> PropensityWeights:
    """IPTW weights from a logistic propensity model of ``exposure`` on ``confounders``.

    Parameters
    ----------
    exposure : a two-level column; ``reference`` picks the unexposed level (default: first).
    confounders : columns; numbers enter linearly, other columns as treatment dummies.
    stabilized : weights P(A = a) / P(A = a | X) (default) instead of 1 / P(A = a | X).
    truncate : optional quantiles (lower, upper), e.g. (0.01, 0.99): weights beyond them are set
        to them. The number truncated is reported.
    per_patient : keep each patient's weight, propensity and exposure (default). False leaves
        them out (None) and keeps the summaries only, for a result that is kept: the app
        caches one per selection, which held ~45 MB of per-patient values at 1M patients.

    Rows missing the exposure or a confounder are excluded (complete cases, counted by the
    caller's :class:`Exclusions`).
    """

    confounders = as_list(confounders)
    if not confounders:
        raise AnalysisError("Choose at least one confounder for the propensity model.")
    if exposure in confounders:
        raise AnalysisError(f"The exposure {exposure!r} cannot also be a confounder.")
    frame = df[[exposure, *confounders]]
    a, labels = _exposure_indicator(frame[exposure], exposure, reference)
    X, names, _ = _propensity_design(frame, confounders)
    fit = fit_or_raise(X, a, names)
    eta = X @ fit.beta
    p = 1 / (1 + np.exp(-eta))
    if np.any((p < 1e-8) | (p > 1 - 1e-8)):
        raise AnalysisError(
            "Some patients have a propensity of (almost) 0 or 1: their confounders occur only in "
            "one exposure group (no overlap), so weighting cannot compare like with like. "
            "Remove the confounder that separates the groups or restrict the cohort."
        )
    share = a.mean() if stabilized else 1.0
    numerator = np.where(a == 1, share, 1 - share) if stabilized else 1.0
    raw = numerator / np.where(a == 1, p, 1 - p)
    w, truncation = _truncate(raw, truncate)
    model = wald_table(fit, names, z_value(0.05)).iloc[1:].reset_index(drop=True)
    def per_row(values: np.ndarray, name: str) -> pd.Series | None:
        return pd.Series(values, index=frame.index, name=name) if per_patient else None

    return PropensityWeights(
        weights=per_row(w, "weight"),
        propensity=per_row(p, "propensity"),
        exposed=per_row(a, "exposed"),
        model=model[["term", "odds_ratio", "ci_low", "ci_high", "p"]],
        balance=balance_table(frame, confounders, a, w, labels),
        summary=_weight_summary(a, w, labels),
        truncation=truncation,
        stabilized=stabilized,
        levels=(labels[0], labels[1]),
    )


# --------------------------------------------------------------------------------------------
# IPTW-adjusted curves and RMST difference


@dataclass(frozen=True)
class AdjustedSurvivalResult:
    """IPTW-adjusted Kaplan-Meier curves of a two-level exposure, with balance and RMST.

    ``table``: as :class:`WeightedKaplanMeierResult` (group = exposure level). ``unadjusted``:
    group, time, n_at_risk, n_event, survival: the Kaplan-Meier of the same patients without
    weights (R ``survfit`` on the same complete cases), so weighted and crude curves differ by the
    weights alone. ``weights``: the :class:`PropensityWeights` (balance table, weight summary,
    truncation). ``rmst``: group, rmst, se, ci_low, ci_high (robust). ``rmst_difference``:
    contrast (exposed - reference), estimate, se, ci_low, ci_high, p.
    """

    table: pd.DataFrame
    weights: PropensityWeights
    rmst: pd.DataFrame
    rmst_difference: pd.DataFrame
    tau: float
    conf_type: str
    alpha: float
    exposure: str
    confounders: tuple[str, ...]
    exclusions: Exclusions
    unadjusted: pd.DataFrame | None = None

    def at_risk(self, times: Sequence[float]) -> pd.DataFrame:
        return WeightedKaplanMeierResult(self.table, self.conf_type, self.alpha, self.exposure,
                                         self.exclusions).at_risk(times)  # fmt: skip


def iptw_kaplan_meier(
    df: pd.DataFrame,
    time: str,
    event: str,
    exposure: str,
    confounders: str | Sequence[str],
    *,
    reference=None,
    stabilized: bool = True,
    truncate: tuple[float, float] | None = None,
    tau: float | None = None,
    conf_type: str = "log",
    alpha: float = 0.05,
    per_patient: bool = True,
) -> AdjustedSurvivalResult:
    """Confounder-adjusted survival curves of each exposure level (IPTW Kaplan-Meier).

    Parameters
    ----------
    exposure, confounders, reference, stabilized, truncate : see :func:`propensity_weights`.
    tau : horizon of the restricted mean survival time; default the shorter of the two groups'
        longest follow-up.
    conf_type : pointwise interval of the curves ("log" as survfit, "log-log" or "plain").
    per_patient : keep each patient's weight, propensity and exposure in ``weights`` (default);
        False leaves them out (see :func:`propensity_weights`). Nothing else changes.

    Returns the weighted curves with robust CIs, the balance table, weights and the RMST
    difference (exposed - reference) with a robust CI (normal approximation).
    """
    _check_choice(conf_type, CONF_TYPES, "conf_type")
    z = z_value(alpha)
    confounders = as_list(confounders)
    needed = _columns(df, [time, event, exposure, *confounders])
    clean, excl = survival_frame(needed, time, event, [exposure, *confounders],
                                 what="IPTW-adjusted survival")  # fmt: skip
    weights = propensity_weights(
        clean, exposure, confounders, reference=reference, stabilized=stabilized,
        truncate=truncate,
    )  # fmt: skip
    a = weights.exposed.to_numpy()
    t = clean[time].to_numpy(dtype=float)
    e = clean[event].to_numpy(dtype=float)
    w = weights.weights.to_numpy()
    if not per_patient:
        weights = replace(weights, weights=None, propensity=None, exposed=None)
    table, steps = _weighted_km_table(t, e, w, a.astype(np.int64), list(weights.levels),
                                      conf_type, z)  # fmt: skip
    last = [float(t[a == v].max()) for v in (0, 1)]
    tau = min(last) if tau is None else float(tau)
    if not np.isfinite(tau) or tau <= 0:
        raise AnalysisError(f"tau must be a positive time (in the units of {time}); got {tau!r}.")
    estimates = [_rmst_influence(s, ev, wt, tau) for _, s, ev, wt in steps]
    unadjusted = pd.concat([_unweighted_curve(label, s) for label, s, _, _ in steps],
                           ignore_index=True)
    rmst = pd.DataFrame(
        {
            "group": list(weights.levels),
            "rmst": [m for m, _ in estimates],
            "se": [s for _, s in estimates],
        }
    )
    rmst["ci_low"] = rmst["rmst"] - z * rmst["se"]
    rmst["ci_high"] = rmst["rmst"] + z * rmst["se"]
    diff = float(rmst["rmst"].iloc[1] - rmst["rmst"].iloc[0])
    # Each patient is in one group only, so the two curves' influences never overlap.
    se = float(np.hypot(rmst["se"].iloc[0], rmst["se"].iloc[1]))
    difference = pd.DataFrame(
        {
            "contrast": [f"{weights.levels[1]} - {weights.levels[0]}"],
            "estimate": [diff],
            "se": [se],
            "ci_low": [diff - z * se],
            "ci_high": [diff + z * se],
            "p": [float(_two_sided_p(np.array([diff / se]))[0]) if se > 0 else np.nan],
        }
    )
    return AdjustedSurvivalResult(
        table=table,
        weights=weights,
        rmst=rmst,
        rmst_difference=difference,
        tau=tau,
        conf_type=conf_type,
        alpha=alpha,
        exposure=exposure,
        confounders=tuple(confounders),
        exclusions=excl,
        unadjusted=unadjusted,
    )


def _unweighted_curve(label: str, steps: dict) -> pd.DataFrame:
    """The Kaplan-Meier of one group's patients without their weights (from the same steps)."""
    at_risk, deaths = steps["at_risk"], steps["deaths"]
    return pd.DataFrame({"group": label, "time": steps["time"], "n_at_risk": at_risk,
                         "n_event": deaths.astype(np.int64),
                         "survival": np.cumprod(1 - deaths / at_risk)})
