"""Between-study variance (tau²) and heterogeneity statistics, as metafor ``rma``.

The first half serves intercept-only models (:func:`~.pool.pool`); the second half
(``*_x`` functions) any design matrix X (meta-regression, ``rma(mods = ~ ...)``): with
X = a column of ones the two give the same numbers.

tau² is never negative; REML uses metafor's Fisher scoring (start at the Hedges estimate, step
halving at the boundary, the same check of tau² = 0), iterated to a change below 1e-10; PM solves
the generalised Q equation to 1e-15. I² and H² are metafor's: from Q for fixed-effect models, from
tau² and the "typical" within-study variance for random-effects models.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import AnalysisError

_REML_THRESHOLD = 1e-10
_MAX_ITER = 1000
#: metafor's default ``tol``; used, as there, to decide whether REML is stuck away from tau² = 0.
_LL0_TOL = np.finfo(float).eps ** 0.25


def _cochran_q(yi, weights, centre: float | None = None) -> float:
    if centre is None:
        centre = np.sum(weights * yi) / np.sum(weights)
    return max(0.0, float(np.sum(weights * (yi - centre) ** 2)))


def _heterogeneity(q, k, tau2, fixed_weights, *, fixed: bool) -> tuple[float, float]:
    """I² (percent) and H² as metafor reports them."""
    if fixed:
        i2 = max(0.0, 100.0 * (q - (k - 1)) / q) if q > 0 else 0.0
        return i2, q / (k - 1)
    total = fixed_weights.sum()
    typical_variance = (k - 1) / (total - np.sum(fixed_weights**2) / total)
    return 100.0 * tau2 / (typical_variance + tau2), tau2 / typical_variance + 1.0


def _estimate_tau2(yi, vi, method: str) -> float:
    if method == "FE":
        return 0.0
    if method == "DL":
        return _tau2_dersimonian_laird(yi, vi)
    if method == "PM":
        return _tau2_paule_mandel(yi, vi)
    return _tau2_reml(yi, vi)


def _tau2_dersimonian_laird(yi, vi) -> float:
    weights = 1.0 / vi
    total = weights.sum()
    q = _cochran_q(yi, weights)
    return max(0.0, (q - (len(yi) - 1)) / (total - np.sum(weights**2) / total))


def _generalised_q(tau2: float, yi, vi) -> float:
    return _cochran_q(yi, 1.0 / (vi + tau2))


def _tau2_paule_mandel(yi, vi) -> float:
    """tau² at which the generalised Q equals its expectation k - 1 (0 if Q(0) is below it)."""
    from scipy.optimize import brentq

    target = len(yi) - 1
    if _generalised_q(0.0, yi, vi) < target:
        return 0.0
    upper = 100.0
    while _generalised_q(upper, yi, vi) > target:
        upper *= 10.0
        if upper > 1e12:
            raise AnalysisError(
                "The Paule-Mandel estimate of tau² did not converge (extreme heterogeneity). "
                "Check the study estimates and standard errors, or use DL or REML."
            )
    return float(
        brentq(lambda t: _generalised_q(t, yi, vi) - target, 0.0, upper, xtol=1e-15, rtol=1e-15)
    )


def _reml_step(tau2: float, yi, vi) -> float:
    """Fisher scoring step for the REML tau² of an intercept-only model (metafor's ``adj``)."""
    w = 1.0 / (vi + tau2)
    total = w.sum()
    w2 = np.sum(w**2)
    residual = yi - np.sum(w * yi) / total
    trace_p = total - w2 / total
    trace_pp = w2 - 2.0 * np.sum(w**3) / total + (w2 / total) ** 2
    return float((np.sum(w**2 * residual**2) - trace_p) / trace_pp)


def _reml_loglik(tau2: float, yi, vi) -> float:
    w = 1.0 / (vi + tau2)
    total = w.sum()
    residual = yi - np.sum(w * yi) / total
    return float(
        -0.5 * (len(yi) - 1) * math.log(2 * math.pi)
        - 0.5 * np.sum(np.log(vi + tau2))
        - 0.5 * math.log(total)
        - 0.5 * np.sum(w * residual**2)
    )


def _fisher_scoring(start: float, step_at) -> float | None:
    """REML tau² by Fisher scoring from ``start`` (steps halved to stay at or above 0, stopping
    when a step is below the threshold), or None when it does not converge."""
    tau2 = start
    for _ in range(_MAX_ITER):
        step = step_at(tau2)
        if tau2 == 0.0 and step < 0:
            step = 0.0
        while tau2 + step < 0:
            step /= 2.0
        new = tau2 + step
        converged = abs(new - tau2) <= _REML_THRESHOLD
        tau2 = new
        if converged:
            return tau2
    return None


def _unless_stuck(tau2: float, loglik) -> float:
    """The scoring's tau², or 0 where the restricted likelihood at 0 is higher by more than
    metafor's tolerance (scoring stuck away from the boundary)."""
    stuck = loglik(0.0) - loglik(tau2) > _LL0_TOL
    return 0.0 if stuck and tau2 > _REML_THRESHOLD else max(0.0, tau2)


def _tau2_reml(yi, vi) -> float:
    k = len(yi)
    hedges = (np.sum((yi - yi.mean()) ** 2) - vi.sum() * (k - 1) / k) / (k - 1)
    tau2 = _fisher_scoring(max(0.0, float(hedges)), lambda t: _reml_step(t, yi, vi))
    if tau2 is None:
        # Fisher scoring can oscillate with growing steps (e.g. one precise outlying study);
        # the REML likelihood is then maximised directly, which is slower but always converges.
        return _tau2_reml_bounded(yi, vi)
    return _unless_stuck(tau2, lambda t: _reml_loglik(t, yi, vi))


def _tau2_reml_bounded(yi, vi) -> float:
    """REML tau² by bounded one-dimensional maximisation of the restricted likelihood."""
    from scipy.optimize import minimize_scalar

    upper = 10.0 * (float(np.var(yi)) + float(np.max(vi))) + 1.0
    best = minimize_scalar(
        lambda t: -_reml_loglik(t, yi, vi),
        bounds=(0.0, upper),
        method="bounded",
        options={"xatol": 1e-13, "maxiter": 2000},
    )
    tau2 = _polish_reml_root(float(best.x), yi, vi, upper)
    return 0.0 if _reml_loglik(0.0, yi, vi) >= _reml_loglik(tau2, yi, vi) else tau2


def _reml_score(tau2: float, yi, vi) -> float:
    """Twice the derivative of the restricted log-likelihood in tau² (numerator of the step)."""
    w = 1.0 / (vi + tau2)
    total = w.sum()
    residual = yi - np.sum(w * yi) / total
    return float(np.sum(w**2 * residual**2) - (total - np.sum(w**2) / total))


def _polish_reml_root(guess: float, yi, vi, upper: float) -> float:
    """Solve the REML score equation to machine precision near ``guess`` (when bracketed)."""
    from scipy.optimize import brentq

    width = max(1e-6, 1e-3 * guess)
    low, high = max(0.0, guess - width), min(upper, guess + width)
    if _reml_score(low, yi, vi) * _reml_score(high, yi, vi) > 0:
        return guess
    return float(brentq(_reml_score, low, high, args=(yi, vi), xtol=1e-16, rtol=4 * np.finfo(float).eps))



# ------------------------------------------------------------------------------------------
# Any design matrix X (k x p, full column rank): metafor rma.uni with mods
# ------------------------------------------------------------------------------------------
def _weighted_fit(yi, X, weights):
    """(beta, (X'WX)^-1) of the weighted least-squares fit of ``yi`` on ``X``."""
    xw = X * weights[:, None]
    inverse = np.linalg.inv(X.T @ xw)
    return inverse @ (xw.T @ yi), inverse


def _projection(X, weights) -> np.ndarray:
    """P = W - W X (X'WX)^-1 X'W (k x k): y'Py is the weighted residual sum of squares."""
    xw = X * weights[:, None]
    return np.diag(weights) - xw @ np.linalg.inv(X.T @ xw) @ xw.T


def _residual_q(tau2: float, yi, vi, X) -> float:
    """Weighted residual sum of squares at tau² (Cochran's Q_E when tau² = 0)."""
    weights = 1.0 / (vi + tau2)
    beta, _ = _weighted_fit(yi, X, weights)
    return max(0.0, float(np.sum(weights * (yi - X @ beta) ** 2)))


def _estimate_tau2_x(yi, vi, X, method: str) -> float:
    if method == "FE":
        return 0.0
    if method == "DL":
        projection = _projection(X, 1.0 / vi)
        k, p = X.shape
        rss = float(yi @ projection @ yi)
        return max(0.0, (rss - (k - p)) / float(np.trace(projection)))
    if method == "PM":
        return _tau2_paule_mandel_x(yi, vi, X)
    return _tau2_reml_x(yi, vi, X)


def _tau2_paule_mandel_x(yi, vi, X) -> float:
    """tau² at which the residual Q equals k - p (0 if it is below k - p at tau² = 0)."""
    from scipy.optimize import brentq

    target = X.shape[0] - X.shape[1]
    if _residual_q(0.0, yi, vi, X) < target:
        return 0.0
    upper = 100.0
    while _residual_q(upper, yi, vi, X) > target:
        upper *= 10.0
        if upper > 1e12:
            raise AnalysisError(
                "The Paule-Mandel estimate of tau² did not converge (extreme heterogeneity). "
                "Check the study estimates and standard errors, or use DL or REML."
            )
    return float(
        brentq(
            lambda t: _residual_q(t, yi, vi, X) - target, 0.0, upper, xtol=1e-15, rtol=1e-15
        )
    )


def _reml_loglik_x(tau2: float, yi, vi, X) -> float:
    """Restricted log-likelihood (without metafor's constant ``REMLf`` term)."""
    weights = 1.0 / (vi + tau2)
    beta, inverse = _weighted_fit(yi, X, weights)
    k, p = X.shape
    _, logdet_inverse = np.linalg.slogdet(inverse)
    return float(
        -0.5 * (k - p) * math.log(2 * math.pi)
        - 0.5 * np.sum(np.log(vi + tau2))
        + 0.5 * logdet_inverse
        - 0.5 * np.sum(weights * (yi - X @ beta) ** 2)
    )


def _reml_step_x(tau2: float, yi, vi, X) -> float:
    """metafor's Fisher scoring step: (y'PPy - tr P) / tr(PP)."""
    projection = _projection(X, 1.0 / (vi + tau2))
    py = projection @ yi
    return float((py @ py - np.trace(projection)) / np.sum(projection * projection))


def _tau2_reml_x(yi, vi, X) -> float:
    k, p = X.shape
    ols = np.eye(k) - X @ np.linalg.inv(X.T @ X) @ X.T
    # metafor's start: the Hedges (HE) estimate
    start = max(0.0, float((yi @ ols @ yi - np.sum(np.diag(ols) * vi)) / (k - p)))
    tau2 = _fisher_scoring(start, lambda t: _reml_step_x(t, yi, vi, X))
    if tau2 is None:
        return _tau2_reml_bounded_x(yi, vi, X)
    return _unless_stuck(tau2, lambda t: _reml_loglik_x(t, yi, vi, X))


def _tau2_reml_bounded_x(yi, vi, X) -> float:
    """REML tau² by bounded maximisation when Fisher scoring oscillates (see _tau2_reml)."""
    from scipy.optimize import minimize_scalar

    upper = 10.0 * (float(np.var(yi)) + float(np.max(vi))) + 1.0
    best = minimize_scalar(
        lambda t: -_reml_loglik_x(t, yi, vi, X),
        bounds=(0.0, upper),
        method="bounded",
        options={"xatol": 1e-13, "maxiter": 2000},
    )
    tau2 = float(best.x)
    return 0.0 if _reml_loglik_x(0.0, yi, vi, X) >= _reml_loglik_x(tau2, yi, vi, X) else tau2


def _heterogeneity_x(qe: float, tau2: float, vi, X, *, fixed: bool) -> tuple[float, float]:
    """I² (percent) and H² of a model with design X, as metafor (typical variance from tr P)."""
    k, p = X.shape
    if fixed:
        i2 = max(0.0, 100.0 * (qe - (k - p)) / qe) if qe > 0 else 0.0
        return i2, qe / (k - p)
    typical_variance = (k - p) / float(np.trace(_projection(X, 1.0 / vi)))
    return 100.0 * tau2 / (typical_variance + tau2), tau2 / typical_variance + 1.0
