"""Pool one row per study: fixed effect (inverse variance, Mantel-Haenszel) or random effects.

Every number follows ``metafor`` 3.8 (``rma``, ``rma.mh``, ``predict``, ``weights``): DL, REML and
PM estimates of tau² (see :mod:`._tau2`), the Hartung-Knapp(-Sidik-Jonkman) adjustment as
``rma(test = "knha")``, and the prediction interval of ``predict(res)`` (normal quantile, or t with
k - 1 degrees of freedom under Hartung-Knapp). Fixed-effect models (FE, MH) assume tau² = 0, so
their ``pi_low/pi_high`` equal the confidence interval (metafor reports none for them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._data import Exclusions
from ..errors import AnalysisError
from ._stats import _chi2_sf, _normal_quantile, _t_quantile, _two_sided_p
from ._tau2 import _cochran_q, _estimate_tau2, _heterogeneity
from .effects import (
    _Effects,
    _study_effects,
    forest_rows,
)

METHODS: tuple[str, ...] = ("FE", "DL", "REML", "PM", "MH")
RANDOM_EFFECTS_METHODS: tuple[str, ...] = ("DL", "REML", "PM")

METHOD_LABELS: dict[str, str] = {
    "FE": "fixed effect (inverse variance)",
    "DL": "random effects (DerSimonian-Laird)",
    "REML": "random effects (REML)",
    "PM": "random effects (Paule-Mandel)",
    "MH": "fixed effect (Mantel-Haenszel)",
}


@dataclass(frozen=True, eq=False)
class MetaResult:
    """A pooled estimate with its heterogeneity statistics, on the analysis scale.

    ``table`` has one row per study (``study, estimate, se, ci_low, ci_high, weight``, the input
    counts when there were any, and ``excluded``: the reason a study was left out, "" if pooled).
    ``weight`` is in percent and sums to 100 over the pooled studies. ``scale`` names the analysis
    scale ("log OR", "log HR", "logit proportion", ...); use :meth:`summary_frame` for ratios and
    proportions.
    """

    table: pd.DataFrame
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    tau2: float
    i2: float
    h2: float
    q: float
    q_df: int
    p_heterogeneity: float
    pi_low: float
    pi_high: float
    method: str
    hksj: bool
    scale: str
    k: int
    alpha: float
    notes: tuple[str, ...]
    exclusions: Exclusions

    @property
    def label(self) -> str:
        """Row label of the pooled estimate, e.g. ``"Pooled (REML)"``."""
        return f"Pooled ({self.method}, HKSJ)" if self.hksj else f"Pooled ({self.method})"

    def summary_frame(self, *, exponentiate: bool = True) -> pd.DataFrame:
        """Study rows, the pooled row and (random effects only) the prediction-interval row.

        Parameters
        ----------
        exponentiate
            Back-transform estimates and limits: ``exp`` for log scales, inverse logit for logit
            proportions (no change for other scales). ``False`` keeps the analysis scale.

        Returns
        -------
        DataFrame with ``label, kind, estimate, ci_low, ci_high, weight, excluded`` (plus the
        input counts). ``kind`` is "study", "excluded", "pooled" or "prediction"; the prediction
        row has no point estimate, its limits are the prediction interval. ``attrs["scale"]``
        names the scale of the numbers and ``attrs["exclusions"]`` the exclusions.
        """
        return forest_rows(
            self.table,
            pooled={"label": self.label, "estimate": self.estimate, "ci_low": self.ci_low,
                    "ci_high": self.ci_high, "weight": 100.0},
            prediction=(self.pi_low, self.pi_high) if self.method in RANDOM_EFFECTS_METHODS else None,
            scale=self.scale, exclusions=self.exclusions, exponentiate=exponentiate,
        )


def pool(
    table: pd.DataFrame,
    *,
    method: str = "REML",
    hksj: bool = False,
    alpha: float = 0.05,
    measure: str | None = None,
    study: str = "study",
    continuity: float = 0.5,
) -> MetaResult:
    """Pool one row per study into a fixed- or random-effects estimate (as metafor).

    Parameters
    ----------
    table
        One row per study with EITHER ``estimate`` and ``se`` (already on the analysis scale:
        log OR, log HR, ...), OR ``events`` and ``n`` (single proportions, pooled as logits), OR
        ``events_exp, n_exp, events_ref, n_ref`` (2x2 counts, pooled as log odds ratios).
    method
        "FE" (inverse variance), "DL" (DerSimonian-Laird), "REML" (metafor's default), "PM"
        (Paule-Mandel) or "MH" (Mantel-Haenszel; 2x2 counts only, as ``rma.mh``).
    hksj
        Hartung-Knapp(-Sidik-Jonkman) t-based interval (as ``rma(test = "knha")``).
    alpha
        1 - confidence level of every interval.
    measure
        Name of the analysis scale of ``estimate``/``se``: "log OR", "log HR", "log RR", "logit
        proportion" (or "OR", "HR", "RR", "PLO"); any other name is kept and not back-transformed.
        Default: "log ratio" for estimates, "log OR" for counts, "logit proportion" for proportions.
    study
        Column with the study labels (rows are numbered "Study 1", ... when it is absent).
    continuity
        Added to every cell of a study with a zero cell (metafor ``add = 1/2, to = "only0"``).

    Returns
    -------
    MetaResult

    Raises
    ------
    AnalysisError
        Fewer than 2 usable studies, missing columns, negative standard errors or counts, or
        impossible counts (more events than patients).
    """
    _check_options(method, hksj, alpha, continuity)
    effects = _study_effects(table, measure=measure, study=study, continuity=continuity)
    return _pool_effects(effects, method=method, hksj=hksj, alpha=alpha)


def _check_options(method: str, hksj: bool, alpha: float, continuity: float) -> None:
    if method not in METHODS:
        raise AnalysisError(
            f"Unknown pooling method {method!r}. Choose one of {', '.join(METHODS)}."
        )
    if hksj and method == "MH":
        raise AnalysisError(
            "The Hartung-Knapp adjustment is not defined for Mantel-Haenszel pooling. Turn it off "
            "or choose a random-effects method (DL, REML or PM)."
        )
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be between 0 and 1 (e.g. 0.05), not {alpha!r}.")
    if not continuity > 0:
        raise AnalysisError(
            f"The continuity correction must be positive (0.5 is usual), not {continuity!r}."
        )



@dataclass(frozen=True)
class _Pooled:
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    tau2: float
    i2: float
    h2: float
    q: float
    pi_low: float
    pi_high: float
    weights: np.ndarray


def _pool_effects(effects: _Effects, *, method: str, hksj: bool, alpha: float) -> MetaResult:
    table = effects.table.copy()
    used = table["excluded"].eq("").to_numpy()
    k = int(used.sum())
    if k < 2:
        detail = "; ".join(effects.notes[-1:]) if (~used).any() else ""
        raise AnalysisError(
            f"pool needs at least 2 studies with a usable estimate, but {k} "
            f"{'is' if k == 1 else 'are'} left. {detail}".strip()
        )
    yi = table.loc[used, "estimate"].to_numpy(float)
    vi = table.loc[used, "se"].to_numpy(float) ** 2
    if method == "MH":
        if effects.scale != "log OR" or "events_exp" not in table.columns:
            raise AnalysisError(
                "Mantel-Haenszel pooling needs 2x2 counts (events_exp, n_exp, events_ref, n_ref). "
                "Choose FE, DL, REML or PM for estimates with standard errors."
            )
        fit = _fit_mantel_haenszel(table.loc[used], yi, vi, alpha)
    else:
        fit = _fit_inverse_variance(yi, vi, method=method, hksj=hksj, alpha=alpha)
    crit = _normal_quantile(1 - alpha / 2)
    table["ci_low"] = table["estimate"] - crit * table["se"]
    table["ci_high"] = table["estimate"] + crit * table["se"]
    table["weight"] = np.nan
    table.loc[used, "weight"] = fit.weights
    ordered = ["study", "estimate", "se", "ci_low", "ci_high", "weight"]
    table = table[ordered + [c for c in table.columns if c not in ordered]]
    return MetaResult(
        table=table,
        estimate=fit.estimate,
        se=fit.se,
        ci_low=fit.ci_low,
        ci_high=fit.ci_high,
        p_value=fit.p_value,
        tau2=fit.tau2,
        i2=fit.i2,
        h2=fit.h2,
        q=fit.q,
        q_df=k - 1,
        p_heterogeneity=_chi2_sf(fit.q, k - 1),
        pi_low=fit.pi_low,
        pi_high=fit.pi_high,
        method=method,
        hksj=hksj,
        scale=effects.scale,
        k=k,
        alpha=alpha,
        notes=effects.notes + _method_notes(method, hksj, k),
        exclusions=effects.exclusions,
    )


def _method_notes(method: str, hksj: bool, k: int) -> tuple[str, ...]:
    notes = [f"Pooled by {METHOD_LABELS[method]}."]
    if hksj:
        notes.append(
            f"Hartung-Knapp adjustment: interval and p-value use t with {k - 1} degrees of freedom."
        )
    if method == "MH":
        notes.append(
            "The Mantel-Haenszel odds ratio uses the raw counts (no continuity correction); the "
            "study rows and Q use the corrected log odds ratios, as metafor rma.mh."
        )
    if k < 3:
        notes.append(
            f"Only {k} studies: the between-study variance (tau²) and I² are very unreliable; "
            "read heterogeneity statistics and the prediction interval with caution."
        )
    return tuple(notes)


def _fit_inverse_variance(yi, vi, *, method: str, hksj: bool, alpha: float) -> _Pooled:
    k = len(yi)
    fixed_weights = 1.0 / vi
    q = _cochran_q(yi, fixed_weights)
    tau2 = _estimate_tau2(yi, vi, method)
    weights = 1.0 / (vi + tau2)
    estimate = float(np.sum(weights * yi) / np.sum(weights))
    variance = float(1.0 / np.sum(weights))
    if hksj:
        residual = float(np.sum(weights * (yi - estimate) ** 2)) / (k - 1)
        # metafor: a (numerically) perfect fit gives s2w = 0 rather than a tiny positive value
        variance *= residual if residual > np.finfo(float).eps else 0.0
        crit = _t_quantile(1 - alpha / 2, k - 1)
    else:
        crit = _normal_quantile(1 - alpha / 2)
    se = math.sqrt(variance)
    i2, h2 = _heterogeneity(q, k, tau2, fixed_weights, fixed=method == "FE")
    pi_half = crit * math.sqrt(variance + tau2)
    return _Pooled(
        estimate=estimate,
        se=se,
        ci_low=estimate - crit * se,
        ci_high=estimate + crit * se,
        p_value=_two_sided_p(estimate, se, k - 1 if hksj else None),
        tau2=tau2,
        i2=i2,
        h2=h2,
        q=q,
        pi_low=estimate - pi_half,
        pi_high=estimate + pi_half,
        weights=100.0 * weights / weights.sum(),
    )


def _fit_mantel_haenszel(counts: pd.DataFrame, yi, vi, alpha: float) -> _Pooled:
    """Mantel-Haenszel log OR with the Robins-Breslow-Greenland variance (as ``rma.mh``)."""
    a = counts["events_exp"].to_numpy(float)
    b = counts["n_exp"].to_numpy(float) - a
    c = counts["events_ref"].to_numpy(float)
    d = counts["n_ref"].to_numpy(float) - c
    total = a + b + c + d
    r_i, s_i = a * d / total, b * c / total
    p_i, q_i = (a + d) / total, (b + c) / total
    r_sum, s_sum = r_i.sum(), s_i.sum()
    if r_sum == 0 or s_sum == 0:
        raise AnalysisError(
            "The Mantel-Haenszel odds ratio is zero or infinite for these studies (one diagonal of "
            "every 2x2 table is empty). Use an inverse-variance method with continuity correction."
        )
    estimate = math.log(r_sum / s_sum)
    se = math.sqrt(
        0.5
        * (
            np.sum(p_i * r_i) / r_sum**2
            + np.sum(p_i * s_i + q_i * r_i) / (r_sum * s_sum)
            + np.sum(q_i * s_i) / s_sum**2
        )
    )
    k = len(yi)
    q = _cochran_q(yi, 1.0 / vi, centre=estimate)
    i2, h2 = _heterogeneity(q, k, 0.0, 1.0 / vi, fixed=True)
    crit = _normal_quantile(1 - alpha / 2)
    return _Pooled(
        estimate=estimate,
        se=se,
        ci_low=estimate - crit * se,
        ci_high=estimate + crit * se,
        p_value=_two_sided_p(estimate, se, None),
        tau2=0.0,
        i2=i2,
        h2=h2,
        q=q,
        pi_low=estimate - crit * se,
        pi_high=estimate + crit * se,
        weights=100.0 * s_i / s_sum,
    )

