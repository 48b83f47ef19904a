"""Time-to-event analyses: Kaplan-Meier, log-rank, Cox PH (+ cox.zph), RMST, milestone, landmark.

Every number reproduces R's ``survival`` package (survfit, survdiff, coxph, cox.zph,
print(survfit, rmean=), summary(survfit, times=)) to 1e-6 relative; see tests/test_survival.py.
Everything is vectorised with numpy so that a page stays interactive at 1,000,000 patients.

Conventions shared by every function: ``time`` and ``event`` name columns of ``df`` (event 0/1);
rows missing any needed value are excluded and counted in ``.exclusions``; data that cannot
support the analysis raises :class:`~her2er_dash.errors.AnalysisError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from . import _cox, _cox_cells
from ._data import Exclusions, as_list, require_columns, survival_frame
from .errors import AnalysisError

CONF_TYPES = ("log-log", "log", "plain")
ADJUST_METHODS = ("holm", "bonferroni", "BH", "none")
ALL_LABEL = "All"
#: R's tolerance for "survival equals 0.5" when reading medians off a curve.
_HALF_TOL = np.finfo(float).eps ** 0.5


# --------------------------------------------------------------------------------------------
# small numeric helpers


def _z(alpha: float) -> float:
    from scipy.special import ndtri

    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be between 0 and 1 (e.g. 0.05), not {alpha!r}.")
    return float(ndtri(1 - alpha / 2))


def _two_sided_p(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return 2 * ndtr(-np.abs(z))


def _chisq_p(stat: np.ndarray | float, dof: np.ndarray | float) -> np.ndarray:
    from scipy.special import chdtrc

    return chdtrc(dof, stat)


def _check_choice(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise AnalysisError(
            f"{what} must be one of {', '.join(map(repr, allowed))}; got {value!r}."
        )


def _levels_and_codes(values: pd.Series) -> tuple[np.ndarray, list]:
    """Observed levels (category order, else sorted) and each row's integer code, in one pass."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy().astype(np.int64)
        observed = np.bincount(codes, minlength=len(values.cat.categories)) > 0
        renumber = np.cumsum(observed) - 1
        return renumber[codes], list(values.cat.categories[observed])
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # mixed types cannot be sorted together: order by type name, then value
        codes, uniques = pd.factorize(values)
        order = sorted(range(len(uniques)), key=lambda i: (str(type(uniques[i])), uniques[i]))
        renumber = np.empty(len(order), dtype=np.int64)
        renumber[order] = np.arange(len(order))
        return renumber[codes], [uniques[i] for i in order]
    return codes.astype(np.int64), list(uniques)


def _group_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and str labels: category order for categoricals, sorted order otherwise."""
    codes, levels = _levels_and_codes(values)
    return codes, [str(level) for level in levels]


def _columns(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Only the columns an analysis needs, so row filtering does not copy the whole cohort."""
    require_columns(df, columns)
    return df[list(dict.fromkeys(columns))]


def _needs_two_groups(labels: list[str], by: str) -> None:
    if len(labels) < 2:
        only = labels[0] if labels else "none"
        raise AnalysisError(
            f"Only one group of {by!r} ({only}) has usable data, so groups cannot be compared. "
            "Choose another grouping variable or widen the selection."
        )


# --------------------------------------------------------------------------------------------
# Kaplan-Meier


def _group_time_order(time: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Rows sorted by group, then time (a quicksort on time, then a radix sort on small codes)."""
    order = np.argsort(time)
    small = codes.astype(np.int16) if len(codes) and codes.max() < 2**15 else codes
    return order[np.argsort(small[order], kind="stable")]


def _km_steps(time: np.ndarray, event: np.ndarray, codes: np.ndarray) -> dict[str, np.ndarray]:
    """One row per distinct (group, time): counts, KM survival and Greenwood variance of log S."""
    order = _group_time_order(time, codes)
    t, e, g = time[order], event[order], codes[order]
    n = len(t)
    new = np.ones(n, dtype=bool)
    new[1:] = (t[1:] != t[:-1]) | (g[1:] != g[:-1])
    start = np.flatnonzero(new)
    size = np.diff(np.append(start, n))
    deaths = np.add.reduceat(e.astype(np.int64), start)
    group = g[start]
    group_stop = np.searchsorted(g, group, side="right")
    at_risk = group_stop - start
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
    df: pd.DataFrame, time: str, event: str, by: str | None, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], Exclusions]:
    needed = _columns(df, [time, event, *as_list(by)])
    clean, excl = survival_frame(needed, time, event, as_list(by), what=what)
    if by is None:
        codes, labels = np.zeros(len(clean), dtype=np.int64), [ALL_LABEL]
    else:
        codes, labels = _group_codes(clean[by])
    t = clean[time].to_numpy(dtype=float)
    e = clean[event].to_numpy(dtype=np.int64)
    return t, e, codes, labels, excl


def _km_table(t, e, codes, labels, conf_type, z) -> tuple[pd.DataFrame, tuple]:
    """The KM table, plus (group codes, raw R-style limits) for reading medians off the curves."""
    steps = _km_steps(t, e, codes)
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
    df: pd.DataFrame,
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
    conf_type : "log-log" (R ``conf.type="log-log"``), "log" (R's default) or "plain".
    alpha : 1 - confidence level of the intervals.
    """
    _check_choice(conf_type, CONF_TYPES, "conf_type")
    z = _z(alpha)
    t, e, codes, labels, excl = _prepare_groups(df, time, event, by, "a Kaplan-Meier curve")
    table, raw = _km_table(t, e, codes, labels, conf_type, z)
    return KaplanMeierResult(
        table=table,
        medians=_medians(table, raw, labels),
        exclusions=excl,
        conf_type=conf_type,
        alpha=alpha,
        by=by,
    )


# --------------------------------------------------------------------------------------------
# log-rank


@dataclass(frozen=True)
class LogrankResult:
    """k-group log-rank test (R ``survdiff``, rho = 0), optionally with pairwise comparisons.

    ``table``: group, n, observed, expected. ``pairwise``: group_a, group_b, statistic, p,
    p_adjusted (None unless requested).
    """

    statistic: float
    dof: int
    p_value: float
    table: pd.DataFrame
    pairwise: pd.DataFrame | None
    adjust: str
    exclusions: Exclusions


def logrank_arrays(
    time: np.ndarray, event: np.ndarray, codes: np.ndarray, n_groups: int
) -> tuple[float, int, np.ndarray, np.ndarray]:
    """Log-rank chi-square, df, observed and expected events per group (as ``survdiff``)."""
    uniq, inverse = np.unique(time, return_inverse=True)
    cell = inverse * n_groups + codes
    size = len(uniq) * n_groups
    deaths = np.bincount(cell, weights=event, minlength=size).reshape(-1, n_groups)
    counts = np.bincount(cell, minlength=size).reshape(-1, n_groups)
    risk = np.cumsum(counts[::-1], axis=0)[::-1]
    has_event = deaths.sum(axis=1) > 0
    deaths, risk = deaths[has_event], risk[has_event].astype(float)
    d_all, n_all = deaths.sum(axis=1), risk.sum(axis=1)
    share = risk / n_all[:, None]
    observed = deaths.sum(axis=0)
    expected = (share * d_all[:, None]).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(n_all > 1, d_all * (n_all - d_all) / (n_all - 1), 0.0)
    var = np.diag((share * scale[:, None]).sum(axis=0)) - (share * scale[:, None]).T @ share
    used = np.flatnonzero(expected > 0)
    if len(used) < 2:
        return 0.0, 0, observed, expected
    diff = (observed - expected)[used][1:]
    sub = var[np.ix_(used, used)][1:, 1:]
    try:
        statistic = float(diff @ np.linalg.solve(sub, diff))
    except np.linalg.LinAlgError:
        raise AnalysisError(
            "The log-rank variance matrix is singular (groups with no patients at risk at any "
            "event time); merge small groups and try again."
        ) from None
    return statistic, len(used) - 1, observed, expected


def p_adjust(p: np.ndarray, method: str) -> np.ndarray:
    """Multiplicity adjustment as R's ``p.adjust`` (holm, bonferroni, BH, none)."""
    _check_choice(method, ADJUST_METHODS, "adjust")
    p = np.asarray(p, dtype=float)
    m = len(p)
    if method == "none" or m == 0:
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * m, 1)
    out = np.empty(m)
    if method == "holm":
        order = np.argsort(p, kind="stable")
        out[order] = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1)
        return out
    order = np.argsort(p, kind="stable")[::-1]  # BH: step-up from the largest p
    out[order] = np.minimum(np.minimum.accumulate(m / np.arange(m, 0, -1) * p[order]), 1)
    return out


def logrank(
    df: pd.DataFrame,
    time: str,
    event: str,
    by: str,
    *,
    pairwise: bool = False,
    adjust: str = "holm",
) -> LogrankResult:
    """Log-rank test across the levels of ``by``; ``pairwise=True`` adds every pair, adjusted.

    Parameters
    ----------
    adjust : "holm" (default), "bonferroni", "BH" or "none", as R's ``p.adjust``.
    """
    _check_choice(adjust, ADJUST_METHODS, "adjust")
    t, e, codes, labels, excl = _prepare_groups(df, time, event, by, "a log-rank test")
    _needs_two_groups(labels, by)
    stat, dof, observed, expected = logrank_arrays(t, e, codes, len(labels))
    if dof == 0:
        raise AnalysisError(
            f"The groups of {by!r} cannot be compared: when events occur, only one group still "
            "has patients at risk, so the log-rank test has no information. Check follow-up "
            "times per group, or compare other groups."
        )
    table = pd.DataFrame(
        {
            "group": labels,
            "n": np.bincount(codes, minlength=len(labels)),
            "observed": observed,
            "expected": expected,
        }
    )
    pairs = None
    if pairwise:
        rows = []
        for a, b in combinations(range(len(labels)), 2):
            keep = (codes == a) | (codes == b)
            s, k, _, _ = logrank_arrays(t[keep], e[keep], (codes[keep] == b).astype(np.int64), 2)
            rows.append((labels[a], labels[b], s, float(_chisq_p(s, k)) if k else np.nan))
        pairs = pd.DataFrame(rows, columns=["group_a", "group_b", "statistic", "p"])
        pairs["p_adjusted"] = p_adjust(pairs["p"].to_numpy(), adjust)
    p_value = float(_chisq_p(stat, dof)) if dof else np.nan
    return LogrankResult(stat, dof, p_value, table, pairs, adjust, excl)


# --------------------------------------------------------------------------------------------
# Cox proportional hazards


def cox_fit_arrays(
    time: np.ndarray,
    event: np.ndarray,
    X: np.ndarray,  # noqa: N803 - the design matrix, named as in the literature
    *,
    strata: np.ndarray | None = None,
    ties: str = "efron",
    names: Sequence[str] | None = None,
    weights: np.ndarray | None = None,
    presorted: bool = False,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Fast Cox fit on arrays: returns (beta, variance matrix, loglik, loglik at beta = 0).

    ``X`` is (n, p) numeric, ``strata`` optional codes (any sortable values), ``ties`` "efron"
    or "breslow". Raises :class:`AnalysisError` on no events, a constant column, collinearity,
    separation (infinite coefficient) or non-convergence; ``names`` label columns in messages.

    ``weights`` are frequency weights (positive whole numbers): a row with weight c counts as c
    identical rows, Efron ties included, so data collapsed into distinct (stratum, time, event,
    covariates) rows with their counts give exactly the fit of the full data. (This is not R's
    ``coxph(weights=)``, which treats weights as case weights in the Efron correction.)
    ``presorted=True`` promises ``time`` is non-increasing, which skips the sort (checked).
    ``groups`` (one code per row, equal codes = identical rows of ``X``, checked) lets a model
    with few distinct covariate rows (categorical terms) be fitted on per-group counts of the
    numbers at risk: the same numbers, far faster at 10^5-10^6 rows.
    """
    counts = None if weights is None else _frequency_weights(weights, len(time))
    options = {
        "strata": strata,
        "ties": ties,
        "names": list(names) if names is not None else None,
        "counts": counts,
        "presorted": presorted,
    }
    time, event = np.asarray(time, dtype=float), np.asarray(event)
    if groups is None:
        design = _cox.prepare(time, event, X, **options)
    else:
        design = _cox_cells.prepare_grouped(time, event, X, groups, **options)
    state, var, loglik0 = _cox.fit(design)
    return state.beta.copy(), var, state.loglik, loglik0


def _frequency_weights(weights: np.ndarray, n: int) -> np.ndarray:
    counts = np.asarray(weights, dtype=float)
    if counts.shape != (n,):
        raise AnalysisError(f"weights must hold one number per row ({n}), not {counts.shape}.")
    if not (np.all(np.isfinite(counts)) and np.all(counts >= 1) and np.all(counts % 1 == 0)):
        raise AnalysisError(
            "Cox frequency weights must be whole numbers >= 1 (the number of identical patients "
            "each row stands for). Drop rows with weight 0 and round or recompute the counts."
        )
    return counts


@dataclass(frozen=True)
class CoxResult:
    """A Cox model as R's ``coxph`` plus its ``cox.zph`` proportional-hazards test.

    ``table``: term, coef, se, hr, ci_low, ci_high, z, p (Wald). ``ph_test``: term, chisq, df, p
    per model term plus "GLOBAL". ``loglik`` is (null, fitted), like R's ``fit$loglik``.
    """

    table: pd.DataFrame
    lr_statistic: float
    lr_dof: int
    lr_p_value: float
    ph_test: pd.DataFrame
    n: int
    events: int
    loglik: tuple[float, float]
    ties: str
    strata: tuple[str, ...]
    exclusions: Exclusions


@dataclass(frozen=True)
class _DesignMatrix:
    x: np.ndarray
    columns: list[str]  # coefficient labels
    terms: list[tuple[str, list[int]]]  # model term -> its columns


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _factor_codes(
    values: pd.Series, column: str, reference: Mapping[str, object]
) -> tuple[np.ndarray, list]:
    """Codes with the reference level first (``reference[column]``, else the first level)."""
    codes, levels = _levels_and_codes(values)
    if column not in reference:
        return codes, levels
    wanted = reference[column]
    match = [i for i, lv in enumerate(levels) if lv == wanted or str(lv) == str(wanted)]
    if not match:
        raise AnalysisError(
            f"Reference level {wanted!r} of {column!r} is not among its levels "
            f"{[str(lv) for lv in levels]}. Choose one of those."
        )
    order = [match[0], *(i for i in range(len(levels)) if i != match[0])]
    renumber = np.empty(len(order), dtype=np.int64)
    renumber[order] = np.arange(len(order))
    return renumber[codes], [levels[i] for i in order]


def _design_matrix(
    df: pd.DataFrame, terms: list[str], reference: Mapping[str, object]
) -> _DesignMatrix:
    blocks, columns, term_cols = [], [], []
    for term in terms:
        values = df[term]
        start = len(columns)
        if _is_numeric(values):
            blocks.append(values.to_numpy(dtype=float)[:, None])
            columns.append(term)
        else:
            codes, levels = _factor_codes(values, term, reference)
            if len(levels) < 2:
                raise AnalysisError(
                    f"{term!r} has a single level ({levels[0]}) among the patients analysed, so "
                    "it has no effect to estimate. Remove it or widen the selection."
                )
            blocks.append((codes[:, None] == np.arange(1, len(levels))[None, :]).astype(float))
            columns += [f"{term}: {lv} vs {levels[0]}" for lv in levels[1:]]
        term_cols.append((term, list(range(start, len(columns)))))
    return _DesignMatrix(np.hstack(blocks), columns, term_cols)


def _strata_codes(df: pd.DataFrame, strata: list[str]) -> np.ndarray | None:
    if not strata:
        return None
    return df.groupby(strata, sort=True, observed=True).ngroup().to_numpy()


def _coef_table(columns: list[str], beta: np.ndarray, var: np.ndarray, z: float) -> pd.DataFrame:
    se = np.sqrt(np.diag(var))
    wald = beta / se
    # Tiny data can give huge SEs; exp() then overflows to inf, which is the honest limit.
    with np.errstate(over="ignore"):
        hr, low, high = np.exp(beta), np.exp(beta - z * se), np.exp(beta + z * se)
    return pd.DataFrame(
        {
            "term": columns,
            "coef": beta,
            "se": se,
            "hr": hr,
            "ci_low": low,
            "ci_high": high,
            "z": wald,
            "p": _two_sided_p(wald),
        }
    )


def cox(
    df: pd.DataFrame,
    time: str,
    event: str,
    terms: Sequence[str],
    *,
    strata: str | Sequence[str] | None = None,
    ties: str = "efron",
    alpha: float = 0.05,
    reference: Mapping[str, object] | None = None,
) -> CoxResult:
    """Cox proportional-hazards model with Wald intervals, LR test and the ``cox.zph`` PH test.

    Parameters
    ----------
    terms : column names. Numeric columns enter as they are; other columns (text, category,
        bool) become treatment dummies "col: level vs ref" against the first category level,
        the first sorted level, or ``reference={"col": level}``.
    strata : column(s) defining strata with their own baseline hazard (R ``strata()``).
    ties : "efron" (R's default) or "breslow".
    """
    _check_choice(ties, ("efron", "breslow"), "ties")
    terms, strata_cols = as_list(terms), as_list(strata)
    if not terms:
        raise AnalysisError("Choose at least one term for the Cox model.")
    z = _z(alpha)
    needed = _columns(df, [time, event, *terms, *strata_cols])
    clean, excl = survival_frame(needed, time, event, [*terms, *strata_cols], what="a Cox model")
    design = _design_matrix(clean, terms, reference or {})
    prepared = _cox.prepare(
        clean[time].to_numpy(dtype=float),
        clean[event].to_numpy(),
        design.x,
        strata=_strata_codes(clean, strata_cols),
        ties=ties,
        names=design.columns,
    )
    state, var, loglik0 = _cox.fit(prepared)
    chisq, dof = _cox.zph_test(prepared, state, [cols for _, cols in design.terms])
    ph = pd.DataFrame(
        {
            "term": [name for name, _ in design.terms] + ["GLOBAL"],
            "chisq": chisq,
            "df": dof,
            "p": _chisq_p(chisq, dof),
        }
    )
    lr = 2 * (state.loglik - loglik0)
    p = len(design.columns)
    return CoxResult(
        table=_coef_table(design.columns, state.beta, var, z),
        lr_statistic=float(lr),
        lr_dof=p,
        lr_p_value=float(_chisq_p(lr, p)),
        ph_test=ph,
        n=len(clean),
        events=int(clean[event].sum()),
        loglik=(loglik0, state.loglik),
        ties=ties,
        strata=tuple(strata_cols),
        exclusions=excl,
    )


# --------------------------------------------------------------------------------------------
# RMST and milestone survival


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
    z = _z(alpha)
    if not np.isfinite(tau) or tau <= 0:
        raise AnalysisError(f"tau must be a positive time (in the units of {time}); got {tau!r}.")
    t, e, codes, labels, excl = _prepare_groups(df, time, event, by, "restricted mean survival")
    steps = _km_steps(t, e, codes)
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
    z = _z(alpha)
    if not np.isfinite(at) or at < 0:
        raise AnalysisError(f"The milestone time must be >= 0; got {at!r}.")
    t, e, codes, labels, excl = _prepare_groups(df, time, event, by, "milestone survival")
    steps = _km_steps(t, e, codes)
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


# --------------------------------------------------------------------------------------------
# landmark


def landmark(df: pd.DataFrame, time: str, event: str, *, at: float) -> pd.DataFrame:
    """Patients still under observation at ``at``, with time measured from the landmark.

    Removes patients with an event at or before ``at`` and those censored before ``at`` (a
    patient censored exactly at ``at`` is kept, with 0 follow-up after it), then subtracts
    ``at`` from the remaining times. Used for pCR -> outcome analyses, where survival must be
    counted from the time pCR is known (avoiding immortal-time bias).

    ``out.attrs["landmark"]`` = {"at", "n_input", "excluded_event_before",
    "excluded_censored_before"}; ``out.attrs["exclusions"]`` records every row removed.
    """
    if not np.isfinite(at) or at < 0:
        raise AnalysisError(f"The landmark time must be >= 0; got {at!r}.")
    clean, excl = survival_frame(df, time, event, what="a landmark analysis")
    t = clean[time].to_numpy()
    had_event = (clean[event].to_numpy() == 1) & (t <= at)
    censored_before = (clean[event].to_numpy() == 0) & (t < at)
    keep = ~(had_event | censored_before)
    out = clean.take(np.flatnonzero(keep))
    out[time] = t[keep] - at
    n_event, n_cens = int(had_event.sum()), int(censored_before.sum())
    reasons = [*excl.reasons]
    if n_event:
        reasons.append((f"event at or before the landmark ({at:g})", n_event))
    if n_cens:
        reasons.append((f"censored before the landmark ({at:g})", n_cens))
    out.attrs["landmark"] = {
        "at": float(at),
        "n_input": len(df),
        "excluded_event_before": n_event,
        "excluded_censored_before": n_cens,
    }
    out.attrs["exclusions"] = Exclusions(len(df), len(out), tuple(reasons))
    if out.empty:
        raise AnalysisError(
            f"No patient is still event-free and under follow-up at the landmark {at:g}: "
            "choose an earlier landmark."
        )
    return out
