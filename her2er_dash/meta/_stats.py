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

