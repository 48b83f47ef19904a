"""The ER cut-point that best separates responders (maximally selected chi-square), with
p-values corrected for the search (Lausen & Schumacher 1992; permutation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import _logit
from .._data import Exclusions, is_numeric
from ..errors import AnalysisError

_MAX_CUTPOINT_CANDIDATES = 500


@dataclass(frozen=True)
class CutpointResult:
    """The ER cut-point that best separates responders, with search-corrected p-values.

    ``table``: per candidate ``cut, n_below, n_above, rate_below, rate_above, statistic,
    p_naive`` (groups are ER < cut and ER >= cut). ``p_naive`` of the best cut ignores the
    search; ``p_lausen`` is the Lausen & Schumacher (1992) approximation for a maximally selected
    statistic over the searched range; ``p_permutation`` re-runs the whole search on ``n_perm``
    permutations of the outcome (seed ``seed``).
    """

    table: pd.DataFrame
    best_cut: float
    statistic: float
    p_naive: float
    p_lausen: float
    p_permutation: float
    n_perm: int
    seed: int
    exclusions: Exclusions
    er: str


def _candidate_cuts(x_sorted: np.ndarray, candidates) -> np.ndarray:
    if candidates is not None:
        return np.unique(np.asarray(candidates, dtype=float))
    lo, hi = np.quantile(x_sorted, [0.05, 0.95])
    values = np.unique(x_sorted[(x_sorted >= lo) & (x_sorted <= hi)])
    if len(values) > _MAX_CUTPOINT_CANDIDATES:
        # continuous measures: a quantile grid keeps the permutation search fast
        values = np.unique(np.quantile(values, np.linspace(0, 1, _MAX_CUTPOINT_CANDIDATES)))
    return values


def _chi2_by_split(below_n, below_x, total_n, total_x) -> np.ndarray:
    a, n1 = below_x, below_n
    c, n0 = total_x - below_x, total_n - below_n
    with np.errstate(divide="ignore", invalid="ignore"):
        return (
            total_n * (a * (n0 - c) - (n1 - a) * c) ** 2 / (n1 * n0 * total_x * (total_n - total_x))
        )


def lausen_schumacher_p(statistic: float, min_prop: float, max_prop: float) -> float:
    """Lausen & Schumacher (1992) approximate p of a maximally selected chi-square (1 df)
    statistic searched over cut-points leaving proportions ``min_prop``..``max_prop`` below."""
    from scipy.stats import norm

    b = np.sqrt(statistic)
    if b <= 0 or not 0 < min_prop < max_prop < 1:
        return 1.0
    dens = norm.pdf(b)
    span = np.log(max_prop * (1 - min_prop) / ((1 - max_prop) * min_prop))
    return float(np.clip(4 * dens / b + dens * (b - 1 / b) * span, 0.0, 1.0))


def cutpoint_search(
    df: pd.DataFrame,
    *,
    er: str = "er_percent",
    outcome: str = "pcr",
    candidates=None,
    min_group: int = 10,
    n_perm: int = 2000,
    seed: int = 20240601,
) -> CutpointResult:
    """Search ER cut-points for the largest response difference, correcting for the search.

    Parameters
    ----------
    df : patient-level data.
    er : numeric ER measure.
    outcome : the 0/1 response column.
    candidates : cut values to try (default: distinct observed values between the 5th and 95th
        percentiles; at most 500, on a quantile grid, for continuous measures).
    min_group : cuts leaving fewer patients than this on either side are skipped.
    n_perm, seed : permutations for the permutation p-value (fixed seed: reproducible).
    """
    from scipy.stats import chi2 as chi2_dist

    frame, excl = _logit.usable_rows(df, [er, outcome], "the cut-point search")
    if not is_numeric(frame[er]):
        raise AnalysisError(f"{er} must be numeric to search for a cut-point.")
    order = np.argsort(frame[er].to_numpy(dtype=float), kind="stable")
    x = frame[er].to_numpy(dtype=float)[order]
    y = _logit.binary_outcome(frame[outcome], outcome)[order]
    _logit.require_both_outcomes(y, outcome, "a cut-point search")
    cuts = _candidate_cuts(x, candidates)
    below = np.searchsorted(x, cuts, side="left")
    keep = (below >= min_group) & (len(x) - below >= min_group)
    if not keep.any():
        raise AnalysisError(
            f"No candidate cut-point leaves at least {min_group} patients on both sides of {er}. "
            "Lower min_group or include more patients."
        )
    cuts, below = cuts[keep], below[keep]
    events_before = np.concatenate([[0.0], np.cumsum(y)])
    total_n, total_x = len(y), float(y.sum())
    statistic = _chi2_by_split(below, events_before[below], total_n, total_x)
    best = int(np.argmax(statistic))
    table = pd.DataFrame(
        {
            "cut": cuts,
            "n_below": below,
            "n_above": total_n - below,
            "rate_below": events_before[below] / below,
            "rate_above": (total_x - events_before[below]) / (total_n - below),
            "statistic": statistic,
            "p_naive": chi2_dist.sf(statistic, 1),
        }
    )
    permuted_max = _permutation_max(below, total_n, int(total_x), n_perm, seed)
    p_perm = (1 + np.sum(permuted_max >= statistic[best] * (1 - 1e-12))) / (n_perm + 1)
    return CutpointResult(
        table=table,
        best_cut=float(cuts[best]),
        statistic=float(statistic[best]),
        p_naive=float(table["p_naive"].iloc[best]),
        p_lausen=lausen_schumacher_p(statistic[best], below[0] / total_n, below[-1] / total_n),
        p_permutation=float(p_perm),
        n_perm=n_perm,
        seed=seed,
        exclusions=excl,
        er=er,
    )


def _permutation_max(below: np.ndarray, total_n: int, total_x: int, n_perm: int, seed: int):
    """Maximum statistic of the same search under ``n_perm`` random permutations of the outcome.

    Permuting the outcome places the ``total_x`` responders uniformly at random among the sorted
    patients, so the responder counts between consecutive cut positions follow a multivariate
    hypergeometric law: drawing those counts directly costs O(n_perm x cuts), not O(n_perm x n).
    """
    rng = np.random.default_rng(seed)
    segments = np.diff(np.concatenate([[0], below, [total_n]]))
    draws = rng.multivariate_hypergeometric(segments, total_x, size=n_perm)
    below_x = np.cumsum(draws[:, :-1], axis=1)
    stats = _chi2_by_split(below[None, :], below_x, total_n, total_x)
    return np.nanmax(stats, axis=1)
