"""pCR along ER or any continuous variable: a natural cubic spline on the logit scale.

= R ``glm(y ~ splines::ns(x, df = k), binomial)`` with the same knots, plus the observed rate
per bin (Wilson) and likelihood-ratio tests of any effect and of non-linearity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import _logit
from .._data import Exclusions, is_numeric, z_value
from ..errors import AnalysisError
from ..schema import column_label
from ..wording import count
from .rates import binomial_interval

#: Default observed-rate bins for ER % (labels as reported clinically; upper bounds inclusive).
ER_PERCENT_BINS: tuple[tuple[str, float], ...] = (
    ("0", 0.0),
    ("1-10", 10.0),
    ("11-50", 50.0),
    ("51-90", 90.0),
    ("91-100", np.inf),
)


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


def _spline_curve(fit: _logit.LogitFit, knots, grid: np.ndarray, z: float, axis: str) -> pd.DataFrame:
    B = np.column_stack([np.ones(len(grid)), natural_spline_basis(grid, knots)])
    eta = B @ fit.beta
    se = np.sqrt(((B @ fit.cov) * B).sum(axis=1))

    return pd.DataFrame(
        {
            axis: grid,
            "probability": _logit.expit(eta),
            "ci_low": _logit.expit(eta - z * se),
            "ci_high": _logit.expit(eta + z * se),
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
    frame, excl = _logit.usable_rows(df, [variable, outcome], f"the response curve along {variable}")
    if not is_numeric(frame[variable]):
        raise AnalysisError(f"{variable} must be numeric to draw a dose-response curve.")
    x = frame[variable].to_numpy(dtype=float)
    y = _logit.binary_outcome(frame[outcome], outcome)
    _logit.require_both_outcomes(y, outcome, "a dose-response curve")
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
    merged = _logit.collapse(x[:, None], y)  # ER is usually recorded on a coarse scale
    values, successes, trials = (x[:, None], y, None) if merged is None else merged
    X = np.column_stack([np.ones(len(values)), natural_spline_basis(values[:, 0], knots)])
    names = ["(Intercept)"] + [f"{variable} spline {j}" for j in range(1, used_df + 1)]
    fit = _logit.fit_logit(X, successes, trials)
    culprit = _logit.separated_column(fit, X, names)
    if culprit is not None:
        raise AnalysisError(
            f"Separation: the response probability reaches 0 or 1 along {variable}, so the curve "
            "has no finite estimate. Use fewer spline df or more patients."
        )
    linear = np.column_stack([X[:, 0], values[:, 0]])
    loglik_linear = _logit.fit_logit(linear, successes, trials).loglik
    loglik_null = _logit.null_loglik(y)
    p_overall = float(chi2_dist.sf(max(2 * (fit.loglik - loglik_null), 0), used_df))
    p_nonlinear = (
        float(chi2_dist.sf(max(2 * (fit.loglik - loglik_linear), 0), used_df - 1))
        if used_df > 1
        else float("nan")
    )
    grid = np.linspace(x.min(), x.max(), int(grid_size))
    return DoseResponseResult(
        curve=_spline_curve(fit, knots, grid, z_value(alpha), axis),
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
