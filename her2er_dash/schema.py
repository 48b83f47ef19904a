"""The canonical cohort model shared by every module.

One row per patient. All times are in months from the cohort's time origin (one of
:data:`TIME_ORIGINS`, a property of the cohort, not of a row). Statuses are the strings
``"positive"`` / ``"negative"`` (missing = NA); events and pCR are 0/1 (missing = NA).

The time model: ``surgery_months`` is each patient's time from the origin to surgery (missing when
unknown or when the patient had no surgery). pCR is known only at surgery, so an analysis that uses
pCR as an exposure for a time-to-event endpoint starts at each patient's surgery (the landmark).
``pcr_definition`` records, per row (usually constant within a study), which definition of pCR the
``pcr`` column follows (one of :data:`PCR_DEFINITIONS`).
"""

from __future__ import annotations

ENDPOINTS: tuple[str, ...] = ("efs", "rfs", "dfs", "drfs", "os")

ENDPOINT_LABELS: dict[str, str] = {
    "efs": "Event-free survival",
    "rfs": "Recurrence-free survival",
    "dfs": "Disease-free survival",
    "drfs": "Distant recurrence-free survival",
    "os": "Overall survival",
}

POSITIVE = "positive"
NEGATIVE = "negative"
STATUS_VALUES: tuple[str, str] = (POSITIVE, NEGATIVE)

#: Measures of ER level a cohort may carry, with their unit for axis labels.
ER_MEASURES: dict[str, str] = {
    "er_percent": "ER (% positive nuclei)",
    "er_allred": "ER Allred score (0-8)",
    "er_hscore": "ER H-score (0-300)",
    "er_fmol": "ER (fmol/mg protein)",
    "esr1_mrna": "ESR1 mRNA (platform units)",
}

#: Where the clock of every time column starts; chosen once per cohort (mapping or bundle).
TIME_ORIGINS: dict[str, str] = {
    "diagnosis": "months since diagnosis",
    "randomisation": "months since randomisation",
    "start of therapy": "months since the start of neoadjuvant therapy",
    "surgery": "months since surgery",
    "not recorded": "months (origin not stated by the source)",
}
#: What a cohort's time origin is when its source does not say (never silently "diagnosis").
UNSTATED_TIME_ORIGIN = "not recorded"
DEFAULT_TIME_ORIGIN = UNSTATED_TIME_ORIGIN

#: pCR definitions met in neoadjuvant trials (field guide), with what each one requires.
PCR_DEFINITIONS: dict[str, str] = {
    "ypT0/is ypN0": "no invasive cancer in breast and axillary nodes; DCIS allowed (FDA-preferred)",
    "ypT0 ypN0": "no invasive or in-situ cancer in breast and axillary nodes",
    "ypT0/is": "no invasive cancer in the breast; nodes not considered (breast pCR)",
    "RCB-0": "residual cancer burden class 0 (equivalent to ypT0/is ypN0)",
    "not recorded": "the source does not say which definition was used",
}

#: Classes of neoadjuvant regimen, for grouping arms across trials. They describe the systemic
#: treatment block that defines the arm (in I-SPY 2 the randomised 12-week block; every I-SPY 2
#: arm was followed by anthracycline-cyclophosphamide before surgery).
REGIMEN_CLASSES: dict[str, str] = {
    "chemotherapy + anti-HER2": "cytotoxic chemotherapy with one or more HER2-directed antibodies "
    "or tyrosine-kinase inhibitors (e.g. paclitaxel + trastuzumab, THP, paclitaxel + neratinib)",
    "chemotherapy + anti-HER2 + other targeted": "the same plus a non-HER2 targeted agent (e.g. "
    "paclitaxel + trastuzumab + MK-2206 or trebananib in I-SPY 2)",
    "anti-HER2 ADC": "a HER2-directed antibody-drug conjugate (T-DM1, trastuzumab deruxtecan), with "
    "or without another anti-HER2 antibody, and no separate cytotoxic drug in the same block; the "
    "conjugate carries a cytotoxic payload, so it is not chemotherapy-free",
    "anti-HER2 only": "HER2-directed antibodies or TKIs without chemotherapy or endocrine therapy",
    "endocrine + anti-HER2": "HER2-directed therapy with endocrine therapy and no chemotherapy",
    "chemotherapy alone": "cytotoxic chemotherapy without targeted, endocrine or immune therapy",
    "chemotherapy + endocrine": "chemotherapy with endocrine therapy in the same block",
    "chemotherapy + other targeted": "chemotherapy with a non-HER2 targeted agent (e.g. veliparib + "
    "carboplatin, ganitumab, ganetespib, MK-2206, trebananib)",
    "chemotherapy + immunotherapy": "chemotherapy with an immune checkpoint inhibitor (e.g. "
    "pembrolizumab)",
    "endocrine therapy": "endocrine therapy alone",
    "mixed (pooled across arms)": "a published result pooled over arms with different regimens "
    "(trial-level rows only)",
    "not recorded": "the source does not say which regimen this patient received",
}

#: PAM50 intrinsic subtypes (Parker et al. 2009), in the spelling the canonical model uses, and
#: claudin-low (Prat et al. 2010), which some studies report beside them.
PAM50_SUBTYPES: tuple[str, ...] = ("LumA", "LumB", "Her2", "Basal", "Normal", "Claudin-low")
#: BluePrint molecular subtypes (Agendia 80-gene signature).
BLUEPRINT_SUBTYPES: tuple[str, ...] = ("Luminal-type", "HER2-type", "Basal-type")

#: Continuous expression or protein signatures (standardised scores; higher = more), with labels.
#: Any cohort may carry them; the bundled I-SPY 2 cohort has all of them (Wolf et al. 2022).
SIGNATURE_COLUMNS: dict[str, str] = {
    "luminal_index": "BluePrint luminal index",
    "er_pgr_avg": "ESR1/PGR mRNA (mean of the two genes)",
    "her2_index": "BluePrint HER2 index",
    "mod7_erbb2": "ERBB2 amplicon module (Mod7_ERBB2)",
    "erbb2_y1248": "Phospho-HER2 Y1248 (protein array)",
    "egfr_y1173": "Phospho-EGFR Y1173 (protein array)",
    "basal_index": "BluePrint basal index",
    "mammaprint_index": "MammaPrint index",
    "proliferation_score": "Proliferation module (Module11_Prolif)",
    "immune_ics5": "Immune cell signature (ICS5)",
}

IDENTIFIER_COLUMNS = ("patient_id", "study", "arm")
STATUS_COLUMNS = ("er_status", "pr_status", "hr_status", "her2_status")
NUMERIC_COLUMNS = (
    "age",
    "er_percent",
    "er_allred",
    "er_hscore",
    "er_fmol",
    "esr1_mrna",
    "pr_percent",
    "her2_ihc",
    "her2_ish_ratio",
    "her2_copy_number",
    "surgery_months",
    *SIGNATURE_COLUMNS,
)
BINARY_COLUMNS = ("pcr",)
CATEGORY_COLUMNS = (
    "her2_category",
    "rcb_class",
    "grade",
    "t_stage",
    "n_stage",
    "regimen_class",
    "pam50_subtype",
    "blueprint_subtype",
)

#: Derived by :func:`her2er_dash.classify.classify_cohort`; not part of the input model.
#: ``er_status`` and ``hr_status`` follow the ER cut-points in force wherever an ER level is known;
#: the statuses the file recorded are kept beside them as ``*_recorded``.
DERIVED_COLUMNS = ("er_category", "er_status_recorded", "hr_status_recorded")

ER_CATEGORIES: tuple[str, ...] = ("ER-negative", "ER-low", "ER-positive")
#: HER2-ultralow (IHC >0 <1+: faint, incomplete membrane staining in <= 10 % of tumour cells) is
#: only known where the IHC column records it (``her2_ihc`` 0.5); elsewhere IHC 0 is HER2-zero.
HER2_CATEGORIES: tuple[str, ...] = ("HER2-positive", "HER2-low", "HER2-ultralow", "HER2-zero")
#: ``her2_ihc`` value of an ultralow IHC result (>0 but <1+), between IHC 0 and 1+.
HER2_IHC_ULTRALOW = 0.5


def time_column(endpoint: str) -> str:
    """Canonical time column of an endpoint, e.g. ``"efs"`` -> ``"efs_months"``."""
    return f"{endpoint}_months"


def event_column(endpoint: str) -> str:
    """Canonical event column of an endpoint, e.g. ``"efs"`` -> ``"efs_event"``."""
    return f"{endpoint}_event"


ENDPOINT_COLUMNS: tuple[str, ...] = tuple(
    c for e in ENDPOINTS for c in (time_column(e), event_column(e))
)

CANONICAL_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "study",
    "arm",
    "regimen_class",
    "age",
    "er_status",
    "er_percent",
    "er_allred",
    "er_hscore",
    "er_fmol",
    "esr1_mrna",
    "pr_status",
    "pr_percent",
    "hr_status",
    "her2_status",
    "her2_ihc",
    "her2_ish_ratio",
    "her2_copy_number",
    "her2_category",
    "pcr",
    "pcr_definition",
    "rcb_class",
    "grade",
    "t_stage",
    "n_stage",
    "pam50_subtype",
    "blueprint_subtype",
    *SIGNATURE_COLUMNS,
    "surgery_months",
    *ENDPOINT_COLUMNS,
)


def available_endpoints(columns) -> list[str]:
    """Endpoints whose time and event columns are both present."""
    cols = set(columns)
    return [e for e in ENDPOINTS if time_column(e) in cols and event_column(e) in cols]


def available_signatures(columns) -> list[str]:
    """Signature columns present among ``columns``, in the order of :data:`SIGNATURE_COLUMNS`."""
    cols = set(columns)
    return [c for c in SIGNATURE_COLUMNS if c in cols]


def available_er_measures(columns) -> list[str]:
    """ER level measures present among ``columns``, in the order of :data:`ER_MEASURES`."""
    cols = set(columns)
    return [m for m in ER_MEASURES if m in cols]


#: Human labels for canonical (and derived) columns, for axes, legends and selectors.
COLUMN_LABELS: dict[str, str] = {
    "patient_id": "Patient ID",
    "study": "Study",
    "arm": "Arm / regimen",
    "regimen_class": "Regimen class",
    "pam50_subtype": "PAM50 subtype",
    "blueprint_subtype": "BluePrint subtype",
    **SIGNATURE_COLUMNS,
    "age": "Age (years)",
    "er_status": "ER status",
    "er_status_recorded": "ER status (as recorded)",
    "er_category": "ER category",
    **ER_MEASURES,
    "pr_status": "PR status",
    "pr_percent": "PR (% positive nuclei)",
    "hr_status": "HR status (ER or PR)",
    "hr_status_recorded": "HR status (as recorded)",
    "her2_status": "HER2 status",
    "her2_ihc": "HER2 IHC score",
    "her2_ish_ratio": "HER2/CEP17 ratio",
    "her2_copy_number": "HER2 copies per cell",
    "her2_category": "HER2 category",
    "pcr": "pCR",
    "pcr_definition": "pCR definition",
    "surgery_months": "Time to surgery (months)",
    "rcb_class": "RCB class",
    "grade": "Grade",
    "t_stage": "T stage",
    "n_stage": "N stage",
    **{time_column(e): f"{ENDPOINT_LABELS[e]} (months)" for e in ENDPOINTS},
    **{event_column(e): f"{ENDPOINT_LABELS[e]} event" for e in ENDPOINTS},
}


def column_label(column: str | None) -> str:
    """The human label of a column (its own name when it has none)."""
    if column is None:
        return ""
    return COLUMN_LABELS.get(column, str(column))


def time_axis_label(origin: str | None, endpoint: str | None = None) -> str:
    """Axis title for a time axis, e.g. "Months since randomisation — Overall survival"."""
    text = TIME_ORIGINS.get(origin or DEFAULT_TIME_ORIGIN, f"months since {origin}")
    text = text[0].upper() + text[1:]
    return f"{text} — {ENDPOINT_LABELS[endpoint]}" if endpoint in ENDPOINT_LABELS else text


#: One line per canonical column: what a source column must hold to be mapped to it.
COLUMN_DESCRIPTIONS: dict[str, str] = {
    "patient_id": "one identifier per patient (the join key between files)",
    "study": "study, trial or GEO series the patient belongs to",
    "arm": "treatment arm or regimen",
    "age": "age at diagnosis, in years",
    "er_status": "ER status as reported: positive / negative",
    "er_percent": "ER: % of tumour nuclei stained (0-100)",
    "er_allred": "ER Allred score (0-8)",
    "er_hscore": "ER H-score (0-300)",
    "er_fmol": "ER by ligand binding, fmol/mg protein",
    "esr1_mrna": "ESR1 mRNA level (platform units)",
    "pr_status": "PR status as reported: positive / negative",
    "pr_percent": "PR: % of tumour nuclei stained (0-100)",
    "hr_status": "hormone-receptor status: positive if ER or PR is positive",
    "her2_status": "HER2 status (ASCO/CAP): positive / negative",
    "her2_ihc": "HER2 IHC score 0, 1+, 2+, 3+",
    "her2_ish_ratio": "HER2/CEP17 ratio by in-situ hybridisation",
    "her2_copy_number": "mean HER2 signals (copies) per cell by ISH",
    "her2_category": "HER2-positive / HER2-low / HER2-zero",
    "pcr": "pathologic complete response at surgery: 1 = pCR, 0 = residual disease",
    "pcr_definition": "which pCR definition a row follows (ypT0/is ypN0, ypT0 ypN0, ...)",
    "rcb_class": "residual cancer burden class 0, I, II, III",
    "grade": "histological grade 1-3",
    "t_stage": "T category of the primary tumour (T1-T4), not the overall stage",
    "n_stage": "N category of the regional nodes (N0-N3)",
    "surgery_months": "time from the time origin to surgery (converted to months)",
    **{time_column(e): f"{ENDPOINT_LABELS[e]}: time to the event or last follow-up"
       for e in ENDPOINTS},
    **{event_column(e): f"{ENDPOINT_LABELS[e]}: 1 = event, 0 = censored" for e in ENDPOINTS},
}
