"""pCR along one continuous signature (spline) and over two signatures (2-D bins, surface)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import _logit, response
from .._data import Exclusions, is_numeric, z_value
from ..errors import AnalysisError
from ..schema import SIGNATURE_COLUMNS, column_label
from ._common import (
    MARKER_COLUMNS,
    MIN_EPV,
    MIN_GROUP,
    _chain,
    _epv,
    _epv_warning,
    _fit,
    _lr,
    _outcome,
    _select,
)

# ---------------------------------------------------------------------------------------------
# 2. pCR along one signature
# ---------------------------------------------------------------------------------------------


def signature_response(
    df: pd.DataFrame,
    *,
    signature: str = "luminal_index",
    her2: str | None = "positive",
    df_spline: int = 3,
    outcome: str = "pcr",
    alpha: float = 0.05,
    bins=None,
    grid_size: int = 101,
    min_epv: int = MIN_EPV,
) -> response.DoseResponseResult:
    """pCR along a continuous ``signature`` within HER2 ``her2`` disease.

    :func:`her2er_dash.response.dose_response` (natural cubic spline logistic regression with
    ``df_spline`` df, = R ``glm(y ~ ns(x, df))``; observed rates in quintiles unless ``bins``
    says otherwise) on the HER2-selected patients; the exclusions count the HER2 selection too
    and ``note`` warns when there are fewer than ``min_epv`` of the rarer outcome per spline df.
    """
    return _signature_fit(df, signature, her2, df_spline, outcome, alpha, bins, grid_size,
                          min_epv)[0]


def _signature_fit(df, signature, her2, df_spline, outcome, alpha, bins, grid_size, min_epv):
    """The spline result and the HER2-selected complete rows it was fitted on."""
    frame, excl = _select(df, [outcome, signature], her2, f"the response curve along {signature}")
    result = response.dose_response(frame, signature, df_spline=df_spline, outcome=outcome,
                                     alpha=alpha, bins=bins, grid_size=grid_size)
    y = frame[outcome].to_numpy(float)
    notes = [result.note, _epv_warning(_epv(y, result.df_spline), "Spline model", min_epv)]
    return dataclasses.replace(result, exclusions=_chain(excl, result.exclusions),
                               note=" ".join(n for n in notes if n)), frame


def signature_scan(
    df: pd.DataFrame,
    *,
    signatures: Sequence[str] | None = None,
    her2: str | None = "positive",
    df_spline: int = 3,
    outcome: str = "pcr",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every signature at once: spline LR p-values (Holm-adjusted) and the odds ratio per SD.

    One row per signature with values (default: every :data:`MARKER_COLUMNS` column present):
    ``signature, label, n, events, df_spline, p_overall, p_nonlinear, p_overall_holm`` (Holm over
    the rows shown), and ``or_per_sd, or_ci_low, or_ci_high`` from a straight line on the logit
    scale (direction and size at a glance). Signatures that cannot be modelled get a ``note``.
    """
    from ..survival import p_adjust

    present = [c for c in (signatures or MARKER_COLUMNS) if c in df.columns]
    if not present:
        raise AnalysisError("The data has none of the signature columns "
                            f"({', '.join(SIGNATURE_COLUMNS)}).")
    z, rows = z_value(alpha), []
    for name in present:
        row = {"signature": name, "label": column_label(name)}
        try:
            curve, frame = _signature_fit(df, name, her2, df_spline, outcome, alpha, None, 2,
                                          MIN_EPV)
            x = frame[name].to_numpy(float)
            x = x / x.std(ddof=1)
            X = np.column_stack([np.ones(len(x)), x])
            fit = _fit(X, frame[outcome].to_numpy(float), ["(Intercept)", name], name)
            beta, se = fit.beta[1], float(np.sqrt(fit.cov[1, 1]))
            row.update(n=curve.n, events=curve.events, df_spline=curve.df_spline,
                       p_overall=curve.p_overall, p_nonlinear=curve.p_nonlinear,
                       or_per_sd=np.exp(beta), or_ci_low=np.exp(beta - z * se),
                       or_ci_high=np.exp(beta + z * se), note=curve.note)
        except AnalysisError as exc:
            row["note"] = str(exc)
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=[
        "signature", "label", "n", "events", "df_spline", "p_overall", "p_nonlinear",
        "p_overall_holm", "or_per_sd", "or_ci_low", "or_ci_high", "note",
    ])
    tested = table["p_overall"].notna().to_numpy()
    table.loc[tested, "p_overall_holm"] = p_adjust(table.loc[tested, "p_overall"].to_numpy(), "holm")
    table["note"] = table["note"].fillna("")
    return table


# ---------------------------------------------------------------------------------------------
# 3. Two signatures: observed 2-D bins and a fitted logistic surface
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurfaceResult:
    """pCR over two signatures.

    ``observed``: one row per 2-D bin (``bins`` quantile bins per axis): ``x_bin, y_bin, x_from,
    x_to, y_from, y_to`` (bin edges), ``x_mid, y_mid`` (means of the bin's patients; NaN when
    empty), ``n, pcr, rate, ci_low, ci_high`` (Wilson) and ``small`` (fewer than ``min_n``
    patients: the rate is shown as a count only).
    ``coefficients``: ``term, coef, se, odds_ratio, ci_low, ci_high, p`` (Wald) of ``logit P(pCR)
    = b0 + b1 x + b2 y + b3 x y``.
    ``surface``: ``x, y, probability, ci_low, ci_high`` (pointwise, logit scale) on a grid, and
    ``supported``: at least ``min_support`` patients within half a standard deviation (of each
    axis) of the grid point; elsewhere the surface is an extrapolation.
    ``p_interaction``: LR test of ``b3`` (1 df); ``p_overall``: LR test of the model against the
    intercept-only model (3 df); ``epv``: rarer outcome per coefficient.
    """

    observed: pd.DataFrame
    coefficients: pd.DataFrame
    surface: pd.DataFrame
    x: str
    y: str
    lr_interaction: float
    p_interaction: float
    lr_overall: float
    p_overall: float
    n: int
    events: int
    epv: float
    exclusions: Exclusions
    warnings: tuple[str, ...] = ()


def signature_surface(
    df: pd.DataFrame,
    *,
    x: str = "luminal_index",
    y: str = "her2_index",
    her2: str | None = "positive",
    bins: int = 3,
    outcome: str = "pcr",
    alpha: float = 0.05,
    grid_size: int = 41,
    min_n: int = MIN_GROUP,
    min_support: int = 3,
    min_epv: int = MIN_EPV,
) -> SurfaceResult:
    """pCR over two continuous signatures: observed rates in 2-D bins and a logistic surface.

    Parameters
    ----------
    x, y : two numeric columns (e.g. the luminal index and the HER2 index).
    bins : quantile bins per axis (3 = tertiles: 9 cells).
    grid_size : grid points per axis of the fitted surface.
    min_n : cells with fewer patients are flagged ``small`` (no rate in the figure).
    min_support : patients within half an SD needed to show the fitted surface at a grid point.
    """
    if x == y:
        raise AnalysisError("Choose two different signatures for the surface.")
    what = f"the {x} x {y} surface"
    frame, excl = _select(df, [outcome, x, y], her2, what)
    for name in (x, y):
        if not is_numeric(frame[name]):
            raise AnalysisError(f"{name} must be numeric for the surface.")
    out = _outcome(frame, outcome, what)
    u, v = frame[x].to_numpy(float), frame[y].to_numpy(float)
    if np.ptp(u) == 0 or np.ptp(v) == 0:
        raise AnalysisError(f"{x if np.ptp(u) == 0 else y} has a single value: no surface.")
    names = ["(Intercept)", x, y, f"{x}:{y}"]
    X = np.column_stack([np.ones(len(u)), u, v, u * v])
    full = _fit(X, out, names, what)
    additive = _fit(X[:, :3], out, names[:3], what)
    lr_int, p_int = _lr(full.loglik, additive.loglik, 1)
    lr_all, p_all = _lr(full.loglik, _logit.null_loglik(out), 3)
    epv = _epv(out, 3)
    warnings = [w for w in (_epv_warning(epv, "Surface model", min_epv),) if w]
    observed = _surface_bins(u, v, out, int(bins), alpha, min_n)
    if observed["small"].any():
        warnings.append(f"{int(observed['small'].sum())} of {len(observed)} cells have fewer than "
                        f"{min_n} patients: their rates are not shown in the figure.")
    return SurfaceResult(
        observed=observed,
        coefficients=_logit.wald_table(full, names, z_value(alpha)),
        surface=_surface_grid(full, u, v, int(grid_size), z_value(alpha), min_support),
        x=x, y=y, lr_interaction=lr_int, p_interaction=p_int, lr_overall=lr_all, p_overall=p_all,
        n=len(out), events=int(out.sum()), epv=epv, exclusions=excl, warnings=tuple(warnings),
    )  # fmt: skip


def _quantile_codes(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin of each value (quantile bins, upper edges inclusive) and the k + 1 bin edges."""
    if k < 1:
        raise AnalysisError(f"bins must be at least 1 (got {k}).")
    inner = np.unique(np.quantile(x, np.linspace(0, 1, k + 1)[1:-1]))
    edges = np.concatenate([[x.min()], inner[(inner > x.min()) & (inner < x.max())], [x.max()]])
    codes = np.searchsorted(edges[1:-1], x, side="left")
    return codes, edges


def _bin_labels(k: int) -> list[str]:
    return ["low", "middle", "high"] if k == 3 else [f"Q{i}" for i in range(1, k + 1)]


def _surface_bins(u, v, y, k, alpha, min_n) -> pd.DataFrame:
    cu, eu = _quantile_codes(u, k)
    cv, ev = _quantile_codes(v, k)
    ku, kv = len(eu) - 1, len(ev) - 1
    cell = cu * kv + cv
    n = np.bincount(cell, minlength=ku * kv)
    events = np.bincount(cell, weights=y, minlength=ku * kv)
    su = np.bincount(cell, weights=u, minlength=ku * kv)
    sv = np.bincount(cell, weights=v, minlength=ku * kv)
    iu, iv = np.divmod(np.arange(ku * kv), kv)
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = response.binomial_interval(events, n, alpha=alpha)
        rate, mid_u, mid_v = events / n, su / n, sv / n
    empty = n == 0
    lu, lv = _bin_labels(ku), _bin_labels(kv)
    return pd.DataFrame({
        "x_bin": [lu[i] for i in iu], "y_bin": [lv[i] for i in iv],
        "x_from": eu[iu], "x_to": eu[iu + 1], "y_from": ev[iv], "y_to": ev[iv + 1],
        "x_mid": mid_u, "y_mid": mid_v, "n": n, "pcr": events.astype(int), "rate": rate,
        "ci_low": np.where(empty, np.nan, low), "ci_high": np.where(empty, np.nan, high),
        "small": n < min_n,
    })  # fmt: skip


def _surface_grid(fit, u, v, size, z, min_support) -> pd.DataFrame:
    gu, gv = np.linspace(u.min(), u.max(), size), np.linspace(v.min(), v.max(), size)
    U, V = (a.ravel() for a in np.meshgrid(gu, gv, indexing="ij"))
    G = np.column_stack([np.ones(len(U)), U, V, U * V])
    eta = G @ fit.beta
    se = np.sqrt(((G @ fit.cov) * G).sum(axis=1))
    expit = _logit.expit
    return pd.DataFrame({
        "x": U, "y": V, "probability": expit(eta), "ci_low": expit(eta - z * se),
        "ci_high": expit(eta + z * se),
        "supported": _support(u, v, gu, gv, min_support).ravel(),
    })  # fmt: skip


def _support(u, v, gu, gv, min_support) -> np.ndarray:
    """Grid points with at least ``min_support`` patients within half an SD on both axes.

    Patients are counted once into grid cells (O(n)), then neighbourhoods are summed with a 2-D
    cumulative sum, so the cost does not grow with n x grid size."""
    size = len(gu)
    step_u, step_v = gu[1] - gu[0], gv[1] - gv[0]
    iu = np.clip(np.rint((u - gu[0]) / step_u).astype(int), 0, size - 1)
    iv = np.clip(np.rint((v - gv[0]) / step_v).astype(int), 0, size - 1)
    counts = np.zeros((size, size))
    np.add.at(counts, (iu, iv), 1)
    ru = max(int(np.floor(0.5 * u.std(ddof=1) / step_u)), 0)
    rv = max(int(np.floor(0.5 * v.std(ddof=1) / step_v)), 0)
    total = np.zeros((size + 1, size + 1))
    total[1:, 1:] = counts.cumsum(0).cumsum(1)
    lo_u, hi_u = np.clip(np.arange(size) - ru, 0, size), np.clip(np.arange(size) + ru + 1, 0, size)
    lo_v, hi_v = np.clip(np.arange(size) - rv, 0, size), np.clip(np.arange(size) + rv + 1, 0, size)
    window = (total[hi_u][:, hi_v] - total[lo_u][:, hi_v] - total[hi_u][:, lo_v]
              + total[lo_u][:, lo_v])
    return window >= min_support


