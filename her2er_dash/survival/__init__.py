"""Time-to-event analyses: Kaplan-Meier, log-rank, Cox PH (+ cox.zph), RMST, milestone, landmark,
competing risks (cumulative incidence, Gray's test, Fine-Gray), IPTW-adjusted curves.

Every number reproduces R's ``survival`` package (survfit, survdiff, coxph, cox.zph,
print(survfit, rmean=), summary(survfit, times=)) to 1e-6 relative; see tests/test_survival.py.
Everything is vectorised with numpy so that a page stays interactive at 1,000,000 patients.

Conventions shared by every function: ``time`` and ``event`` name columns of ``df`` (event 0/1);
rows missing any needed value are excluded and counted in ``.exclusions``; data that cannot
support the analysis raises :class:`~her2er_dash.errors.AnalysisError`.
"""


from __future__ import annotations

from ._common import ADJUST_METHODS, ALL_LABEL, CONF_TYPES
from .adjusted import (
    AdjustedSurvivalResult,
    PropensityWeights,
    WeightedKaplanMeierResult,
    iptw_kaplan_meier,
    propensity_weights,
    weighted_kaplan_meier,
)
from .competing import (
    CumulativeIncidenceResult,
    FineGrayResult,
    cause_specific,
    competing_frame,
    cumulative_incidence,
    fine_gray,
)
from .cox import CoxResult, cox, cox_fit_arrays
from .km import KaplanMeierResult, kaplan_meier
from .landmark import KNOWN_AT_SURGERY, LANDMARK_METHODS, landmark, needs_landmark, pcr_landmark
from .logrank import LogrankResult, logrank, logrank_arrays, p_adjust
from .rmst import MilestoneResult, RMSTResult, milestone, rmst

__all__ = [
    "ADJUST_METHODS",
    "AdjustedSurvivalResult",
    "ALL_LABEL",
    "KNOWN_AT_SURGERY",
    "LANDMARK_METHODS",
    "CONF_TYPES",
    "CoxResult",
    "CumulativeIncidenceResult",
    "FineGrayResult",
    "KaplanMeierResult",
    "LogrankResult",
    "MilestoneResult",
    "PropensityWeights",
    "RMSTResult",
    "WeightedKaplanMeierResult",
    "cause_specific",
    "competing_frame",
    "cox",
    "cox_fit_arrays",
    "cumulative_incidence",
    "fine_gray",
    "iptw_kaplan_meier",
    "kaplan_meier",
    "landmark",
    "logrank",
    "logrank_arrays",
    "milestone",
    "needs_landmark",
    "p_adjust",
    "pcr_landmark",
    "propensity_weights",
    "rmst",
    "weighted_kaplan_meier",
]
