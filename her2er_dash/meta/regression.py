"""Meta-regression on study-level moderators, and subgroup meta-analysis (as metafor).

:func:`regress` is ``rma(yi, vi, mods = ~ m1 + m2, method = , test = )``: weighted least squares
with tau² estimated from the residual heterogeneity (FE, DL, REML, PM; see :mod:`._tau2`), the
omnibus test of the moderators (QM: Wald chi-square, or an F-test under Hartung-Knapp, as
``test = "knha"``), the residual heterogeneity test QE, and metafor's pseudo-R² (proportional
reduction of tau² against the intercept-only model with the same estimator; for FE models the
adjusted R² of the weighted linear model).

:func:`subgroup` pools each subgroup and tests whether the subgroups differ (Q between):

- ``tau2="separate"`` (default; RevMan and R ``meta``'s default): each subgroup is pooled with
  its own tau²; Q between is Cochran's Q of the subgroup estimates with their standard errors,
  i.e. ``rma(est, sei = se, method = "FE")$QE`` (chi-square with G - 1 df);
- ``tau2="common"``: one tau² for all subgroups, from ``rma(yi, vi, mods = ~ factor(g))``; Q
  between is that model's QM (F with G - 1 and k - G df under Hartung-Knapp); the subgroup
  estimates are its fitted means (``mods = ~ factor(g) - 1``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._data import Exclusions, as_list
from ..errors import AnalysisError
from ..wording import count
from ._stats import (
    _chi2_sf,
    _f_sf,
    _normal_quantile,
    _t_quantile,
    _two_sided_p,
    _two_sided_p_array,
)
from ._tau2 import _estimate_tau2_x, _heterogeneity_x, _residual_q, _weighted_fit
from .effects import _back_transform, _display_scale, _Effects, _study_effects
from .pool import METHOD_LABELS, MetaResult, _check_options, _pool_effects

REGRESSION_METHODS: tuple[str, ...] = ("FE", "DL", "REML", "PM")
SUBGROUP_TAU2: tuple[str, ...] = ("separate", "common")
INTERCEPT = "intercept"


# ------------------------------------------------------------------------------------------
# Result objects
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class RegressionResult:
    """A meta-regression (``rma(mods = ~ ...)``).

    ``table``: one row per coefficient (``term, estimate, se, statistic, ci_low, ci_high, p``);
    ``statistic`` is z, or t with ``df`` degrees of freedom under Hartung-Knapp. ``studies``: the
    study rows with their moderators, ``fitted`` value, ``weight`` (percent) and ``excluded``.
    ``qm``/``qm_p``: omnibus test of the moderators (``qm_test`` "chi2" with ``qm_df`` df, or
    "F" with (``qm_df``, ``qm_df2``) df); ``qe``/``qe_p``: residual heterogeneity (``qe_df`` =
    k - p). ``r2`` is metafor's pseudo-R² in percent (NaN for an intercept-only model).
    """

    table: pd.DataFrame
    studies: pd.DataFrame
    qm: float
    qm_df: int
    qm_df2: int | None
    qm_p: float
    qm_test: str
    qe: float
    qe_df: int
    qe_p: float
    tau2: float
    i2: float
    h2: float
    r2: float
    df: int | None
    k: int
    method: str
    hksj: bool
    alpha: float
    scale: str
    moderators: tuple[str, ...]
    notes: tuple[str, ...]
    exclusions: Exclusions


@dataclass(frozen=True, eq=False)
class SubgroupResult:
    """Subgroup meta-analysis with the test for subgroup differences.

    ``table``: one row per subgroup (``subgroup, k, estimate, se, ci_low, ci_high, p, tau2, i2,
    q, q_df, q_p``). ``q_between`` tests equality of the subgroup estimates (``test`` "chi2" with
    ``q_between_df`` df, or "F" with (``q_between_df``, ``q_between_df2``)); ``q_within`` is the
    heterogeneity left inside the subgroups (Cochran's Q with fixed-effect weights, k - G df).
    ``tau2_mode`` says whether each subgroup has its own tau² ("separate") or all share one
    ("common"). ``studies`` lists every study with its subgroup and within-subgroup weight.
    """

    table: pd.DataFrame
    studies: pd.DataFrame
    q_between: float
    q_between_df: int
    q_between_df2: int | None
    q_between_p: float
    test: str
    q_within: float
    q_within_df: int
    q_within_p: float
    tau2_mode: str
    by: str
    method: str
    hksj: bool
    alpha: float
    scale: str
    notes: tuple[str, ...]
    exclusions: Exclusions

    def summary_frame(self, *, exponentiate: bool = True) -> pd.DataFrame:
        """Studies grouped by subgroup, each group closed by its pooled row (for the forest plot).

        Same columns as :meth:`MetaResult.summary_frame` plus ``subgroup``; pooled rows are
        labelled "<by> = <level> (<method>)" and carry ``kind`` "pooled".
        """
        transform = _back_transform(self.scale) if exponentiate else None
        parts = []
        for row in self.table.itertuples(index=False):
            members = self.studies[self.studies["subgroup"].astype(str) == str(row.subgroup)]
            parts.append(
                pd.DataFrame(
                    {
                        "label": members["study"].astype(str).to_numpy(),
                        "kind": np.where(members["excluded"].eq(""), "study", "excluded"),
                        "estimate": members["estimate"].to_numpy(float),
                        "ci_low": members["ci_low"].to_numpy(float),
                        "ci_high": members["ci_high"].to_numpy(float),
                        "weight": members["weight"].to_numpy(float),
                        "excluded": members["excluded"].to_numpy(),
                        "subgroup": row.subgroup,
                    }
                )
            )
            parts.append(
                pd.DataFrame(
                    [
                        {
                            "label": f"{self.by} = {row.subgroup} ({self.method})",
                            "kind": "pooled",
                            "estimate": row.estimate,
                            "ci_low": row.ci_low,
                            "ci_high": row.ci_high,
                            "weight": np.nan,
                            "excluded": "",
                            "subgroup": row.subgroup,
                        }
                    ]
                )
            )
        out = pd.concat(parts, ignore_index=True)
        if transform is not None:
            for column in ("estimate", "ci_low", "ci_high"):
                out[column] = transform(out[column].to_numpy(float))
        out.attrs["scale"] = _display_scale(self.scale) if transform is not None else self.scale
        out.attrs["exclusions"] = self.exclusions
        return out


# ------------------------------------------------------------------------------------------
# The weighted regression itself (shared by regress, subgroup, egger, ctneobc)
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _RegressionFit:
    beta: np.ndarray
    vb: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    df: int | None
    tau2: float
    weights: np.ndarray
    qm: float
    qm_df: int
    qm_df2: int | None
    qm_p: float
    qe: float
    qe_p: float
    i2: float
    h2: float


def _fit_regression(yi, vi, X, *, method: str, hksj: bool, alpha: float) -> _RegressionFit:
    """rma.uni(yi, vi, mods = X, intercept = FALSE, method, test = "knha" if hksj else "z")."""
    k, p = X.shape
    tau2 = _estimate_tau2_x(yi, vi, X, method)
    weights = 1.0 / (vi + tau2)
    beta, vb = _weighted_fit(yi, X, weights)
    df = None
    if hksj:
        rss = float(np.sum(weights * (yi - X @ beta) ** 2))
        # metafor: a (numerically) perfect fit gives s2w = 0 rather than a tiny positive value
        vb = vb * (rss / (k - p) if rss > np.finfo(float).eps else 0.0)
        df = k - p
    crit = _normal_quantile(1 - alpha / 2) if df is None else _t_quantile(1 - alpha / 2, df)
    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = beta / se
    # the omnibus test covers every coefficient but the intercept (the intercept alone if p = 1)
    tested = np.arange(1, p) if p > 1 else np.array([0])
    sub = vb[np.ix_(tested, tested)]
    if np.all(np.diag(sub) > 0):
        qm = float(beta[tested] @ np.linalg.solve(sub, beta[tested]))
    else:  # a perfect fit under Hartung-Knapp (zero variance): metafor's QM is infinite too
        qm = np.inf
    m = len(tested)
    if df is None:
        qm_df2, qm_p = None, _chi2_sf(qm, m)
    else:
        qm = qm / m
        qm_df2, qm_p = df, _f_sf(qm, m, df)
    if k > p:
        qe = _residual_q(0.0, yi, vi, X)
        qe_p = _chi2_sf(qe, k - p)
        i2, h2 = _heterogeneity_x(qe, tau2, vi, X, fixed=method == "FE")
    else:  # as many coefficients as studies (fixed effect only): a perfect fit, as metafor
        qe, qe_p, i2, h2 = 0.0, 1.0, 0.0, 1.0
    return _RegressionFit(
        beta=beta,
        vb=vb,
        se=se,
        statistic=statistic,
        p=_two_sided_p_array(beta, se, df),
        ci_low=beta - crit * se,
        ci_high=beta + crit * se,
        df=df,
        tau2=tau2,
        weights=weights,
        qm=qm,
        qm_df=m,
        qm_df2=qm_df2,
        qm_p=qm_p,
        qe=qe,
        qe_p=qe_p,
        i2=i2,
        h2=h2,
    )


def _pseudo_r2(yi, vi, X, fit: _RegressionFit, method: str) -> float:
    """metafor's R²: tau² explained (random effects) or weighted adjusted R² (fixed effect)."""
    k, p = X.shape
    if p == 1:
        return math.nan
    if method == "FE":
        if np.var(yi) == 0:
            return 0.0
        if k == p:  # no residual df: R's adjusted R² is undefined
            return math.nan
        weights = 1.0 / vi
        fitted = X @ fit.beta
        centre = np.sum(weights * fitted) / np.sum(weights)
        explained = float(np.sum(weights * (fitted - centre) ** 2))
        residual = float(np.sum(weights * (yi - fitted) ** 2))
        r2 = explained / (explained + residual)
        return max(0.0, 100.0 * (1.0 - (1.0 - r2) * (k - 1) / (k - p)))
    tau2_null = _estimate_tau2_x(yi, vi, np.ones((k, 1)), method)
    if tau2_null == 0:
        return 0.0
    return max(0.0, 100.0 * ((tau2_null - fit.tau2) / tau2_null))  # metafor: 100 * R2


# ------------------------------------------------------------------------------------------
# Design matrix from moderator columns
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Design:
    X: np.ndarray
    terms: list[str]


def _is_continuous(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _levels(values: pd.Series, name: str, reference: Mapping[str, object]) -> list:
    """Levels present, reference first: categorical order, else sorted (R ``factor`` order)."""
    present = pd.unique(values)
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = [c for c in values.cat.categories if c in set(present)]
    else:
        levels = sorted(present, key=lambda v: (str(type(v)), v))
    if name in reference:
        wanted = reference[name]
        match = [lv for lv in levels if lv == wanted or str(lv) == str(wanted)]
        if not match:
            raise AnalysisError(
                f"Reference level {wanted!r} of {name!r} is not among the levels of the studies "
                f"used ({', '.join(map(str, levels))}). Choose one of those."
            )
        levels = [match[0], *(lv for lv in levels if lv is not match[0])]
    return levels


def _design(frame: pd.DataFrame, moderators: list[str], reference: Mapping[str, object]) -> _Design:
    columns, terms = [np.ones(len(frame))], [INTERCEPT]
    for name in moderators:
        values = frame[name]
        if _is_continuous(values):
            columns.append(values.to_numpy(dtype=float))
            terms.append(name)
            continue
        levels = _levels(values, name, reference)
        if len(levels) < 2:
            raise AnalysisError(
                f"Moderator {name!r} has a single level ({levels[0]}) among the studies used, so "
                "it explains nothing. Remove it or add studies with another level."
            )
        for level in levels[1:]:
            columns.append((values == level).to_numpy(dtype=float))
            terms.append(f"{name}: {level} vs {levels[0]}")
    X = np.column_stack(columns)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise AnalysisError(
            f"The moderators {', '.join(moderators)} are collinear among the studies used (one "
            "is determined by the others), so their effects cannot be separated. Drop one."
        )
    return _Design(X, terms)


def _effects_with(table, columns: list[str], *, measure, study, continuity, what: str):
    """Study effects, with studies missing a value of ``columns`` excluded (reason recorded)."""
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise AnalysisError(f"{what} needs a study table with one row per study; it is empty.")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise AnalysisError(
            f"The study table has no column {', '.join(map(repr, missing))} (it has: "
            f"{', '.join(map(str, table.columns))}). Add it or choose another moderator."
        )
    frame = table.reset_index(drop=True)
    reasons = (
        frame["excluded"].fillna("").astype(str).to_numpy(dtype=object)
        if "excluded" in frame.columns
        else np.full(len(frame), "", dtype=object)
    )
    for column in columns:
        hole = frame[column].isna().to_numpy() & (reasons == "")
        reasons[hole] = f"missing {column}"
    effects = _study_effects(
        frame.assign(excluded=reasons), measure=measure, study=study, continuity=continuity
    )
    return effects, frame


def _check_regression_method(method: str, hksj: bool, alpha: float, continuity: float) -> None:
    if method == "MH":
        raise AnalysisError(
            "Meta-regression needs inverse-variance pooling; choose FE, DL, REML or PM "
            "(Mantel-Haenszel pooling has no moderators)."
        )
    _check_options(method, hksj, alpha, continuity)


# ------------------------------------------------------------------------------------------
# regress
# ------------------------------------------------------------------------------------------
def regress(
    table: pd.DataFrame,
    moderators: str | Sequence[str] | None,
    *,
    method: str = "REML",
    hksj: bool = False,
    alpha: float = 0.05,
    measure: str | None = None,
    study: str = "study",
    continuity: float = 0.5,
    reference: Mapping[str, object] | None = None,
) -> RegressionResult:
    """Meta-regression of the study effects on study-level moderators (as metafor ``rma``).

    Parameters
    ----------
    table
        One row per study, in any form :func:`~.pool.pool` accepts (``estimate``/``se``,
        ``events``/``n`` or 2x2 counts), plus the moderator columns.
    moderators
        Column name(s). Numeric columns enter as they are (continuous); text, category or bool
        columns become treatment dummies "<column>: <level> vs <reference>" against the first
        level (categorical order, else sorted) or ``reference={"column": level}``. ``None`` or
        ``[]`` fits the intercept-only model (equal to :func:`pool`).
    method
        "FE", "DL", "REML" (metafor's default) or "PM": how tau² is estimated from the residual
        heterogeneity.
    hksj
        Hartung-Knapp(-Sidik-Jonkman): coefficient tests and intervals use t with k - p df and
        the omnibus moderator test an F-test (``test = "knha"``).
    alpha, measure, study, continuity
        As :func:`~.pool.pool`.

    Returns
    -------
    RegressionResult

    Raises
    ------
    AnalysisError
        Unknown method (or MH), a moderator column that is missing, single-level or collinear
        with the others, or no more usable studies than coefficients.
    """
    _check_regression_method(method, hksj, alpha, continuity)
    moderators = as_list(moderators)
    effects, frame = _effects_with(
        table, moderators, measure=measure, study=study, continuity=continuity,
        what="Meta-regression",
    )
    used = effects.table["excluded"].eq("").to_numpy()
    design = _design(frame.loc[used], moderators, reference or {})
    k, p = design.X.shape
    # a fixed-effect model may use every study for a coefficient (metafor: p <= k); estimating
    # tau² or a Hartung-Knapp variance needs one more
    needed = p if method == "FE" and not hksj else p + 1
    if k < needed:
        raise AnalysisError(
            f"Meta-regression with {p} coefficients (intercept and moderators) needs at least "
            f"{needed} usable studies; {k} are left. Use fewer moderators or add studies."
        )
    yi = effects.table.loc[used, "estimate"].to_numpy(float)
    vi = effects.table.loc[used, "se"].to_numpy(float) ** 2
    fit = _fit_regression(yi, vi, design.X, method=method, hksj=hksj, alpha=alpha)
    coefficients = pd.DataFrame(
        {
            "term": design.terms,
            "estimate": fit.beta,
            "se": fit.se,
            "statistic": fit.statistic,
            "ci_low": fit.ci_low,
            "ci_high": fit.ci_high,
            "p": fit.p,
        }
    )
    studies = _study_rows(effects, frame, moderators, used, design.X @ fit.beta, fit.weights, alpha)
    return RegressionResult(
        table=coefficients,
        studies=studies,
        qm=fit.qm,
        qm_df=fit.qm_df,
        qm_df2=fit.qm_df2,
        qm_p=fit.qm_p,
        qm_test="chi2" if fit.qm_df2 is None else "F",
        qe=fit.qe,
        qe_df=k - p,
        qe_p=fit.qe_p,
        tau2=fit.tau2,
        i2=fit.i2,
        h2=fit.h2,
        r2=_pseudo_r2(yi, vi, design.X, fit, method),
        df=fit.df,
        k=k,
        method=method,
        hksj=hksj,
        alpha=alpha,
        scale=effects.scale,
        moderators=tuple(moderators),
        notes=effects.notes + _regression_notes(method, hksj, k, p),
        exclusions=effects.exclusions,
    )


def _study_rows(effects: _Effects, frame, columns, used, fitted, weights, alpha) -> pd.DataFrame:
    out = effects.table.copy()
    for column in columns:
        out[column] = frame[column].to_numpy()
    crit = _normal_quantile(1 - alpha / 2)
    out["ci_low"] = out["estimate"] - crit * out["se"]
    out["ci_high"] = out["estimate"] + crit * out["se"]
    out["fitted"] = np.nan
    out.loc[used, "fitted"] = fitted
    out["weight"] = np.nan
    out.loc[used, "weight"] = 100.0 * weights / weights.sum()
    first = ["study", "estimate", "se", "ci_low", "ci_high", *columns, "fitted", "weight"]
    return out[first + [c for c in out.columns if c not in first]]


def _regression_notes(method: str, hksj: bool, k: int, p: int) -> tuple[str, ...]:
    notes = [f"Meta-regression by {METHOD_LABELS[method]} on {k} studies ({p} coefficients)."]
    if hksj:
        notes.append(
            f"Hartung-Knapp adjustment: coefficient tests use t with {k - p} df and the test of "
            "moderators an F-test."
        )
    if k < 10 * max(p - 1, 1):
        notes.append(
            f"Only {count(k, 'study')} for {count(max(p - 1, 1), 'moderator coefficient')}: meta-regression has "
            "little power and is prone to chance findings (about 10 studies per moderator are "
            "usually asked for); read it as exploratory."
        )
    return tuple(notes)


# ------------------------------------------------------------------------------------------
# subgroup
# ------------------------------------------------------------------------------------------
def subgroup(
    table: pd.DataFrame,
    by: str,
    *,
    method: str = "REML",
    hksj: bool = False,
    tau2: str = "separate",
    alpha: float = 0.05,
    measure: str | None = None,
    study: str = "study",
    continuity: float = 0.5,
) -> SubgroupResult:
    """Pool the studies of each subgroup and test for subgroup differences (Q between).

    Parameters
    ----------
    table
        One row per study (any form :func:`~.pool.pool` accepts) with the subgroup column ``by``.
    by
        Column naming each study's subgroup (studies without one are excluded and listed).
    method, hksj
        Pooling inside the subgroups, as :func:`~.pool.pool` ("MH" only with ``tau2="separate"``).
    tau2
        "separate" (each subgroup its own tau²; Q between from the subgroup estimates, as R
        ``meta`` and RevMan) or "common" (one tau², Q between = QM of ``rma(mods = ~ factor(by))``).
        A subgroup of one study contributes that study's own estimate ("separate" only).

    Returns
    -------
    SubgroupResult
    """
    if tau2 not in SUBGROUP_TAU2:
        raise AnalysisError(f"tau2 must be 'separate' or 'common', not {tau2!r}.")
    if tau2 == "common":
        _check_regression_method(method, hksj, alpha, continuity)
    else:
        _check_options(method, hksj, alpha, continuity)
    effects, frame = _effects_with(
        table, [by], measure=measure, study=study, continuity=continuity, what="Subgroup analysis"
    )
    used = effects.table["excluded"].eq("").to_numpy()
    labels = frame[by].to_numpy()
    levels = _levels(frame.loc[used, by], by, {})
    if len(levels) < 2:
        raise AnalysisError(
            f"Subgroup analysis needs studies in at least 2 levels of {by!r}; the usable studies "
            f"are all in {levels[0] if levels else 'none'}."
        )
    studies = effects.table.copy()
    studies["subgroup"] = labels
    if tau2 == "separate":
        rows, weights = _separate_subgroups(effects, labels, levels, method, hksj, alpha)
        test = _q_between_separate(rows)
    else:
        rows, weights, test = _common_subgroups(effects, labels, levels, used, method, hksj, alpha)
    yi = effects.table.loc[used, "estimate"].to_numpy(float)
    vi = effects.table.loc[used, "se"].to_numpy(float) ** 2
    groups = pd.Categorical(labels[used], categories=levels).codes
    q_within = sum(
        _residual_q(0.0, yi[groups == g], vi[groups == g], np.ones(((groups == g).sum(), 1)))
        for g in range(len(levels))
    )
    crit = _normal_quantile(1 - alpha / 2)
    studies["ci_low"] = studies["estimate"] - crit * studies["se"]
    studies["ci_high"] = studies["estimate"] + crit * studies["se"]
    studies["weight"] = weights
    k, n_groups = int(used.sum()), len(levels)
    first = ["study", "subgroup", "estimate", "se", "ci_low", "ci_high", "weight"]
    return SubgroupResult(
        table=pd.DataFrame(rows),
        studies=studies[first + [c for c in studies.columns if c not in first]],
        q_between=test[0],
        q_between_df=test[1],
        q_between_df2=test[2],
        q_between_p=test[3],
        test="chi2" if test[2] is None else "F",
        q_within=float(q_within),
        q_within_df=k - n_groups,
        q_within_p=_chi2_sf(float(q_within), k - n_groups) if k > n_groups else math.nan,
        tau2_mode=tau2,
        by=by,
        method=method,
        hksj=hksj,
        alpha=alpha,
        scale=effects.scale,
        notes=effects.notes + _subgroup_notes(tau2, method, hksj, rows),
        exclusions=effects.exclusions,
    )


def _subset(effects: _Effects, keep: np.ndarray) -> _Effects:
    """The same effects with every study outside ``keep`` marked as outside the subgroup."""
    table = effects.table.copy()
    table.loc[~keep & table["excluded"].eq(""), "excluded"] = "other subgroup"
    return _Effects(table, effects.scale, (), effects.exclusions)


def _separate_subgroups(effects, labels, levels, method, hksj, alpha):
    used = effects.table["excluded"].eq("").to_numpy()
    weights = np.full(len(labels), np.nan)
    rows = []
    for level in levels:
        members = used & (labels == level)
        if members.sum() >= 2:
            pooled = _pool_effects(_subset(effects, members), method=method, hksj=hksj, alpha=alpha)
            weights[members] = pooled.table.loc[members, "weight"].to_numpy(float)
            rows.append(_row_from_pooled(level, pooled))
        else:
            weights[members] = 100.0
            rows.append(_single_study_row(level, effects.table.loc[members].iloc[0], alpha))
    return rows, weights


def _row_from_pooled(level, pooled: MetaResult) -> dict:
    return {
        "subgroup": level,
        "k": pooled.k,
        "estimate": pooled.estimate,
        "se": pooled.se,
        "ci_low": pooled.ci_low,
        "ci_high": pooled.ci_high,
        "p": pooled.p_value,
        "tau2": pooled.tau2,
        "i2": pooled.i2,
        "q": pooled.q,
        "q_df": pooled.q_df,
        "q_p": pooled.p_heterogeneity,
    }


def _single_study_row(level, study_row: pd.Series, alpha: float) -> dict:
    estimate, se = float(study_row["estimate"]), float(study_row["se"])
    crit = _normal_quantile(1 - alpha / 2)
    return {
        "subgroup": level,
        "k": 1,
        "estimate": estimate,
        "se": se,
        "ci_low": estimate - crit * se,
        "ci_high": estimate + crit * se,
        "p": _two_sided_p(estimate, se, None),
        "tau2": 0.0,
        "i2": 0.0,
        "q": 0.0,
        "q_df": 0,
        "q_p": math.nan,
    }


def _q_between_separate(rows: list[dict]) -> tuple[float, int, None, float]:
    estimate = np.array([r["estimate"] for r in rows])
    weights = 1.0 / np.array([r["se"] for r in rows]) ** 2
    centre = np.sum(weights * estimate) / np.sum(weights)
    q = float(np.sum(weights * (estimate - centre) ** 2))
    return q, len(rows) - 1, None, _chi2_sf(q, len(rows) - 1)


def _common_subgroups(effects, labels, levels, used, method, hksj, alpha):
    yi = effects.table.loc[used, "estimate"].to_numpy(float)
    vi = effects.table.loc[used, "se"].to_numpy(float) ** 2
    codes = pd.Categorical(labels[used], categories=levels).codes
    k, n_groups = len(yi), len(levels)
    if k < n_groups + 1:
        raise AnalysisError(
            f"A common tau² across {n_groups} subgroups needs at least {n_groups + 1} usable "
            f"studies; {k} are left. Use tau2='separate'."
        )
    indicators = (codes[:, None] == np.arange(n_groups)[None, :]).astype(float)
    with_intercept = np.column_stack([np.ones(k), indicators[:, 1:]])
    model = _fit_regression(yi, vi, with_intercept, method=method, hksj=hksj, alpha=alpha)
    # the cell-means parametrisation has the same tau² (it spans the same space): its
    # coefficients are the subgroup estimates, as rma(mods = ~ factor(g) - 1)
    means = _fit_regression(yi, vi, indicators, method=method, hksj=hksj, alpha=alpha)
    rows = []
    for g, level in enumerate(levels):
        members = codes == g
        rows.append(
            {
                "subgroup": level,
                "k": int(members.sum()),
                "estimate": float(means.beta[g]),
                "se": float(means.se[g]),
                "ci_low": float(means.ci_low[g]),
                "ci_high": float(means.ci_high[g]),
                "p": float(means.p[g]),
                "tau2": model.tau2,
                "i2": math.nan,
                "q": _residual_q(0.0, yi[members], vi[members], np.ones((members.sum(), 1))),
                "q_df": int(members.sum()) - 1,
                "q_p": math.nan,
            }
        )
    for row in rows:
        if row["q_df"] > 0:
            row["q_p"] = _chi2_sf(row["q"], row["q_df"])
    weights = np.full(len(labels), np.nan)
    positions = np.flatnonzero(used)
    for g in range(n_groups):
        members = codes == g
        weights[positions[members]] = 100.0 * model.weights[members] / model.weights[members].sum()
    test = (model.qm, model.qm_df, model.qm_df2, model.qm_p)
    return rows, weights, test


def _subgroup_notes(mode: str, method: str, hksj: bool, rows: list[dict]) -> tuple[str, ...]:
    if mode == "separate":
        notes = [
            f"Each subgroup pooled by {METHOD_LABELS[method]} with its own tau²; the test for "
            "subgroup differences compares the subgroup estimates (Cochran's Q between)."
        ]
    else:
        notes = [
            f"One tau² shared by all subgroups ({METHOD_LABELS[method]}); the test for subgroup "
            "differences is the moderator test of a meta-regression on the subgroup."
        ]
    singles = [str(r["subgroup"]) for r in rows if r["k"] == 1]
    if singles:
        notes.append(
            f"Subgroup(s) with a single study ({', '.join(singles)}): their estimate is that "
            "study's own, without heterogeneity."
        )
    if hksj and mode == "separate" and singles:
        notes.append("Hartung-Knapp does not apply to a single study: its interval is normal.")
    notes.append(
        "Subgroup differences between studies are observational (studies differ in more than "
        "the subgroup); treat them as hypothesis-generating."
    )
    return tuple(notes)
