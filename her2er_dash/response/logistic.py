"""Logistic regression of pCR on clinical terms: adjusted odds ratios, optionally within study.

Maximum likelihood by Newton-Raphson (:mod:`her2er_dash._logit`, = R ``glm(family = binomial)``),
Wald CIs ``exp(beta ± z·se)`` (= ``exp(confint.default(fit))``), likelihood-ratio test of the
model; separation, collinearity and single-level terms are refused with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from .. import _logit
from .._data import Exclusions, as_list, z_value
from ..errors import AnalysisError

#: Fewer outcome events (the rarer of responders and non-responders) per estimated coefficient
#: than this make logistic estimates biased (Peduzzi et al., J Clin Epidemiol 1996;49:1373-9).
MIN_EVENTS_PER_VARIABLE = 10


@dataclass(frozen=True)
class LogisticResult:
    """A fitted logistic regression of a 0/1 response.

    ``table`` has one row per model column (intercept excluded; see ``intercept``):
    ``term, coef, se, odds_ratio, ci_low, ci_high, p`` (Wald). ``lr_statistic`` / ``lr_p_value``
    test the whole model against the intercept-only model on ``lr_df`` degrees of freedom; with
    ``strata``, against the model with the study effects only (so they test the terms).
    ``epv``: events per estimated coefficient, counting the rarer outcome (responders or
    non-responders); ``warnings`` says when it is below 10.
    """

    table: pd.DataFrame
    n: int
    events: int
    exclusions: Exclusions
    lr_statistic: float
    lr_df: int
    lr_p_value: float
    aic: float
    loglik: float
    intercept: float
    intercept_se: float
    reference: dict = field(default_factory=dict)
    strata: str | None = None

    @property
    def epv(self) -> float:
        """Events of the rarer outcome per estimated coefficient (intercept excluded)."""
        return min(self.events, self.n - self.events) / max(len(self.table), 1)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Plain-language cautions about this fit (empty when there is none)."""
        if self.epv >= MIN_EVENTS_PER_VARIABLE:
            return ()
        rarer = min(self.events, self.n - self.events)
        return (
            f"Only {self.epv:.1f} events per estimated coefficient ({rarer:,} in the rarer "
            f"outcome, {len(self.table)} coefficients): below {MIN_EVENTS_PER_VARIABLE}, "
            "odds ratios can be biased away from 1 and their intervals unreliable (Peduzzi et "
            "al. 1996). Use fewer terms or merge sparse levels.",
        )



def logistic(
    df: pd.DataFrame,
    terms: str | Sequence[str],
    *,
    outcome: str = "pcr",
    reference: Mapping | None = None,
    alpha: float = 0.05,
    strata: str | None = None,
) -> LogisticResult:
    """Logistic regression of ``outcome`` on ``terms`` (adjusted odds ratios).

    Parameters
    ----------
    df : patient-level data.
    terms : column name(s). Numeric columns enter as they are (per-unit odds ratio); other columns
        become treatment dummies labelled ``"col: level vs ref"``.
    outcome : the 0/1 response column.
    reference : ``{"col": "level"}`` reference levels (default: first level in natural order).
    alpha : 1 - confidence level of the Wald CIs.
    strata : a column such as ``"study"`` entered as a fixed effect (own intercept per level, R
        ``glm(outcome ~ terms + study)``): the odds ratios are within-study; the study
        coefficients are not reported. Patients missing it are excluded (counted).

    Raises
    ------
    AnalysisError
        on empty data, a constant outcome, a single-level or collinear term, or separation.
    """
    from scipy.stats import chi2 as chi2_dist

    terms = as_list(terms)
    if not terms:
        raise AnalysisError("Choose at least one term for the logistic model.")
    if strata is not None and strata in terms:
        raise AnalysisError(f"{strata!r} is already a term; it cannot also be the stratum.")
    frame, excl = _logit.usable_rows(df, [outcome, *terms, *as_list(strata)], "the logistic model")
    y = _logit.binary_outcome(frame[outcome], outcome)
    _logit.require_both_outcomes(y, outcome, "a logistic model")
    _logit.check_level_separation(frame, terms, y)
    design_terms = [*terms, *as_list(strata)]
    X, names, used_reference = _logit.build_design(frame, design_terms, dict(reference or {}))
    fit = _logit.fit_or_raise(X, y, names)
    n_par = X.shape[1]
    if strata is None:
        null_loglik, n_null = _logit.null_loglik(y), 1
    else:
        X_null, null_names, _ = _logit.build_design(frame, [strata], dict(reference or {}))
        null_loglik, n_null = _logit.fit_or_raise(X_null, y, null_names).loglik, X_null.shape[1]
        used_reference.pop(strata, None)
    table = _logit.wald_table(fit, names, z_value(alpha))
    statistic = max(2 * (fit.loglik - null_loglik), 0.0)
    shown = table.iloc[1 : n_par - (n_null - 1)]  # the study dummies are the last columns
    return LogisticResult(
        table=shown.reset_index(drop=True),
        n=len(y),
        events=int(y.sum()),
        exclusions=excl,
        lr_statistic=statistic,
        lr_df=n_par - n_null,
        lr_p_value=float(chi2_dist.sf(statistic, n_par - n_null)),
        aic=-2 * fit.loglik + 2 * n_par,
        loglik=fit.loglik,
        intercept=float(table["coef"].iloc[0]),
        intercept_se=float(table["se"].iloc[0]),
        reference=used_reference,
        strata=strata,
    )
