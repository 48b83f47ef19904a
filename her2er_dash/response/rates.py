"""pCR rates with binomial intervals, and two-group comparisons (RD, RR, OR, chi-square, Fisher).

Intervals (``method=``): ``"wilson"`` = score interval without continuity correction
(R ``prop.test(correct = FALSE)``); ``"clopper-pearson"`` = exact (R ``binom.test``);
``"jeffreys"`` = equal-tailed Beta(x + 1/2, n - x + 1/2) quantiles with the lower limit set to 0
when x = 0 and the upper limit set to 1 when x = n (Brown, Cai & DasGupta 2001);
``"agresti-coull"`` = Wald interval around (x + z²/2) / (n + z²), clipped to [0, 1].

Risk difference CI: Newcombe's hybrid score interval (Newcombe 1998, method 10) built from the
two Wilson intervals. Risk ratio and odds ratio CIs: Wald on the log scale; when the 2x2 table
has a zero cell, 0.5 is added to every cell for the RR/OR estimate and CI (said in ``note``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import _logit
from .._data import as_list, z_value
from ..counts import unpack, weights
from ..errors import AnalysisError

INTERVAL_METHODS: tuple[str, ...] = ("wilson", "clopper-pearson", "jeffreys", "agresti-coull")

#: The two-group comparison reports tests only when each group has this many patients, responders
#: and non-responders; below it the numbers are shown descriptively.
MIN_GROUP_PATIENTS = 10
MIN_GROUP_OUTCOMES = 5



def binomial_interval(
    successes, trials, *, method: str = "wilson", alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence limits for binomial proportions (vectorised over arrays of counts).

    Parameters
    ----------
    successes, trials : array-like of counts (trials > 0).
    method : ``"wilson"``, ``"clopper-pearson"``, ``"jeffreys"`` or ``"agresti-coull"``
        (see the module docstring for the exact definitions and endpoint conventions).
    alpha : 1 - confidence level.

    Returns
    -------
    (low, high) : arrays of limits in [0, 1].
    """
    from scipy.stats import beta as beta_dist

    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    z = z_value(alpha)
    if method == "wilson":
        centre = (x + z * z / 2) / (n + z * z)
        half = z * np.sqrt(x * (n - x) / n + z * z / 4) / (n + z * z)
        low, high = centre - half, centre + half
        low, high = np.where(x == 0, 0.0, low), np.where(x == n, 1.0, high)
    elif method == "clopper-pearson":
        with np.errstate(invalid="ignore"):
            low = np.where(x == 0, 0.0, beta_dist.ppf(alpha / 2, x, n - x + 1))
            high = np.where(x == n, 1.0, beta_dist.ppf(1 - alpha / 2, x + 1, n - x))
    elif method == "jeffreys":
        low = np.where(x == 0, 0.0, beta_dist.ppf(alpha / 2, x + 0.5, n - x + 0.5))
        high = np.where(x == n, 1.0, beta_dist.ppf(1 - alpha / 2, x + 0.5, n - x + 0.5))
    elif method == "agresti-coull":
        n_tilde = n + z * z
        p_tilde = (x + z * z / 2) / n_tilde
        half = z * np.sqrt(p_tilde * (1 - p_tilde) / n_tilde)
        low, high = p_tilde - half, p_tilde + half
    else:
        raise AnalysisError(
            f"Unknown interval method {method!r}; choose one of {', '.join(INTERVAL_METHODS)}."
        )
    return np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)


def _codes_and_levels(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Level codes in natural order; a categorical's own codes need no hashing."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = pd.CategoricalIndex(values.cat.categories, dtype=values.dtype)
        return values.cat.codes.to_numpy(dtype=np.int64), levels
    return pd.factorize(values, sort=True)


def _counts_by(
    frame: pd.DataFrame, keys: list[str], y: np.ndarray, patients: np.ndarray | None = None
) -> pd.DataFrame:
    """Patients and responders per observed combination of ``keys`` (levels in natural order).

    Integer codes and ``bincount`` instead of a pandas groupby: several times faster at 1M rows.
    ``patients``: patients per row of a count table (None: one per row).
    """
    cell = np.zeros(len(y), dtype=np.int64)
    level_lists = []
    for key in keys:
        codes, levels = _codes_and_levels(frame[key])
        cell = cell * len(levels) + codes
        level_lists.append(levels)
    sizes = [len(levels) for levels in level_lists]
    if patients is None:
        n = np.bincount(cell, minlength=int(np.prod(sizes)))
        events = np.bincount(cell, weights=y, minlength=len(n))
    else:
        n = np.bincount(cell, weights=patients, minlength=int(np.prod(sizes))).astype(np.int64)
        events = np.bincount(cell, weights=y * patients, minlength=len(n))
    present = np.flatnonzero(n)
    positions = np.unravel_index(present, sizes)
    columns = {
        key: levels.take(pos) for key, levels, pos in zip(keys, level_lists, positions, strict=True)
    }
    return pd.DataFrame({**columns, "n": n[present], "pcr": events[present]})


def _as_categorical(values: pd.Series) -> pd.Series:
    """A text column as a categorical with sorted categories (missing stays missing)."""
    codes, levels = pd.factorize(values, sort=True)
    return pd.Series(pd.Categorical.from_codes(codes, levels), index=values.index)


def pcr_rates(
    df,
    by: str | Sequence[str] | None = None,
    *,
    method: str = "wilson",
    alpha: float = 0.05,
    outcome: str = "pcr",
) -> pd.DataFrame:
    """pCR rate with a binomial confidence interval, overall or per group.

    Parameters
    ----------
    df : patient-level data with a 0/1 ``outcome`` column, or a
        :class:`~her2er_dash.counts.Counts` of (``outcome``, ``by``) cells (the same rates).
    by : None (one row, ``group = "All"``), a column name, or a list of columns.
    method : interval method, one of :data:`INTERVAL_METHODS` (module docstring gives the formulas).
    alpha : 1 - confidence level.
    outcome : the 0/1 response column.

    Returns
    -------
    DataFrame with the ``by`` columns (or ``group``), ``n, pcr, rate, ci_low, ci_high``; levels in
    their natural order; ``attrs["exclusions"]`` and ``attrs["method"]``.
    """
    if method not in INTERVAL_METHODS:
        binomial_interval([0], [1], method=method)  # raises the standard message
    keys = as_list(by)
    df, count = unpack(df)
    text_keys = [k for k in keys if k in df.columns and df[k].dtype == object]
    if text_keys:
        # Hash each text column once; later steps then work on small integer codes.
        df = df[list(dict.fromkeys([outcome, *keys, *as_list(count)]))].assign(
            **{k: _as_categorical(df[k]) for k in text_keys}
        )
    frame, excl = _logit.usable_rows(df, [outcome, *keys], "pCR rates", count)
    y = _logit.binary_outcome(frame[outcome], outcome)
    w = weights(frame, count)
    if keys:
        counts = _counts_by(frame, keys, y, w)
        for key in text_keys:  # text in, text out (as before the categorical shortcut)
            counts[key] = counts[key].astype(object)
    elif w is None:
        counts = pd.DataFrame({"group": ["All"], "n": [len(y)], "pcr": [y.sum()]})
    else:
        counts = pd.DataFrame({"group": ["All"], "n": [int(w.sum())], "pcr": [y @ w]})
    counts["pcr"] = counts["pcr"].astype(int)
    counts["rate"] = counts["pcr"] / counts["n"]
    counts["ci_low"], counts["ci_high"] = binomial_interval(
        counts["pcr"], counts["n"], method=method, alpha=alpha
    )
    counts.attrs["exclusions"] = excl
    counts.attrs["method"] = method
    return counts


def pcr_definitions(
    df, *, default: str | None = None, study: str = "study"
) -> pd.DataFrame:
    """Which pCR definition each study's ``pcr`` column follows.

    Read from the ``pcr_definition`` column where it has a value, else ``default`` (the
    definition stated for the whole cohort, e.g. at mapping), else "not recorded". One row per
    study and definition among patients with a pCR result (the whole cohort as one study when
    there is no ``study`` column): ``study, pcr_definition, n``. ``df`` may be a
    :class:`~her2er_dash.counts.Counts` of (``study``, ``pcr_definition``, ``pcr``) cells.
    """
    df, count = unpack(df)
    if "pcr" in df.columns:  # the rows of the columns read here only (not a copy of every column)
        read = [c for c in (study, "pcr_definition", count) if c is not None and c in df.columns]
        df = df.loc[df["pcr"].notna().to_numpy(), read]
    fallback = default or "not recorded"
    if "pcr_definition" in df.columns:
        definition = df["pcr_definition"].astype(object).where(df["pcr_definition"].notna(),
                                                               fallback)  # fmt: skip
    else:
        definition = pd.Series(fallback, index=df.index, dtype=object)
    groups = df[study].astype(object).fillna("(no study)") if study in df.columns else None
    frame = pd.DataFrame({"study": "" if groups is None else groups, "pcr_definition": definition})
    if count is None:
        table = frame.groupby(["study", "pcr_definition"], sort=True).size()
    else:
        frame["n"] = df[count].to_numpy(dtype=np.int64)
        table = frame.groupby(["study", "pcr_definition"], sort=True)["n"].sum()
    table = table.rename("n").reset_index()
    if table.empty:
        return pd.DataFrame({"study": [""], "pcr_definition": [fallback], "n": [0]})
    return table


def _group_counts(frame: pd.DataFrame, group: str, y: np.ndarray, reference,
                  patients: np.ndarray | None = None):
    levels = _logit.natural_levels(frame[group])
    if len(levels) < 2:
        raise AnalysisError(
            f"{group} has a single level ({levels[0]!r}) among the analysed patients, so there is "
            "nothing to compare. Choose another grouping variable or widen the filter."
        )
    reference = levels[0] if reference is None else reference
    if reference not in levels:
        raise AnalysisError(
            f"Reference level {reference!r} does not occur in {group} (levels: {levels})."
        )
    codes = pd.Categorical(frame[group], categories=levels).codes
    if patients is None:
        n = np.bincount(codes, minlength=len(levels))
        x = np.bincount(codes, weights=y, minlength=len(levels)).astype(int)
    else:
        n = np.bincount(codes, weights=patients, minlength=len(levels)).astype(np.int64)
        x = np.bincount(codes, weights=y * patients, minlength=len(levels)).astype(int)
    counts = pd.DataFrame({"level": levels, "n": n, "pcr": x})
    return counts, reference


def two_by_two_effects(a, n1, c, n0, alpha: float) -> dict[str, np.ndarray]:
    """Effect measures for exposed (a/n1) vs reference (c/n0) with their CIs, vectorised."""
    z = z_value(alpha)
    b, d = n1 - a, n0 - c
    p1, p0 = a / n1, c / n0
    l1, u1 = binomial_interval(a, n1, method="wilson", alpha=alpha)
    l0, u0 = binomial_interval(c, n0, method="wilson", alpha=alpha)
    rd = p1 - p0
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    ac, bc, cc, dc = (np.where(zero, v + 0.5, v) for v in (a, b, c, d))
    log_rr = np.log(ac / (ac + bc)) - np.log(cc / (cc + dc))
    se_rr = np.sqrt(1 / ac - 1 / (ac + bc) + 1 / cc - 1 / (cc + dc))
    log_or = np.log(ac * dc / (bc * cc))
    se_or = np.sqrt(1 / ac + 1 / bc + 1 / cc + 1 / dc)
    m1, m0, total = a + c, b + d, n1 + n0
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = total * (a * d - b * c) ** 2 / (n1 * n0 * m1 * m0)
    return {
        "risk_difference": rd,
        "rd_ci_low": rd - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2),
        "rd_ci_high": rd + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2),
        "risk_ratio": np.exp(log_rr),
        "rr_ci_low": np.exp(log_rr - z * se_rr),
        "rr_ci_high": np.exp(log_rr + z * se_rr),
        "odds_ratio": np.exp(log_or),
        "or_ci_low": np.exp(log_or - z * se_or),
        "or_ci_high": np.exp(log_or + z * se_or),
        "chi2": chi2,
        "zero_cell": zero,
    }


def compare(
    df,
    group: str,
    *,
    reference=None,
    outcome: str = "pcr",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """pCR in each level of ``group`` against a reference level.

    Parameters
    ----------
    df : patient-level data, or a :class:`~her2er_dash.counts.Counts` of (``group``,
        ``outcome``) cells.
    group : the grouping column (two or more levels).
    reference : the reference level (default: the first level in natural order).
    outcome : the 0/1 response column.
    alpha : 1 - confidence level.

    Returns
    -------
    One row per non-reference level: ``level, reference, n, pcr, n_ref, pcr_ref,
    risk_difference, rd_ci_low, rd_ci_high`` (Newcombe hybrid score CI), ``risk_ratio, rr_ci_low,
    rr_ci_high, odds_ratio, or_ci_low, or_ci_high`` (Wald on the log scale), ``chi2, chi2_p``
    (Pearson, no continuity correction), ``fisher_p`` (two-sided exact), ``note`` and
    ``small_group``: the reason this comparison is too small for a test (a group with fewer than
    10 patients, 5 responders or 5 non-responders), empty otherwise. The p-values are still
    computed; a display should show such rows without them. ``attrs["exclusions"]``.
    """
    from scipy.stats import chi2 as chi2_dist
    from scipy.stats import fisher_exact

    df, count = unpack(df)
    frame, excl = _logit.usable_rows(df, [group, outcome], "the group comparison", count)
    y = _logit.binary_outcome(frame[outcome], outcome)
    w = weights(frame, count)
    _logit.require_both_outcomes(y, outcome, "a comparison of response rates", w)
    counts, reference = _group_counts(frame, group, y, reference, w)
    ref = counts[counts["level"] == reference].iloc[0]
    rows = counts[counts["level"] != reference].reset_index(drop=True)
    a, n1 = rows["pcr"].to_numpy(float), rows["n"].to_numpy(float)
    c, n0 = float(ref["pcr"]), float(ref["n"])
    effects = two_by_two_effects(a, n1, np.full_like(a, c), np.full_like(a, n0), alpha)
    zero = effects.pop("zero_cell")
    out = pd.DataFrame(
        {
            "level": rows["level"],
            "reference": reference,
            "n": rows["n"].astype(int),
            "pcr": rows["pcr"].astype(int),
            "n_ref": int(n0),
            "pcr_ref": int(c),
            **effects,
        }
    )
    out["chi2_p"] = chi2_dist.sf(out["chi2"], 1)
    out["fisher_p"] = [
        fisher_exact([[ai, ni - ai], [c, n0 - c]])[1] for ai, ni in zip(a, n1, strict=True)
    ]
    out["note"] = np.where(
        zero, "zero cell: 0.5 added to every cell for the risk ratio and odds ratio", ""
    )
    out["small_group"] = [
        _small_group_reason(int(ni), int(ai), int(n0), int(c), str(level), str(reference))
        for ni, ai, level in zip(n1, a, rows["level"], strict=True)
    ]
    out.attrs["exclusions"] = excl
    return out


def _small_group_reason(n: int, x: int, n_ref: int, x_ref: int, level: str, ref: str) -> str:
    """Why a 2x2 comparison is too small for a trustworthy test ("" when it is not)."""
    reasons = []
    for name, size, responders in ((level, n, x), (ref, n_ref, x_ref)):
        if size < MIN_GROUP_PATIENTS:
            reasons.append(f"{name}: {size} patients (< {MIN_GROUP_PATIENTS})")
        elif responders < MIN_GROUP_OUTCOMES:
            reasons.append(f"{name}: {responders} responders (< {MIN_GROUP_OUTCOMES})")
        elif size - responders < MIN_GROUP_OUTCOMES:
            reasons.append(
                f"{name}: {size - responders} non-responders (< {MIN_GROUP_OUTCOMES})"
            )
    return "; ".join(reasons)
