"""Pathologic complete response (pCR): rates, group comparisons, logistic models, dose-response.

Every function takes a patient-level DataFrame whose outcome column is 0/1 (1 = pCR by default)
and returns a tidy DataFrame or a small frozen result object carrying the row accounting
(:class:`her2er_dash._data.Exclusions`). Numbers are checked against R (``prop.test``,
``binom.test``, ``qbeta``, ``chisq.test``, ``fisher.test``, ``glm``, ``splines::ns``) in
``tests/test_response.py``.

Conventions stated once here:

* Binomial intervals: ``"wilson"`` = score interval without continuity correction
  (R ``prop.test(correct = FALSE)``); ``"clopper-pearson"`` = exact (R ``binom.test``);
  ``"jeffreys"`` = equal-tailed Beta(x + 1/2, n - x + 1/2) quantiles with the lower limit set to 0
  when x = 0 and the upper limit set to 1 when x = n (Brown, Cai & DasGupta 2001);
  ``"agresti-coull"`` = Wald interval around (x + z²/2) / (n + z²), clipped to [0, 1].
* Risk difference CI: Newcombe's hybrid score interval (Newcombe 1998, method 10) built from the
  two Wilson intervals. Risk ratio and odds ratio CIs: Wald on the log scale; when the 2x2 table
  has a zero cell, 0.5 is added to every cell for the RR/OR estimate and CI (said in ``note``).
* Logistic regression: maximum likelihood by Newton-Raphson (= R ``glm(family = binomial)``),
  Wald CIs ``exp(beta ± z·se)`` (= ``exp(confint.default(fit))``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._data import Exclusions, as_list, complete_cases
from .counts import unpack, weights
from .errors import AnalysisError
from .schema import column_label
from .wording import count

INTERVAL_METHODS: tuple[str, ...] = ("wilson", "clopper-pearson", "jeffreys", "agresti-coull")

#: Default observed-rate bins for ER % (labels as reported clinically; upper bounds inclusive).
ER_PERCENT_BINS: tuple[tuple[str, float], ...] = (
    ("0", 0.0),
    ("1-10", 10.0),
    ("11-50", 50.0),
    ("51-90", 90.0),
    ("91-100", np.inf),
)

# Linear predictors beyond +-30 (probabilities within 1e-13 of 0 or 1), or with a standard error
# above 15 log-odds units, only arise when the likelihood has no finite maximum (separation).
_SEPARATION_ETA = 30.0
_SEPARATION_ETA_SE = 15.0
_MAX_CUTPOINT_CANDIDATES = 500


# ---------------------------------------------------------------------------------------------
# Small shared helpers (also used by her2er_dash.subgroups)
# ---------------------------------------------------------------------------------------------


def _z(alpha: float) -> float:
    from scipy.stats import norm

    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be between 0 and 1 (got {alpha}); 0.05 gives 95% CIs.")
    return float(norm.ppf(1 - alpha / 2))


def _binary(values: pd.Series, name: str) -> np.ndarray:
    """The 0/1 outcome as floats; anything else is a coding problem the user must fix."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    ok = (numbers == 0) | (numbers == 1)
    if not ok.all():
        odd = pd.unique(values[~ok])[:5].tolist()
        raise AnalysisError(
            f"{name} must be coded 0/1 (1 = response); found {odd}. "
            "Recode it in the mapping (Cohort page → Column mapping → Recode values)."
        )
    return numbers


def _levels(values: pd.Series) -> list:
    """Levels in their natural order: category order for categoricals, sorted otherwise."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.unique().tolist())
        return [c for c in values.cat.categories if c in present]
    return sorted(values.unique().tolist())


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _usable(df: pd.DataFrame, columns: Sequence[str], what: str, count: str | None = None):
    """Complete cases of only the needed columns (copying 1M rows x all columns is slow);
    ``count`` names the patients-per-row column of a count table (kept, never required)."""
    columns = list(dict.fromkeys(columns))
    missing = [c for c in columns if c not in df.columns]
    if missing:
        complete_cases(df, columns, what=what)  # raises the standard message
    kept = columns if count is None else [*columns, count]
    return complete_cases(df[kept], columns, what=what, count=count)


def _require_both_outcomes(
    y: np.ndarray, outcome: str, what: str, patients: np.ndarray | None = None
) -> None:
    events = int(y.sum()) if patients is None else int(y @ patients)
    total = len(y) if patients is None else int(patients.sum())
    if events == 0 or events == total:
        who = "None" if events == 0 else "All"
        raise AnalysisError(
            f"{who} of the {total:,} patients had {outcome} = 1, so {what} cannot "
            "estimate anything. Check the outcome coding or widen the cohort filter."
        )


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
    z = _z(alpha)
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


# ---------------------------------------------------------------------------------------------
# Logistic regression engine (Newton-Raphson on a design matrix, optionally with grouped rows)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LogitFit:
    beta: np.ndarray
    cov: np.ndarray
    loglik: float
    eta: np.ndarray
    converged: bool


def _expit(eta: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(eta)


def _loglik(eta: np.ndarray, y: np.ndarray, m: np.ndarray) -> float:
    """Binomial log-likelihood without the binomial coefficients: y*eta + m*log(1 - p)."""
    from scipy.special import log_expit

    return float(np.dot(y, eta) + np.dot(m, log_expit(-eta)))


def _fit_logit(
    X: np.ndarray, y: np.ndarray, trials: np.ndarray | None = None, *, max_iter: int = 60
) -> _LogitFit:
    """Maximum-likelihood logistic regression of ``y`` successes out of ``trials`` on ``X``.

    Grouped rows (``trials`` > 1) give the same coefficients and log-likelihood differences as the
    ungrouped data, which makes purely categorical models at 1M patients nearly free.
    """
    m = np.ones(len(y)) if trials is None else np.asarray(trials, dtype=float)
    beta = _start_values(X, y, m, trials is None)
    eta = X @ beta
    loglik = _loglik(eta, y, m)
    converged = False
    buffer = np.empty_like(X, dtype=float)  # one n x p scratch array for every X'WX
    for _ in range(max_iter):
        p = _expit(eta)
        info = _weighted_gram(X, m * p * (1 - p), buffer)
        try:
            step = np.linalg.solve(info, X.T @ (y - m * p))
        except np.linalg.LinAlgError:
            break
        new_beta, new_loglik = beta + step, -np.inf
        for _half in range(30):  # step halving keeps the likelihood increasing
            new_eta = X @ new_beta
            new_loglik = _loglik(new_eta, y, m)
            if new_loglik >= loglik - 1e-12 * abs(loglik):
                break
            new_beta = (beta + new_beta) / 2
        change = new_loglik - loglik
        beta, eta, loglik = new_beta, new_eta, new_loglik
        if abs(change) < 1e-11 * (abs(loglik) + 0.1) and np.max(np.abs(step)) < 1e-7 * (
            1 + np.max(np.abs(beta))
        ):
            converged = True
            break
    p = _expit(eta)
    info = _weighted_gram(X, m * p * (1 - p), buffer)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full_like(info, np.nan)
        converged = False
    return _LogitFit(beta, cov, loglik, eta, converged)


def _weighted_gram(X: np.ndarray, weights: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """X' diag(weights) X without allocating a fresh n x p array per Newton step."""
    np.multiply(X, weights[:, None], out=buffer)
    return buffer.T @ X


#: Above this many ungrouped rows, Newton starts from a fit on every 20th row: it then needs
#: about 3 full-data iterations instead of 6-8 and converges to the same maximum.
_SUBSAMPLE_START_ROWS = 200_000
_SUBSAMPLE_STRIDE = 20


def _start_values(X: np.ndarray, y: np.ndarray, m: np.ndarray, ungrouped: bool) -> np.ndarray:
    """Newton start: a subsample fit for large ungrouped data, else the intercept-only fit."""
    if ungrouped and len(y) > _SUBSAMPLE_START_ROWS:
        rows = slice(None, None, _SUBSAMPLE_STRIDE)  # deterministic: results do not vary by run
        pilot = _fit_logit(X[rows], y[rows])
        if pilot.converged and np.max(np.abs(pilot.eta)) < _SEPARATION_ETA:
            return pilot.beta
    beta = np.zeros(X.shape[1])
    rate = np.clip(y.sum() / m.sum(), 1e-6, 1 - 1e-6)
    if X.shape[1] and np.allclose(X[:, 0], 1.0):
        beta[0] = np.log(rate / (1 - rate))
    return beta


def _null_loglik(y: np.ndarray, trials: np.ndarray | None = None) -> float:
    """Log-likelihood of the intercept-only model (closed form: the MLE is the overall rate)."""
    events = float(y.sum())
    total = float(len(y) if trials is None else trials.sum())
    rate = events / total
    if rate in (0.0, 1.0):
        return 0.0
    return events * np.log(rate) + (total - events) * np.log1p(-rate)


def _column_codes(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and distinct values of one design column (0/1 dummies without hashing)."""
    if column[0] in (0.0, 1.0) and np.all((column == 0) | (column == 1)):
        return column.astype(np.int64), np.array([0.0, 1.0])
    codes, uniques = pd.factorize(column)
    return codes.astype(np.int64), np.asarray(uniques, dtype=float)


def _collapse(X: np.ndarray, y: np.ndarray):
    """Identical design rows merged into binomial counts: ``(X_unique, successes, trials)``.

    Returns None when the rows are mostly distinct (a continuous term), where merging would not
    pay. Coefficients and log-likelihoods are unchanged by the merge.
    """
    n = len(y)
    head = X[: min(n, 20_000)]
    if any(len(pd.unique(head[:, j])) > len(head) // 4 for j in range(X.shape[1])):
        return None  # a continuous column: cheap early exit before hashing all rows
    key = np.zeros(n, dtype=np.int64)
    radix, values = 1, []
    for j in range(X.shape[1]):
        if j == 0 and np.all(X[:, 0] == 1.0):
            values.append(np.ones(1))  # the intercept adds nothing to the key
            continue
        codes, uniques = _column_codes(X[:, j])
        if len(uniques) > n // 4 or radix * len(uniques) > 2**52:
            return None
        key += codes * radix
        radix *= len(uniques)
        values.append(uniques)
    if radix <= 4 * n + 1_000_000:  # dense keys: count them directly
        trials = np.bincount(key, minlength=radix)
        cells = np.flatnonzero(trials)
        successes = np.bincount(key, weights=y, minlength=radix)[cells]
        trials = trials[cells].astype(float)
    else:
        cells, codes = np.unique(key, return_inverse=True)
        trials = np.bincount(codes).astype(float)
        successes = np.bincount(codes, weights=y, minlength=len(cells))
    columns, rest = [], cells
    for uniques in values:
        columns.append(uniques[rest % len(uniques)])
        rest = rest // len(uniques)
    return np.column_stack(columns), successes, trials


def _fit_collapsed(X: np.ndarray, y: np.ndarray) -> tuple[_LogitFit, np.ndarray]:
    """Fit on merged rows when that is cheaper; also returns the design rows the fit refers to."""
    merged = _collapse(X, y)
    if merged is None:
        return _fit_logit(X, y), X
    X_unique, successes, trials = merged
    return _fit_logit(X_unique, successes, trials), X_unique


def _separated_column(fit: _LogitFit, X: np.ndarray, names: Sequence[str]) -> str | None:
    """Name of the column whose estimate runs off to infinity, or None when the fit is sound.

    Under separation Newton's method does not converge (the estimate keeps growing), fitted
    probabilities reach 0 or 1, and the linear predictor's standard error explodes. Standard
    errors of single, correlated columns (e.g. spline terms) are not used: they can be large in
    a perfectly sound model.
    """
    eta_se = np.sqrt(np.abs(((X @ fit.cov) * X).sum(axis=1)))
    eta_se = np.where(np.isfinite(eta_se), eta_se, np.inf)
    extreme = np.max(np.abs(fit.eta)) > _SEPARATION_ETA
    if fit.converged and not extreme and eta_se.max() <= _SEPARATION_ETA_SE:
        return None
    growth = np.abs(fit.beta) * X.std(axis=0)
    return names[int(np.argmax(growth))] if growth.max() > 0 else names[0]


def _aliased_column(X: np.ndarray) -> int | None:
    """Index of the first column that is a linear combination of the ones before it."""
    gram = X.T @ X
    scale = np.sqrt(np.diag(gram))
    if np.any(scale == 0):
        return int(np.argmax(scale == 0))
    corr = gram / np.outer(scale, scale)
    for k in range(2, X.shape[1] + 1):
        if np.linalg.matrix_rank(corr[:k, :k], tol=1e-10) < k:
            return k - 1
    return None


# ---------------------------------------------------------------------------------------------
# pCR rates and two-group comparisons
# ---------------------------------------------------------------------------------------------


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
    frame, excl = _usable(df, [outcome, *keys], "pCR rates", count)
    y = _binary(frame[outcome], outcome)
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
    levels = _levels(frame[group])
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


def _two_by_two_effects(a, n1, c, n0, alpha: float) -> dict[str, np.ndarray]:
    """Effect measures for exposed (a/n1) vs reference (c/n0) with their CIs, vectorised."""
    z = _z(alpha)
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
    frame, excl = _usable(df, [group, outcome], "the group comparison", count)
    y = _binary(frame[outcome], outcome)
    w = weights(frame, count)
    _require_both_outcomes(y, outcome, "a comparison of response rates", w)
    counts, reference = _group_counts(frame, group, y, reference, w)
    ref = counts[counts["level"] == reference].iloc[0]
    rows = counts[counts["level"] != reference].reset_index(drop=True)
    a, n1 = rows["pcr"].to_numpy(float), rows["n"].to_numpy(float)
    c, n0 = float(ref["pcr"]), float(ref["n"])
    effects = _two_by_two_effects(a, n1, np.full_like(a, c), np.full_like(a, n0), alpha)
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


# ---------------------------------------------------------------------------------------------
# Logistic regression
# ---------------------------------------------------------------------------------------------


#: Fewer outcome events (the rarer of responders and non-responders) per estimated coefficient
#: than this make logistic estimates biased (Peduzzi et al., J Clin Epidemiol 1996;49:1373-9).
MIN_EVENTS_PER_VARIABLE = 10
#: The two-group comparison reports tests only when each group has this many patients, responders
#: and non-responders; below it the numbers are shown descriptively.
MIN_GROUP_PATIENTS = 10
MIN_GROUP_OUTCOMES = 5


@dataclass(frozen=True)
class LogisticResult:
    """A fitted logistic regression of a 0/1 response.

    ``table`` has one row per model column (intercept excluded; see ``intercept``):
    ``term, coef, se, odds_ratio, ci_low, ci_high, p`` (Wald). ``lr_statistic`` / ``lr_p_value``
    test the whole model against the intercept-only model on ``lr_df`` degrees of freedom; with
    ``strata``, against the model with the study effects only (so they test the terms).
    ``epv``: events per estimated coefficient, counting the rarer outcome (responders or
    non-responders); ``warnings`` says when it is below 10.
    """

    table: pd.DataFrame
    n: int
    events: int
    exclusions: Exclusions
    lr_statistic: float
    lr_df: int
    lr_p_value: float
    aic: float
    loglik: float
    intercept: float
    intercept_se: float
    reference: dict = field(default_factory=dict)
    strata: str | None = None

    @property
    def epv(self) -> float:
        """Events of the rarer outcome per estimated coefficient (intercept excluded)."""
        return min(self.events, self.n - self.events) / max(len(self.table), 1)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Plain-language cautions about this fit (empty when there is none)."""
        if self.epv >= MIN_EVENTS_PER_VARIABLE:
            return ()
        rarer = min(self.events, self.n - self.events)
        return (
            f"Only {self.epv:.1f} events per estimated coefficient ({rarer:,} in the rarer "
            f"outcome, {len(self.table)} coefficients): below {MIN_EVENTS_PER_VARIABLE}, "
            "odds ratios can be biased away from 1 and their intervals unreliable (Peduzzi et "
            "al. 1996). Use fewer terms or merge sparse levels.",
        )


def _term_columns(
    frame: pd.DataFrame, term: str, reference: Mapping
) -> tuple[list[np.ndarray], list[str], object]:
    """Design columns for one term: the value itself, or treatment dummies for a categorical."""
    values = frame[term]
    if _is_numeric(values):
        return [values.to_numpy(dtype=float)], [term], None
    levels = _levels(values)
    if len(levels) < 2:
        raise AnalysisError(
            f"{term} has a single level ({levels[0]!r}) among the analysed patients, so its "
            "effect cannot be estimated. Drop it from the model or widen the filter."
        )
    ref = reference.get(term, levels[0])
    if ref not in levels:
        raise AnalysisError(f"Reference level {ref!r} does not occur in {term} (levels: {levels}).")
    codes = pd.Categorical(values, categories=levels).codes
    others = [lev for lev in levels if lev != ref]
    columns = [(codes == levels.index(lev)).astype(float) for lev in others]
    return columns, [f"{term}: {lev} vs {ref}" for lev in others], ref


def _check_level_separation(frame: pd.DataFrame, terms: Sequence[str], y: np.ndarray) -> None:
    """A categorical level in which everyone (or no one) responded makes the MLE infinite."""
    for term in terms:
        values = frame[term]
        if _is_numeric(values):
            continue
        codes, uniques = pd.factorize(values)
        n = np.bincount(codes)
        x = np.bincount(codes, weights=y)
        bad = np.flatnonzero((x == 0) | (x == n))
        if bad.size:
            level = uniques[bad[0]]
            pct = "0%" if x[bad[0]] == 0 else "100%"
            raise AnalysisError(
                f"Separation: {'the' if n[bad[0]] == 1 else 'all'} {count(int(n[bad[0]]), 'patient')} "
                f"with {column_label(term)} {level!r} {'has' if n[bad[0]] == 1 else 'have'} "
                f"{pct} response, so its odds ratio is infinite. Merge that level with another, "
                "use fewer terms, or analyse it descriptively (pCR rates)."
            )


def _build_design(
    frame: pd.DataFrame, terms: Sequence[str], reference: Mapping
) -> tuple[np.ndarray, list[str], dict]:
    columns: list[np.ndarray] = [np.ones(len(frame))]
    names = ["(Intercept)"]
    used_reference = {}
    for term in terms:
        cols, labels, ref = _term_columns(frame, term, reference)
        columns += cols
        names += labels
        if ref is not None:
            used_reference[term] = ref
    X = np.column_stack(columns)
    aliased = _aliased_column(X)
    if aliased is not None:
        raise AnalysisError(
            f"{names[aliased]} is completely determined by the other terms (collinear), so its "
            "effect cannot be separated from theirs. Remove one of the overlapping terms."
        )
    return X, names, used_reference


def _fit_or_raise(X, y, names) -> _LogitFit:
    fit, rows = _fit_collapsed(X, y)
    culprit = _separated_column(fit, rows, names)
    if culprit is not None:
        raise AnalysisError(
            f"Separation: the model has no finite estimate for {culprit} (fitted probabilities "
            "reach 0 or 1). Merge sparse levels, use fewer terms, or report rates instead."
        )
    return fit


def _wald_table(fit: _LogitFit, names: Sequence[str], z: float) -> pd.DataFrame:
    from scipy.stats import norm

    se = np.sqrt(np.diag(fit.cov))
    return pd.DataFrame(
        {
            "term": list(names),
            "coef": fit.beta,
            "se": se,
            "odds_ratio": np.exp(fit.beta),
            "ci_low": np.exp(fit.beta - z * se),
            "ci_high": np.exp(fit.beta + z * se),
            "p": 2 * norm.sf(np.abs(fit.beta / se)),
        }
    )


def logistic(
    df: pd.DataFrame,
    terms: str | Sequence[str],
    *,
    outcome: str = "pcr",
    reference: Mapping | None = None,
    alpha: float = 0.05,
    strata: str | None = None,
) -> LogisticResult:
    """Logistic regression of ``outcome`` on ``terms`` (adjusted odds ratios).

    Parameters
    ----------
    df : patient-level data.
    terms : column name(s). Numeric columns enter as they are (per-unit odds ratio); other columns
        become treatment dummies labelled ``"col: level vs ref"``.
    outcome : the 0/1 response column.
    reference : ``{"col": "level"}`` reference levels (default: first level in natural order).
    alpha : 1 - confidence level of the Wald CIs.
    strata : a column such as ``"study"`` entered as a fixed effect (own intercept per level, R
        ``glm(outcome ~ terms + study)``): the odds ratios are within-study; the study
        coefficients are not reported. Patients missing it are excluded (counted).

    Raises
    ------
    AnalysisError
        on empty data, a constant outcome, a single-level or collinear term, or separation.
    """
    from scipy.stats import chi2 as chi2_dist

    terms = as_list(terms)
    if not terms:
        raise AnalysisError("Choose at least one term for the logistic model.")
    if strata is not None and strata in terms:
        raise AnalysisError(f"{strata!r} is already a term; it cannot also be the stratum.")
    frame, excl = _usable(df, [outcome, *terms, *as_list(strata)], "the logistic model")
    y = _binary(frame[outcome], outcome)
    _require_both_outcomes(y, outcome, "a logistic model")
    _check_level_separation(frame, terms, y)
    design_terms = [*terms, *as_list(strata)]
    X, names, used_reference = _build_design(frame, design_terms, dict(reference or {}))
    fit = _fit_or_raise(X, y, names)
    n_par = X.shape[1]
    if strata is None:
        null_loglik, n_null = _null_loglik(y), 1
    else:
        X_null, null_names, _ = _build_design(frame, [strata], dict(reference or {}))
        null_loglik, n_null = _fit_or_raise(X_null, y, null_names).loglik, X_null.shape[1]
        used_reference.pop(strata, None)
    table = _wald_table(fit, names, _z(alpha))
    statistic = max(2 * (fit.loglik - null_loglik), 0.0)
    shown = table.iloc[1 : n_par - (n_null - 1)]  # the study dummies are the last columns
    return LogisticResult(
        table=shown.reset_index(drop=True),
        n=len(y),
        events=int(y.sum()),
        exclusions=excl,
        lr_statistic=statistic,
        lr_df=n_par - n_null,
        lr_p_value=float(chi2_dist.sf(statistic, n_par - n_null)),
        aic=-2 * fit.loglik + 2 * n_par,
        loglik=fit.loglik,
        intercept=float(table["coef"].iloc[0]),
        intercept_se=float(table["se"].iloc[0]),
        reference=used_reference,
        strata=strata,
    )


# ---------------------------------------------------------------------------------------------
# Dose-response along ER or any continuous variable (natural cubic spline)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DoseResponseResult:
    """Probability of response along a continuous variable (an ER measure, a signature...).

    The x column of the tables is named ``axis``: ``"er"`` for :func:`er_dose_response`,
    ``"value"`` for :func:`dose_response`.

    ``curve``: ``<axis>, probability, ci_low, ci_high`` on a grid (CI on the logit scale);
    ``observed``: per bin ``bin, <axis>_low, <axis>_high, <axis>_mid`` (mean of the bin), ``n,
    pcr, rate, ci_low, ci_high`` (Wilson); ``p_overall``: LR test against the intercept-only
    model; ``p_nonlinear``: LR test against a straight line on the logit scale (NaN when df = 1);
    ``knots``: all spline knots including the two boundary knots; ``df_spline``: the degrees of
    freedom actually used (fewer than requested when quantile knots coincide, see ``note``);
    ``variable``: the modelled column (also available as ``er``).
    """

    curve: pd.DataFrame
    observed: pd.DataFrame
    p_overall: float
    p_nonlinear: float
    exclusions: Exclusions
    variable: str
    knots: tuple[float, ...]
    df_spline: int
    n: int
    events: int
    note: str = ""
    axis: str = "er"

    @property
    def er(self) -> str:
        """The modelled column (the name this attribute had when only ER was modelled)."""
        return self.variable


def spline_knots(x: np.ndarray, df_spline: int) -> np.ndarray:
    """Knots of R ``splines::ns(x, df = df_spline)``: range(x) plus ``df_spline - 1`` interior
    knots at equally spaced quantiles (type 7), duplicates removed."""
    probs = np.linspace(0, 1, df_spline + 1)[1:-1]
    interior = np.quantile(x, probs) if probs.size else np.array([])
    return np.unique(np.concatenate([[x.min()], interior, [x.max()]]))


def natural_spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Non-constant basis of natural cubic splines with these knots (first and last = boundary).

    Built as R ``splines::ns`` builds it: the cubic B-spline basis on the knots, first column
    dropped, projected onto the functions with zero second derivative at both boundary knots.
    The columns may differ from R's by a rotation, but they span the same functions, so fitted
    values and curves agree with R. ``x`` must lie within the boundary knots.
    """
    from scipy.interpolate import BSpline

    x = np.asarray(x, dtype=float)
    lo, hi = float(knots[0]), float(knots[-1])
    if x.min() < lo or x.max() > hi:
        raise AnalysisError("Spline values were requested outside the range of the data.")
    t = np.concatenate([[lo] * 4, np.asarray(knots[1:-1], float), [hi] * 4])
    n_basis = len(t) - 4
    basis = BSpline.design_matrix(x, t, 3).toarray()[:, 1:]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        curvature = BSpline(t, np.eye(n_basis), 3).derivative(2)(np.array([lo, hi]))[:, 1:]
    if not np.isfinite(curvature).all():
        # knots closer than floating point can divide by (e.g. values of 1e-310): the curvature
        # constraints, and so the spline, do not exist on this scale
        raise AnalysisError(
            f"The values span too narrow a range for a spline ({lo:.3g} to {hi:.3g}): "
            "rescale the variable (e.g. to percent) or show it in bins."
        )
    q, _ = np.linalg.qr(curvature.T, mode="complete")
    return basis @ q[:, 2:]


def _bin_edges(x: np.ndarray, variable: str, bins) -> tuple[list[str], np.ndarray]:
    """Labels and inclusive upper edges of the observed-rate bins."""
    if bins is None and variable == "er_percent":
        return [label for label, _ in ER_PERCENT_BINS], np.array([e for _, e in ER_PERCENT_BINS])
    if bins is None or np.isscalar(bins):
        k = 5 if bins is None else int(bins)
        edges = np.unique(np.quantile(x, np.linspace(0, 1, k + 1)[1:]))
    else:
        edges = np.unique(np.asarray(bins, dtype=float))
    edges[-1] = np.inf
    lowers = np.concatenate([[x.min()], edges[:-1]])
    # "-1.2 to -0.5" stays readable where "-1.2--0.5" would not
    labels = [
        ("" if i == 0 else ">") + (f"{lo:.4g} to {hi:.4g}" if lo < 0 else f"{lo:.4g}-{hi:.4g}")
        for i, (lo, hi) in enumerate(zip(lowers, np.append(edges[:-1], x.max()), strict=True))
    ]
    return labels, edges


def observed_bins(
    x: np.ndarray, y: np.ndarray, *, variable: str = "", bins=None, alpha: float = 0.05,
    axis: str = "value",
) -> pd.DataFrame:
    """Observed response rate (Wilson CI) per bin of ``x``: ``bin, <axis>_low, <axis>_high,
    <axis>_mid, n, pcr, rate, ci_low, ci_high``; ``bins`` as in :func:`dose_response`."""
    labels, edges = _bin_edges(x, variable, bins)
    codes = np.minimum(np.searchsorted(edges, x, side="left"), len(edges) - 1)
    k = len(labels)
    n = np.bincount(codes, minlength=k)
    events = np.bincount(codes, weights=y, minlength=k)
    total = np.bincount(codes, weights=x, minlength=k)
    low, high = np.full(k, np.inf), np.full(k, -np.inf)
    np.minimum.at(low, codes, x)
    np.maximum.at(high, codes, x)
    with np.errstate(invalid="ignore", divide="ignore"):
        ci_low, ci_high = binomial_interval(events, n, alpha=alpha)
        rate = events / n
        mid = total / n
    empty = n == 0
    return pd.DataFrame(
        {
            "bin": labels,
            f"{axis}_low": np.where(empty, np.nan, low),
            f"{axis}_high": np.where(empty, np.nan, high),
            f"{axis}_mid": mid,
            "n": n,
            "pcr": events.astype(int),
            "rate": rate,
            "ci_low": np.where(empty, np.nan, ci_low),
            "ci_high": np.where(empty, np.nan, ci_high),
        }
    )


def _spline_curve(fit: _LogitFit, knots, grid: np.ndarray, z: float, axis: str) -> pd.DataFrame:
    B = np.column_stack([np.ones(len(grid)), natural_spline_basis(grid, knots)])
    eta = B @ fit.beta
    se = np.sqrt(((B @ fit.cov) * B).sum(axis=1))

    return pd.DataFrame(
        {
            axis: grid,
            "probability": _expit(eta),
            "ci_low": _expit(eta - z * se),
            "ci_high": _expit(eta + z * se),
        }
    )


def dose_response(
    df: pd.DataFrame,
    variable: str,
    *,
    df_spline: int = 3,
    outcome: str = "pcr",
    alpha: float = 0.05,
    bins=None,
    grid_size: int = 101,
) -> DoseResponseResult:
    """Probability of response as a smooth function of any continuous ``variable``.

    Logistic regression of ``outcome`` on a natural cubic spline of ``variable`` with
    ``df_spline`` degrees of freedom, knots placed as R ``splines::ns(x, df = df_spline)`` places
    them (boundary knots at the range, interior knots at equally spaced quantiles); = R
    ``glm(y ~ ns(x, df = k), binomial)``. The tables name the x column ``value``.

    Parameters
    ----------
    df : patient-level data.
    variable : the numeric column (an ER measure, an expression signature, a HER2 level...).
    df_spline : spline degrees of freedom (1 = straight line on the logit scale).
    outcome : the 0/1 response column.
    alpha : 1 - confidence level.
    bins : observed-rate bins: None (ER %: 0, 1-10, 11-50, 51-90, 91-100; anything else:
        quintiles), an int (that many quantile bins), or a sequence of inclusive upper edges.
    grid_size : number of points of the fitted curve.
    """
    return _dose_response(df, variable, df_spline, outcome, alpha, bins, grid_size, "value")


def er_dose_response(
    df: pd.DataFrame,
    *,
    er: str = "er_percent",
    df_spline: int = 3,
    outcome: str = "pcr",
    alpha: float = 0.05,
    bins=None,
    grid_size: int = 101,
) -> DoseResponseResult:
    """Probability of response as a smooth function of an ER level measure.

    :func:`dose_response` on the column ``er`` (same options), with the x column of the tables
    named ``er`` (``curve["er"]``, ``observed["er_low"]``...).
    """
    return _dose_response(df, er, df_spline, outcome, alpha, bins, grid_size, "er")


def _dose_response(
    df: pd.DataFrame, variable: str, df_spline, outcome: str, alpha: float, bins, grid_size, axis: str
) -> DoseResponseResult:
    from scipy.stats import chi2 as chi2_dist

    if int(df_spline) < 1:
        raise AnalysisError(f"df_spline must be at least 1 (got {df_spline}).")
    frame, excl = _usable(df, [variable, outcome], f"the response curve along {variable}")
    if not _is_numeric(frame[variable]):
        raise AnalysisError(f"{variable} must be numeric to draw a dose-response curve.")
    x = frame[variable].to_numpy(dtype=float)
    y = _binary(frame[outcome], outcome)
    _require_both_outcomes(y, outcome, "a dose-response curve")
    knots = spline_knots(x, int(df_spline))
    if len(knots) < 2:
        raise AnalysisError(
            f"Every patient has the same {column_label(variable)} value, so no curve can be drawn."
        )
    used_df = len(knots) - 1
    note = (
        ""
        if used_df == df_spline
        else (
            f"Only {used_df} spline df used: {count(df_spline - used_df, 'quantile knot')} "
            f"coincided because many patients share the same {column_label(variable)} value."
        )
    )
    merged = _collapse(x[:, None], y)  # ER is usually recorded on a coarse scale
    values, successes, trials = (x[:, None], y, None) if merged is None else merged
    X = np.column_stack([np.ones(len(values)), natural_spline_basis(values[:, 0], knots)])
    names = ["(Intercept)"] + [f"{variable} spline {j}" for j in range(1, used_df + 1)]
    fit = _fit_logit(X, successes, trials)
    culprit = _separated_column(fit, X, names)
    if culprit is not None:
        raise AnalysisError(
            f"Separation: the response probability reaches 0 or 1 along {variable}, so the curve "
            "has no finite estimate. Use fewer spline df or more patients."
        )
    linear = np.column_stack([X[:, 0], values[:, 0]])
    loglik_linear = _fit_logit(linear, successes, trials).loglik
    loglik_null = _null_loglik(y)
    p_overall = float(chi2_dist.sf(max(2 * (fit.loglik - loglik_null), 0), used_df))
    p_nonlinear = (
        float(chi2_dist.sf(max(2 * (fit.loglik - loglik_linear), 0), used_df - 1))
        if used_df > 1
        else float("nan")
    )
    grid = np.linspace(x.min(), x.max(), int(grid_size))
    return DoseResponseResult(
        curve=_spline_curve(fit, knots, grid, _z(alpha), axis),
        observed=observed_bins(x, y, variable=variable, bins=bins, alpha=alpha, axis=axis),
        p_overall=p_overall,
        p_nonlinear=p_nonlinear,
        exclusions=excl,
        variable=variable,
        knots=tuple(float(k) for k in knots),
        df_spline=used_df,
        n=len(y),
        events=int(y.sum()),
        note=note,
        axis=axis,
    )


# ---------------------------------------------------------------------------------------------
# Cut-point search (maximally selected chi-square)
# ---------------------------------------------------------------------------------------------


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

    frame, excl = _usable(df, [er, outcome], "the cut-point search")
    if not _is_numeric(frame[er]):
        raise AnalysisError(f"{er} must be numeric to search for a cut-point.")
    order = np.argsort(frame[er].to_numpy(dtype=float), kind="stable")
    x = frame[er].to_numpy(dtype=float)[order]
    y = _binary(frame[outcome], outcome)[order]
    _require_both_outcomes(y, outcome, "a cut-point search")
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
