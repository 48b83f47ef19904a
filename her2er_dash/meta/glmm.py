"""Binomial-normal GLMM meta-analysis from counts, as metafor ``rma.glmm`` (lme4 ``glmer``).

The recommended model for sparse pCR counts (no continuity correction, no normal approximation
of each study's estimate):

- ``measure="PLO"`` (events/n per study): logit(p_i) = mu + u_i, u_i ~ N(0, tau²) —
  ``rma.glmm(measure = "PLO", xi, ni)``;
- ``measure="OR"`` (2x2 counts): metafor's default unconditional model with fixed study effects
  (``model = "UM.FS"``, ``coding = 1/2``): logit(p_ij) = alpha_i + beta x_ij + u_i z_ij, with
  x = 1 in the exposed and 0 in the reference group, z = +1/2 and -1/2, u_i ~ N(0, tau²); beta
  is the pooled log odds ratio. Studies with no events or only events in both groups are dropped
  (``drop00 = TRUE``).

``method="ML"`` maximises the marginal likelihood approximated, as ``glmer(nAGQ = 7)``, by
adaptive Gauss-Hermite quadrature with ``n_agq`` nodes centred on each study's conditional mode
(``n_agq = 1`` is the Laplace approximation). ``method="FE"`` fits the fixed-effect logistic
model (``glm``). The heterogeneity tests are metafor's: a Wald test (``QE.Wld``) and a
likelihood-ratio test (``QE.LRT``) of the fixed-effect model against the saturated model, both
with k - 1 df; I² and H² use tau² and the typical within-study variance of the ``escalc``
estimates (continuity-corrected only for that purpose).

Why our own optimiser: statsmodels has no maximum-likelihood binomial GLMM
(``BinomialBayesMixedGLM`` is a variational-Bayes / posterior-mode fit, not ML), so matching
metafor needs the exact objective lme4 minimises. :func:`_study_deviance` computes lme4's AGQ
deviance (``glmerAGQ``: conditional modes by Newton's method to machine precision, the same
node rule and scaling), and :func:`_minimise` finds its minimum by Newton steps on central
finite-difference derivatives, which the deviance's separation into per-study terms makes cheap
(the Hessian is an arrowhead: each study's intercept touches only its own term). The standard
error is lme4's: the inverse of the Hessian of the deviance in (tau, beta, study effects), here
with Richardson-extrapolated differences (lme4 uses plain central differences with step 1e-4; the
two agree to ~1e-8). The fixed-effect and saturated ``glm`` fits behind the heterogeneity tests
replay R's ``glm.fit`` iterations (same start, weights and stopping rule), so that even a
saturated cell with 0 events — whose coefficient glm stops at a finite value — gives R's number.
tests/test_meta_glmm.py compares everything with ``rma.glmm`` run with tightened optimiser
tolerances (lme4's defaults stop ~1e-6 away from the optimum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._data import Exclusions
from ..errors import AnalysisError
from ._stats import _chi2_sf, _normal_quantile, _t_quantile, _two_sided_p
from ._tau2 import _heterogeneity
from .effects import (
    PROPORTION_COLUMNS,
    TWO_BY_TWO_COLUMNS,
    _study_effects,
    forest_rows,
)

GLMM_MEASURES: tuple[str, ...] = ("PLO", "OR")
GLMM_METHODS: tuple[str, ...] = ("ML", "FE")
GLMM_TESTS: tuple[str, ...] = ("z", "t")

#: R's logit link clamps the linear predictor at +-30 (family.c THRESH / MTHRESH).
_THRESH = 30.0
_EPS = np.finfo(float).eps
_GLM_EPSILON = 1e-8  # glm.control()$epsilon
_GLM_MAXIT = 25


@dataclass(frozen=True, eq=False)
class GlmmResult:
    """A binomial-normal GLMM meta-analysis (``rma.glmm``) on the logit scale.

    ``estimate`` is the pooled logit proportion (PLO) or log odds ratio (OR) with ``se``,
    ``statistic`` (z, or t with ``df``), ``p`` and the interval ``ci_low/ci_high``;
    ``pi_low/pi_high`` the prediction interval (``predict``). ``tau2`` is the between-study
    variance, ``i2``/``h2`` metafor's. ``qe_wald``/``qe_lrt`` (``qe_df`` df) test heterogeneity.
    ``table`` lists every study with its counts and its own (``escalc``) estimate for a forest
    plot, and ``excluded`` (the reason a study is left out, "" if used).
    """

    table: pd.DataFrame
    estimate: float
    se: float
    statistic: float
    p: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    df: int | None
    tau2: float
    i2: float
    h2: float
    qe_wald: float
    qe_wald_p: float
    qe_lrt: float
    qe_lrt_p: float
    qe_df: int
    loglik: float
    measure: str
    model: str
    method: str
    test: str
    n_agq: int
    k: int
    alpha: float
    scale: str
    notes: tuple[str, ...]
    exclusions: Exclusions

    @property
    def label(self) -> str:
        return "Pooled (GLMM, ML)" if self.method == "ML" else "Pooled (logistic, FE)"

    def summary_frame(self, *, exponentiate: bool = True) -> pd.DataFrame:
        """Study rows (their own estimates), the pooled row and, for ML, the prediction row.

        Columns as :meth:`MetaResult.summary_frame`; GLMM studies have no inverse-variance
        weight, so ``weight`` is empty.
        """
        return forest_rows(
            self.table,
            pooled={"label": self.label, "estimate": self.estimate, "ci_low": self.ci_low,
                    "ci_high": self.ci_high, "weight": np.nan},
            prediction=(self.pi_low, self.pi_high) if self.method == "ML" else None,
            scale=self.scale, exclusions=self.exclusions, exponentiate=exponentiate,
            weighted=False, with_counts=False,
        )


# ------------------------------------------------------------------------------------------
# Public function
# ------------------------------------------------------------------------------------------
def glmm(
    table: pd.DataFrame,
    *,
    method: str = "ML",
    test: str = "z",
    alpha: float = 0.05,
    study: str = "study",
    n_agq: int = 7,
    continuity: float = 0.5,
) -> GlmmResult:
    """Pool counts with a binomial-normal GLMM (metafor ``rma.glmm``; see the module doc).

    Parameters
    ----------
    table
        One row per study with ``events`` and ``n`` (pooled proportion, measure "PLO") or
        ``events_exp, n_exp, events_ref, n_ref`` (odds ratio exposed vs reference, "OR").
    method
        "ML" (random effects, metafor's default) or "FE" (fixed-effect logistic regression).
    test
        "z" (normal) or "t" (t with k - 1 df) for the pooled estimate.
    n_agq
        Quadrature nodes per study (metafor's default 7; 1 = Laplace approximation).
    continuity
        Used only for the study rows shown and for I² (``escalc``); the GLMM uses raw counts.

    Raises
    ------
    AnalysisError
        No counts (estimates with standard errors cannot be fitted by a GLMM), fewer than 2
        usable studies, unknown options, or a likelihood that does not converge.
    """
    _check(method, test, alpha, n_agq)
    measure = _measure_of(table)
    effects = _study_effects(table, measure=None, study=study, continuity=continuity)
    used = effects.table["excluded"].eq("").to_numpy()
    k = int(used.sum())
    if k < 2:
        raise AnalysisError(
            f"A GLMM meta-analysis needs at least 2 studies with usable counts; {k} "
            f"{'is' if k == 1 else 'are'} left. {' '.join(effects.notes[-1:])}".strip()
        )
    cells = _cells(effects.table.loc[used], measure)
    fixed = _glm_fixed(cells, measure)
    saturated = _glm_irls("saturated", cells)
    qe_wald = _saturated_wald(saturated, cells, measure)
    qe_lrt = max(0.0, -2.0 * (fixed.loglik - saturated.loglik))
    if method == "ML":
        fit = _fit_ml(cells, measure, fixed, n_agq)
    else:
        fit = _MLFit(fixed.beta[0], math.sqrt(fixed.variance[0]), 0.0, math.nan)
    loglik = (
        fixed.loglik if method == "FE" else _saturated_loglik(cells) - 0.5 * fit.deviance
    )
    df = k - 1 if test == "t" else None
    crit = _normal_quantile(1 - alpha / 2) if df is None else _t_quantile(1 - alpha / 2, df)
    yi = effects.table.loc[used, "estimate"].to_numpy(float)
    vi = effects.table.loc[used, "se"].to_numpy(float) ** 2
    q_fixed = float(np.sum((yi - np.sum(yi / vi) / np.sum(1 / vi)) ** 2 / vi))
    i2, h2 = _heterogeneity(q_fixed, k, fit.tau2, 1.0 / vi, fixed=False)
    pi_half = crit * math.sqrt(fit.se**2 + fit.tau2)
    crit_z = _normal_quantile(1 - alpha / 2)
    rows = effects.table.assign(
        ci_low=effects.table["estimate"] - crit_z * effects.table["se"],
        ci_high=effects.table["estimate"] + crit_z * effects.table["se"],
    )
    return GlmmResult(
        table=rows,
        estimate=fit.estimate,
        se=fit.se,
        statistic=fit.estimate / fit.se,
        p=_two_sided_p(fit.estimate, fit.se, df),
        ci_low=fit.estimate - crit * fit.se,
        ci_high=fit.estimate + crit * fit.se,
        pi_low=fit.estimate - pi_half,
        pi_high=fit.estimate + pi_half,
        df=df,
        tau2=fit.tau2,
        i2=i2 if method == "ML" else 0.0,
        h2=h2 if method == "ML" else 1.0,
        qe_wald=qe_wald,
        qe_wald_p=_chi2_sf(qe_wald, k - 1),
        qe_lrt=qe_lrt,
        qe_lrt_p=_chi2_sf(qe_lrt, k - 1),
        qe_df=k - 1,
        loglik=loglik,
        measure=measure,
        model="UM.FS" if measure == "OR" else "binomial-normal",
        method=method,
        test=test,
        n_agq=n_agq,
        k=k,
        alpha=alpha,
        scale=effects.scale,
        notes=effects.notes + _notes(measure, method, n_agq, k),
        exclusions=effects.exclusions,
    )


def _check(method: str, test: str, alpha: float, n_agq: int) -> None:
    if method not in GLMM_METHODS:
        raise AnalysisError(f"method must be one of {', '.join(GLMM_METHODS)}, not {method!r}.")
    if test not in GLMM_TESTS:
        raise AnalysisError(f"test must be 'z' or 't', not {test!r}.")
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be between 0 and 1 (e.g. 0.05), not {alpha!r}.")
    if not (isinstance(n_agq, int) and 1 <= n_agq <= 25):
        raise AnalysisError(f"n_agq must be a whole number from 1 to 25, not {n_agq!r}.")


def _measure_of(table) -> str:
    columns = set(table.columns) if isinstance(table, pd.DataFrame) else set()
    if set(TWO_BY_TWO_COLUMNS) <= columns:
        return "OR"
    if set(PROPORTION_COLUMNS) <= columns:
        return "PLO"
    raise AnalysisError(
        "A GLMM meta-analysis needs counts: 'events' and 'n' (one proportion per study) or "
        "'events_exp', 'n_exp', 'events_ref' and 'n_ref' (2x2 counts). Estimates with standard "
        "errors can be pooled with meta.pool instead."
    )


def _notes(measure: str, method: str, n_agq: int, k: int) -> tuple[str, ...]:
    what = "logit proportions" if measure == "PLO" else "log odds ratios"
    if method == "FE":
        return (f"Pooled {what} by fixed-effect logistic regression (no between-study variance).",)
    rule = "Laplace approximation" if n_agq == 1 else f"adaptive Gauss-Hermite quadrature ({n_agq} nodes)"
    notes = [
        f"Pooled {what} by a binomial-normal GLMM fitted by maximum likelihood ({rule}), as "
        "metafor rma.glmm; no continuity correction is needed."
    ]
    if measure == "OR":
        notes.append(
            "Odds-ratio model: fixed study intercepts and a random effect on the group "
            "difference (metafor model UM.FS)."
        )
    if k < 5:
        notes.append(
            f"Only {k} studies: tau² is estimated very imprecisely (maximum likelihood tends "
            "to underestimate it); read the heterogeneity statistics with caution."
        )
    return tuple(notes)


# ------------------------------------------------------------------------------------------
# Data in cells (one per study for PLO, two per study for OR)
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Cells:
    events: np.ndarray
    trials: np.ndarray
    study: np.ndarray  # study index of each cell
    exposed: np.ndarray  # 1 for the exposed group (OR), 0 otherwise
    z: np.ndarray  # coefficient of the study's random effect in the cell
    k: int


def _cells(rows: pd.DataFrame, measure: str) -> _Cells:
    k = len(rows)
    if measure == "PLO":
        return _Cells(
            events=rows["events"].to_numpy(float),
            trials=rows["n"].to_numpy(float),
            study=np.arange(k),
            exposed=np.zeros(k),
            z=np.ones(k),
            k=k,
        )
    exp_events, exp_n, ref_events, ref_n = (rows[c].to_numpy(float) for c in TWO_BY_TWO_COLUMNS)
    return _Cells(
        events=np.column_stack([exp_events, ref_events]).ravel(),
        trials=np.column_stack([exp_n, ref_n]).ravel(),
        study=np.repeat(np.arange(k), 2),
        exposed=np.tile([1.0, 0.0], k),
        z=np.tile([0.5, -0.5], k),
        k=k,
    )


# ------------------------------------------------------------------------------------------
# R's glm.fit for binomial(logit), replayed
# ------------------------------------------------------------------------------------------
def _inverse_logit(eta: np.ndarray) -> np.ndarray:
    """R's logit linkinv: exp(eta) clamped to [eps, 1/eps] before x / (1 + x)."""
    t = np.where(eta < -_THRESH, _EPS, np.where(eta > _THRESH, 1.0 / _EPS, np.exp(np.clip(eta, -_THRESH, _THRESH))))
    return t / (1.0 + t)


def _mu_eta(eta: np.ndarray) -> np.ndarray:
    e = np.exp(np.clip(eta, -_THRESH, _THRESH))
    return np.where(np.abs(eta) > _THRESH, _EPS, e / (1.0 + e) ** 2)


def _deviance_residuals(events, trials, mu) -> np.ndarray:
    """Binomial deviance residuals 2 n [y log(y/mu) + (1-y) log((1-y)/(1-mu))], 0 log 0 = 0."""
    y = np.divide(events, trials, out=np.zeros_like(events), where=trials > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = np.where(y > 0, y * np.log(y / mu), 0.0)
        miss = np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    return 2.0 * trials * (hit + miss)


def _binomial_loglik(events, trials, mu) -> float:
    from scipy.special import gammaln, xlog1py, xlogy

    return float(
        np.sum(
            gammaln(trials + 1)
            - gammaln(events + 1)
            - gammaln(trials - events + 1)
            + xlogy(events, mu)
            + xlog1py(trials - events, -mu)
        )
    )


@dataclass(frozen=True)
class _GlmFit:
    beta: np.ndarray
    variance: np.ndarray  # diagonal of the covariance matrix of beta
    mu: np.ndarray
    loglik: float


def _glm_irls(model: str, cells: _Cells) -> _GlmFit:
    """R's ``glm(cbind(events, trials - events) ~ ..., family = binomial)``, step for step.

    Same start (mustart = (n y + 1/2) / (n + 1)), same working weights, same convergence rule
    (relative deviance change below 1e-8, at most 25 iterations) and the same covariance: the
    inverse of X'WX with the weights of the last iteration's start, as ``summary.glm`` reports.
    The three designs used here have closed-form weighted least-squares steps (see
    :func:`_weighted_step`), so no matrix is decomposed however many studies there are.
    """
    events, trials = cells.events, cells.trials
    y = events / trials
    mu = (trials * y + 0.5) / (trials + 1.0)
    eta = np.log(mu / (1.0 - mu))
    deviance_old = float(np.sum(_deviance_residuals(events, trials, mu)))
    for _ in range(_GLM_MAXIT):
        derivative = _mu_eta(eta)
        working = eta + (y - mu) / derivative
        weights = trials * derivative**2 / (mu * (1.0 - mu))
        beta, eta, variance = _weighted_step(model, cells, weights, working)
        mu = _inverse_logit(eta)
        deviance = float(np.sum(_deviance_residuals(events, trials, mu)))
        if abs(deviance - deviance_old) / (abs(deviance) + 0.1) < _GLM_EPSILON:
            break
        deviance_old = deviance
    return _GlmFit(beta, variance, mu, _binomial_loglik(events, trials, mu))


def _weighted_step(model: str, cells: _Cells, weights, working):
    """Weighted least squares of ``working`` on the design: (beta, fitted eta, var(beta)).

    "saturated": one parameter per cell (the fit is exact); "common": one intercept (PLO's
    fixed-effect model); "study": an exposed-group effect plus one intercept per study (the
    fixed-effect odds-ratio model ``~ -1 + group1 + study``), solved through the Schur
    complement of the study intercepts (the normal equations form an arrowhead matrix).
    """
    if model == "saturated":
        return working, working, 1.0 / weights
    if model == "common":
        total = weights.sum()
        centre = float(np.sum(weights * working) / total)
        return np.array([centre]), np.full(len(working), centre), np.array([1.0 / total])
    k, study, exposed = cells.k, cells.study, cells.exposed
    own = np.bincount(study, weights, k)  # D_i
    cross = np.bincount(study, weights * exposed, k)  # B_i
    rhs_study = np.bincount(study, weights * working, k)
    rhs_group = float(np.sum(weights * exposed * working))
    schur = float(np.sum(weights * exposed) - np.sum(cross**2 / own))
    beta = (rhs_group - float(np.sum(cross * rhs_study / own))) / schur
    alpha = (rhs_study - cross * beta) / own
    variance = np.r_[1.0 / schur, 1.0 / own + cross**2 / (own**2 * schur)]
    return np.r_[beta, alpha], alpha[study] + beta * exposed, variance


def _glm_fixed(cells: _Cells, measure: str) -> _GlmFit:
    """The fixed-effect model: common logit (PLO), or exposed-group log OR + study intercepts."""
    return _glm_irls("common" if measure == "PLO" else "study", cells)


def _saturated_wald(saturated: _GlmFit, cells: _Cells, measure: str) -> float:
    """Wald test that every study has the same logit (PLO) or log OR (OR), as ``QE.Wld``."""
    eta = saturated.beta
    variance = saturated.variance
    if measure == "OR":
        eta = eta[0::2] - eta[1::2]
        variance = variance[0::2] + variance[1::2]
    weights = 1.0 / variance
    centre = np.sum(weights * eta) / np.sum(weights)
    return max(0.0, float(np.sum(weights * (eta - centre) ** 2)))


def _saturated_loglik(cells: _Cells) -> float:
    y = np.divide(cells.events, cells.trials, out=np.zeros_like(cells.events), where=cells.trials > 0)
    return _binomial_loglik(cells.events, cells.trials, y)


# ------------------------------------------------------------------------------------------
# lme4's adaptive Gauss-Hermite deviance
# ------------------------------------------------------------------------------------------
def _gh_rule(n_agq: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) for the standard normal, as lme4's ``GHrule``."""
    if n_agq == 1:
        return np.zeros(1), np.ones(1)
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_agq)
    return nodes, weights / weights.sum()


def _cell_terms(u, tau, eta0, cells: _Cells):
    """Per-cell linear predictor, fitted probability and deviance residual at random effects u."""
    from scipy.special import expit

    eta = eta0 + tau * cells.z * u[cells.study]
    mu = expit(eta)
    return eta, mu, _deviance_residuals(cells.events, cells.trials, mu)


def _modes(tau: float, eta0: np.ndarray, cells: _Cells) -> tuple[np.ndarray, np.ndarray]:
    """Conditional modes u of u² + sum deviance residuals, per study (Newton to machine precision).

    Returns the modes and L² = 1 + tau² sum z² n mu (1 - mu) at them (lme4's Cholesky factor).
    """
    u = np.zeros(cells.k)
    polished = False
    for _ in range(100):
        _, mu, _ = _cell_terms(u, tau, eta0, cells)
        score = np.bincount(cells.study, tau * cells.z * (cells.events - cells.trials * mu), cells.k)
        information = 1.0 + np.bincount(
            cells.study, tau**2 * cells.z**2 * cells.trials * mu * (1 - mu), cells.k
        )
        step = (score - u) / information
        u = u + step
        if polished:
            break
        # Newton converges quadratically: one more step after a tiny one reaches machine
        # precision, which keeps the deviance a smooth function of the parameters
        polished = bool(np.all(np.abs(step) <= 1e-10 * (1.0 + np.abs(u))))
    _, mu, _ = _cell_terms(u, tau, eta0, cells)
    l2 = 1.0 + np.bincount(cells.study, tau**2 * cells.z**2 * cells.trials * mu * (1 - mu), cells.k)
    return u, l2


def _study_deviance(tau: float, eta0: np.ndarray, cells: _Cells, rule) -> np.ndarray:
    """Each study's term of lme4's AGQ deviance (``glmerAGQ``): their sum is the objective."""
    nodes, weights = rule
    u, l2 = _modes(tau, eta0, cells)
    _, _, residuals = _cell_terms(u, tau, eta0, cells)
    at_mode = u**2 + np.bincount(cells.study, residuals, cells.k)
    scale = 1.0 / np.sqrt(l2)
    mult = np.zeros(cells.k)
    for node, weight in zip(nodes, weights, strict=True):
        if node == 0:
            mult += weight
            continue
        shifted = u + node * scale
        _, _, residuals = _cell_terms(shifted, tau, eta0, cells)
        here = shifted**2 + np.bincount(cells.study, residuals, cells.k)
        mult += weight * np.exp(-0.5 * (here - at_mode) + 0.5 * node**2)
    return at_mode + np.log(l2) - 2.0 * np.log(mult)


# ------------------------------------------------------------------------------------------
# Maximum likelihood: Newton steps on finite-difference derivatives
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _MLFit:
    estimate: float
    se: float
    tau2: float
    deviance: float


class _Objective:
    """Per-study deviance as a function of globals (tau, beta) and per-study intercepts."""

    def __init__(self, cells: _Cells, measure: str, n_agq: int):
        self.cells, self.measure, self.rule = cells, measure, _gh_rule(n_agq)

    @property
    def has_local(self) -> bool:
        return self.measure == "OR"

    def parts(self, tau: float, beta: float, alpha: np.ndarray | None) -> np.ndarray:
        cells = self.cells
        if self.measure == "PLO":
            eta0 = np.full(len(cells.events), beta)
        else:
            eta0 = alpha[cells.study] + beta * cells.exposed
        return _study_deviance(tau, eta0, cells, self.rule)

    def total(self, point) -> float:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            value = float(np.sum(self.parts(*point)))
        return value if np.isfinite(value) else math.inf


def _shift(point, direction: int, h: float):
    tau, beta, alpha = point
    if direction == 0:
        return (tau + h, beta, alpha)
    if direction == 1:
        return (tau, beta + h, alpha)
    return (tau, beta, alpha + h)


def _derivatives(objective: _Objective, point, h: float):
    """Per-study gradients (k, d) and Hessians (k, d, d) by central differences.

    d = 2 globals (tau, beta), plus the study's own intercept for OR: moving every intercept by
    h at once moves each study's term only through its own intercept.
    """
    dims = 3 if objective.has_local else 2
    f0 = objective.parts(*point)
    grad = np.empty((len(f0), dims))
    hess = np.empty((len(f0), dims, dims))
    plus = [objective.parts(*_shift(point, a, h)) for a in range(dims)]
    minus = [objective.parts(*_shift(point, a, -h)) for a in range(dims)]
    for a in range(dims):
        grad[:, a] = (plus[a] - minus[a]) / (2 * h)
        hess[:, a, a] = (plus[a] - 2 * f0 + minus[a]) / h**2
        for b in range(a + 1, dims):
            pp = objective.parts(*_shift(_shift(point, a, h), b, h))
            pm = objective.parts(*_shift(_shift(point, a, h), b, -h))
            mp = objective.parts(*_shift(_shift(point, a, -h), b, h))
            mm = objective.parts(*_shift(_shift(point, a, -h), b, -h))
            hess[:, a, b] = hess[:, b, a] = (pp - pm - mp + mm) / (4 * h**2)
    return grad, hess


def _schur(grad, hess):
    """Global gradient and Hessian after eliminating the per-study intercepts (arrowhead)."""
    g_global = grad[:, :2].sum(axis=0)
    h_global = hess[:, :2, :2].sum(axis=0)
    if grad.shape[1] == 2:
        return g_global, h_global
    cross, own = hess[:, :2, 2], hess[:, 2, 2]
    g_global = g_global - np.sum(cross * (grad[:, 2] / own)[:, None], axis=0)
    h_global = h_global - np.einsum("ki,kj,k->ij", cross, cross, 1.0 / own)
    return g_global, h_global


def _newton_step(grad, hess):
    g_global, h_global = _schur(grad, hess)
    try:
        eigenvalues = np.linalg.eigvalsh(h_global)
    except np.linalg.LinAlgError:
        eigenvalues = np.array([-1.0])
    if eigenvalues.min() <= 1e-10 * max(1.0, eigenvalues.max()):
        # not convex here: a damped (Levenberg) step keeps going downhill
        h_global = h_global + (abs(eigenvalues.min()) + 1e-3) * np.eye(2)
    step_global = -np.linalg.solve(h_global, g_global)
    if grad.shape[1] == 2:
        return step_global, None
    cross, own = hess[:, :2, 2], np.maximum(hess[:, 2, 2], 1e-12)
    step_local = -(grad[:, 2] + cross @ step_global) / own
    return step_global, step_local


def _minimise(objective: _Objective, start):
    point = start
    value = objective.total(point)
    for _ in range(200):
        grad, hess = _derivatives(objective, point, 1e-4)
        step_global, step_local = _newton_step(grad, hess)
        t = 1.0
        while True:
            tau, beta, alpha = point
            trial = (
                tau + t * step_global[0],
                beta + t * step_global[1],
                None if alpha is None else alpha + t * step_local,
            )
            trial_value = objective.total(trial)
            if trial_value <= value + 1e-12 * abs(value) or t < 1e-8:
                break
            t /= 2
        size = t * max(np.max(np.abs(step_global)), 0 if step_local is None else np.max(np.abs(step_local)))
        point, value = trial, trial_value
        if size < 1e-10:
            return point, value
    raise AnalysisError(
        "The GLMM likelihood did not converge (the counts may be too sparse or separated). "
        "Try method='FE' or pool with the inverse-variance methods."
    )


def _fit_ml(cells: _Cells, measure: str, fixed: _GlmFit, n_agq: int) -> _MLFit:
    objective = _Objective(cells, measure, n_agq)
    beta0 = float(fixed.beta[0])
    alpha0 = np.asarray(fixed.beta[1:], dtype=float) if measure == "OR" else None
    # the deviance is even in tau, so tau is optimised freely and reported as |tau|; tau = 0
    # (no heterogeneity) is a stationary point, compared with the interior solution
    interior = _minimise(objective, (0.5, beta0, alpha0))
    boundary = _minimise_at_zero(objective, beta0, alpha0)
    # equal deviances (to rounding) mean the interior search only crept towards tau = 0
    at_zero = boundary[1] <= interior[1] + 1e-10 * (1.0 + abs(interior[1]))
    point, deviance = boundary if at_zero else interior
    tau, beta, alpha = point
    point = (abs(tau), beta, alpha)
    se = _standard_error(objective, point)
    return _MLFit(float(beta), se, float(tau**2), float(deviance))


def _minimise_at_zero(objective: _Objective, beta0: float, alpha0):
    """The fixed-effect maximum (tau = 0): tau's derivative vanishes there by symmetry."""

    class _AtZero(_Objective):
        def parts(self, tau, beta, alpha):  # tau pinned at 0
            return super().parts(0.0, beta, alpha)

    pinned = _AtZero(objective.cells, objective.measure, 1)
    point, value = _minimise(pinned, (0.0, beta0, alpha0))
    return (0.0, point[1], point[2]), value


def _standard_error(objective: _Objective, point) -> float:
    """sqrt of [2 H^-1] for beta, H the deviance Hessian (Richardson-extrapolated differences)."""
    _, coarse = _derivatives(objective, point, 2e-3)
    _, fine = _derivatives(objective, point, 1e-3)
    hess = (4 * fine - coarse) / 3
    dims = hess.shape[1]
    grad = np.zeros((hess.shape[0], dims))
    _, h_global = _schur(grad, hess)
    if point[0] == 0.0:
        # at tau = 0 the tau row is zero off the diagonal (symmetry): beta alone
        return math.sqrt(2.0 / h_global[1, 1])
    covariance = 2.0 * np.linalg.inv(h_global)
    return math.sqrt(covariance[1, 1])
