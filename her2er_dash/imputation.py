"""Multiple imputation of missing covariates for Cox and logistic models, pooled by Rubin's rules.

Real tables miss ER, PR, HER2, grade or tumour size in many rows; a complete-case analysis drops
those patients (losing power, and biased unless they are missing completely at random).
:func:`impute` fills the gaps by chained equations with statsmodels' MICE machinery
(:class:`statsmodels.imputation.mice.MICEData`): each incomplete variable in turn is regressed on
all the others (linear regression; logistic for two-level variables), the coefficients are drawn
from their approximate posterior, and each missing value is replaced by the observed value of one
of the ``k_pmm`` patients with the closest prediction (predictive mean matching, so imputed values
are always values that occur). For a survival model the event indicator and the Nelson-Aalen
cumulative hazard at each patient's time enter the imputation model (White & Royston 2009); for a
logistic model the outcome does. Following statsmodels' MICE, one chain is run: ``n_burnin``
cycles, then one completed data set every ``n_skip`` cycles.

:func:`pool` combines the fits of the completed data sets by Rubin's rules with the Barnard-Rubin
small-sample degrees of freedom, exactly as R ``mice::pool`` (and ``summary(pool(fit),
conf.int = TRUE)``) does on the same completed data sets; :func:`pooled_cox` and
:func:`pooled_logistic` fit and pool, and :func:`compare_cox` / :func:`compare_logistic` put the
complete-case and imputed results side by side. Checked against R in ``tests/test_imputation.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._data import Exclusions, _complete_mask, as_list, is_numeric, require_columns
from .errors import AnalysisError

#: R mice's default number of donors for predictive mean matching.
DEFAULT_K_PMM = 5


# --------------------------------------------------------------------------------------------
# Encoding variables as numbers for the imputation models


@dataclass(frozen=True)
class _Variable:
    name: str
    kind: str  # "numeric", "binary" (two levels, 0/1) or "ordinal" (levels coded 0..k-1)
    levels: tuple = ()

    def encode(self, values: pd.Series) -> np.ndarray:
        if self.kind == "numeric":
            return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        lookup = {level: float(i) for i, level in enumerate(self.levels)}
        return values.map(lookup).to_numpy(dtype=float)

    def decode(self, codes: np.ndarray, dtype) -> pd.Series:
        if self.kind == "numeric":
            return pd.Series(codes, dtype=float)
        labels = np.asarray(self.levels, dtype=object)[np.rint(codes).astype(np.int64)]
        if isinstance(dtype, pd.CategoricalDtype):
            return pd.Series(pd.Categorical(labels, categories=dtype.categories,
                                            ordered=dtype.ordered))  # fmt: skip
        return pd.Series(labels, dtype=object)


def _variable(values: pd.Series, name: str) -> _Variable:
    if is_numeric(values):
        return _Variable(name, "numeric")
    observed = values.dropna()
    if observed.empty:
        raise AnalysisError(f"{name!r} has no observed value, so it cannot be imputed. Drop it.")
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = tuple(c for c in values.cat.categories if (observed == c).any())
    else:
        levels = tuple(sorted(observed.unique().tolist(), key=str))
    if len(levels) < 2:
        raise AnalysisError(f"{name!r} has a single observed level ({levels[0]!r}): nothing to "
                            "model or impute. Drop it.")  # fmt: skip
    return _Variable(name, "binary" if len(levels) == 2 else "ordinal", levels)


def _nelson_aalen(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Nelson-Aalen cumulative hazard at each patient's own time (ties: all deaths counted)."""
    uniq, inverse = np.unique(time, return_inverse=True)
    deaths = np.bincount(inverse, weights=event, minlength=len(uniq))
    size = np.bincount(inverse, minlength=len(uniq))
    at_risk = len(time) - np.concatenate(([0], np.cumsum(size)[:-1]))
    return np.cumsum(deaths / at_risk)[inverse]


# --------------------------------------------------------------------------------------------
# Imputation


@dataclass(frozen=True)
class ImputedData:
    """Completed copies of the analysis columns, and how they were made.

    ``datasets``: ``n_imputations`` DataFrames with the analysed rows (input index) and the
    variables, survival or outcome columns, without missing values. ``missing``: column, kind,
    n_missing, percent, imputed (bool) per variable. ``description``: the imputation model in
    words, for the methods paragraph.
    """

    datasets: tuple[pd.DataFrame, ...] = field(repr=False)
    variables: tuple[str, ...]
    missing: pd.DataFrame
    n_imputations: int
    n_burnin: int
    n_skip: int
    k_pmm: int
    seed: int
    description: str
    exclusions: Exclusions

    @property
    def imputed(self) -> tuple[str, ...]:
        return tuple(self.missing.loc[self.missing["imputed"], "column"])


def _describe(variables, survival, outcome, m, n_burnin, n_skip, k_pmm) -> str:
    kinds = {"numeric": "linear regression", "binary": "logistic regression",
             "ordinal": "linear regression on the ordered level codes"}  # fmt: skip
    models = "; ".join(f"{v.name}: {kinds[v.kind]}" for v in variables)
    extra = ""
    if survival is not None:
        extra = (" The event indicator and the Nelson-Aalen cumulative hazard at each patient's "
                 "time were included as predictors.")  # fmt: skip
    elif outcome is not None:
        extra = f" The outcome ({outcome}) was included as a predictor."
    return (
        f"Missing values were multiply imputed by chained equations (statsmodels MICE; {m} "
        f"imputed data sets from one chain after {n_burnin} burn-in cycles, {n_skip} cycles "
        f"apart), each incomplete variable imputed from all the others by predictive mean "
        f"matching ({k_pmm} donors) on {models}.{extra} Estimates were pooled by Rubin's rules "
        "with Barnard-Rubin degrees of freedom."
    )


def impute(
    df: pd.DataFrame,
    columns: str | Sequence[str],
    *,
    survival: tuple[str, str] | None = None,
    outcome: str | None = None,
    auxiliary: str | Sequence[str] = (),
    n_imputations: int = 20,
    n_burnin: int = 10,
    n_skip: int = 3,
    k_pmm: int = DEFAULT_K_PMM,
    seed: int = 20_240_514,
    progress: Callable[[float, str], None] | None = None,
) -> ImputedData:
    """Multiply impute the missing values of ``columns`` (and ``auxiliary`` columns).

    Parameters
    ----------
    columns : the analysis variables: numbers are imputed as numbers, two-level columns by
        logistic regression, columns with more levels as ordered level codes (category order, or
        sorted); imputed values are always observed values (predictive mean matching).
    survival : ``(time, event)`` of the survival model the data are for; patients missing them
        are excluded (counted), never imputed.
    outcome : the binary outcome of a logistic model (same handling).
    auxiliary : extra predictors that improve the imputations but are not in the model.
    n_imputations, n_burnin, n_skip : completed data sets, burn-in cycles, cycles between sets.
    k_pmm : donors for predictive mean matching (R mice's default 5).
    seed : seed of the random generator; the same seed gives the same data sets.
    progress : optional ``callable(fraction, message)``.
    """
    from statsmodels.imputation.mice import MICEData

    variables_in = list(dict.fromkeys([*as_list(columns), *as_list(auxiliary)]))
    if not variables_in:
        raise AnalysisError("Choose at least one variable to impute.")
    if n_imputations < 2:
        raise AnalysisError("Multiple imputation needs at least 2 imputed data sets (20+ usual).")
    targets = [*([] if survival is None else list(survival)), *([outcome] if outcome else [])]
    require_columns(df, [*variables_in, *targets])
    frame = df[list(dict.fromkeys([*variables_in, *targets]))]
    keep, reasons = _complete_mask(frame, targets, {}) if targets else (
        np.ones(len(frame), dtype=bool), ())  # fmt: skip
    # A row without any value to impute from (possible only without an outcome) carries no
    # information; MICEData would drop it, so it is excluded and counted here.
    empty = keep & frame[variables_in].isna().all(axis=1).to_numpy()
    if empty.any():
        reasons = (*reasons, ("no value in any imputed variable", int(empty.sum())))
        keep &= ~empty
    excl = Exclusions(len(frame), int(keep.sum()), tuple(reasons))
    frame = frame.loc[keep]
    if frame.empty:
        raise AnalysisError(f"No patient has the outcome needed for imputation: {excl.describe()}.")
    variables = [_variable(frame[c], c) for c in variables_in]
    safe = {v.name: f"v{i}" for i, v in enumerate(variables)}
    numeric = pd.DataFrame({safe[v.name]: v.encode(frame[v.name]) for v in variables})
    if survival is not None:
        time = pd.to_numeric(frame[survival[0]], errors="coerce").to_numpy(dtype=float)
        event = pd.to_numeric(frame[survival[1]], errors="coerce").to_numpy(dtype=float)
        numeric["event_"] = event
        numeric["cumhaz_"] = _nelson_aalen(time, event)
    elif outcome is not None:
        numeric["outcome_"] = pd.to_numeric(frame[outcome], errors="coerce").to_numpy(dtype=float)
    n_missing = numeric[[safe[v.name] for v in variables]].isna().sum()
    missing = pd.DataFrame(
        {
            "column": [v.name for v in variables],
            "kind": [v.kind for v in variables],
            "n_missing": [int(n_missing[safe[v.name]]) for v in variables],
        }
    )
    missing["percent"] = 100 * missing["n_missing"] / len(frame)
    missing["imputed"] = missing["n_missing"] > 0
    report = progress or (lambda fraction, message: None)
    data = MICEData(numeric, k_pmm=k_pmm, rng=np.random.default_rng(seed))
    _set_imputers(data, variables, safe, k_pmm)
    total = n_burnin + n_skip * (n_imputations - 1)
    report(0.0, "Burn-in of the imputation chain")
    data.update_all(n_burnin)
    datasets = []
    for i in range(n_imputations):
        if i:
            data.update_all(n_skip)
        report((n_burnin + n_skip * i) / total, f"Imputed data set {i + 1} of {n_imputations}")
        completed = frame.copy()
        for v in variables:
            decoded = v.decode(data.data[safe[v.name]].to_numpy(), frame[v.name].dtype)
            completed[v.name] = decoded.set_axis(frame.index)
        datasets.append(completed)
    report(1.0, "Done")
    return ImputedData(
        datasets=tuple(datasets),
        variables=tuple(v.name for v in variables),
        missing=missing,
        n_imputations=n_imputations,
        n_burnin=n_burnin,
        n_skip=n_skip,
        k_pmm=k_pmm,
        seed=seed,
        description=_describe(variables, survival, outcome, n_imputations, n_burnin, n_skip,
                              k_pmm),  # fmt: skip
        exclusions=excl,
    )


def _set_imputers(data, variables: list[_Variable], safe: dict[str, str], k_pmm: int) -> None:
    """Logistic imputation models for two-level variables; MICEData's default (linear
    regression on every other column) for the rest."""
    import statsmodels.api as sm

    names = list(data.data.columns)
    for v in variables:
        if v.kind != "binary" or not data.data[safe[v.name]].isna().any():
            continue
        others = " + ".join(c for c in names if c != safe[v.name])
        data.set_imputer(
            safe[v.name],
            formula=others,
            model_class=sm.GLM,
            init_kwds={"family": sm.families.Binomial()},
            k_pmm=k_pmm,
        )


# --------------------------------------------------------------------------------------------
# Rubin's rules


def barnard_rubin_df(m: int, b: np.ndarray, t: np.ndarray, dfcom: float) -> np.ndarray:
    """Barnard & Rubin (1999) degrees of freedom, as ``mice:::barnard.rubin`` (lambda floored at
    1e-4; infinite ``dfcom`` gives the large-sample (m - 1) / lambda^2)."""
    lam = np.maximum((1 + 1 / m) * b / t, 1e-4)
    df_old = (m - 1) / lam**2
    if not np.isfinite(dfcom):
        return df_old
    df_obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    return df_old * df_obs / (df_old + df_obs)


def pool(
    estimates: np.ndarray,
    variances: np.ndarray,
    *,
    dfcom: float = np.inf,
    terms: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Rubin's rules for ``m`` fits of ``p`` parameters (``estimates``, ``variances``: m x p).

    Returns term, estimate, se, statistic, df, p, ci_low, ci_high, ubar, b, t, riv, lambda, fmi,
    m, dfcom, as ``summary(mice::pool(fit), type = "all", conf.int = TRUE)``: t-based p-values
    and intervals on the Barnard-Rubin degrees of freedom.
    """
    from scipy.stats import t as t_dist

    q = np.atleast_2d(np.asarray(estimates, dtype=float))
    u = np.atleast_2d(np.asarray(variances, dtype=float))
    m = q.shape[0]
    if m < 2:
        raise AnalysisError("Pooling needs the fits of at least 2 imputed data sets.")
    qbar, ubar = q.mean(axis=0), u.mean(axis=0)
    b = q.var(axis=0, ddof=1)
    total = ubar + (1 + 1 / m) * b
    df = barnard_rubin_df(m, b, total, dfcom)
    riv = (1 + 1 / m) * b / ubar
    lam = (1 + 1 / m) * b / total
    fmi = (riv + 2 / (df + 3)) / (riv + 1)
    se = np.sqrt(total)
    statistic = qbar / se
    crit = t_dist.ppf(1 - alpha / 2, df)
    return pd.DataFrame(
        {
            "term": list(terms) if terms is not None else [f"x{j + 1}" for j in range(len(qbar))],
            "estimate": qbar,
            "se": se,
            "statistic": statistic,
            "df": df,
            "p": 2 * t_dist.sf(np.abs(statistic), np.maximum(df, 0.001)),
            "ci_low": qbar - crit * se,
            "ci_high": qbar + crit * se,
            "ubar": ubar,
            "b": b,
            "t": total,
            "riv": riv,
            "lambda": lam,
            "fmi": fmi,
            "m": m,
            "dfcom": dfcom,
        }
    )


@dataclass(frozen=True)
class PooledResult:
    """A model fitted on every imputed data set and pooled by Rubin's rules.

    ``table``: term, coef, se, ratio (hazard or odds ratio), ci_low, ci_high (of the ratio), df,
    p, fmi. ``pooled``: the full :func:`pool` table on the coefficient scale.
    """

    table: pd.DataFrame
    pooled: pd.DataFrame
    measure: str  # "hazard ratio" or "odds ratio"
    n: int
    events: int
    dfcom: float
    imputed: ImputedData = field(repr=False)


def _ratio_table(pooled: pd.DataFrame) -> pd.DataFrame:
    with np.errstate(over="ignore"):
        return pd.DataFrame(
            {
                "term": pooled["term"],
                "coef": pooled["estimate"],
                "se": pooled["se"],
                "ratio": np.exp(pooled["estimate"]),
                "ci_low": np.exp(pooled["ci_low"]),
                "ci_high": np.exp(pooled["ci_high"]),
                "df": pooled["df"],
                "p": pooled["p"],
                "fmi": pooled["fmi"],
            }
        )


def pooled_cox(
    imputed: ImputedData,
    time: str,
    event: str,
    terms: str | Sequence[str],
    *,
    strata: str | Sequence[str] | None = None,
    ties: str = "efron",
    reference: Mapping[str, object] | None = None,
    alpha: float = 0.05,
) -> PooledResult:
    """Cox model (:func:`her2er_dash.survival.cox`) on every imputed data set, pooled.

    The complete-data degrees of freedom are events - parameters, as ``mice::pool`` uses for
    ``coxph`` fits.
    """
    from .survival import cox

    fits = [cox(d, time, event, terms, strata=strata, ties=ties, reference=reference)
            for d in imputed.datasets]  # fmt: skip
    first = fits[0]
    dfcom = max(first.events - len(first.table), 1)
    pooled = pool(
        np.vstack([f.table["coef"] for f in fits]),
        np.vstack([f.table["se"] ** 2 for f in fits]),
        dfcom=dfcom,
        terms=first.table["term"],
        alpha=alpha,
    )
    return PooledResult(_ratio_table(pooled), pooled, "hazard ratio", first.n, first.events,
                        dfcom, imputed)  # fmt: skip


def pooled_logistic(
    imputed: ImputedData,
    terms: str | Sequence[str],
    *,
    outcome: str = "pcr",
    reference: Mapping | None = None,
    alpha: float = 0.05,
) -> PooledResult:
    """Logistic regression (:func:`her2er_dash.response.logistic`) on every imputed data set,
    pooled; complete-data degrees of freedom n - parameters (intercept included), as mice."""
    from .response import logistic

    fits = [logistic(d, terms, outcome=outcome, reference=reference) for d in imputed.datasets]
    first = fits[0]
    dfcom = max(first.n - (len(first.table) + 1), 1)
    pooled = pool(
        np.vstack([f.table["coef"] for f in fits]),
        np.vstack([f.table["se"] ** 2 for f in fits]),
        dfcom=dfcom,
        terms=first.table["term"],
        alpha=alpha,
    )
    return PooledResult(_ratio_table(pooled), pooled, "odds ratio", first.n, first.events,
                        dfcom, imputed)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Complete case and imputed, side by side


@dataclass(frozen=True)
class ImputationComparison:
    """Complete-case and multiple-imputation estimates of the same model, side by side.

    ``table``: term, analysis ("complete case" / "multiple imputation"), n, ratio, ci_low,
    ci_high, p. ``missing``: what was missing per variable. ``description``: the imputation
    model in words. ``pooled``: the :class:`PooledResult`.
    """

    table: pd.DataFrame
    missing: pd.DataFrame
    description: str
    n_imputations: int
    measure: str
    n_complete: int
    n_imputed: int
    pooled: PooledResult = field(repr=False)
    exclusions: Exclusions


def _side_by_side(complete: pd.DataFrame, n_cc: int, ratio: str, pooled: PooledResult) -> pd.DataFrame:
    cc = pd.DataFrame(
        {
            "term": complete["term"],
            "analysis": "complete case",
            "n": n_cc,
            "ratio": complete[ratio],
            "ci_low": complete["ci_low"],
            "ci_high": complete["ci_high"],
            "p": complete["p"],
        }
    )
    mi = pooled.table.assign(analysis="multiple imputation", n=pooled.n)[list(cc.columns)]
    out = pd.concat([cc, mi], ignore_index=True)
    order = {term: i for i, term in enumerate(dict.fromkeys(out["term"]))}
    return out.sort_values("term", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def _comparison(complete, imputed: ImputedData, pooled, ratio: str, measure: str) -> ImputationComparison:
    return ImputationComparison(
        table=_side_by_side(complete.table, complete.n, ratio, pooled),
        missing=imputed.missing,
        description=imputed.description,
        n_imputations=imputed.n_imputations,
        measure=measure,
        n_complete=complete.n,
        n_imputed=pooled.n,
        pooled=pooled,
        exclusions=imputed.exclusions,
    )


def compare_cox(
    df: pd.DataFrame,
    time: str,
    event: str,
    terms: str | Sequence[str],
    *,
    auxiliary: str | Sequence[str] = (),
    strata: str | Sequence[str] | None = None,
    n_imputations: int = 20,
    seed: int = 20_240_514,
    alpha: float = 0.05,
    progress: Callable[[float, str], None] | None = None,
) -> ImputationComparison:
    """Cox model on complete cases and after multiple imputation of missing ``terms``."""
    from .survival import cox

    terms = as_list(terms)
    complete = cox(df, time, event, terms, strata=strata, alpha=alpha)
    imputed = impute(df, [*terms, *as_list(strata)], survival=(time, event), auxiliary=auxiliary,
                     n_imputations=n_imputations, seed=seed, progress=progress)  # fmt: skip
    pooled = pooled_cox(imputed, time, event, terms, strata=strata, alpha=alpha)
    return _comparison(complete, imputed, pooled, "hr", "hazard ratio")


def compare_logistic(
    df: pd.DataFrame,
    terms: str | Sequence[str],
    *,
    outcome: str = "pcr",
    auxiliary: str | Sequence[str] = (),
    n_imputations: int = 20,
    seed: int = 20_240_514,
    alpha: float = 0.05,
    progress: Callable[[float, str], None] | None = None,
) -> ImputationComparison:
    """Logistic model on complete cases and after multiple imputation of missing ``terms``."""
    from .response import logistic

    terms = as_list(terms)
    complete = logistic(df, terms, outcome=outcome, alpha=alpha)
    imputed = impute(df, terms, outcome=outcome, auxiliary=auxiliary,
                     n_imputations=n_imputations, seed=seed, progress=progress)  # fmt: skip
    pooled = pooled_logistic(imputed, terms, outcome=outcome, alpha=alpha)
    return _comparison(complete, imputed, pooled, "odds_ratio", "odds ratio")
