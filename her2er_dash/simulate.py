"""SYNTHETIC HER2-positive neoadjuvant trials for demonstration, testing and benchmarking.

:func:`trial` draws patients, treatments, pathological response and survival from a generating
model that *encodes the hypothesis* of the dashboard (Nahta R et al., Breast Cancer Res Treat
2012;135:39-48): in HER2+ disease, ER signalling lowers pCR, most steeply without chemotherapy;
pCR predicts event-free survival strongly in ER-negative and weakly in ER-positive tumours; and an
"ER-driven" subset of ER-high HER2+ tumours behaves like luminal disease (low pCR, good EFS on
endocrine therapy). The frame is SYNTHETIC and labelled so (``df.attrs["synthetic"] = True``,
:data:`SYNTHETIC_LABEL`). It is not real patients and must never be presented as evidence.

Calibration targets
-------------------
pCR rates by hormone-receptor (HR) status per arm were set from the published figures collected
in ``data/published_trials.csv`` (pCR definitions differ between trials):

=====================================  =====================  ========================================
Synthetic arm                          target pCR HR+ / HR-   published anchors (HR+ / HR-)
=====================================  =====================  ========================================
Chemo + trastuzumab                    25 % / 48 %            NeoSphere TH 20 / 36.8 %; NeoALTTO
                                                              22.7 / 36.5 %; NOAH 18 / 48 %; NSABP
                                                              B-41 46.7 / 65.5 % (Guiu 2013, Table 3)
Chemo + trastuzumab + pertuzumab       36 % / 65 %            NeoSphere THP 26 / 63.2 %; I-SPY2
                                                              pooled 40 % (n=173) / 68 % (n=90)
                                                              (Yee, JAMA Oncol 2020); WSG-ADAPT
                                                              HR- paclitaxel+HP 90.5 % (n=42)
both chemo + anti-HER2 arms pooled     30 % / 56 %            median of 17 chemo + anti-HER2 arms
                                                              26 % / 56 % (published_trials.csv)
Trastuzumab + pertuzumab (no chemo)    8 % / 30 %             NeoSphere HP 5.9 / 27.3 %; WSG-ADAPT
                                                              HR- HP 36.3 % (92 randomised)
Trastuzumab + pertuzumab + endocrine   20 % / 30 %            TBCRC 006 (lapatinib+trastuzumab,
(no chemo; endocrine if HR+ only)                             letrozole if ER+) 21 / 36 %; WSG-ADAPT
                                                              HR+ trastuzumab+ET 15.1 %;
                                                              NA-PHER2 HP+palbociclib+fulvestrant
                                                              27 % (8/30)
Chemotherapy alone (HER2-negative)     12 % / 32 %            generator assumption (HER2-low/zero
                                                              disease; not a HER2+ anchor)
=====================================  =====================  ========================================

Prognostic value of pCR (EFS hazard ratio, pCR vs no pCR, landmark at surgery): about 0.3 in
ER-negative and 0.6-0.7 in ER-positive HER2+ tumours. This pCR x ER interaction is **the
generator's assumption** -- the hypothesis under study, written into the model -- not a finding:
whatever the app shows about it on synthetic data it shows because it was put there. The
published evidence is mixed: CTNeoBC (Cortazar, Lancet 2014) HER2+/HR- with trastuzumab EFS HR
0.15 (0.09-0.27); WSG-ADAPT HR+ iDFS HR 0.40 (0.18-0.85); a real-world cohort (Hamy-Petit, Br J
Cancer 2015) found pCR prognostic in HR- but not HR+; while I-SPY2 (Yee et al., JAMA Oncol
2020;6(9), doi:10.1001/jamaoncol.2020.2535, Table) found EFS HRs of 0.15 (0.03-0.63) in HR+/HER2+ and 0.14 (0.05-0.41) in
HR-/HER2+ disease, i.e. no interaction. Rates achieved are checked in ``tests/test_simulate.py``.

Model
-----
* ER % per HER2+ patient: 40 % ER 0, 9 % ER-low (1-10 %), 51 % 11-100 % skewed high; Allred and
  H-score follow the ER % and a drawn staining intensity; PR correlates with ER.
* pCR: ``logit p = alpha[arm] + beta[arm] * ER%/100 + driven_shift[arm] * driven + 0.35 * G3
  - 0.35 * (T3/T4) + study effect``; ER-negative/PR-negative patients (HR-) have ER%/100 = 0,
  so alpha sets the HR- rate and beta the fall with ER level (steepest, on the odds scale,
  without chemotherapy). ER-driven tumours (40 % of HER2+ with ER > 50 %) have a lower pCR
  unless given endocrine therapy.
* Surgery: each patient's time from diagnosis to surgery is uniform on
  :data:`SURGERY_WINDOW_MONTHS` (3-9 months; ``surgery_months``), so that a fixed landmark and
  the per-patient landmark at surgery give different answers and can be told apart in tests.
* Events: a small hazard before surgery (progression on treatment) and other-cause death; a
  patient with either before her surgery has no surgery, so ``pcr``, ``rcb_class`` and
  ``surgery_months`` are missing (an intention-to-treat analysis counts her as non-pCR). After
  surgery, a Weibull recurrence hazard in time since surgery with proportional effects of pCR
  (hazard ratio moving from 0.28 at ER 0 to 0.62 at ER >= 50 %, against RCB-II residual disease),
  RCB class, nodal and T stage, grade, ER level, the ER-driven subset (all HR+ patients get
  adjuvant endocrine therapy) and study; other-cause death rising with age; death after
  recurrence. EFS = first of progression, recurrence or death; OS = death.
* pCR is defined as ypT0/is ypN0 (RCB-0); the time origin of every time column is diagnosis.
* Administrative censoring: uniform accrual, follow-up 36-120 months from diagnosis.
* With ``n_studies > 1``, studies differ in size (Dirichlet weights), pCR intercept (SD 0.25 on
  the logit scale) and baseline hazard (SD 0.15 on the log scale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import AnalysisError
from .schema import HER2_CATEGORIES, NEGATIVE, POSITIVE

SYNTHETIC_LABEL = "SYNTHETIC data — generated by her2er_dash.simulate, not real patients"

#: Months from diagnosis to surgery: each patient's time is uniform on this window.
SURGERY_WINDOW_MONTHS = (3.0, 9.0)
#: Where every time column starts, and what ``pcr`` means (see her2er_dash.schema).
TIME_ORIGIN = "diagnosis"
PCR_DEFINITION = "ypT0/is ypN0"
#: What the synthetic data assume rather than show, for banners and methods text.
ASSUMPTIONS = (
    "pCR rates by arm and HR status are calibrated to published trials; everything else is the "
    "generator's model.",
    "pCR is built to be strongly prognostic in ER-negative and weakly in ER-positive disease "
    "(EFS hazard ratio 0.28 at ER 0 vs 0.62 at ER >= 50 %): this pCR x ER interaction is the "
    "generator's assumption, not a finding. I-SPY2 found similar EFS hazard ratios in HR+ (0.15) "
    "and HR- (0.14) HER2+ disease.",
    "Surgery falls 3-9 months after diagnosis (uniform); patients progressing or dying before it "
    "have no surgery and no pCR result.",
)

HER2_POSITIVE_ARMS: tuple[str, ...] = (
    "Chemo + trastuzumab",
    "Chemo + trastuzumab + pertuzumab",
    "Trastuzumab + pertuzumab (no chemo)",
    "Trastuzumab + pertuzumab + endocrine (no chemo)",
)
HER2_NEGATIVE_ARM = "Chemotherapy alone (HER2-negative)"
ARMS: tuple[str, ...] = (*HER2_POSITIVE_ARMS, HER2_NEGATIVE_ARM)

#: Which arms include chemotherapy / endocrine therapy (endocrine only for HR+ patients).
ARM_HAS_CHEMO = (True, True, False, False, True)
ARM_HAS_ENDOCRINE = (False, False, False, True, False)

#: Calibrated pCR targets per arm: (HR+, HR-), see the module docstring for the sources.
PCR_TARGETS: dict[str, tuple[float, float]] = {
    "Chemo + trastuzumab": (0.25, 0.48),
    "Chemo + trastuzumab + pertuzumab": (0.36, 0.65),
    "Trastuzumab + pertuzumab (no chemo)": (0.08, 0.30),
    "Trastuzumab + pertuzumab + endocrine (no chemo)": (0.20, 0.30),
    HER2_NEGATIVE_ARM: (0.12, 0.32),
}

# pCR model per arm (order of ARMS): intercept, slope on ER%/100, shift for ER-driven tumours.
# Solved numerically so that the rates by HR status match PCR_TARGETS (see tests).
_PCR_ALPHA = np.array([-0.200, 0.522, -0.979, -0.979, -0.885])
_PCR_BETA = np.array([-1.317, -1.558, -3.085, -0.813, -1.887])
_PCR_DRIVEN_SHIFT = np.array([-1.0, -1.0, -1.0, 0.0, 0.0])
_PCR_GRADE3 = 0.35
_PCR_T34 = -0.35

# Survival model (months).
_PRE_SURGERY_HAZARD = 0.002  # progression on neoadjuvant therapy, per month
_WEIBULL_SHAPE = 0.85
_WEIBULL_SCALE = 0.0070  # cumulative hazard lambda * t**k for the reference patient
#: EFS hazard ratio of pCR vs RCB-II residual disease after surgery, at ER 0 % and at ER >= 50 %
#: (linear in between on the log scale): the generator's assumed pCR x ER interaction.
PCR_EFS_HR_ER0 = 0.28
PCR_EFS_HR_ER_HIGH = 0.62
_LOG_HR_PCR_ER0 = np.log(PCR_EFS_HR_ER0)
_LOG_HR_PCR_ERHIGH = np.log(PCR_EFS_HR_ER_HIGH)
_LOG_HR_RCB = {1: -0.3, 2: 0.0, 3: 0.6}
_LOG_HR_DRIVEN = np.log(0.5)
_LOG_HR_N = np.array([0.0, 0.3, 0.6, 0.9])
_LOG_HR_T = np.array([-0.2, 0.0, 0.2, 0.4])
_LOG_HR_G3 = 0.15
_LOG_HR_ER_LEVEL = -0.3
_LOG_HR_HER2_NEGATIVE = 0.2


def trial(
    n: int = 1000, *, seed: int = 20121, n_studies: int = 1, her2_low_share: float = 0.15
) -> pd.DataFrame:
    """A SYNTHETIC HER2+ neoadjuvant trial in the canonical columns (one row per patient).

    Parameters
    ----------
    n : number of patients.
    seed : seed of the numpy random Generator; the same seed gives the identical frame.
    n_studies : number of studies ("SYN-01", "SYN-02", ...), of random sizes and effects.
    her2_low_share : share of HER2-negative (HER2-low or HER2-zero) patients, all given
        "Chemotherapy alone (HER2-negative)". About 65 % of them are HER2-low.

    Returns
    -------
    DataFrame with ``attrs["synthetic"] = True``, ``attrs["label"] = SYNTHETIC_LABEL``,
    ``attrs["time_origin"] = "diagnosis"`` and ``attrs["pcr_definition"]``. Times are months
    from diagnosis; ``surgery_months`` is each patient's surgery (3-9 months; missing, with
    ``pcr``, for patients who progressed or died before it); only EFS and OS.
    """
    _check_arguments(n, n_studies, her2_low_share)
    rng = np.random.default_rng(seed)
    her2_pos = rng.random(n) >= her2_low_share
    study = _draw_studies(rng, n, n_studies)
    arm = np.where(her2_pos, rng.integers(0, len(HER2_POSITIVE_ARMS), n), len(ARMS) - 1)
    age = np.clip(np.round(rng.normal(51.0, 11.0, n)), 24, 85)
    er = _draw_er(rng, her2_pos)
    pr = _draw_pr(rng, er["er_percent"])
    her2 = _draw_her2(rng, her2_pos)
    hr_pos = (er["er_percent"] >= 1) | (pr >= 1)
    stage = _draw_stage(rng, hr_pos)
    driven = her2_pos & (er["er_percent"] > 50) & (rng.random(n) < 0.4)
    study_effects = _study_effects(rng, n_studies)
    pcr = _draw_pcr(rng, arm, er["er_percent"], driven, stage, study_effects[0][study])
    times = _draw_survival(
        rng,
        _Patients(age, er["er_percent"], hr_pos, her2_pos, driven, stage, arm, study),
        pcr,
        study_effects[1][study],
    )
    labels = [f"SYN-{i + 1:02d}" for i in range(n_studies)]
    return _assemble(n, labels, study, arm, age, er, pr, hr_pos, her2, stage, times)


# -- arguments and structure ------------------------------------------------------------------


def _check_arguments(n, n_studies, her2_low_share) -> None:
    if int(n) != n or n < 1:
        raise AnalysisError(f"n must be a whole number of patients >= 1; got {n!r}.")
    if int(n_studies) != n_studies or not 1 <= n_studies <= 99:
        raise AnalysisError(f"n_studies must be a whole number from 1 to 99; got {n_studies!r}.")
    if not 0.0 <= her2_low_share <= 1.0:
        raise AnalysisError(f"her2_low_share must be between 0 and 1; got {her2_low_share!r}.")


def _draw_studies(rng: np.random.Generator, n: int, n_studies: int) -> np.ndarray:
    if n_studies == 1:
        return np.zeros(n, dtype=np.int64)
    weights = rng.dirichlet(np.full(n_studies, 5.0))
    return rng.choice(n_studies, size=n, p=weights)


def _study_effects(rng: np.random.Generator, n_studies: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-study shift of the pCR logit and of the log hazard (none for a single study)."""
    if n_studies == 1:
        return np.zeros(1), np.zeros(1)
    return rng.normal(0.0, 0.25, n_studies), rng.normal(0.0, 0.15, n_studies)


# -- biomarkers -------------------------------------------------------------------------------


def _draw_er(rng: np.random.Generator, her2_pos: np.ndarray) -> dict[str, np.ndarray]:
    """ER % (mixture of 0, ER-low and high), Allred score and H-score consistent with it."""
    n = len(her2_pos)
    u = rng.random(n)
    p_zero = np.where(her2_pos, 0.40, 0.25)
    p_low = np.where(her2_pos, 0.09, 0.05)
    zero = u < p_zero
    low = ~zero & (u < p_zero + p_low)
    percent = np.where(
        low,
        rng.integers(1, 11, n),
        np.round(11 + 89 * rng.beta(2.2, 0.9, n)),
    ).astype("float64")
    percent[zero] = 0.0
    # Staining intensity 1 weak / 2 moderate / 3 strong, stronger in ER-high tumours.
    intensity = np.where(
        low,
        1 + (rng.random(n) < 0.3),
        1 + (rng.random(n) < 0.9).astype(int) + (rng.random(n) < 0.6).astype(int),
    )
    intensity = np.where(zero, 0, intensity)
    proportion = np.select(
        [percent == 0, percent <= 10, percent <= 33, percent <= 66], [0, 2, 3, 4], default=5
    )
    allred = (proportion + intensity).astype("float64")
    mean_intensity = np.clip(intensity + rng.uniform(-0.4, 0.4, n), 1.0, 3.0)
    hscore = np.round(percent * mean_intensity)
    return {"er_percent": percent, "er_allred": allred, "er_hscore": hscore}


def _draw_pr(rng: np.random.Generator, er_percent: np.ndarray) -> np.ndarray:
    """PR % correlated with ER: rarely positive without ER, often high when ER is high."""
    n = len(er_percent)
    p_positive = np.where(er_percent == 0, 0.06, np.where(er_percent <= 10, 0.30, 0.70))
    positive = rng.random(n) < p_positive
    level = np.where(
        er_percent == 0,
        rng.integers(1, 31, n),
        np.round(1 + 99 * rng.beta(1.2, 1.2, n) * np.maximum(er_percent, 10) / 100),
    )
    return np.where(positive, level, 0).astype("float64")


def _draw_her2(rng: np.random.Generator, her2_pos: np.ndarray) -> dict[str, np.ndarray]:
    """IHC score and dual-probe ISH consistent with ASCO/CAP 2018 status and HER2 category.

    HER2+: 85 % IHC 3+ (ISH done in 40 %), 15 % IHC 2+ with ISH group 1 (or group 3 in 10 %).
    HER2-negative: 65 % HER2-low (IHC 1+, or IHC 2+ with ISH group 5, or group 4 in 15 %),
    35 % HER2-zero (IHC 0). ISH is missing where it would not be done.
    """
    n = len(her2_pos)
    u = rng.random((4, n))
    ihc = np.where(her2_pos, np.where(u[0] < 0.85, 3.0, 2.0), 0.0)
    her2_low = ~her2_pos & (u[1] < 0.65)
    ihc[her2_low] = np.where(u[2][her2_low] < 0.7, 1.0, 2.0)
    ratio, copies = np.full(n, np.nan), np.full(n, np.nan)
    amplified = her2_pos & ((ihc == 2) | (u[3] < 0.4))
    group3 = her2_pos & (ihc == 2) & (u[1] < 0.10)
    group1 = amplified & ~group3
    strong = np.where(ihc == 3, np.log(2.5), np.log(0.6))
    ratio[group1] = 2.0 + np.exp(rng.normal(strong, 0.6, n))[group1]
    copies[group1] = ratio[group1] * rng.uniform(2.0, 3.0, n)[group1]
    ratio[group3] = rng.uniform(1.4, 1.95, n)[group3]
    copies[group3] = rng.uniform(6.0, 9.0, n)[group3]
    equivocal_neg = her2_low & (ihc == 2)
    group4 = equivocal_neg & (u[3] < 0.15)
    group5 = equivocal_neg & ~group4
    ratio[group4] = rng.uniform(1.2, 1.9, n)[group4]
    copies[group4] = rng.uniform(4.0, 5.9, n)[group4]
    ratio[group5] = rng.uniform(0.8, 1.9, n)[group5]
    copies[group5] = rng.uniform(1.5, 3.9, n)[group5]
    category = np.where(her2_pos, 0, np.where(ihc == 0, HER2_CATEGORIES.index("HER2-zero"), 1))
    return {
        "her2_ihc": ihc,
        "her2_ish_ratio": np.round(ratio, 2),
        "her2_copy_number": np.round(copies, 1),
        "her2_category": category,
        "her2_pos": her2_pos,
    }


def _draw_stage(rng: np.random.Generator, hr_pos: np.ndarray) -> dict[str, np.ndarray]:
    """Grade (1-3, more grade 3 in HR-), T stage (1-4) and N stage (0-3) as integer codes."""
    n = len(hr_pos)
    p_g3 = np.where(hr_pos, 0.50, 0.70)
    u = rng.random(n)
    grade = np.where(u < p_g3, 3, np.where(u < p_g3 + 0.06, 1, 2))
    t_stage = 1 + np.searchsorted(np.cumsum([0.15, 0.55, 0.20]), rng.random(n))
    n_stage = np.searchsorted(np.cumsum([0.40, 0.40, 0.12]), rng.random(n))
    return {"grade": grade, "t_stage": t_stage, "n_stage": n_stage}


# -- response and survival --------------------------------------------------------------------


def _pcr_probability(arm, er_percent, driven, stage, study_shift) -> np.ndarray:
    logit = (
        _PCR_ALPHA[arm]
        + _PCR_BETA[arm] * er_percent / 100.0
        + _PCR_DRIVEN_SHIFT[arm] * driven
        + _PCR_GRADE3 * (stage["grade"] == 3)
        + _PCR_T34 * (stage["t_stage"] >= 3)
        + study_shift
    )
    return 1.0 / (1.0 + np.exp(-logit))


def _draw_pcr(rng, arm, er_percent, driven, stage, study_shift) -> np.ndarray:
    return rng.random(len(arm)) < _pcr_probability(arm, er_percent, driven, stage, study_shift)


class _Patients:
    """Per-patient covariates the survival model needs (plain holder, arrays of length n)."""

    def __init__(self, age, er_percent, hr_pos, her2_pos, driven, stage, arm, study):
        self.age, self.er_percent, self.hr_pos, self.her2_pos = age, er_percent, hr_pos, her2_pos
        self.driven, self.stage, self.arm, self.study = driven, stage, arm, study


def _recurrence_log_hazard(p: _Patients, pcr: np.ndarray, rcb: np.ndarray) -> np.ndarray:
    """Log hazard ratio of recurrence after surgery relative to the reference patient."""
    er_level = p.er_percent / 100.0
    weight = np.minimum(er_level / 0.5, 1.0)
    log_hr_pcr = _LOG_HR_PCR_ER0 + weight * (_LOG_HR_PCR_ERHIGH - _LOG_HR_PCR_ER0)
    rcb_effect = np.select([rcb == 1, rcb == 3], [_LOG_HR_RCB[1], _LOG_HR_RCB[3]], 0.0)
    return (
        np.where(pcr, log_hr_pcr, rcb_effect)
        + _LOG_HR_N[p.stage["n_stage"]]
        + _LOG_HR_T[p.stage["t_stage"] - 1]
        + _LOG_HR_G3 * (p.stage["grade"] == 3)
        + _LOG_HR_ER_LEVEL * er_level
        + _LOG_HR_DRIVEN * p.driven
        + _LOG_HR_HER2_NEGATIVE * ~p.her2_pos
    )


def _draw_survival(rng, p: _Patients, pcr: np.ndarray, study_shift: np.ndarray) -> dict:
    """EFS/OS times and events (months from diagnosis), surgery time, RCB class and final pCR."""
    n = len(pcr)
    progression = rng.exponential(1.0 / _PRE_SURGERY_HAZARD, n)
    other_death = rng.exponential(1.0 / (0.0002 * np.exp(0.08 * (p.age - 50))), n)
    rcb_draw = rng.random(n)
    recurrence_draw = rng.exponential(1.0, n)
    after_recurrence = rng.exponential(np.where(p.hr_pos, 48.0, 30.0))
    follow_up = rng.uniform(36.0, 120.0, n)
    surgery = rng.uniform(*SURGERY_WINDOW_MONTHS, n)  # drawn last: earlier draws stay as they were
    early = progression < surgery
    no_surgery = early | (other_death < surgery)
    pcr = pcr & ~no_surgery
    rcb = np.where(pcr, 0, 1 + np.searchsorted([0.25, 0.75], rcb_draw))
    log_hr = _recurrence_log_hazard(p, pcr, rcb) + study_shift
    # Weibull: cumulative hazard lambda * exp(lp) * s**k = E, E ~ Exp(1), s = time since surgery.
    since_surgery = (recurrence_draw / (_WEIBULL_SCALE * np.exp(log_hr))) ** (1.0 / _WEIBULL_SHAPE)
    recurrence = np.where(early, progression, surgery + since_surgery)
    death = np.minimum(other_death, recurrence + after_recurrence)
    efs_time = np.minimum.reduce([recurrence, other_death, follow_up])
    os_time = np.minimum(death, follow_up)
    return {
        "pcr": np.where(no_surgery, np.nan, pcr.astype("float64")),
        "rcb": np.where(no_surgery, -1, rcb),
        "surgery_months": np.where(no_surgery, np.nan, np.round(surgery, 2)),
        "efs_months": np.round(efs_time, 2),
        "efs_event": (np.minimum(recurrence, other_death) <= follow_up),
        "os_months": np.round(os_time, 2),
        "os_event": death <= follow_up,
    }


# -- output -----------------------------------------------------------------------------------


#: Index 0 -> negative, 1 -> positive; indexing shares two string objects across all rows.
_STATUS_LOOKUP = np.array([NEGATIVE, POSITIVE], dtype=object)


def _status(mask: np.ndarray) -> np.ndarray:
    return _STATUS_LOOKUP[mask.astype(np.intp)]


def _ordered(codes: np.ndarray, levels: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype("int8"), categories=levels, ordered=True)


def _patient_ids(n: int) -> np.ndarray:
    # One str per patient is unavoidable; building them directly avoids numpy's 4-byte-per-char
    # unicode temporaries (three of them would cost ~130 MB at 1M patients).
    width = max(6, len(str(n)))
    ids = np.empty(n, dtype=object)
    ids[:] = [f"SYN-{i:0{width}d}" for i in range(1, n + 1)]
    return ids


def _assemble(n, study_labels, study, arm, age, er, pr, hr_pos, her2, stage, times) -> pd.DataFrame:
    her2_status = _status(her2["her2_pos"])
    df = pd.DataFrame(
        {
            "patient_id": _patient_ids(n),
            "study": pd.Categorical.from_codes(study, categories=study_labels),
            "arm": pd.Categorical.from_codes(arm, categories=list(ARMS)),
            "age": age,
            "er_status": _status(er["er_percent"] >= 1),
            "er_percent": er["er_percent"],
            "er_allred": er["er_allred"],
            "er_hscore": er["er_hscore"],
            "pr_status": _status(pr >= 1),
            "pr_percent": pr,
            "hr_status": _status(hr_pos),
            "her2_status": her2_status,
            "her2_ihc": her2["her2_ihc"],
            "her2_ish_ratio": her2["her2_ish_ratio"],
            "her2_copy_number": her2["her2_copy_number"],
            "her2_category": _ordered(her2["her2_category"], list(HER2_CATEGORIES)),
            "pcr": times["pcr"],
            "pcr_definition": pd.Categorical.from_codes(
                np.zeros(n, dtype="int8"), categories=[PCR_DEFINITION]
            ),
            "rcb_class": _ordered(times["rcb"], ["RCB-0", "RCB-I", "RCB-II", "RCB-III"]),
            "grade": _ordered(stage["grade"] - 1, ["G1", "G2", "G3"]),
            "t_stage": _ordered(stage["t_stage"] - 1, ["T1", "T2", "T3", "T4"]),
            "n_stage": _ordered(stage["n_stage"], ["N0", "N1", "N2", "N3"]),
            "surgery_months": times["surgery_months"],
            "efs_months": times["efs_months"],
            "efs_event": times["efs_event"].astype("int8"),
            "os_months": times["os_months"],
            "os_event": times["os_event"].astype("int8"),
        },
        copy=False,  # every array is freshly made here: sharing them avoids a second copy
    )
    df.attrs["synthetic"] = True
    df.attrs["label"] = SYNTHETIC_LABEL
    df.attrs["time_origin"] = TIME_ORIGIN
    df.attrs["pcr_definition"] = PCR_DEFINITION
    return df
