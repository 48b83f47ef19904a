"""Write the file-format fixtures in tests/data/formats/ (synthetic values, real layouts).

Run ``python tests/data/formats/make_format_fixtures.py`` to regenerate them (deterministic).
Each file follows the public specification of its format, with the quirks real exports have
(see README.md in this folder); the values are simulated, not real patients. The tests compute
their expected counts from these files independently of the loader (plain pandas / text
parsing), so a fixture never has to be kept in step with the code by hand.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _write(path: Path, text: str, encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))


def _tsv(frame: pd.DataFrame) -> str:
    return frame.to_csv(sep="\t", index=False, lineterminator="\n", na_rep="")


# --------------------------------------------------------------------------------------------
# cBioPortal clinical files, METABRIC layout (2,509 patients, one sample each)
# --------------------------------------------------------------------------------------------

METABRIC_PATIENTS = 2509
METABRIC_SPARSE = 529  # patients of the targeted-sequencing extension: few clinical fields

_PATIENT_ATTRIBUTES = [
    # (attribute id, display name, description, datatype)
    ("PATIENT_ID", "Patient Identifier", "Identifier to uniquely specify a patient.", "STRING"),
    ("LYMPH_NODES_EXAMINED_POSITIVE", "Lymph nodes examined positive",
     "Number of lymphnodes positive", "NUMBER"),
    ("NPI", "Nottingham prognostic index", "Nottingham prognostic index", "NUMBER"),
    ("CELLULARITY", "Cellularity", "Tumor Content", "STRING"),
    ("CHEMOTHERAPY", "Chemotherapy", "Chemotherapy.", "STRING"),
    ("COHORT", "Cohort", "Cohort.", "STRING"),
    ("ER_IHC", "ER status measured by IHC", "ER status measured by IHC", "STRING"),
    ("HER2_SNP6", "HER2 status measured by SNP6", "HER2 status measured by SNP6", "STRING"),
    ("HORMONE_THERAPY", "Hormone Therapy", "Hormone Therapy", "STRING"),
    ("INFERRED_MENOPAUSAL_STATE", "Inferred Menopausal State", "Inferred Menopausal State",
     "STRING"),
    ("SEX", "Sex", "Sex", "STRING"),
    ("INTCLUST", "Integrative Cluster", "Integrative Cluster.", "STRING"),
    ("AGE_AT_DIAGNOSIS", "Age at Diagnosis", "Age at Diagnosis", "NUMBER"),
    ("OS_MONTHS", "Overall Survival (Months)",
     "Overall survival in months since initial diagonosis.", "NUMBER"),
    ("OS_STATUS", "Overall Survival Status", "Overall patient survival status.", "STRING"),
    ("CLAUDIN_SUBTYPE", "Pam50 + Claudin-low subtype", "Pam50 + Claudin-low subtype.", "STRING"),
    ("THREEGENE", "3-Gene classifier subtype", "3-Gene classifier subtype.", "STRING"),
    ("VITAL_STATUS", "Patient's Vital Status", "The survival state of the person.", "STRING"),
    ("LATERALITY", "Primary Tumor Laterality", "For tumors in paired organs, designates the "
     "side on which the cancer originates.", "STRING"),
    ("RADIO_THERAPY", "Radio Therapy", "Radio Therapy", "STRING"),
    ("HISTOLOGICAL_SUBTYPE", "Tumor Other Histologic Subtype", "Tumor other histologic "
     "subtype.", "STRING"),
    ("BREAST_SURGERY", "Type of Breast Surgery", "Type of Breast Surgery", "STRING"),
    ("RFS_MONTHS", "Relapse Free Status (Months)", "Relapse free status in months.", "NUMBER"),
    ("RFS_STATUS", "Relapse Free Status", "Relapse free status.", "STRING"),
]
_SAMPLE_ATTRIBUTES = [
    ("PATIENT_ID", "Patient Identifier", "Identifier to uniquely specify a patient.", "STRING"),
    ("SAMPLE_ID", "Sample Identifier", "A unique sample key.", "STRING"),
    ("CANCER_TYPE", "Cancer Type", "Cancer Type", "STRING"),
    ("CANCER_TYPE_DETAILED", "Cancer Type Detailed", "Cancer Type Detailed", "STRING"),
    ("ER_STATUS", "ER Status", "ER Status", "STRING"),
    ("HER2_STATUS", "HER2 Status", "HER2 Status", "STRING"),
    ("GRADE", "Neoplasm Histologic Grade", "Numeric value to express the degree of abnormality "
     "of cancer cells, a measure of differentiation and aggressiveness.", "NUMBER"),
    ("ONCOTREE_CODE", "Oncotree Code", "Oncotree Code", "STRING"),
    ("PR_STATUS", "PR Status", "PR Status", "STRING"),
    ("SAMPLE_TYPE", "Sample Type", "The type of sample (i.e., normal, primary, met, "
     "recurrence).", "STRING"),
    ("TUMOR_SIZE", "Tumor Size", "Tumor size in mm", "NUMBER"),
    ("TUMOR_STAGE", "Tumor Stage", "The extent of a cancer in the body. Staging is usually "
     "based on the size of the tumor, whether lymph nodes contain cancer, and whether the cancer "
     "has spread from the original site to other parts of the body.", "NUMBER"),
    ("TMB_NONSYNONYMOUS", "TMB (nonsynonymous)", "TMB (nonsynonymous)", "NUMBER"),
]


def _cbio_text(attributes, frame: pd.DataFrame) -> str:
    lines = ["#" + "\t".join(a[1] for a in attributes), "#" + "\t".join(a[2] for a in attributes),
             "#" + "\t".join(a[3] for a in attributes), "#" + "\t".join("1" for _ in attributes)]
    return "\n".join(lines) + "\n" + _tsv(frame[[a[0] for a in attributes]])


def metabric_like() -> tuple[str, str]:
    rng = _rng(2509)
    n = METABRIC_PATIENTS
    dense = n - METABRIC_SPARSE
    ids = [f"MB-{i:04d}" for i in range(dense)] + [f"MTS-T{i:04d}" for i in range(METABRIC_SPARSE)]
    er = rng.random(n) < 0.76
    her2 = rng.random(n) < 0.12
    pr = np.where(er, rng.random(n) < 0.65, rng.random(n) < 0.1)
    age = np.round(rng.normal(61, 13, n).clip(21, 97), 2)
    os_months = np.round(rng.exponential(150, n).clip(0.1, 355), 2)
    dead = rng.random(n) < np.where(her2 & ~er, 0.7, 0.55)
    cause = np.where(rng.random(n) < 0.6, "Died of Disease", "Died of Other Causes")
    recurred = rng.random(n) < 0.42
    rfs = np.round(np.minimum(os_months, rng.exponential(120, n)), 2)
    subtype = np.select([her2, ~er], ["Her2", "Basal"],
                        rng.choice(["LumA", "LumB", "claudin-low", "Normal", "NC"], n,
                                   p=[.45, .3, .12, .1, .03]))
    three = np.select([her2, ~er], ["HER2+", "ER-/HER2-"],
                      rng.choice(["ER+/HER2- Low Prolif", "ER+/HER2- High Prolif"], n))
    patient = pd.DataFrame({
        "PATIENT_ID": ids,
        "LYMPH_NODES_EXAMINED_POSITIVE": rng.poisson(1.8, n),
        "NPI": np.round(rng.normal(4.0, 1.1, n).clip(1, 7), 3),
        "CELLULARITY": rng.choice(["High", "Moderate", "Low"], n),
        "CHEMOTHERAPY": rng.choice(["YES", "NO"], n, p=[.2, .8]),
        "COHORT": rng.integers(1, 6, n),
        "ER_IHC": np.where(er, "Positve", "Negative"),  # the typo is cBioPortal's
        "HER2_SNP6": np.where(her2, "GAIN", rng.choice(["NEUTRAL", "LOSS", "UNDEF"], n,
                                                       p=[.8, .18, .02])),
        "HORMONE_THERAPY": np.where(er, "YES", "NO"),
        "INFERRED_MENOPAUSAL_STATE": np.where(age > 50, "Post", "Pre"),
        "SEX": "Female",
        "INTCLUST": rng.choice([str(k) for k in range(1, 11)] + ["4ER+", "4ER-"], n),
        "AGE_AT_DIAGNOSIS": age,
        "OS_MONTHS": os_months,
        "OS_STATUS": np.where(dead, "1:DECEASED", "0:LIVING"),
        "CLAUDIN_SUBTYPE": subtype,
        "THREEGENE": three,
        "VITAL_STATUS": np.where(dead, cause, "Living"),
        "LATERALITY": rng.choice(["Left", "Right"], n),
        "RADIO_THERAPY": rng.choice(["YES", "NO"], n),
        "HISTOLOGICAL_SUBTYPE": rng.choice(["Ductal/NST", "Lobular", "Mixed", "Medullary"], n,
                                           p=[.75, .1, .12, .03]),
        "BREAST_SURGERY": rng.choice(["MASTECTOMY", "BREAST CONSERVING"], n),
        "RFS_MONTHS": rfs,
        "RFS_STATUS": np.where(recurred, "1:Recurred", "0:Not Recurred"),
    }).astype(object)
    sparse = np.arange(dense, n)
    keep = ["PATIENT_ID", "SEX"]
    patient.loc[sparse, [c for c in patient.columns if c not in keep]] = None
    with_age = sparse[rng.random(len(sparse)) < 0.02]
    patient.loc[with_age, "AGE_AT_DIAGNOSIS"] = age[with_age]
    lost = rng.choice(dense, 14, replace=False)  # a few complete patients without follow-up
    patient.loc[lost, ["OS_MONTHS", "OS_STATUS", "VITAL_STATUS"]] = None
    sample = pd.DataFrame({
        "PATIENT_ID": ids, "SAMPLE_ID": ids, "CANCER_TYPE": "Breast Cancer",
        "CANCER_TYPE_DETAILED": "Breast Invasive Ductal Carcinoma",
        "ER_STATUS": np.where(er, "Positive", "Negative"),
        "HER2_STATUS": np.where(her2, "Positive", "Negative"),
        "GRADE": rng.choice([1, 2, 3], n, p=[.1, .4, .5]),
        "ONCOTREE_CODE": "IDC",
        "PR_STATUS": np.where(pr, "Positive", "Negative"),
        "SAMPLE_TYPE": "Primary",
        "TUMOR_SIZE": np.round(rng.gamma(3, 9, n), 0),
        "TUMOR_STAGE": rng.choice([0, 1, 2, 3, 4], n, p=[.01, .3, .5, .15, .04]),
        "TMB_NONSYNONYMOUS": np.round(rng.gamma(2, 1.5, n), 6),
    }).astype(object)
    unknown = rng.random(n) < 0.35  # many samples have no stage, some no grade
    sample.loc[unknown, "TUMOR_STAGE"] = None
    sample.loc[rng.random(n) < 0.05, "GRADE"] = None
    sample.loc[sparse[rng.random(len(sparse)) < 0.6], ["ER_STATUS", "HER2_STATUS", "PR_STATUS"]] = None
    return _cbio_text(_PATIENT_ATTRIBUTES, patient), _cbio_text(_SAMPLE_ATTRIBUTES, sample)


# --------------------------------------------------------------------------------------------
# GDC biotab (TCGA BRCA patient file, 1,097 patients)
# --------------------------------------------------------------------------------------------

#: (column, alternative name in the second header row, CDE id)
_BIOTAB = [
    ("bcr_patient_uuid", "bcr_patient_uuid", ""),
    ("bcr_patient_barcode", "bcr_patient_barcode", "2673794"),
    ("form_completion_date", "form_completion_date", ""),
    ("prospective_collection", "tissue_prospective_collection_indicator", "3088492"),
    ("retrospective_collection", "tissue_retrospective_collection_indicator", "3088528"),
    ("birth_days_to", "days_to_birth", "3008233"),
    ("gender", "gender", "2200604"),
    ("menopause_status", "menopause_status", "2957270"),
    ("race", "race", "2192199"),
    ("ethnicity", "ethnicity", "2192217"),
    ("history_other_malignancy", "other_dx", "3382736"),
    ("history_neoadjuvant_treatment", "history_of_neoadjuvant_treatment", "3382737"),
    ("tumor_status", "person_neoplasm_cancer_status", "2759550"),
    ("vital_status", "vital_status", "5"),
    ("last_contact_days_to", "days_to_last_followup", "3008273"),
    ("death_days_to", "days_to_death", "3165475"),
    ("radiation_treatment_adjuvant", "radiation_therapy", "2005312"),
    ("pharmaceutical_tx_adjuvant", "postoperative_rx_tx", "3397567"),
    ("initial_pathologic_dx_year", "year_of_initial_pathologic_diagnosis", "2896960"),
    ("age_at_diagnosis", "age_at_initial_pathologic_diagnosis", "2006657"),
    ("method_initial_path_dx", "initial_pathologic_diagnosis_method", "2757941"),
    ("surgical_procedure_first", "breast_carcinoma_surgical_procedure_name", "2739564"),
    ("margin_status", "margin_status", "3114007"),
    ("axillary_staging_method", "axillary_lymph_node_stage_method_type", "2739557"),
    ("lymph_nodes_examined_count", "lymph_node_examined_count", "3"),
    ("ajcc_staging_edition", "system_version", "2722309"),
    ("ajcc_tumor_pathologic_pt", "pathologic_T", "3045435"),
    ("ajcc_nodes_pathologic_pn", "pathologic_N", "3203106"),
    ("ajcc_metastasis_pathologic_pm", "pathologic_M", "3045439"),
    ("ajcc_pathologic_tumor_stage", "pathologic_stage", "3203222"),
    ("er_status_by_ihc", "breast_carcinoma_estrogen_receptor_status", "2957359"),
    ("er_status_ihc_Percent_Positive", "er_level_cell_percentage_category", "3128341"),
    ("er_positivity_scale_used", "breast_carcinoma_immunohistochemistry_er_pos_finding_scale",
     "3203081"),
    ("er_ihc_score", "immunohistochemistry_positive_cell_score", "2785839"),
    ("pr_status_by_ihc", "breast_carcinoma_progesterone_receptor_status", "2957357"),
    ("pr_status_ihc_percent_positive", "progesterone_receptor_level_cell_percent_category",
     "3128342"),
    ("pr_positivity_ihc_intensity_score", "pos_finding_progesterone_receptor_other_measurement_"
     "scale_text", "3203084"),
    ("her2_status_by_ihc", "lab_proc_her2_neu_immunohistochemistry_receptor_status", "2957563"),
    ("her2_ihc_percent_positive", "her2_erbb_pos_finding_cell_percent_category", "3086980"),
    ("her2_ihc_score", "her2_immunohistochemistry_level_result", "2178404"),
    ("her2_fish_status", "lab_procedure_her2_neu_in_situ_hybrid_outcome_type", "2854089"),
    ("her2_copy_number", "her2_neu_and_centromere_17_copy_number_analysis_input_total_number_count",
     "3203083"),
    ("cent17_copy_number", "her2_neu_chromosone_17_signal_ratio_value", "3104295"),
    ("her2_cent17_ratio", "her2_neu_metastatic_breast_carcinoma_copy_analysis_input_total_number",
     "2497552"),
    ("new_tumor_event_dx_indicator", "new_tumor_event_after_initial_treatment", "3121376"),
    ("nte_er_status", "metastatic_breast_carcinoma_estrogen_receptor_status", "2895744"),
    ("anatomic_neoplasm_subdivision", "anatomic_neoplasm_subdivision", "2007211"),
    ("icd_10", "icd_10", "3226287"),
    ("patient_id", "patient_id", ""),
    ("tissue_source_site", "tissue_source_site", ""),
    ("days_to_initial_pathologic_diagnosis", "days_to_initial_pathologic_diagnosis", "3131773"),
    ("informed_consent_verified", "informed_consent_verified", "3288361"),
]
BIOTAB_PATIENTS = 1097


def gdc_biotab() -> str:
    rng = _rng(1097)
    n = BIOTAB_PATIENTS
    hexes = rng.integers(0, 16, (n, 32))
    uuids = ["-".join(("".join(f"{d:X}" for d in h))[a:b] for a, b in
                      ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))) for h in hexes]
    sites = rng.choice(["3C", "A1", "A2", "A7", "A8", "AC", "AN", "AO", "AR", "B6", "BH", "D8",
                        "E2", "EW", "GM"], n)
    codes = ["".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), 4)) for _ in range(n)]
    barcodes = [f"TCGA-{s}-{c}" for s, c in zip(sites, codes, strict=True)]
    dead = rng.random(n) < 0.14
    death = np.round(rng.exponential(1100, n).clip(10, 7000)).astype(int)
    last = np.round(rng.exponential(1000, n).clip(0, 8600)).astype(int)
    er = rng.choice(["Positive", "Negative", "Indeterminate", "[Not Evaluated]"], n,
                    p=[.74, .22, .01, .03])
    score = rng.choice(["0", "1+", "2+", "3+", "[Not Available]"], n, p=[.12, .35, .28, .13, .12])
    her2_ihc_call = np.select([score == "3+", score == "2+", np.isin(score, ["0", "1+"])],
                              ["Positive", "Equivocal", "Negative"], "[Not Evaluated]")
    fished = (score == "2+") | (rng.random(n) < 0.08)
    ratio = np.round(np.where(rng.random(n) < 0.25, rng.uniform(2.0, 8.0, n),
                              rng.uniform(0.8, 1.9, n)), 2)
    copies = np.round(np.where(ratio >= 2, rng.uniform(4.0, 15.0, n), rng.uniform(1.5, 3.9, n)), 1)
    fish = np.where(fished, np.where(ratio >= 2, "Positive", "Negative"), "[Not Evaluated]")
    equivocal_fish = fished & (rng.random(n) < 0.04)
    fish = np.where(equivocal_fish, "Equivocal", fish)
    no_numbers = fished & (rng.random(n) < 0.4)  # many labs recorded only the call
    stage_t = rng.choice(["T1", "T1c", "T2", "T3", "T4b", "TX"], n, p=[.1, .2, .45, .15, .05, .05])
    stage_n = rng.choice(["N0", "N0 (i-)", "N1a", "N1", "N2a", "N3", "NX"], n,
                         p=[.3, .15, .2, .12, .1, .08, .05])
    frame = pd.DataFrame({
        "bcr_patient_uuid": uuids, "bcr_patient_barcode": barcodes,
        "form_completion_date": rng.choice(["2012-6-14", "2013-1-22", "2014-3-4"], n),
        "prospective_collection": rng.choice(["NO", "YES"], n),
        "retrospective_collection": rng.choice(["YES", "NO"], n),
        "birth_days_to": -np.round(rng.normal(58.5, 13, n) * 365.25).astype(int),
        "gender": np.where(rng.random(n) < 0.99, "FEMALE", "MALE"),
        "menopause_status": rng.choice(["Post (prior bilateral ovariectomy OR >12 mo since LMP "
                                        "with no prior hysterectomy)", "Pre (<6 months since LMP "
                                        "AND no prior bilateral ovariectomy AND not on estrogen "
                                        "replacement)", "[Unknown]", "[Not Available]"], n),
        "race": rng.choice(["WHITE", "BLACK OR AFRICAN AMERICAN", "ASIAN", "[Not Available]"], n),
        "ethnicity": rng.choice(["NOT HISPANIC OR LATINO", "HISPANIC OR LATINO",
                                 "[Not Available]"], n),
        "history_other_malignancy": rng.choice(["No", "Yes"], n, p=[.93, .07]),
        "history_neoadjuvant_treatment": rng.choice(["No", "Yes"], n, p=[.99, .01]),
        "tumor_status": rng.choice(["TUMOR FREE", "WITH TUMOR", "[Unknown]"], n),
        "vital_status": np.where(dead, "Dead", "Alive"),
        "last_contact_days_to": np.where(dead, np.where(rng.random(n) < 0.5, "[Not Available]",
                                                        (death // 2).astype(str)),
                                         last.astype(str)),
        "death_days_to": np.where(dead, death.astype(str), "[Not Applicable]"),
        "radiation_treatment_adjuvant": rng.choice(["YES", "NO", "[Not Available]"], n),
        "pharmaceutical_tx_adjuvant": rng.choice(["YES", "NO", "[Unknown]"], n),
        "initial_pathologic_dx_year": rng.integers(1988, 2014, n),
        "age_at_diagnosis": rng.normal(58, 13, n).clip(26, 90).round().astype(int),
        "method_initial_path_dx": rng.choice(["Core Biopsy", "Excisional Biopsy", "Other method, "
                                              "specify:"], n),
        "surgical_procedure_first": rng.choice(["Modified Radical Mastectomy", "Lumpectomy",
                                                "Simple Mastectomy", "Other"], n),
        "margin_status": rng.choice(["Negative", "Positive", "Close", "[Unknown]"], n),
        "axillary_staging_method": rng.choice(["Sentinel node biopsy plus axillary dissection",
                                               "Sentinel lymph node biopsy alone",
                                               "Axillary lymph node dissection alone"], n),
        "lymph_nodes_examined_count": rng.integers(1, 30, n),
        "ajcc_staging_edition": rng.choice(["6th", "7th", "5th"], n),
        "ajcc_tumor_pathologic_pt": stage_t, "ajcc_nodes_pathologic_pn": stage_n,
        "ajcc_metastasis_pathologic_pm": rng.choice(["M0", "MX", "cM0 (i+)", "M1"], n,
                                                    p=[.8, .13, .05, .02]),
        "ajcc_pathologic_tumor_stage": rng.choice(["Stage I", "Stage IA", "Stage IIA", "Stage IIB",
                                                   "Stage IIIA", "Stage IIIC", "Stage IV",
                                                   "[Discrepancy]"], n),
        "er_status_by_ihc": er,
        "er_status_ihc_Percent_Positive": np.where(
            er == "Positive", rng.choice(["90-99%", "80-89%", "70-79%", "50-59%", "10-19%"], n),
            np.where(er == "Negative", "<10%", "[Not Available]")),
        "er_positivity_scale_used": rng.choice(["[Not Available]", "Allred Score"], n),
        "er_ihc_score": np.where(er == "Positive", rng.choice(["2+", "3+", "4+"], n),
                                 rng.choice(["0", "1+", "[Not Available]"], n)),
        "pr_status_by_ihc": np.where(er == "Positive", rng.choice(["Positive", "Negative"], n,
                                                                  p=[.8, .2]), "Negative"),
        "pr_status_ihc_percent_positive": rng.choice(["<10%", "10-19%", "60-69%", "90-99%"], n),
        "pr_positivity_ihc_intensity_score": rng.choice(["1+", "2+", "3+", "[Not Available]"], n),
        "her2_status_by_ihc": her2_ihc_call,
        "her2_ihc_percent_positive": rng.choice(["<10%", "10-19%", "[Not Available]"], n),
        "her2_ihc_score": score,
        "her2_fish_status": fish,
        "her2_copy_number": np.where(fished & ~no_numbers, copies.astype(str), "[Not Available]"),
        "cent17_copy_number": np.where(fished & ~no_numbers, np.round(copies / ratio, 2).astype(str),
                                       "[Not Available]"),
        "her2_cent17_ratio": np.where(fished & ~no_numbers, ratio.astype(str), "[Not Available]"),
        "new_tumor_event_dx_indicator": rng.choice(["NO", "YES", "[Not Available]"], n),
        "nte_er_status": rng.choice(["[Not Applicable]", "Positive", "Negative"], n, p=[.9, .07, .03]),
        "anatomic_neoplasm_subdivision": rng.choice(["Left", "Right", "Left Upper Outer Quadrant"], n),
        "icd_10": "C50.9",
        "patient_id": codes,
        "tissue_source_site": sites,
        "days_to_initial_pathologic_diagnosis": 0,
        "informed_consent_verified": "YES",
    })
    header = "\t".join(c for c, _, _ in _BIOTAB)
    alternative = "\t".join(a for _, a, _ in _BIOTAB)
    cde = "\t".join(f"CDE_ID:{i}" for _, _, i in _BIOTAB)
    body = frame[[c for c, _, _ in _BIOTAB]].to_csv(sep="\t", index=False, header=False,
                                                    lineterminator="\n")
    return f"{header}\n{alternative}\n{cde}\n{body}"


# --------------------------------------------------------------------------------------------
# GEO series matrix (GSE25066 layout, 508 samples) and a SOFT family file of its first 24
# --------------------------------------------------------------------------------------------

GEO_SAMPLES = 508
_GEO_KEYS = ["source", "age_years", "er_status_ihc", "pr_status_ihc", "her2_status",
             "clinical_t_stage", "clinical_nodal_status", "clinical_ajcc_stage", "grade",
             "pam50_class", "dlda30_prediction", "drfs_1_event_0_censored",
             "drfs_even_time_years", "pathologic_response_pcr_rd",
             "pathologic_response_rcb_class", "type_taxane"]


def geo_samples() -> list[dict[str, str]]:
    rng = _rng(25066)
    samples = []
    for _ in range(GEO_SAMPLES):
        er = rng.choice(["P", "N", "I"], p=[.58, .41, .01])
        her2 = rng.choice(["N", "P", "I"], p=[.93, .05, .02])
        pcr = rng.choice(["pCR", "RD", "NA"], p=[.19, .76, .05])
        rcb = {"pCR": "RCB-0", "RD": rng.choice(["RCB-I", "RCB-II", "RCB-III"]),
               "NA": "NA"}[pcr]
        event = int(rng.random() < 0.25)
        years = round(float(rng.exponential(3.5 if event else 4.5)) + 0.1, 2)
        record = {
            "source": rng.choice(["MDACC", "LBJ", "ISPY", "USO", "Peru", "MDA"]),
            "age_years": str(int(rng.normal(49, 10))),
            "er_status_ihc": er, "pr_status_ihc": rng.choice(["P", "N"]),
            "her2_status": her2,
            "clinical_t_stage": rng.choice(["T1", "T2", "T3", "T4"], p=[.1, .55, .25, .1]),
            "clinical_nodal_status": rng.choice(["N0", "N1", "N2", "N3"], p=[.3, .45, .15, .1]),
            "clinical_ajcc_stage": rng.choice(["IIA", "IIB", "IIIA", "IIIB", "IIIC"]),
            "grade": rng.choice(["1", "2", "3", "NA"], p=[.05, .35, .55, .05]),
            "pam50_class": rng.choice(["LumA", "LumB", "Basal", "Her2", "Normal"]),
            "dlda30_prediction": rng.choice(["pCR", "RD"]),
            "drfs_1_event_0_censored": str(event),
            "drfs_even_time_years": f"{years}",
            "pathologic_response_pcr_rd": pcr,
            "pathologic_response_rcb_class": rcb,
            "type_taxane": rng.choice(["Paclitaxel", "Docetaxel"]),
        }
        # Quirk: submitters left keys out for some samples, so a characteristics row holds
        # different keys in different samples ("drifted" columns).
        if rng.random() < 0.15:
            record.pop("grade")
        if rng.random() < 0.05:
            record.pop("clinical_ajcc_stage")
        samples.append(record)
    return samples


def geo_series_matrix(samples: list[dict[str, str]]) -> str:
    n = len(samples)
    accessions = [f"GSM{615096 + i}" for i in range(n)]
    quote = lambda values: "\t".join(f'"{v}"' for v in values)  # noqa: E731
    lines = [
        '!Series_title\t"Genomic predictor of response and survival following taxane-anthracycline '
        'chemotherapy for invasive breast cancer (simulated values)"',
        '!Series_geo_accession\t"GSE25066"',
        '!Series_status\t"Public on Jan 01 2011"',
        '!Series_summary\t"Simulated characteristics in the layout of the public series matrix."',
        '!Series_platform_id\t"GPL96"',
        "",
        "!Sample_title\t" + quote(f"BR_FNA_{i:04d}" for i in range(n)),
        "!Sample_geo_accession\t" + quote(accessions),
        "!Sample_status\t" + quote("Public on Jan 01 2011" for _ in range(n)),
        "!Sample_source_name_ch1\t" + quote("breast cancer fine needle aspiration"
                                            for _ in range(n)),
        "!Sample_organism_ch1\t" + quote("Homo sapiens" for _ in range(n)),
    ]
    width = max(len(s) for s in samples)
    for row in range(width):
        cells = []
        for sample in samples:
            items = list(sample.items())
            cells.append(f"{items[row][0]}: {items[row][1]}" if row < len(items) else "")
        lines.append("!Sample_characteristics_ch1\t" + quote(cells))
    lines += [
        "!Sample_molecule_ch1\t" + quote("total RNA" for _ in range(n)),
        "!Sample_platform_id\t" + quote("GPL96" for _ in range(n)),
        "!series_matrix_table_begin",
        '"ID_REF"\t' + quote(accessions),
    ]
    rng = _rng(96)
    for probe in ("1007_s_at", "1053_at", "117_at", "121_at", "1255_g_at"):
        lines.append(f'"{probe}"\t' + "\t".join(f"{v:.3f}" for v in rng.normal(8, 1.5, n)))
    lines.append("!series_matrix_table_end")
    return "\n".join(lines) + "\n"


def geo_soft(samples: list[dict[str, str]]) -> str:
    lines = ["^DATABASE = GeoMiame", "!Database_name = Gene Expression Omnibus (GEO)",
             "^SERIES = GSE25066", "!Series_title = simulated values, SOFT family layout",
             "!Series_geo_accession = GSE25066", "^PLATFORM = GPL96",
             "!Platform_title = [HG-U133A] Affymetrix Human Genome U133A Array",
             "!platform_table_begin", "ID\tGB_ACC", "1007_s_at\tU48705", "1053_at\tM87338",
             "!platform_table_end"]
    for i, sample in enumerate(samples):
        lines += [f"^SAMPLE = GSM{615096 + i}", f"!Sample_title = BR_FNA_{i:04d}",
                  f"!Sample_geo_accession = GSM{615096 + i}",
                  "!Sample_source_name_ch1 = breast cancer fine needle aspiration"]
        lines += [f"!Sample_characteristics_ch1 = {k}: {v}" for k, v in sample.items()]
        lines += ["!sample_table_begin", "ID_REF\tVALUE", "1007_s_at\t8.1", "1053_at\t6.2",
                  "!sample_table_end"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# cBioPortal study-view download (one row per sample; TCGA PanCancer-style attributes)
# --------------------------------------------------------------------------------------------

STUDY_VIEW_PATIENTS = 400
STUDY_VIEW_EXTRA_SAMPLES = 20


def study_view() -> str:
    rng = _rng(400)
    n = STUDY_VIEW_PATIENTS
    ids = [f"TCGA-{rng.choice(['A1', 'A2', 'AR', 'BH', 'E2'])}-{i:04X}" for i in range(n)]
    ihc = rng.choice(["Positive", "Negative", "Equivocal", "Indeterminate", ""], n,
                     p=[.13, .55, .2, .02, .1])
    fish = np.where(ihc == "Equivocal", rng.choice(["Positive", "Negative", "Equivocal"], n,
                                                   p=[.2, .75, .05]),
                    rng.choice(["", "Negative", "Positive"], n, p=[.8, .15, .05]))
    dead = rng.random(n) < 0.15
    recurred = rng.random(n) < 0.12
    progressed = recurred | (rng.random(n) < 0.05)
    os_months = np.round(rng.exponential(40, n).clip(0.1, 280), 2)
    frame = pd.DataFrame({
        "Study ID": "brca_tcga_pan_can_atlas_2018", "Patient ID": ids,
        "Sample ID": [f"{p}-01" for p in ids],
        "Diagnosis Age": rng.integers(27, 90, n),
        "Cancer Type": "Breast Cancer",
        "ER Status By IHC": rng.choice(["Positive", "Negative", "Indeterminate", ""], n,
                                       p=[.74, .22, .01, .03]),
        "PR status by ihc": rng.choice(["Positive", "Negative", ""], n, p=[.63, .33, .04]),
        "IHC-HER2": ihc,
        "HER2 fish status": fish,
        "American Joint Committee on Cancer Tumor Stage Code": rng.choice(
            ["T1c", "T2", "T3", "T4b", "TX"], n),
        "Neoplasm Disease Lymph Node Stage American Joint Committee on Cancer Code": rng.choice(
            ["N0", "N1a", "N2a", "N3", "NX"], n),
        "Neoplasm Disease Stage American Joint Committee on Cancer Code": rng.choice(
            ["STAGE I", "STAGE IIA", "STAGE IIB", "STAGE IIIA"], n),
        "Overall Survival (Months)": os_months,
        "Overall Survival Status": np.where(dead, "1:DECEASED", "0:LIVING"),
        "Disease Free (Months)": np.where(rng.random(n) < 0.85,
                                          np.round(os_months * rng.uniform(0.3, 1, n), 2), np.nan),
        "Disease Free Status": np.where(recurred, "1:Recurred/Progressed", "0:DiseaseFree"),
        "Progress Free Survival (Months)": np.round(os_months * rng.uniform(0.5, 1, n), 2),
        "Progression Free Status": np.where(progressed, "1:PROGRESSION", "0:CENSORED"),
        "Subtype": rng.choice(["BRCA_LumA", "BRCA_LumB", "BRCA_Basal", "BRCA_Her2",
                               "BRCA_Normal"], n),
        "Number of Samples Per Patient": 1,
        "Sample Type": "Primary",
    })
    frame.loc[frame["Disease Free (Months)"].isna(), "Disease Free Status"] = ""
    twice = rng.choice(n, STUDY_VIEW_EXTRA_SAMPLES, replace=False)
    extra = frame.iloc[twice].copy()
    extra["Sample ID"] = [f"{p}-06" for p in extra["Patient ID"]]
    extra["Sample Type"] = "Metastasis"
    frame.loc[twice, "Number of Samples Per Patient"] = 2
    extra["Number of Samples Per Patient"] = 2
    rows = pd.concat([frame, extra]).sort_values(["Patient ID", "Sample ID"], kind="stable")
    return _tsv(rows)


# --------------------------------------------------------------------------------------------
# SEER*Stat-style case listing (labels in quotes, copied with its title and footnotes)
# --------------------------------------------------------------------------------------------

SEER_CASES = 600


def seer_listing() -> str:
    rng = _rng(1973)
    n = SEER_CASES
    age = rng.normal(61, 13, n).clip(20, 99).astype(int)
    er = rng.choice(["Positive", "Negative", "Borderline/Unknown", "Recode not available"], n,
                    p=[.76, .18, .04, .02])
    her2 = rng.choice(["Positive", "Negative", "Borderline/Unknown"], n, p=[.14, .8, .06])
    subtype = np.select([(er == "Positive") & (her2 == "Negative"), her2 == "Positive",
                         (er == "Negative") & (her2 == "Negative")],
                        ["HR+/HER2-", rng.choice(["HR+/HER2+", "HR-/HER2+"], n),
                         "HR-/HER2- (Triple Negative)"], "Unknown")
    dead = rng.random(n) < 0.18
    months = rng.integers(0, 107, n)
    cause = np.where(dead, rng.choice(["Dead (attributable to this cancer dx)",
                                       "Alive or dead of other cause"], n),
                     "Alive or dead of other cause")
    frame = pd.DataFrame({
        "Patient ID": [f"{v:08d}" for v in rng.choice(10**7, n, replace=False)],
        "Sex": "Female",
        "Year of diagnosis": rng.integers(2010, 2016, n),
        "Age recode with <1 year olds": [f"{5 * (a // 5)}-{5 * (a // 5) + 4} years"
                                         if a < 85 else "85+ years" for a in age],
        "Age recode with single ages and 90+": [f"{a:02d} years" if a < 90 else "90+ years"
                                                for a in age],
        "Race recode (W, B, AI, API)": rng.choice(["White", "Black", "Asian or Pacific Islander"],
                                                  n),
        "Grade Recode (thru 2017)": rng.choice(["Well differentiated; Grade I",
                                                "Moderately differentiated; Grade II",
                                                "Poorly differentiated; Grade III", "Unknown"], n),
        "Derived AJCC T, 7th ed (2010-2015)": rng.choice(["T1c", "T2", "T3", "T1mic", "TX"], n),
        "Derived AJCC N, 7th ed (2010-2015)": rng.choice(["N0", "N1", "N2", "N3", "NX"], n),
        "Derived AJCC Stage Group, 7th ed (2010-2015)": rng.choice(["IA", "IIA", "IIB", "IIIA"],
                                                                   n),
        "ER Status Recode Breast Cancer (1990+)": er,
        "PR Status Recode Breast Cancer (1990+)": rng.choice(["Positive", "Negative",
                                                              "Borderline/Unknown"], n),
        "Derived HER2 Recode (2010+)": her2,
        "Breast Subtype (2010+)": subtype,
        "SEER cause-specific death classification": cause,
        "Survival months": [f"{m:04d}" for m in months],
        "Survival months flag": "Complete dates are available and there are more than 0 days of "
                                "survival",
        "Vital status recode (study cutoff used)": np.where(dead, "Dead", "Alive"),
    })
    buffer = io.StringIO()
    buffer.write('"Case listing: Female breast, 2010-2015 (simulated values in the layout of a '
                 'SEER*Stat case listing)"\n')
    buffer.write("\n")
    frame.to_csv(buffer, index=False, quoting=csv.QUOTE_ALL, lineterminator="\n")
    buffer.write("\n")
    buffer.write('"Survival months: complete months from diagnosis to death or the study '
                 'cutoff."\n')
    buffer.write('"Simulated data: not real patients."\n')
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# A GB18030-encoded CSV (Chinese labels)
# --------------------------------------------------------------------------------------------


def gb18030_csv() -> str:
    rng = _rng(18030)
    n = 60
    frame = pd.DataFrame({
        "patient_id": [f"BJ{i:03d}" for i in range(n)],
        "研究中心": rng.choice(["北京协和医院", "复旦大学附属肿瘤医院", "中山大学肿瘤防治中心"], n),
        "age": rng.integers(28, 75, n),
        "er_status": rng.choice(["阳性", "阴性"], n),
        "her2_status": rng.choice(["positive", "negative"], n),
        "arm": rng.choice(["曲妥珠单抗+化疗", "化疗"], n),
        "pcr": rng.integers(0, 2, n),
        "os_months": np.round(rng.exponential(40, n), 1),
        "os_event": rng.integers(0, 2, n),
    })
    return frame.to_csv(index=False, lineterminator="\n")


def main() -> None:
    patient, sample = metabric_like()
    _write(HERE / "cbioportal_metabric_like" / "data_clinical_patient.txt", patient)
    _write(HERE / "cbioportal_metabric_like" / "data_clinical_sample.txt", sample)
    _write(HERE / "gdc_biotab" / "nationwidechildrens.org_clinical_patient_brca.txt",
           gdc_biotab())
    samples = geo_samples()
    _write(HERE / "geo" / "GSE25066_like_series_matrix.txt", geo_series_matrix(samples))
    _write(HERE / "geo" / "GSE25066_like_family.soft", geo_soft(samples[:24]))
    _write(HERE / "cbioportal_study_view" / "brca_tcga_pan_can_atlas_2018_clinical_data.tsv",
           study_view())
    _write(HERE / "seer" / "case_listing.csv", seer_listing())
    _write(HERE / "encodings" / "gb18030.csv", gb18030_csv(), encoding="gb18030")


if __name__ == "__main__":
    main()
