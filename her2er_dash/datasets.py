"""Bundled cohorts: three real neoadjuvant cohorts, GBSG2, a synthetic trial and published evidence.

Every bundled cohort comes as a :class:`BundledCohort` that says where it is from, under which
licence, whether it is SYNTHETIC, from which time origin its times count, and — in plain
sentences — what it can and cannot show. ``data/README.md`` says the same in prose, with every
conversion. The real cohorts (I-SPY 1, I-SPY 2, the curated GEO neoadjuvant studies) are
canonical CSV files in ``data/`` written by ``scripts/build_bundled.py`` from the public sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import CohortError
from .schema import (
    BLUEPRINT_SUBTYPES,
    DEFAULT_TIME_ORIGIN,
    HER2_CATEGORIES,
    PAM50_SUBTYPES,
    PCR_DEFINITIONS,
    REGIMEN_CLASSES,
)


def data_dir() -> Path:
    """Where the bundled data files are: inside the installed package (a wheel copies the
    repository's ``data/`` folder to ``her2er_dash/data``), else the repository's ``data/``."""
    installed = Path(__file__).resolve().parent / "data"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[1] / "data"


#: Trial-level table of published pCR by HR status (see data/README.md).
PUBLISHED_CSV = data_dir() / "published_trials.csv"

#: Published hazard ratios of pCR vs no pCR for EFS/OS/... by HR status (see data/README.md).
PUBLISHED_PROGNOSIS_CSV = data_dir() / "published_prognosis.csv"

#: Where the numbers of a published row were read: the study's own paper or abstract ("primary"), a review
#: or report quoting it ("secondary"), or notes quoting such a source ("tertiary").
VERIFICATION_LEVELS: tuple[str, ...] = ("primary", "secondary", "tertiary")

#: Hormone-receptor group of a published prognosis row ("all" = not split by HR status).
PROGNOSIS_HR_STATUSES: tuple[str, ...] = ("positive", "negative", "all")

#: Regimen classes, one vocabulary for patients and published arms (see schema.REGIMEN_CLASSES).
REGIMEN_CLASS_NAMES: tuple[str, ...] = tuple(REGIMEN_CLASSES)

#: The cohort the app opens on and :func:`bundled` returns without a key (see data/README.md).
DEFAULT_BUNDLE = "ispy1"


#: GBSG2 time is in days; months are days / (365.25 / 12).
DAYS_PER_MONTH = 30.4375

#: Progesterone receptor >= 10 fmol/mg protein counts as PR-positive in GBSG2.
PR_FMOL_POSITIVE = 10.0


@dataclass(frozen=True)
class BundledCohort:
    """A bundled data set with its provenance and its limits.

    ``data`` is a canonical, classified DataFrame (trial-level for ``"published"``); ``label`` is
    :data:`her2er_dash.simulate.SYNTHETIC_LABEL` for synthetic data and ``""`` otherwise.
    ``time_origin`` is a key of :data:`her2er_dash.schema.TIME_ORIGINS`: where every time column
    of the cohort starts (also in ``data.attrs["time_origin"]``). ``landmark_months`` is the
    documented time of surgery for a cohort without per-patient surgery dates (the stated fallback
    landmark for pCR as a survival exposure), with ``landmark_reason`` saying where it comes from.
    """

    key: str
    title: str
    data: pd.DataFrame
    synthetic: bool
    label: str
    source: str
    citation: str
    licence: str
    cannot_show: tuple[str, ...]
    kind: str = "patient-level"
    time_origin: str = DEFAULT_TIME_ORIGIN
    can_show: tuple[str, ...] = ()
    landmark_months: float | None = None
    landmark_reason: str = ""


@dataclass(frozen=True)
class _Entry:
    title: str
    kind: str
    synthetic: bool
    source: str
    citation: str
    licence: str
    time_origin: str
    can_show: tuple[str, ...]
    cannot_show: tuple[str, ...]
    file: str | None = None  # canonical CSV in data/ (real patient-level cohorts)
    landmark_months: float | None = None
    landmark_reason: str = ""


_ISPY1_CITATION = (
    "Esserman LJ, Berry DA, DeMichele A, et al. Pathologic complete response predicts "
    "recurrence-free survival more effectively by cancer subset: results from the I-SPY 1 TRIAL - "
    "CALGB 150007/150012, ACRIN 6657. J Clin Oncol 2012;30(26):3242-3249. "
    "doi:10.1200/JCO.2011.39.2779. Data: Newitt D, Hylton N, on behalf of the I-SPY 1 Network and "
    "ACRIN 6657 Trial Team. Multi-center breast DCE-MRI data and segmentations from patients in "
    "the I-SPY 1/ACRIN 6657 trials. The Cancer Imaging Archive 2016. "
    "doi:10.7937/K9/TCIA.2016.HdHpgJLK. Clark K et al. The Cancer Imaging Archive (TCIA). "
    "J Digit Imaging 2013;26:1045-1057."
)

_ISPY2_CITATION = (
    "Wolf DM, Yau C, Wulfkuhle J, et al. Redefining breast cancer subtypes to guide treatment "
    "prioritization and maximize response: predictive biomarkers across 10 cancer therapies. "
    "Cancer Cell 2022;40(6):609-623.e6. doi:10.1016/j.ccell.2022.05.005. GEO accession GSE194040."
)

_CURATED_CITATION = (
    "Planey CR, Butte AJ. Database integration of 4923 publicly-available samples of breast "
    "cancer molecular and clinical data. AMIA Jt Summits Transl Sci Proc 2013:138-142 "
    "(Bioconductor package curatedBreastData). Per study: GSE20194 Popovici V et al. Breast "
    "Cancer Res 2010;12:R5; GSE25055/GSE25065 Hatzis C et al. JAMA 2011;305:1873-1881; GSE22226 "
    "Esserman LJ et al. J Clin Oncol 2012;30:3242-3249 (I-SPY 1); GSE16446 Desmedt C et al. "
    "J Clin Oncol 2011;29:1578-1586; GSE22358 Glück S et al. Breast Cancer Res Treat "
    "2012;132:781-791; GSE32646 Miyake T et al. Cancer Sci 2012;103:913-920; GSE21997 see its "
    "GEO series page."
)

_REGISTRY: dict[str, _Entry] = {
    "ispy1": _Entry(
        title="I-SPY 1 TRIAL: 221 patients, neoadjuvant AC ± taxane, pCR, RCB, RFS and OS",
        kind="patient-level",
        synthetic=False,
        source=(
            "TCIA ISPY1 collection, I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx "
            "(predictors and outcomes sheets), converted by scripts/build_bundled.py"
        ),
        citation=_ISPY1_CITATION,
        licence="CC BY 3.0 (TCIA ISPY1 collection): cite the collection and the paper",
        time_origin="start of therapy",
        file="ispy1.csv.gz",
        landmark_months=6.0,
        landmark_reason=(
            "I-SPY 1 planned four cycles of AC and then a taxane before surgery, about six months "
            "from the start of therapy (Esserman et al. 2012); the workbook has no surgery dates, "
            "so the landmark is this planned time, not each patient's own surgery"
        ),
        can_show=(
            "pCR and RCB by HR, ER, PR and HER2 status (Table 2 of Esserman et al. 2012: HR+/HER2− "
            "8/93, HR−/HER2− 18/51).",
            "Recurrence-free and overall survival by receptor group, and pCR → RFS from a "
            "landmark, by HR or ER status (63 RFS events).",
        ),
        cannot_show=(
            "ER is positive/negative only (Allred score or local call): no ER level, so ER-low "
            "cannot be identified.",
            "The file does not say which HER2+ patients received trastuzumab (20 of 67 did): "
            "their regimen class is 'not recorded', and HER2+ pCR mixes treated and untreated "
            "patients.",
            "No surgery date: the pCR landmark is a fixed time from the start of chemotherapy "
            "(6 months, the planned length of AC then a taxane), not each patient's surgery.",
            "RFS counts from the first day of neoadjuvant chemotherapy, OS from study entry (TCIA "
            "data dictionary); both are shown as months since the start of therapy. In 17 "
            "patients the RFS time exceeds the OS time, so do not subtract one from the other.",
            "Only 67 HER2+ patients (30 with pCR): within-HER2+ survival comparisons are small "
            "and imprecise.",
            "No grade and no clinical T or N stage in the public workbook; six patients without "
            "surgery have no pCR result.",
        ),
    ),
    "ispy2": _Entry(
        title="I-SPY 2 TRIAL: 987 patients, 10 neoadjuvant arms, pCR with BluePrint, PAM50 and "
        "expression signatures",
        kind="patient-level",
        synthetic=False,
        source=(
            "GEO GSE194040 clinical and response-predictive-subtype table "
            "(ispy2_clinical_GSE194040.csv), converted by scripts/build_bundled.py"
        ),
        citation=_ISPY2_CITATION,
        licence="Public GEO data (no restrictions on use): cite the paper and the accession",
        time_origin="not recorded",
        file="ispy2.csv.gz",
        can_show=(
            "pCR by HR and HER2 status (HER2+: HR− 56/89, HR+ 58/156), by arm and regimen class, "
            "and HER2-positive / HER2-low / HER2-zero.",
            "pCR by BluePrint and PAM50 subtype within HER2+ disease (BluePrint Luminal-type "
            "9/60 vs HER2-type 95/164) and along continuous signatures (luminal, ESR1/PGR, HER2, "
            "ERBB2 module, phospho-HER2, basal, proliferation, immune).",
        ),
        cannot_show=(
            "No survival: GSE194040 has no EFS or DRFS, so survival views are unavailable.",
            "HR status only: ER and PR are not given separately and there is no ER level, so ER "
            "categories (ER-low) cannot be formed.",
            "No age, grade or stage.",
            "Arms were adaptively randomised within subtypes against a shared control: compare "
            "arms within an HR/HER2 subtype, not across subtypes.",
            "Every arm's 12-week block was followed by doxorubicin-cyclophosphamide before "
            "surgery: no arm is chemotherapy-free (T-DM1 + pertuzumab included).",
            "The patients with expression arrays (987), not every randomised patient: counts "
            "differ slightly from the arm publications.",
        ),
    ),
    "curated_neoadjuvant": _Entry(
        title="Curated GEO neoadjuvant studies: 8 studies, 1,280 patients, pCR by ER and HER2 "
        "(curatedBreastData)",
        kind="patient-level",
        synthetic=False,
        source=(
            "curatedBreastData clinical table (bcClinicalTable.csv), the 8 neoadjuvant GEO "
            "series with a pathological response, converted by scripts/build_bundled.py"
        ),
        citation=_CURATED_CITATION,
        licence="Public GEO data; curatedBreastData is Bioconductor, GPL (>= 2): cite the package "
        "paper and each study's paper",
        time_origin="not recorded",
        file="curated_neoadjuvant.csv.gz",
        can_show=(
            "pCR by ER and HER2 status per study and pooled across studies (GSE20194 HER2+: ER+ "
            "3/23, ER− 19/31), with ER % of cells and HER2 IHC/FISH in GSE20194.",
            "Two-stage meta-analysis across studies (Evidence page); RCB class in GSE21997, "
            "GSE22226, GSE25055 and GSE25065.",
        ),
        cannot_show=(
            "Survival only in four studies, each with its own endpoint and an origin the source "
            "does not state: RFS and OS in GSE22226, DFS and OS in GSE16446, DFS in GSE25055 and "
            "GSE25065 (few HER2+ patients among them).",
            "ER % of cells only in GSE20194: elsewhere ER is positive/negative, so ER-low comes "
            "from GSE20194 alone.",
            "pCR definitions differ: ypT0/is ypN0 where the study says so (GSE20194, GSE22226, "
            "GSE25055, GSE25065), 'not recorded' elsewhere; GSE21997 has more pCR (15) than "
            "RCB-0 (11).",
            "GSE22226 is the expression subset of I-SPY 1: do not pool it with the I-SPY 1 cohort.",
            "HER2+ patients were mostly treated without trastuzumab (only GSE22358 and 8 "
            "patients of GSE20194 had it): not a picture of modern HER2-directed therapy.",
            "GSE16446 enrolled ER-negative tumours only; GSE25055 and GSE25065 are HER2-negative "
            "(2 exceptions).",
        ),
    ),
    "gbsg2": _Entry(
        title="GBSG2: German Breast Cancer Study Group 2 (686 node-positive patients)",
        kind="patient-level",
        synthetic=False,
        source="lifelines.datasets.load_gbsg2() (originally the TH.data R package, GBSG2)",
        citation=(
            "Schumacher M et al. Randomized 2 x 2 trial evaluating hormonal treatment and the "
            "duration of chemotherapy in node-positive breast cancer patients. J Clin Oncol "
            "1994;12:2086-93."
        ),
        licence="lifelines: MIT; data originally from the TH.data R package (GPL-3)",
        time_origin="not recorded",
        can_show=(
            "Recurrence-free survival by ER (fmol/mg), PR, HR status, grade, stage and hormone "
            "therapy.",
        ),
        cannot_show=(
            "HER2 status is unknown in GBSG2: HER2 filters and HER2-specific views are "
            "unavailable.",
            "GBSG2 has no neoadjuvant treatment and no pCR: response views are unavailable.",
            "ER is a ligand-binding assay (fmol/mg), not % of nuclei: the ASCO/CAP ER-low band "
            "does not apply; ER is positive at >= 10 fmol/mg.",
            "Only recurrence-free survival is recorded: no EFS or OS; the source does not say "
            "from which date it is counted (an adjuvant trial after mastectomy: probably surgery, "
            "but not documented).",
            "T and N stage are derived from tumour size and the number of positive nodes "
            "(pathological); every patient is node-positive, so there is no N0 group.",
        ),
    ),
    "synthetic": _Entry(
        title="SYNTHETIC HER2+ neoadjuvant trial (2,000 simulated patients, 6 studies; teaching "
        "and scale)",
        kind="patient-level",
        synthetic=True,
        source="her2er_dash.simulate.trial(n=2000, seed=20121, n_studies=6)",
        citation=(
            "Generated by her2er_dash.simulate; pCR rates calibrated to published HER2+ "
            "neoadjuvant trials (data/published_trials.csv)."
        ),
        licence="MIT (generator is part of this project)",
        time_origin="diagnosis",
        can_show=(
            "Every view of the app, at any size up to 1,000,000 patients: for teaching the "
            "app and for measuring its speed.",
        ),
        cannot_show=(
            "SYNTHETIC data: every rate, hazard ratio and p-value reflects the generator's "
            "assumptions (the hypothesis under study), not real patients.",
            "ER fmol/mg and ESR1 mRNA are not simulated: only ER %, Allred score and H-score.",
            "Only EFS and OS are simulated: RFS, DFS and DRFS views are unavailable.",
        ),
    ),
    "published": _Entry(
        title="Published HER2+ neoadjuvant trials: pCR by hormone-receptor status",
        kind="trial-level",
        synthetic=False,
        source="data/published_trials.csv (each number with the table, figure or abstract it is printed in)",
        citation=(
            "Per-row citations and source locations; several HR splits are quoted from Guiu S et al., "
            "J Oncol 2013;2013:854121, Table 3 (a secondary source, marked so per row)."
        ),
        licence="Facts cited from the papers and reviews named in each row",
        time_origin="not recorded",
        can_show=(),
        cannot_show=(
            "Trial-level summaries only: no patient-level filters, survival curves or Cox "
            "models.",
            "Most rows print percentages without the number of patients per HR group, so they "
            "cannot be pooled in a forest plot without reconstructed counts (which are never made).",
            "pCR definitions differ between rows (ypT0/is, ypT0/is ypN0, ypT0 ypN0): pooling "
            "needs a warning and a sensitivity analysis.",
            "Many HR splits are quoted from a review (verification 'secondary'), not read in the "
            "trial's own paper.",
        ),
    ),
}

#: Patient-level cohorts read from ``data/`` (real, public), in the order the app lists them.
REAL_PATIENT_LEVEL = tuple(k for k, e in _REGISTRY.items() if e.file is not None)


def list_bundled() -> pd.DataFrame:
    """One row per bundled cohort (real ones first): key, title, kind, synthetic, source, licence,
    time_origin, can_show, cannot_show."""
    rows = [
        {
            "key": key,
            "title": entry.title,
            "kind": entry.kind,
            "synthetic": entry.synthetic,
            "source": entry.source,
            "licence": entry.licence,
            "time_origin": entry.time_origin,
            "can_show": " ".join(entry.can_show),
            "cannot_show": " ".join(entry.cannot_show),
        }
        for key, entry in _REGISTRY.items()
    ]
    return pd.DataFrame(rows)


def bundled(key: str = DEFAULT_BUNDLE, **kwargs) -> BundledCohort:
    """A bundled cohort by key: "ispy1" (default), "ispy2", "curated_neoadjuvant", "gbsg2",
    "synthetic" or "published".

    For ``"synthetic"``, ``kwargs`` override the arguments of :func:`her2er_dash.simulate.trial`
    (defaults n=2000, seed=20121, n_studies=6); the other keys take no arguments.
    """
    if key not in _REGISTRY:
        raise CohortError(
            f"No bundled cohort called {key!r}. Choose one of: {', '.join(_REGISTRY)}."
        )
    if kwargs and key != "synthetic":
        raise CohortError(
            f"The bundled cohort {key!r} takes no options (got {', '.join(kwargs)})."
        )
    entry = _REGISTRY[key]
    label = ""
    if key == "synthetic":
        from .simulate import SYNTHETIC_LABEL

        data, label = _synthetic(**kwargs), SYNTHETIC_LABEL
    elif key == "gbsg2":
        data = gbsg2()
    elif entry.file is not None:
        data = real_cohort(key)
    else:
        data = published_trials()
    if entry.kind == "patient-level":
        data.attrs["time_origin"] = entry.time_origin
    return BundledCohort(
        key=key,
        title=entry.title,
        data=data,
        synthetic=entry.synthetic,
        label=label,
        source=entry.source,
        citation=entry.citation,
        licence=entry.licence,
        cannot_show=entry.cannot_show,
        kind=entry.kind,
        time_origin=entry.time_origin,
        can_show=entry.can_show,
        landmark_months=entry.landmark_months,
        landmark_reason=entry.landmark_reason,
    )


#: Level order of the categorical columns of the canonical files (ordered where the order means
#: something). Levels a cohort does not use are dropped when it is read.
_CATEGORY_LEVELS: dict[str, tuple[tuple[str, ...], bool]] = {
    "regimen_class": (REGIMEN_CLASS_NAMES, False),
    "pam50_subtype": (PAM50_SUBTYPES, False),
    "blueprint_subtype": (BLUEPRINT_SUBTYPES, False),
    "her2_category": (HER2_CATEGORIES, True),
    "pcr_definition": (tuple(PCR_DEFINITIONS), False),
    # RCB-0/I: the source did not separate classes 0 and I (GSE25055, GSE25065)
    "rcb_class": (("RCB-0", "RCB-I", "RCB-0/I", "RCB-II", "RCB-III"), True),
    "grade": (("G1", "G2", "G3"), True),
    "t_stage": (("T0", "T1", "T2", "T3", "T4"), True),
    "n_stage": (("N0", "N1", "N2", "N3", "N+ (not staged)"), True),
}
_TEXT_COLUMNS = ("patient_id", "study", "arm", "regimen", "geo_series", "survival_status")
#: 0/1 columns are float64 with NaN for missing, as :func:`her2er_dash.cohort.load` gives them.
_BINARY_COLUMNS = ("pcr", "efs_event", "rfs_event", "dfs_event", "drfs_event", "os_event",
                   "trastuzumab")


def real_cohort(key: str) -> pd.DataFrame:
    """A real bundled cohort read from its canonical file in ``data/``, classified.

    Statuses are "positive"/"negative", pCR and events 0/1 (missing = NaN), times in months;
    ``study`` and ``arm`` are categorical in sorted order, the other categorical columns follow
    the level order of :mod:`her2er_dash.schema`.
    """
    from .classify import classify_cohort

    entry = _REGISTRY.get(key)
    if entry is None or entry.file is None:
        raise CohortError(f"{key!r} is not a real patient-level bundled cohort. Choose one of: "
                          f"{', '.join(REAL_PATIENT_LEVEL)}.")
    path = data_dir() / entry.file
    if not path.exists():
        raise CohortError(
            f"The bundled cohort file {path} is missing. Rebuild it with "
            "`python scripts/build_bundled.py --source <folder with the public files>`."
        )
    dtypes = {**{c: str for c in _TEXT_COLUMNS}, **{c: "float64" for c in _BINARY_COLUMNS}}
    frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    for column in ("study", "arm"):
        frame[column] = frame[column].astype(pd.CategoricalDtype(sorted(frame[column].unique())))
    for column, (levels, ordered) in _CATEGORY_LEVELS.items():
        if column in frame.columns:
            frame[column] = _categorical(frame[column], levels, ordered, path.name)
    data = classify_cohort(frame)
    data.attrs.update(source=entry.file, time_origin=entry.time_origin)
    return data


def _categorical(values: pd.Series, levels: tuple[str, ...], ordered: bool, name: str) -> pd.Series:
    unknown = sorted(set(values.dropna()) - set(levels))
    if unknown:
        raise CohortError(f"{name}: column {values.name!r} has values outside the canonical "
                          f"levels {list(levels)}: {unknown}. Rebuild the file with "
                          "scripts/build_bundled.py.")
    result = values.astype(pd.CategoricalDtype(list(levels), ordered=ordered))
    return result.cat.remove_unused_categories()


def _synthetic(**kwargs) -> pd.DataFrame:
    from .classify import classify_cohort
    from .simulate import trial

    options = {"n": 2000, "seed": 20121, "n_studies": 6, **kwargs}
    return classify_cohort(trial(**options))


def gbsg2() -> pd.DataFrame:
    """GBSG2 (lifelines) in canonical columns, classified.

    Conversions: horTh yes/no → arm "Hormone therapy"/"No hormone therapy"; estrec → er_fmol;
    progrec → pr_fmol and pr_status (>= 10 fmol/mg positive); tgrade I/II/III → grade G1/G2/G3;
    tsize (mm) → t_stage T1 <= 20, T2 21-50, T3 > 50; pnodes → n_stage N1 1-3, N2 4-9, N3 >= 10
    (pN categories; N0 would be 0 nodes); menostat → menopausal_status; time (days) →
    rfs_months (÷ 30.4375); cens → rfs_event (1 = recurrence or death).
    """
    from lifelines.datasets import load_gbsg2

    from .classify import classify_cohort

    raw = load_gbsg2()
    tsize = raw["tsize"].to_numpy()
    nodes = raw["pnodes"].to_numpy()
    pr = raw["progrec"].astype("float64")
    df = pd.DataFrame(
        {
            "patient_id": [f"GBSG2-{i:03d}" for i in range(1, len(raw) + 1)],
            "study": "GBSG2",
            "arm": np.where(raw["horTh"] == "yes", "Hormone therapy", "No hormone therapy"),
            "age": raw["age"].astype("float64"),
            "er_fmol": raw["estrec"].astype("float64"),
            "pr_fmol": pr,
            "pr_status": np.where(pr >= PR_FMOL_POSITIVE, "positive", "negative").astype(object),
            "grade": pd.Categorical(
                raw["tgrade"].map({"I": "G1", "II": "G2", "III": "G3"}),
                categories=["G1", "G2", "G3"],
                ordered=True,
            ),
            "t_stage": _ordered(np.where(tsize <= 20, 0, np.where(tsize <= 50, 1, 2)), "T", 4, 1),
            "n_stage": _ordered(np.select([nodes == 0, nodes <= 3, nodes <= 9], [0, 1, 2], 3), "N", 4, 0),
            "menopausal_status": raw["menostat"].str.lower().to_numpy(),
            "rfs_months": raw["time"].to_numpy() / DAYS_PER_MONTH,
            "rfs_event": raw["cens"].astype("int8").to_numpy(),
        }
    )
    return classify_cohort(df)


def _ordered(codes: np.ndarray, prefix: str, n_levels: int, first: int) -> pd.Categorical:
    levels = [f"{prefix}{i}" for i in range(first, first + n_levels)]
    return pd.Categorical.from_codes(codes.astype("int8"), categories=levels, ordered=True)


def published_trials() -> pd.DataFrame:
    """Trial-level pCR by HR status from ``data/published_trials.csv``, one row per arm (see data/README.md).

    Rates are fractions 0-1 as printed by the source (or ``events / n`` where the counts are given);
    ``rate_printed_*`` keeps the printed text and ``source_hr_pos`` / ``source_hr_neg`` say where it is
    printed. Counts are nullable integers, empty where the source prints no number: they are never
    reconstructed from percentages. ``regimen_class``, ``pcr_definition`` (one of
    :data:`her2er_dash.schema.PCR_DEFINITIONS`), ``dual_blockade`` and ``verification`` are categoricals.
    ``chemo`` is "yes" for antibody-drug conjugates (their payload is cytotoxic); ``regimen_class`` tells
    them apart from conventional chemotherapy.
    """
    table = _read_published(PUBLISHED_CSV, "published-trials", _TRIAL_COUNTS, _TRIAL_RATES)
    _require_categories(table, PUBLISHED_CSV, {
        "regimen_class": REGIMEN_CLASS_NAMES,
        "dual_blockade": ("yes", "no", "mixed"),
        "chemo": ("yes", "no"),
        "pcr_definition": tuple(PCR_DEFINITIONS),
        "verification": VERIFICATION_LEVELS,
    })
    for group in ("hr_pos", "hr_neg"):
        _require_counts_within(table, PUBLISHED_CSV, f"pcr_events_{group}", f"n_{group}")
        _require_between(table, PUBLISHED_CSV, f"pcr_rate_{group}", 0.0, 1.0)
    return table


def published_prognosis() -> pd.DataFrame:
    """Published hazard ratios of pCR vs no pCR by HR status, from ``data/published_prognosis.csv``.

    One row per study, population, HR group (``hr_status`` "positive", "negative", or "all" for rows
    not split by HR) and endpoint (EFS, DRFS, iDFS, RFS, OS): ``hr`` with ``ci_low``/``ci_high`` (95 %),
    ``printed`` as the source prints it, and ``source_location``. ``n`` and ``events`` are nullable
    integers, empty where not printed. Summary input for contrasting HR+ with HR- (see data/README.md).
    """
    table = _read_published(PUBLISHED_PROGNOSIS_CSV, "published-prognosis", ("n", "events"),
                            ("hr", "ci_low", "ci_high"))
    _require_categories(table, PUBLISHED_PROGNOSIS_CSV, {
        "hr_status": PROGNOSIS_HR_STATUSES,
        "pcr_definition": tuple(PCR_DEFINITIONS),
        "verification": VERIFICATION_LEVELS,
    })
    _require_counts_within(table, PUBLISHED_PROGNOSIS_CSV, "events", "n")
    bad = ~((table["ci_low"] > 0) & (table["ci_low"] <= table["hr"]) & (table["hr"] <= table["ci_high"]))
    if bad.any():
        raise CohortError(
            f"{PUBLISHED_PROGNOSIS_CSV.name}: rows {_rows(bad)} need 0 < ci_low <= hr <= ci_high; "
            "correct the hazard ratio or its interval."
        )
    return table


_TRIAL_COUNTS = ("n_hr_pos", "pcr_events_hr_pos", "n_hr_neg", "pcr_events_hr_neg")
_TRIAL_RATES = ("pcr_rate_hr_pos", "pcr_rate_hr_neg")


def _read_published(path: Path, what: str, counts, numbers) -> pd.DataFrame:
    if not path.exists():
        raise CohortError(f"The {what} table is missing: expected {path}.")
    dtypes = {c: "Int64" for c in counts} | {c: "float64" for c in numbers}
    try:
        table = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    except ValueError as exc:  # a non-number in a count or rate column
        raise CohortError(f"{path.name}: a count or rate column holds text ({exc}); fix the cell.") from exc
    text = [c for c in table.columns if c not in dtypes]
    table[text] = table[text].astype("string")
    table.attrs["source"] = path.name
    return table


def _rows(mask: pd.Series) -> str:
    return ", ".join(str(i + 2) for i in np.flatnonzero(mask.to_numpy()))  # 1-based, after the header


def _require_categories(table: pd.DataFrame, path: Path, allowed: dict[str, tuple[str, ...]]) -> None:
    for column, values in allowed.items():
        if column not in table.columns:
            raise CohortError(f"{path.name}: column {column!r} is missing.")
        bad = ~table[column].isin(values)
        if bad.any():
            raise CohortError(
                f"{path.name}: column {column!r}, file lines {_rows(bad)}: use one of {', '.join(values)}."
            )
        table[column] = pd.Categorical(table[column].astype(object), categories=list(values))


def _require_counts_within(table: pd.DataFrame, path: Path, events: str, n: str) -> None:
    bad = (table[events] > table[n]).fillna(False) | (table[events] < 0).fillna(False)
    if bad.any():
        raise CohortError(f"{path.name}: file lines {_rows(bad)} have {events} outside 0..{n}.")


def _require_between(table: pd.DataFrame, path: Path, column: str, low: float, high: float) -> None:
    bad = ~table[column].between(low, high) & table[column].notna()
    if bad.any():
        raise CohortError(f"{path.name}: file lines {_rows(bad)} have {column} outside {low}..{high}.")


#: How each bundled patient-level cohort was turned into canonical columns (methods text).
BUNDLE_PREPARATION: dict[str, tuple[str, ...]] = {
    "synthetic": (
        "Generated by her2er_dash.simulate.trial(n=2000, seed=20121, n_studies=6) directly in "
        "canonical columns (no mapping or unit conversion).",
    ),
    "gbsg2": (
        "GBSG2 as shipped by lifelines.datasets.load_gbsg2(): time in days converted to months "
        "(÷ 30.4375); cens used as the recurrence-free survival event (1 = recurrence or death); "
        "estrec taken as ER in fmol/mg protein (ER-positive >= 10 fmol/mg); progrec >= 10 fmol/mg "
        "as PR-positive; horTh as the arm; tgrade I/II/III as grade G1/G2/G3; tumour size as "
        "T1 <= 20 mm, T2 21-50 mm, T3 > 50 mm; positive nodes as N1 1-3, N2 4-9, N3 >= 10.",
    ),
}
