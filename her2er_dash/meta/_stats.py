"""Distribution functions shared by the meta-analysis modules.

scipy is imported inside the functions so that importing :mod:`her2er_dash.meta` stays cheap at
app start-up.
"""

from __future__ import annotations


def _normal_quantile(p: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(p))


def _t_quantile(p: float, df: int) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def _chi2_sf(x: float, df: int) -> float:
    from scipy.special import chdtrc

    return float(chdtrc(df, x))


def _two_sided_p(estimate: float, se: float, df: int | None) -> float:
    from scipy.special import ndtr, stdtr

    if se == 0:
        return 0.0 if estimate != 0 else 1.0
    z = -abs(estimate / se)
    return float(2.0 * (ndtr(z) if df is None else stdtr(df, z)))



def _two_sided_p_array(estimate, se, df: int | None):
    """Vectorised :func:`_two_sided_p` (normal, or t with ``df`` degrees of freedom)."""
    import numpy as np
    from scipy.special import ndtr, stdtr

    estimate, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = -np.abs(estimate / se)
    p = 2.0 * (ndtr(z) if df is None else stdtr(df, z))
    zero_se = se == 0
    return np.where(zero_se, np.where(estimate != 0, 0.0, 1.0), p)


def _f_sf(x: float, df1: int, df2: int) -> float:
    from scipy.special import fdtrc

    return float(fdtrc(df1, df2, x))
