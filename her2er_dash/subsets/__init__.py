"""The ER-driven HER2+ subset: which HER2+ tumours look driven by ER rather than by HER2.

Five views of one question (which HER2+/ER+ tumours are driven by ER and might need less
chemotherapy), each within HER2-positive disease by default (``her2="positive"``; ``None``
analyses every row):

* :func:`subtype_response`: pCR by intrinsic (PAM50) or BluePrint subtype x HR (or ER) status,
  subtype contrasts within each HR stratum, and likelihood-ratio (LR) tests of subtype beyond HR
  status and of HR status beyond subtype;
* :func:`signature_response` / :func:`signature_scan`: pCR along a continuous signature (natural
  spline logistic regression, :func:`her2er_dash.response.dose_response`);
* :func:`signature_surface`: two signatures at once: observed rates in 2-D quantile bins and a
  logistic surface with both signatures and their product;
* :func:`regimen_interaction`: does the association of ER level, luminal signature or HER2 level
  with pCR differ by regimen group (chemotherapy-free, antibody-drug conjugate, chemotherapy)?
* :func:`subtype_survival`: Kaplan-Meier curves by subtype within HER2+ disease, where the cohort
  has survival;

and :func:`availability` says which of them a cohort supports and what it lacks. Modules:
``subtype`` (subtype x HR pCR, survival by subtype), ``signature`` (one signature, two-signature
surface), ``regimen`` (marker x regimen interaction), ``_common`` (HER2 selection, guard rails,
logistic fits).

What these are: associations within one cohort. They are not treatment effects: a tumour type
with a low pCR rate on chemotherapy is not thereby shown to do as well without it; only a
randomised chemotherapy-free arm can show that (see :func:`regimen_interaction`).

Guard rails, shared by every function: a group gets a p-value only with at least
:data:`MIN_GROUP` patients and :data:`MIN_EVENTS` responders and non-responders; models warn
when there are fewer than :data:`MIN_EPV` of the rarer outcome per estimated coefficient.

Logistic models use :mod:`her2er_dash.response`'s maximum-likelihood engine (= R ``glm(family =
binomial)``); LR tests compare nested models on the same patients (= R ``anova(reduced, full,
test = "LRT")``). Numbers are checked against R in ``tests/test_subsets.py``.
"""

from __future__ import annotations

import pandas as pd

from .._data import is_numeric
from ..schema import available_endpoints, event_column, time_column
from ._common import (
    ER_MARKERS,
    HER2_MARKERS,
    LUMINAL_MARKERS,
    MARKER_COLUMNS,
    MIN_EPV,
    MIN_EVENTS,
    MIN_GROUP,
    RECEPTOR_COLUMNS,
    REFERENCE_SUBTYPE,
    REGIMEN_COLUMNS,
    SUBTYPE_COLUMNS,
)
from .regimen import (
    GROUPINGS,
    MODELS,
    REGIMEN_GROUPS,
    SCALES,
    UNGROUPED,
    InteractionResult,
    regimen_group_table,
    regimen_groups,
    regimen_interaction,
)
from .signature import SurfaceResult, signature_response, signature_scan, signature_surface
from .subtype import SubtypeResponse, SubtypeSurvival, subtype_response, subtype_survival

__all__ = [
    "ER_MARKERS",
    "GROUPINGS",
    "HER2_MARKERS",
    "LUMINAL_MARKERS",
    "MARKER_COLUMNS",
    "MIN_EPV",
    "MIN_EVENTS",
    "MIN_GROUP",
    "MODELS",
    "RECEPTOR_COLUMNS",
    "REFERENCE_SUBTYPE",
    "REGIMEN_COLUMNS",
    "REGIMEN_GROUPS",
    "SCALES",
    "SUBTYPE_COLUMNS",
    "UNGROUPED",
    "InteractionResult",
    "SubtypeResponse",
    "SubtypeSurvival",
    "SurfaceResult",
    "availability",
    "default_markers",
    "regimen_group_table",
    "regimen_groups",
    "regimen_interaction",
    "signature_response",
    "signature_scan",
    "signature_surface",
    "subtype_response",
    "subtype_survival",
]


# ---------------------------------------------------------------------------------------------
# What a cohort supports
# ---------------------------------------------------------------------------------------------


def availability(df: pd.DataFrame) -> pd.DataFrame:
    """Which subset analyses ``df`` supports: ``analysis, available, needs, missing, columns``.

    A column counts as present when at least one row has a value. ``missing`` says in words what
    the cohort would need; ``columns`` lists the usable columns found for that analysis.
    """
    has = {c for c in df.columns if df[c].notna().any()}
    pcr = "pcr" in has
    subtypes = [c for c in SUBTYPE_COLUMNS if c in has]
    receptors = [c for c in RECEPTOR_COLUMNS if c in has]
    markers = [c for c in MARKER_COLUMNS if c in has and is_numeric(df[c])]
    endpoints = [e for e in available_endpoints(has) if time_column(e) in has and event_column(e) in has]
    regimens = [c for c in REGIMEN_COLUMNS if c in has]
    # In words, with the canonical names (as code) a column must be mapped to on the Cohort page.
    need_pcr = [] if pcr else ["a pCR column (`pcr`, 0/1)"]
    subtype_column = "a subtype column (BluePrint `blueprint_subtype` or PAM50 `pam50_subtype`)"
    rows = [
        ("pCR by subtype x HR status", "pCR; BluePrint or PAM50 subtype; HR or ER status",
         need_pcr + ([] if subtypes else [subtype_column])
         + ([] if receptors else ["HR or ER status (`hr_status` or `er_status`)"]),
         subtypes + receptors),
        ("pCR along a signature", "pCR; one continuous signature or ER/HER2 level",
         need_pcr + ([] if markers else ["a continuous signature (e.g. `luminal_index`, "
                                          "`er_pgr_avg`, `her2_index`) or ER/HER2 level"]), markers),
        ("Two-signature surface", "pCR; two continuous signatures",
         need_pcr + ([] if len(markers) >= 2 else [f"two continuous signatures (found {len(markers)})"]),
         markers),
        ("Marker x regimen interaction", "pCR; regimen class or arm (two or more groups); a marker",
         need_pcr + ([] if regimens else ["a regimen class or arm (`regimen_class` or `arm`)"])
         + ([] if markers else ["a continuous marker (ER level, luminal or HER2 signature)"]),
         regimens + markers),
        ("Survival by subtype", "a survival endpoint (time and event); a subtype column",
         ([] if endpoints else ["a survival endpoint (e.g. `efs_months` and `efs_event`)"])
         + ([] if subtypes else [subtype_column]),
         endpoints + subtypes),
    ]
    return pd.DataFrame(
        [{"analysis": a, "available": not missing, "needs": needs, "missing": "; ".join(missing),
          "columns": ", ".join(cols)} for a, needs, missing, cols in rows]
    )


def default_markers(columns) -> dict[str, str | None]:
    """The page's default markers among ``columns``: ``{"er": ..., "luminal": ..., "her2": ...}``
    (None where the cohort has none; ``luminal`` is the ER measure when there is no luminal
    signature)."""
    present = [c for c in MARKER_COLUMNS if c in set(columns)]
    er = next((c for c in ER_MARKERS if c in present), None)
    luminal = next((c for c in LUMINAL_MARKERS if c in present and c not in ER_MARKERS), er)
    her2 = next((c for c in HER2_MARKERS if c in present), None)
    return {"er": er, "luminal": luminal, "her2": her2}
