"""Build the bundled real cohorts in ``data/`` from their public source files.

    python scripts/build_bundled.py --source FOLDER [--out data]

FOLDER holds the files as published (``data/README.md`` says where each comes from):

    ispy1/I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx   TCIA ISPY1 collection (CC BY 3.0)
    ispy2/ispy2_clinical_GSE194040.csv                         GEO GSE194040 (Wolf et al. 2022)
    curated_breast/bcClinicalTable.csv                         curatedBreastData (Planey & Butte)

Each cohort becomes one gzip-compressed CSV in canonical columns (``her2er_dash.schema``), with
months for times and 1 = event for events; ``her2er_dash.datasets`` reads them. The output is
deterministic: the same sources give byte-identical files (rows in source order, full-precision
floats, "\\n" line ends, gzip without a file name or time stamp), so ``git diff --stat`` shows
whether a rebuild changed anything. Every conversion is listed in ``data/README.md``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from her2er_dash.schema import (  # noqa: E402  (the repository root must be importable first)
    CANONICAL_COLUMNS,
    REGIMEN_CLASSES,
)

#: Output file of each cohort (the key is the ``datasets.bundled`` key).
OUTPUTS = {
    "ispy2": "ispy2.csv.gz",
    "ispy1": "ispy1.csv.gz",
    "curated_neoadjuvant": "curated_neoadjuvant.csv.gz",
}

DAYS_PER_MONTH = 30.4375  # 365.25 / 12

ISPY2_FILE = Path("ispy2", "ispy2_clinical_GSE194040.csv")
ISPY1_FILE = Path("ispy1", "I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx")
CURATED_FILE = Path("curated_breast", "bcClinicalTable.csv")

# --------------------------------------------------------------------------------------------
# I-SPY 2 (GSE194040)
# --------------------------------------------------------------------------------------------

#: Arm code -> readable arm. Every arm's 12-week block was followed by AC before surgery.
ISPY2_ARMS = {
    "Ctr": "Control: paclitaxel (+ trastuzumab if HER2+)",
    "AMG386": "Paclitaxel + trebananib (+ trastuzumab if HER2+)",
    "Ganetespib": "Paclitaxel + ganetespib",
    "Ganitumab": "Paclitaxel + ganitumab",
    "MK2206": "Paclitaxel + MK-2206 (+ trastuzumab if HER2+)",
    "N": "Paclitaxel + neratinib",
    "Pembro": "Paclitaxel + pembrolizumab",
    "Pertuzumab": "Paclitaxel + trastuzumab + pertuzumab (THP)",
    "TDM1/P": "T-DM1 + pertuzumab (no paclitaxel)",
    "VC": "Paclitaxel + veliparib + carboplatin",
}

#: ``treatmentid`` (the regimen each patient received) -> (readable regimen, regimen class).
ISPY2_REGIMENS = {
    "Paclitaxel": ("Paclitaxel", "chemotherapy alone"),
    "Paclitaxel + Trastuzumab": ("Paclitaxel + trastuzumab", "chemotherapy + anti-HER2"),
    "Paclitaxel + Trebananib": ("Paclitaxel + trebananib", "chemotherapy + other targeted"),
    "Paclitaxel + Trebananib + Trastuzumab": (
        "Paclitaxel + trebananib + trastuzumab", "chemotherapy + anti-HER2 + other targeted"),
    "Paclitaxel + Ganetespib": ("Paclitaxel + ganetespib", "chemotherapy + other targeted"),
    "Paclitaxel + Ganitumab": ("Paclitaxel + ganitumab", "chemotherapy + other targeted"),
    "Paclitaxel + MK-2206": ("Paclitaxel + MK-2206", "chemotherapy + other targeted"),
    "Paclitaxel + MK-2206 + Trastuzumab": (
        "Paclitaxel + MK-2206 + trastuzumab", "chemotherapy + anti-HER2 + other targeted"),
    "Paclitaxel + Neratinib": ("Paclitaxel + neratinib", "chemotherapy + anti-HER2"),
    "Paclitaxel + Pembrolizumab": ("Paclitaxel + pembrolizumab", "chemotherapy + immunotherapy"),
    "Paclitaxel + Pertuzumab + Trastuzumab": (
        "Paclitaxel + trastuzumab + pertuzumab", "chemotherapy + anti-HER2"),
    "Trastuzumab Emtansine + Pertuzumab": ("T-DM1 + pertuzumab", "anti-HER2 ADC"),
    "Paclitaxel + Veliparib dihydrochloride + Carboplatinum": (
        "Paclitaxel + veliparib + carboplatin", "chemotherapy + other targeted"),
}

ISPY2_HER2_CATEGORY = {"HER2+": "HER2-positive", "HER2low": "HER2-low", "HER2=0": "HER2-zero"}
ISPY2_PAM50 = {"LumA": "LumA", "LumB": "LumB", "Her2": "Her2", "Basal": "Basal", "Normal": "Normal"}
ISPY2_BLUEPRINT = {"Luminal-type": "Luminal-type", "HER2-type": "HER2-type",
                   "Basal-type": "Basal-type"}

#: Source column -> canonical signature column (see schema.SIGNATURE_COLUMNS).
ISPY2_SIGNATURES = {
    "Luminal_Index": "luminal_index",
    "ER_PGR_avg": "er_pgr_avg",
    "HER2_Index": "her2_index",
    "Mod7_ERBB2": "mod7_erbb2",
    "ERBB2.Y1248": "erbb2_y1248",
    "EGFR.Y1173": "egfr_y1173",
    "Basal_Index": "basal_index",
    "MP_index_adj...1.": "mammaprint_index",
    "Module11_Prolif_score": "proliferation_score",
    "ICS5_score": "immune_ics5",
}


def build_ispy2(source: Path) -> pd.DataFrame:
    """I-SPY 2 clinical and subtype table in canonical columns (one row per patient)."""
    raw = pd.read_csv(source / ISPY2_FILE, sep=";")
    regimen = _lookup(raw["treatmentid"], ISPY2_REGIMENS, "treatmentid")
    out = pd.DataFrame({
        "patient_id": raw["patient"].astype(str),
        "study": "I-SPY 2",
        "arm": _lookup(raw["Arm..short.name."], ISPY2_ARMS, "Arm..short.name."),
        "regimen_class": regimen.map(lambda r: r[1]),
        "hr_status": _status(raw["HR"]),
        "her2_status": _status(raw["HER2"]),
        "her2_category": raw["HER2.3.state..3."].map(ISPY2_HER2_CATEGORY),
        "pcr": raw["pCR"].astype("float64"),
        "pcr_definition": "ypT0/is ypN0",
        "pam50_subtype": _lookup(raw["PAM50.Subtype"], ISPY2_PAM50, "PAM50.Subtype"),
        "blueprint_subtype": _lookup(raw["BP.subtype"], ISPY2_BLUEPRINT, "BP.subtype"),
        **{canonical: raw[column].astype("float64") for column, canonical in ISPY2_SIGNATURES.items()},
        "regimen": regimen.map(lambda r: r[0]),
    })  # fmt: skip
    return _canonical_order(out)


# --------------------------------------------------------------------------------------------
# I-SPY 1 (TCIA ISPY1 workbook)
# --------------------------------------------------------------------------------------------

ISPY1_RCB = {0: "RCB-0", 1: "RCB-I", 2: "RCB-II", 3: "RCB-III"}
ISPY1_SURVIVAL_STATUS = {7: "alive", 8: "dead", 9: "lost to follow-up"}


def build_ispy1(source: Path) -> pd.DataFrame:
    """I-SPY 1 predictors and outcomes joined on SUBJECTID, in canonical columns.

    Receptor codes 0/1 become negative/positive (2 = indeterminate and blanks become missing);
    RFS (days from the start of neoadjuvant chemotherapy) and OS (``survDtD2 (tx)``, days from
    study entry) become months; ``sstat`` 8 (dead) is the OS event, 7 (alive) and 9 (lost)
    are censored.
    """
    path = source / ISPY1_FILE
    with warnings.catch_warnings():
        # the workbook carries an Excel extension openpyxl does not read (no data in it)
        warnings.filterwarnings("ignore", message="Unknown extension", category=UserWarning)
        predictors = pd.read_excel(path, sheet_name="predictors", engine="openpyxl")
        outcomes = pd.read_excel(path, sheet_name="outcomes", engine="openpyxl")
    raw = predictors.merge(outcomes, on="SUBJECTID", how="outer", validate="1:1",
                           suffixes=("", "_outcomes"))
    if len(raw) != len(predictors) or len(raw) != len(outcomes):
        raise SystemExit(f"{path}: the predictors and outcomes sheets hold different patients.")
    her2 = _status(raw["Her2MostPos"])
    status = raw["sstat"].map(ISPY1_SURVIVAL_STATUS)
    if status.isna().any():
        raise SystemExit(f"{path}: sstat has codes other than 7, 8, 9: "
                         f"{sorted(raw.loc[status.isna(), 'sstat'].unique())}")
    out = pd.DataFrame({
        "patient_id": raw["SUBJECTID"].astype(str),
        "study": "I-SPY 1",
        "arm": "Anthracycline-cyclophosphamide ± taxane",
        # 20 HER2+ patients also received trastuzumab; the file does not say which ones.
        "regimen_class": np.where(her2 == "negative", "chemotherapy alone", "not recorded"),
        "age": raw["age"].astype("float64"),
        "er_status": _status(raw["ERpos"]),
        "pr_status": _status(raw["PgRpos"]),
        "hr_status": _status(raw["HR Pos"]),
        "her2_status": her2,
        "pcr": raw["PCR"].astype("float64"),
        "pcr_definition": "ypT0/is ypN0",
        "rcb_class": raw["RCBClass"].map(ISPY1_RCB),
        "rfs_months": raw["RFS"].astype("float64") / DAYS_PER_MONTH,
        "rfs_event": raw["rfs_ind"].astype("float64"),
        "os_months": raw["survDtD2 (tx)"].astype("float64") / DAYS_PER_MONTH,
        "os_event": (raw["sstat"] == 8).astype("float64"),
        "survival_status": status,
    })  # fmt: skip
    return _canonical_order(out)


# --------------------------------------------------------------------------------------------
# curatedBreastData: the neoadjuvant studies with a pathological response
# --------------------------------------------------------------------------------------------

#: GEO series (as spelled in ``series_id``) -> study name used in the cohort (one GSE id).
CURATED_STUDIES = {
    "GSE16446": "GSE16446",
    "GSE16716,GSE20194": "GSE20194",
    "GSE21997": "GSE21997",
    "GSE22226": "GSE22226",
    "GSE22358": "GSE22358",
    "GSE25055,GSE25066": "GSE25055",
    "GSE25065,GSE25066": "GSE25065",
    "GSE32646": "GSE32646",
}
#: Series whose ``pCR`` column is not a pathological complete response (left out, see README):
#: GSE20181 (neoadjuvant letrozole, clinical response), GSE23428 (stage IV, clinical response),
#: GSE33658 (gefitinib + anastrozole, clinical response).
CURATED_EXCLUDED = ("GSE20181", "GSE23428", "GSE33658")

#: pCR definition per study, where the study's publication states it (else "not recorded").
CURATED_PCR_DEFINITION = {
    "GSE20194": "ypT0/is ypN0",  # MD Anderson: no residual invasive cancer in breast and nodes
    "GSE25055": "ypT0/is ypN0",  # Hatzis et al. 2011, same definition
    "GSE25065": "ypT0/is ypN0",
    "GSE22226": "ypT0/is ypN0",  # I-SPY 1 data dictionary
}

#: Treatment flags, in the order they are written in the arm text.
CURATED_DRUGS = (
    ("doxorubicin", "doxorubicin"), ("epirubicin", "epirubicin"),
    ("cyclophosphamide", "cyclophosphamide"), ("fluorouracil", "fluorouracil"),
    ("methotrexate", "methotrexate"), ("paclitaxel", "paclitaxel"), ("docetaxel", "docetaxel"),
    ("capecitabine", "capecitabine"), ("carboplatin", "carboplatin"),
    ("trastuzumab", "trastuzumab"), ("tamoxifen", "tamoxifen"), ("letrozole", "letrozole"),
    ("anastrozole", "anastrozole"), ("other", "other agent (not named in the source)"),
)
CURATED_CHEMO = ("anthracycline", "taxane", "doxorubicin", "epirubicin", "cyclophosphamide",
                 "fluorouracil", "methotrexate", "paclitaxel", "docetaxel", "capecitabine",
                 "carboplatin")
CURATED_ENDOCRINE = ("tamoxifen", "letrozole", "anastrozole", "anti_estrogen",
                     "aromatase_inhibitor")
CURATED_RCB = {"0": "RCB-0", "1": "RCB-I", "2": "RCB-II", "3": "RCB-III", "0/I": "RCB-0/I",
               "II": "RCB-II", "III": "RCB-III"}
CURATED_PAM50 = {"Luminal A": "LumA", "Luminal B": "LumB", "Her2": "Her2", "Basal": "Basal",
                 "Normal": "Normal", "Claudin": "Claudin-low"}
CURATED_IHC = {"0": 0.0, "1": 1.0, "2": 2.0, "3": 3.0}  # 'ND' (not done), 'NEG' -> missing
CURATED_T = {f"T{i}": f"T{i}" for i in range(5)}
CURATED_N = {**{f"N{i}": f"N{i}" for i in range(4)}, "positive": "N+ (not staged)"}


def build_curated(source: Path) -> pd.DataFrame:
    """The neoadjuvant studies of curatedBreastData with pCR, in canonical columns.

    RFS, DFS and OS code 1 = no event in the source; here 1 = event. Times are the source's
    months (for censored patients the source's "minimum months" of follow-up).
    """
    table = pd.read_csv(source / CURATED_FILE, low_memory=False)
    missing = set(CURATED_STUDIES) - set(table["series_id"])
    if missing:
        raise SystemExit(f"{CURATED_FILE}: series {sorted(missing)} not found.")
    raw = table[table["series_id"].isin(list(CURATED_STUDIES))].reset_index(drop=True)
    study = raw["series_id"].map(CURATED_STUDIES)
    flags = raw[[c for c, _ in CURATED_DRUGS] + list(CURATED_CHEMO) + ["anti_HER2",
                *CURATED_ENDOCRINE]].fillna(0).astype(bool)
    flags = flags.loc[:, ~flags.columns.duplicated()]
    out = pd.DataFrame({
        "patient_id": raw["patient_ID"].astype(str),
        "study": study,
        "arm": _curated_arm(flags),
        "regimen_class": _curated_regimen_class(flags),
        "age": raw["age"].astype("float64"),
        "er_status": _status(raw["ER_preTrt"]),
        "er_percent": raw["ER_percentage_preTrt"].astype("float64"),
        "pr_status": _status(raw["PR_preTrt"]),
        "her2_status": _status(raw["HER2_preTrt"]),
        "her2_ihc": raw["HER2_IHC_score_preTrt"].astype(str).map(CURATED_IHC),
        "her2_ish_ratio": raw["HER2_fish_cont_score_preTrt"].astype("float64"),
        "pcr": raw["pCR"].astype("float64"),
        "pcr_definition": study.map(CURATED_PCR_DEFINITION).fillna("not recorded"),
        "rcb_class": raw["RCB"].map(CURATED_RCB),
        "grade": raw["hist_grade"].map({1.0: "G1", 2.0: "G2", 3.0: "G3"}),
        "t_stage": raw["tumor_stage_preTrt"].map(CURATED_T),
        "n_stage": raw["preTrt_lymph_node_status"].map(CURATED_N),
        "pam50_subtype": raw["pam50"].map(CURATED_PAM50),
        "rfs_months": raw["RFS_months_or_MIN_months_of_RFS"].astype("float64"),
        "rfs_event": 1.0 - raw["RFS"],
        "dfs_months": raw["DFS_months_or_MIN_months_of_DFS"].astype("float64"),
        "dfs_event": 1.0 - raw["DFS"],
        "os_months": raw["OS_months_or_MIN_months_of_OS"].astype("float64"),
        "os_event": 1.0 - raw["OS"],
        "geo_series": raw["series_id"],
        "trastuzumab": flags["trastuzumab"].astype("float64"),
    })  # fmt: skip
    _check_unmapped(raw, out)
    return _canonical_order(out)


def _curated_arm(flags: pd.DataFrame) -> pd.Series:
    """The drugs flagged for each patient, in a fixed order; a class flag (anthracycline, taxane)
    without a named drug is written as the class."""
    flags = flags.assign(
        anthracycline_unnamed=flags["anthracycline"] & ~(flags["doxorubicin"] | flags["epirubicin"]),
        taxane_unnamed=flags["taxane"] & ~(flags["paclitaxel"] | flags["docetaxel"]),
    )
    drugs = (*CURATED_DRUGS[:2], ("anthracycline_unnamed", "anthracycline"), *CURATED_DRUGS[2:7],
             ("taxane_unnamed", "taxane"), *CURATED_DRUGS[7:])
    names = np.array([label for _, label in drugs], dtype=object)
    chosen = flags[[c for c, _ in drugs]].to_numpy()
    arms = [" + ".join(names[row]) if row.any() else "not recorded" for row in chosen]
    return pd.Series(arms, index=flags.index).str.capitalize()


def _curated_regimen_class(flags: pd.DataFrame) -> pd.Series:
    chemo = flags[list(CURATED_CHEMO)].any(axis=1)
    endocrine = flags[list(CURATED_ENDOCRINE)].any(axis=1)
    her2 = flags["anti_HER2"] | flags["trastuzumab"]
    classes = np.select(
        [chemo & her2, chemo & endocrine, chemo, endocrine & her2, her2, endocrine],
        ["chemotherapy + anti-HER2", "chemotherapy + endocrine", "chemotherapy alone",
         "endocrine + anti-HER2", "anti-HER2 only", "endocrine therapy"],
        "not recorded",
    )
    return pd.Series(classes, index=flags.index)


def _check_unmapped(raw: pd.DataFrame, out: pd.DataFrame) -> None:
    """A source value with no translation must stop the build, not become missing silently."""
    for source, canonical, allowed in (
        ("RCB", "rcb_class", ()), ("pam50", "pam50_subtype", ()),
        ("tumor_stage_preTrt", "t_stage", ()), ("preTrt_lymph_node_status", "n_stage", ()),
        ("HER2_IHC_score_preTrt", "her2_ihc", ("ND", "NEG")),
    ):
        lost = raw[source].notna() & out[canonical].isna() & ~raw[source].astype(str).isin(allowed)
        if lost.any():
            raise SystemExit(f"{CURATED_FILE}: {source} has values with no canonical "
                             f"translation: {sorted(raw.loc[lost, source].astype(str).unique())}")


# --------------------------------------------------------------------------------------------
# Shared helpers and output
# --------------------------------------------------------------------------------------------


def _status(codes: pd.Series) -> pd.Series:
    """1/0 codes -> "positive"/"negative"; anything else (2 = indeterminate, blank) -> missing."""
    return codes.map({1: "positive", 0: "negative"})


def _lookup(values: pd.Series, table: dict, column: str) -> pd.Series:
    unknown = values.notna() & ~values.isin(list(table))
    if unknown.any():
        raise SystemExit(f"{column} has values this script does not know: "
                         f"{sorted(values[unknown].astype(str).unique())}. Add them to the table.")
    return values.map(table)


def _canonical_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical columns in schema order, then the cohort's extra columns."""
    bad = set(frame.get("regimen_class", pd.Series(dtype=object)).dropna()) - set(REGIMEN_CLASSES)
    if bad:
        raise SystemExit(f"regimen classes not in schema.REGIMEN_CLASSES: {sorted(bad)}")
    canonical = [c for c in CANONICAL_COLUMNS if c in frame.columns]
    return frame[canonical + [c for c in frame.columns if c not in canonical]]


#: 0/1 columns, written as integers ("1", not "1.0"); missing stays empty.
BINARY_COLUMNS = ("pcr", "rfs_event", "dfs_event", "os_event", "trastuzumab")


def csv_gz_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as gzip-compressed CSV, identical bytes for identical frames."""
    frame = frame.astype({c: "Int8" for c in BINARY_COLUMNS if c in frame.columns})
    text = frame.to_csv(index=False, lineterminator="\n")
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


BUILDERS = {"ispy2": build_ispy2, "ispy1": build_ispy1, "curated_neoadjuvant": build_curated}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, type=Path,
                        help="folder holding ispy1/, ispy2/ and curated_breast/")
    parser.add_argument("--out", type=Path, default=ROOT / "data",
                        help="where to write the cohort files (default: the repository's data/)")
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        parser.error(f"--source {args.source} is not a folder")
    args.out.mkdir(parents=True, exist_ok=True)
    for key, builder in BUILDERS.items():
        frame = builder(args.source)
        body = csv_gz_bytes(frame)
        path = args.out / OUTPUTS[key]
        path.write_bytes(body)
        print(f"{path.name}: {len(frame):,} patients x {frame.shape[1]} columns, "
              f"{len(body) / 1024:.1f} KB, sha256 {hashlib.sha256(body).hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
