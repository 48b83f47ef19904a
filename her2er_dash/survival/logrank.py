"""Log-rank tests: k-group and pairwise with multiplicity adjustment (as R survdiff)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from .._data import Exclusions
from ..errors import AnalysisError
from ._common import ADJUST_METHODS, _check_choice, _chisq_p, _needs_two_groups
from .km import _prepare_groups


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


