"""Small-study effects: funnel-plot data and Egger's regression test (as metafor ``regtest``).

Both refuse fewer than ``min_studies`` (default 10) usable studies: below that, funnel asymmetry
tests have too little power to tell publication bias from chance (Sterne et al., BMJ
2011;343:d4002), so the app shows them only from 10 studies on.

:func:`egger` is ``regtest(res, model = "rma", predictor = "sei")`` by default: a meta-regression
of the effects on their standard errors (same tau² estimator and test as the pooled model), whose
slope test is the test of funnel asymmetry and whose intercept is the "limit" estimate for a study
of infinite precision. ``model = "lm"`` is Egger's original weighted linear regression
(``lm(yi ~ sei, weights = 1 / vi)``, t with k - 2 df); ``predictor = "vi"`` uses the variances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import AnalysisError
from ._stats import _normal_quantile, _t_quantile, _two_sided_p_array
from ._tau2 import _weighted_fit
from .effects import _study_effects
from .pool import MetaResult, _pool_effects
from .regression import _check_regression_method, _fit_regression

EGGER_MODELS: tuple[str, ...] = ("rma", "lm")
EGGER_PREDICTORS: tuple[str, ...] = ("sei", "vi")
MIN_STUDIES = 10


@dataclass(frozen=True, eq=False)
class FunnelResult:
    """Data of a funnel plot: each study's estimate against its standard error.

    ``table``: the pooled studies (``study, estimate, se``). ``region``: the pseudo-confidence
    region around the pooled estimate (``se, ci_low, ci_high`` at se = 0 and the largest se).
    ``pooled`` is the pooled result that centres the funnel.
    """

    table: pd.DataFrame
    region: pd.DataFrame
    pooled: MetaResult
    scale: str
    alpha: float


@dataclass(frozen=True, eq=False)
class EggerResult:
    """Egger's regression test for funnel-plot asymmetry (``regtest``).

    ``statistic`` is z, or t with ``df`` degrees of freedom (``test``); ``p`` its two-sided
    p-value; ``slope``/``slope_se`` the coefficient of the predictor. ``limit_estimate`` (with
    ``limit_ci_low/high``) is the intercept: the expected effect of a study with se = 0.
    ``table`` holds both coefficients (``term, estimate, se, statistic, ci_low, ci_high, p``).
    """

    statistic: float
    df: int | None
    p: float
    test: str
    slope: float
    slope_se: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    table: pd.DataFrame
    model: str
    predictor: str
    method: str
    hksj: bool
    k: int
    scale: str
    notes: tuple[str, ...]


def _usable(table, *, measure, study, continuity, min_studies, what):
    effects = _study_effects(table, measure=measure, study=study, continuity=continuity)
    used = effects.table["excluded"].eq("").to_numpy()
    k = int(used.sum())
    if k < min_studies:
        raise AnalysisError(
            f"{what} needs at least {min_studies} studies; this analysis has {k} usable. With "
            "fewer studies, tests of funnel asymmetry cannot tell small-study effects from chance "
            "(Sterne et al., BMJ 2011), so they are not shown."
        )
    return effects, used


def funnel(
    table: pd.DataFrame,
    *,
    method: str = "REML",
    hksj: bool = False,
    alpha: float = 0.05,
    measure: str | None = None,
    study: str = "study",
    continuity: float = 0.5,
    min_studies: int = MIN_STUDIES,
) -> FunnelResult:
    """Funnel-plot data: study estimates and standard errors around the pooled estimate.

    Options as :func:`~.pool.pool`; ``min_studies`` guards the display (see module doc).
    """
    effects, used = _usable(
        table, measure=measure, study=study, continuity=continuity, min_studies=min_studies,
        what="A funnel plot",
    )
    pooled = _pool_effects(effects, method=method, hksj=hksj, alpha=alpha)
    studies = effects.table.loc[used, ["study", "estimate", "se"]].reset_index(drop=True)
    crit = _normal_quantile(1 - alpha / 2)
    edge = np.array([0.0, float(studies["se"].max())])
    region = pd.DataFrame(
        {"se": edge, "ci_low": pooled.estimate - crit * edge, "ci_high": pooled.estimate + crit * edge}
    )
    return FunnelResult(studies, region, pooled, effects.scale, alpha)


def egger(
    table: pd.DataFrame,
    *,
    model: str = "rma",
    predictor: str = "sei",
    method: str = "REML",
    hksj: bool = False,
    alpha: float = 0.05,
    measure: str | None = None,
    study: str = "study",
    continuity: float = 0.5,
    min_studies: int = MIN_STUDIES,
) -> EggerResult:
    """Egger's regression test (metafor ``regtest``; see the module doc for the variants).

    Parameters
    ----------
    model
        "rma" (meta-regression on the predictor, metafor's default) or "lm" (Egger's classic
        weighted linear regression).
    predictor
        "sei" (standard error, Egger's test) or "vi" (variance).
    method, hksj
        tau² estimator and Hartung-Knapp for ``model = "rma"`` (as the pooled model).
    min_studies
        Fewer usable studies raise :class:`AnalysisError` (default 10; at least 3).
    """
    if model not in EGGER_MODELS:
        raise AnalysisError(f"model must be one of {', '.join(EGGER_MODELS)}, not {model!r}.")
    if predictor not in EGGER_PREDICTORS:
        raise AnalysisError(
            f"predictor must be one of {', '.join(EGGER_PREDICTORS)}, not {predictor!r}."
        )
    _check_regression_method(method, hksj, alpha, continuity)
    effects, used = _usable(
        table, measure=measure, study=study, continuity=continuity,
        min_studies=max(3, min_studies), what="Egger's test",
    )
    yi = effects.table.loc[used, "estimate"].to_numpy(float)
    se = effects.table.loc[used, "se"].to_numpy(float)
    X = np.column_stack([np.ones(len(yi)), se if predictor == "sei" else se**2])
    if model == "rma":
        fit = _fit_regression(yi, se**2, X, method=method, hksj=hksj, alpha=alpha)
        beta, coef_se, df, low, high = fit.beta, fit.se, fit.df, fit.ci_low, fit.ci_high
    else:
        beta, coef_se, df, low, high = _weighted_lm(yi, se**2, X, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = beta / coef_se
    p = _two_sided_p_array(beta, coef_se, df)
    coefficients = pd.DataFrame(
        {
            "term": ["intercept (limit estimate)", predictor],
            "estimate": beta,
            "se": coef_se,
            "statistic": statistic,
            "ci_low": low,
            "ci_high": high,
            "p": p,
        }
    )
    return EggerResult(
        statistic=float(statistic[1]),
        df=df,
        p=float(p[1]),
        test="z" if df is None else "t",
        slope=float(beta[1]),
        slope_se=float(coef_se[1]),
        limit_estimate=float(beta[0]),
        limit_ci_low=float(low[0]),
        limit_ci_high=float(high[0]),
        table=coefficients,
        model=model,
        predictor=predictor,
        method=method if model == "rma" else "weighted least squares",
        hksj=hksj and model == "rma",
        k=len(yi),
        scale=effects.scale,
        notes=(
            "Funnel asymmetry can come from publication bias, but also from true heterogeneity, "
            "chance or small studies differing in design; it does not prove bias.",
        ),
    )


def _weighted_lm(yi, vi, X, alpha):
    """lm(yi ~ X - 1, weights = 1 / vi): coefficients, SEs with the residual variance, t df."""
    weights = 1.0 / vi
    beta, inverse = _weighted_fit(yi, X, weights)
    df = len(yi) - X.shape[1]
    sigma2 = float(np.sum(weights * (yi - X @ beta) ** 2)) / df
    coef_se = np.sqrt(np.diag(inverse) * sigma2)
    crit = _t_quantile(1 - alpha / 2, df)
    return beta, coef_se, df, beta - crit * coef_se, beta + crit * coef_se
