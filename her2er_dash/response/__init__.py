"""Pathologic complete response (pCR): rates, group comparisons, logistic models, dose-response.

A subpackage by method; every name below is importable from ``her2er_dash.response``:

* :mod:`~her2er_dash.response.rates`: ``pcr_rates`` (Wilson, Clopper-Pearson, Jeffreys,
  Agresti-Coull), ``compare`` (risk difference, risk ratio, odds ratio, chi-square, Fisher),
  ``pcr_definitions``, ``binomial_interval``;
* :mod:`~her2er_dash.response.logistic`: ``logistic`` (adjusted odds ratios, optionally within
  study), ``LogisticResult``;
* :mod:`~her2er_dash.response.dose`: ``dose_response`` / ``er_dose_response`` (natural spline
  along any continuous variable / an ER measure), ``observed_bins``, ``spline_knots``,
  ``natural_spline_basis``;
* :mod:`~her2er_dash.response.cutpoint`: ``cutpoint_search`` (search-corrected p-values),
  ``lausen_schumacher_p``.

Every function takes a patient-level DataFrame whose outcome column is 0/1 (1 = pCR by default;
rates and comparisons also take a :class:`~her2er_dash.counts.Counts` table) and returns a tidy
DataFrame or a small frozen result object carrying the row accounting
(:class:`her2er_dash._data.Exclusions`). Numbers are checked against R (``prop.test``,
``binom.test``, ``qbeta``, ``chisq.test``, ``fisher.test``, ``glm``, ``splines::ns``) in
``tests/test_response.py``. The logistic fits share one engine, :mod:`her2er_dash._logit`.
"""

from __future__ import annotations

from .cutpoint import CutpointResult, cutpoint_search, lausen_schumacher_p
from .dose import (
    ER_PERCENT_BINS,
    DoseResponseResult,
    dose_response,
    er_dose_response,
    natural_spline_basis,
    observed_bins,
    spline_knots,
)
from .logistic import MIN_EVENTS_PER_VARIABLE, LogisticResult, logistic
from .rates import (
    INTERVAL_METHODS,
    MIN_GROUP_OUTCOMES,
    MIN_GROUP_PATIENTS,
    binomial_interval,
    compare,
    pcr_definitions,
    pcr_rates,
)

__all__ = [
    "ER_PERCENT_BINS",
    "INTERVAL_METHODS",
    "MIN_EVENTS_PER_VARIABLE",
    "MIN_GROUP_OUTCOMES",
    "MIN_GROUP_PATIENTS",
    "CutpointResult",
    "DoseResponseResult",
    "LogisticResult",
    "binomial_interval",
    "compare",
    "cutpoint_search",
    "dose_response",
    "er_dose_response",
    "lausen_schumacher_p",
    "logistic",
    "natural_spline_basis",
    "observed_bins",
    "pcr_definitions",
    "pcr_rates",
    "spline_knots",
]
