"""Meta-analysis, exact against R ``metafor``: pooling, meta-regression, influence, GLMM, bias.

Modules by concept (every public name is importable from ``her2er_dash.meta``):

- :mod:`.effects` — study-level effect sizes as ``escalc`` (log OR, logit proportion, continuity
  correction) or given estimates with standard errors;
- :mod:`.pool` — :func:`pool`: fixed effect (inverse variance, Mantel-Haenszel) and random effects
  (DerSimonian-Laird, REML, Paule-Mandel), Hartung-Knapp, prediction interval (``rma``);
- :mod:`.ipd` — :func:`by_study`: two-stage IPD meta-analysis (pCR rate, OR, Cox HR per study);
- :mod:`.regression` — :func:`regress` (meta-regression, ``rma(mods = ~ ...)``) and
  :func:`subgroup` (subgroup pooling with the test for subgroup differences);
- :mod:`.influence` — :func:`leave_one_out` (``leave1out``);
- :mod:`.glmm` — :func:`glmm`: binomial-normal GLMM for proportions and odds ratios from counts
  (``rma.glmm``);
- :mod:`.bias` — :func:`funnel` data and :func:`egger` regression test (``regtest``);
- :mod:`.prognostic` — :func:`ctneobc`: the CTNeoBC pCR → event-free survival analysis by
  hormone-receptor status on any multi-study cohort (two-stage and one-stage), and
  :func:`ctneobc_from_summary` for published per-group hazard ratios.
"""

from __future__ import annotations

from ._tau2 import _reml_loglik as _reml_loglik  # used by tests: the REML likelihood
from .bias import EGGER_MODELS, EGGER_PREDICTORS, EggerResult, FunnelResult, egger, funnel
from .effects import ESTIMATE_COLUMNS, PROPORTION_COLUMNS, TWO_BY_TWO_COLUMNS
from .glmm import GLMM_MEASURES, GLMM_METHODS, GLMM_TESTS, GlmmResult, glmm
from .influence import LeaveOneOutResult, leave_one_out
from .ipd import ANALYSES, by_study
from .pool import METHOD_LABELS, METHODS, RANDOM_EFFECTS_METHODS, MetaResult, pool
from .prognostic import DEFAULT_LANDMARK, CTNeoBCResult, ctneobc, ctneobc_from_summary
from .regression import (
    REGRESSION_METHODS,
    SUBGROUP_TAU2,
    RegressionResult,
    SubgroupResult,
    regress,
    subgroup,
)

__all__ = [
    "ANALYSES",
    "DEFAULT_LANDMARK",
    "EGGER_MODELS",
    "EGGER_PREDICTORS",
    "ESTIMATE_COLUMNS",
    "GLMM_MEASURES",
    "GLMM_METHODS",
    "GLMM_TESTS",
    "METHODS",
    "METHOD_LABELS",
    "PROPORTION_COLUMNS",
    "RANDOM_EFFECTS_METHODS",
    "REGRESSION_METHODS",
    "SUBGROUP_TAU2",
    "TWO_BY_TWO_COLUMNS",
    "CTNeoBCResult",
    "EggerResult",
    "FunnelResult",
    "GlmmResult",
    "LeaveOneOutResult",
    "MetaResult",
    "RegressionResult",
    "SubgroupResult",
    "by_study",
    "ctneobc",
    "ctneobc_from_summary",
    "egger",
    "funnel",
    "glmm",
    "leave_one_out",
    "pool",
    "regress",
    "subgroup",
]
