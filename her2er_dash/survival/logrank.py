"""Log-rank tests: k-group and pairwise with multiplicity adjustment, stratified, and weighted
(Fleming-Harrington G(rho, gamma)), as R ``survdiff(Surv(time, event) ~ group + strata(s), rho=)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from .._data import Exclusions, as_list
from ..counts import unpack, weights
from ..errors import AnalysisError
from ._common import ADJUST_METHODS, _check_choice, _chisq_p, _group_codes, _needs_two_groups
from .km import _prepare_groups


@dataclass(frozen=True)
class LogrankResult:
    """k-group log-rank test (R ``survdiff``), optionally with pairwise comparisons.

    ``table``: group, n, observed, expected (summed over strata; with weights, the weighted
    sums that ``survdiff(rho=)`` reports). ``pairwise``: group_a, group_b, statistic, p,
    p_adjusted (None unless requested). ``strata`` names the stratifying column(s); ``rho`` and
    ``gamma`` the Fleming-Harrington weight S(t-)^rho (1 - S(t-))^gamma (0, 0: the log-rank test).
    """

    statistic: float
    dof: int
    p_value: float
    table: pd.DataFrame
    pairwise: pd.DataFrame | None
    adjust: str
    exclusions: Exclusions
    strata: tuple[str, ...] = ()
    rho: float = 0.0
    gamma: float = 0.0

    @property
    def weighting(self) -> str:
        """Plain-language name of the test, e.g. "Fleming-Harrington G(1, 0)"."""
        if self.rho == 0 and self.gamma == 0:
            return "log-rank"
        if self.gamma == 0 and self.rho == 1:
            return "Peto-Peto-Prentice (Fleming-Harrington G(1, 0))"
        return f"Fleming-Harrington G({self.rho:g}, {self.gamma:g})"


def _stratum_sums(
    time: np.ndarray, event: np.ndarray, codes: np.ndarray, n_groups: int, rho: float,
    gamma: float, patients: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Observed, expected (weighted) and the variance matrix of one stratum (survdiff2.c).

    ``patients``: patients per row (a count table); None for one patient per row.
    """
    uniq, inverse = np.unique(time, return_inverse=True)
    cell = inverse * n_groups + codes
    size = len(uniq) * n_groups
    died = event if patients is None else event * patients
    deaths = np.bincount(cell, weights=died, minlength=size).reshape(-1, n_groups)
    counts = np.bincount(cell, weights=patients, minlength=size).reshape(-1, n_groups)
    risk = np.cumsum(counts[::-1], axis=0)[::-1]
    if rho or gamma:
        # Weights from the pooled Kaplan-Meier of the stratum, just before each time.
        d_any, n_any = deaths.sum(axis=1), risk.sum(axis=1)
        km = np.cumprod(1 - d_any / n_any)
        before = np.concatenate(([1.0], km[:-1]))
        weight = before**rho * (1 - before) ** gamma
    else:
        weight = np.ones(len(uniq))
    has_event = deaths.sum(axis=1) > 0
    deaths, risk = deaths[has_event], risk[has_event].astype(float)
    weight = weight[has_event]
    d_all, n_all = deaths.sum(axis=1), risk.sum(axis=1)
    share = risk / n_all[:, None]
    observed = weight @ deaths
    expected = (weight * d_all) @ share
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(n_all > 1, weight**2 * d_all * (n_all - d_all) / (n_all - 1), 0.0)
    var = np.diag((share * scale[:, None]).sum(axis=0)) - (share * scale[:, None]).T @ share
    return observed, expected, var


def logrank_arrays(
    time: np.ndarray,
    event: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    *,
    strata: np.ndarray | None = None,
    rho: float = 0.0,
    gamma: float = 0.0,
    patients: np.ndarray | None = None,
) -> tuple[float, int, np.ndarray, np.ndarray]:
    """Chi-square, df, observed and expected events per group (as ``survdiff``).

    ``strata`` (integer codes) gives each stratum its own risk sets; observed, expected and
    variances are summed over strata. ``rho``/``gamma`` weight each event time by
    S(t-)^rho (1 - S(t-))^gamma, S the Kaplan-Meier of the stratum (``survdiff(rho=)`` is gamma 0).
    ``patients`` holds the patients per row of a count table (None: one per row).
    """
    if strata is None:
        observed, expected, var = _stratum_sums(time, event, codes, n_groups, rho, gamma, patients)
    else:
        observed, expected = np.zeros(n_groups), np.zeros(n_groups)
        var = np.zeros((n_groups, n_groups))
        for s in np.unique(strata):
            rows = strata == s
            o, e, v = _stratum_sums(time[rows], event[rows], codes[rows], n_groups, rho, gamma,
                                    None if patients is None else patients[rows])
            observed, expected, var = observed + o, expected + e, var + v
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


#: Our method names -> statsmodels' ``multipletests`` names (R ``p.adjust`` spells them alike).
_MULTIPLETESTS = {"holm": "holm", "bonferroni": "bonferroni", "BH": "fdr_bh"}


def p_adjust(p: np.ndarray, method: str) -> np.ndarray:
    """Multiplicity adjustment as R's ``p.adjust`` (holm, bonferroni, BH, none), computed by
    statsmodels' ``multipletests``."""
    from statsmodels.stats.multitest import multipletests

    _check_choice(method, ADJUST_METHODS, "adjust")
    p = np.asarray(p, dtype=float)
    if method == "none" or len(p) == 0:
        return p.copy()
    return multipletests(p, method=_MULTIPLETESTS[method])[1]


def _prepare_stratified(df, time: str, event: str, by: str, strata: list[str]):
    """Group arrays as for the unstratified test, plus stratum codes (missing strata excluded)
    and patients per row (None: one each)."""
    if not strata:
        t, e, codes, labels, excl, w = _prepare_groups(df, time, event, by, "a log-rank test")
        return t, e, codes, labels, excl, None, w
    from .._data import survival_frame
    from ._common import _columns

    frame, count = unpack(df)
    needed = _columns(frame, [time, event, by, *strata, *as_list(count)])
    clean, excl = survival_frame(needed, time, event, [by, *strata],
                                 what="a stratified log-rank test", count=count)
    codes, labels = _group_codes(clean[by])
    strata_codes = clean.groupby(strata, sort=True, observed=True).ngroup().to_numpy()
    t = clean[time].to_numpy(dtype=float)
    e = clean[event].to_numpy(dtype=np.int64)
    return t, e, codes, labels, excl, strata_codes, weights(clean, count)


def logrank(
    df,
    time: str,
    event: str,
    by: str,
    *,
    pairwise: bool = False,
    adjust: str = "holm",
    strata: str | Sequence[str] | None = None,
    rho: float = 0.0,
    gamma: float = 0.0,
) -> LogrankResult:
    """Log-rank test across the levels of ``by``; ``pairwise=True`` adds every pair, adjusted.

    Parameters
    ----------
    df : patient rows, or a :class:`~her2er_dash.counts.Counts` of (``time``, ``event``, ``by``,
        ``strata``) cells (the same test).
    adjust : "holm" (default), "bonferroni", "BH" or "none", as R's ``p.adjust``.
    strata : column(s) whose levels (e.g. the studies of a pooled cohort) get their own risk sets
        (R ``survdiff(... ~ group + strata(study))``); patients missing a stratum are excluded.
    rho, gamma : Fleming-Harrington weights S(t-)^rho (1 - S(t-))^gamma, S the Kaplan-Meier of
        all groups together (within stratum). rho = 1, gamma = 0 (R ``survdiff(rho = 1)``,
        Peto-Peto-Prentice) stresses early differences; rho = 0, gamma = 1 late ones.
    """
    _check_choice(adjust, ADJUST_METHODS, "adjust")
    strata_cols = as_list(strata)
    if not (np.isfinite(rho) and np.isfinite(gamma) and rho >= 0 and gamma >= 0):
        raise AnalysisError(f"rho and gamma must be >= 0 (got rho={rho!r}, gamma={gamma!r}).")
    t, e, codes, labels, excl, strata_codes, w = _prepare_stratified(
        df, time, event, by, strata_cols
    )
    _needs_two_groups(labels, by)
    options = {"strata": strata_codes, "rho": rho, "gamma": gamma}
    stat, dof, observed, expected = logrank_arrays(t, e, codes, len(labels), patients=w,
                                                   **options)
    if dof == 0:
        raise AnalysisError(
            f"The groups of {by!r} cannot be compared: when events occur, only one group still "
            "has patients at risk, so the log-rank test has no information. Check follow-up "
            "times per group, or compare other groups."
        )
    table = pd.DataFrame(
        {
            "group": labels,
            "n": np.bincount(codes, minlength=len(labels)) if w is None
            else np.bincount(codes, weights=w, minlength=len(labels)).astype(np.int64),
            "observed": observed,
            "expected": expected,
        }
    )
    pairs = None
    if pairwise:
        rows = []
        for a, b in combinations(range(len(labels)), 2):
            keep = (codes == a) | (codes == b)
            pair_options = {**options, "strata": None if strata_codes is None else strata_codes[keep]}
            s, k, _, _ = logrank_arrays(
                t[keep], e[keep], (codes[keep] == b).astype(np.int64), 2,
                patients=None if w is None else w[keep], **pair_options
            )
            rows.append((labels[a], labels[b], s, float(_chisq_p(s, k)) if k else np.nan))
        pairs = pd.DataFrame(rows, columns=["group_a", "group_b", "statistic", "p"])
        pairs["p_adjusted"] = p_adjust(pairs["p"].to_numpy(), adjust)
    p_value = float(_chisq_p(stat, dof)) if dof else np.nan
    return LogrankResult(
        stat, dof, p_value, table, pairs, adjust, excl, tuple(strata_cols), float(rho), float(gamma)
    )


