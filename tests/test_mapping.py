"""Column-name matching, value recoding, time units and event direction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import _mapping as mp
from her2er_dash.cohort import Mapping

NAMES = {
    "ER_STATUS": "er_status", "ER_IHC": "er_status", "ERpos": "er_status",
    "ER_preTrt": "er_status", "ER status measured by IHC": "er_status",
    "er_percent": "er_percent", "ER%": "er_percent", "ER_percentage_preTrt": "er_percent",
    "ER_fmolmg_preTrt": "er_fmol", "ESR1 mRNA": "esr1_mrna", "PR_preTrt": "pr_status",
    "PR_STATUS": "pr_status", "HER2_preTrt": "her2_status", "HER2_STATUS": "her2_status",
    "HER2_IHC_score_preTrt": "her2_ihc", "IHC_HER2": "her2_ihc",
    "HER2_fish_cont_score_preTrt": "her2_ish_ratio", "HER2_SNP6": "her2_status",
    "OS_MONTHS": "os_months", "OS_STATUS": "os_event",
    "RFS_months_or_MIN_months_of_RFS": "rfs_months", "RFS": "rfs_event",
    "DFS_MONTHS": "dfs_months", "DFS_STATUS": "dfs_event", "PCR": "pcr", "pCR": "pcr",
    "pathologic_complete_response": "pcr", "AGE": "age", "age_at_diagnosis": "age",
    "series_id": "study", "STUDY_ID": "study", "study": "study", "arm": "arm",
    "treatment": "arm", "regimen": "arm", "patient_ID": "patient_id",
    "PATIENT_ID": "patient_id", "dbUniquePatientID": "patient_id",
    "tumor_stage_preTrt": "t_stage", "T_STAGE": "t_stage", "hist_grade": "grade",
    "GRADE": "grade", "RCB": "rcb_class", "N_stage": "n_stage",
    "preTrt_lymph_node_status": "n_stage", "Âge": "age", "os_days": "os_months",
    "DMFS": "drfs_event", "estrec": "er_fmol",
}


@pytest.mark.parametrize(("name", "canonical"), sorted(NAMES.items()))
def test_known_names_map(name, canonical):
    hit = mp.match_name(name)
    assert hit is not None
    assert hit[0] == canonical


@pytest.mark.parametrize("name", ["colour", "near_pCR", "hist_gradeMax", "pCR_spectrum", "😀"])
def test_unrelated_names_do_not_map(name):
    assert mp.match_name(name) is None


def test_copy_number_state_is_only_a_fallback():
    frame = pd.DataFrame({"HER2_SNP6": ["GAIN", "NEUTRAL"], "HER2_STATUS": ["Positive", "Neg"]})
    guesses = mp.guess_columns(frame).set_index("source_column")
    assert guesses.loc["HER2_STATUS", "chosen"]
    assert not guesses.loc["HER2_SNP6", "chosen"]
    assert "copy-number state" in guesses.loc["HER2_SNP6", "reason"]
    alone = mp.guess_columns(frame[["HER2_SNP6"]]).set_index("source_column")
    assert alone.loc["HER2_SNP6", "chosen"]
    assert alone.loc["HER2_SNP6", "confidence"] == "low"


def test_ihc_given_as_words_becomes_a_status():
    frame = pd.DataFrame({"IHC_HER2": ["Positive", "Negative", "Equivocal"]})
    assert mp.guess_columns(frame).canonical.tolist() == ["her2_status"]


def test_status_recoding():
    raw = pd.Series([1, 0, "pos", "NEG", "+", "-", "Positve", "Negativ", "yes", "no",
                     "2", "equivocal", "banana", None], dtype=object)
    parsed = mp.parse_status(raw)
    want = ["positive", "negative"] * 5 + [np.nan, np.nan, np.nan, np.nan]
    assert parsed.values.tolist()[:10] == want[:10]
    assert parsed.values[10:].isna().all()
    assert parsed.indeterminate.sum() == 2
    assert parsed.failed.sum() == 1
    assert parsed.value_map["Positve"] == "positive"


def test_event_recoding_from_cbioportal_labels():
    raw = pd.Series(["1:DECEASED", "0:LIVING", "1:Recurred/Progressed", "0:DiseaseFree", None])
    parsed = mp.parse_binary(raw, kind="event")
    assert parsed.values.tolist()[:4] == [1, 0, 1, 0]
    assert np.isnan(parsed.values[4])


def test_ihc_scores_from_strings():
    parsed = mp.parse_ihc(pd.Series(["0", "1+", "2+", "3+", "IHC 3+", "ND", "NEG", "7"]))
    assert parsed.values.tolist()[:5] == [0, 1, 2, 3, 3]
    assert parsed.indeterminate.sum() == 2
    assert parsed.failed.sum() == 1


@pytest.mark.parametrize(("name", "values", "unit"), [
    ("OS_days", [300, 900], "days"), ("os_years", [1, 5], "years"),
    ("time_weeks", [10, 50], "weeks"), ("OS_MONTHS", [5, 2000], "months"),
    ("time", [400, 1500, 2000], "days"), ("time", [1.5, 3, 8], "years"),
    ("time", [12, 30, 60], "months"),
])
def test_time_unit_guess(name, values, unit):
    assert mp.guess_time_unit(name, pd.Series(values, dtype=float))[0] == unit


def test_event_direction_guesses():
    ones = pd.Series([1, 1, 1, 0], dtype=float)
    coding, why, flag = mp.guess_event_coding("rfs", "RFS", "RFS_months_or_MIN_months_of_RFS",
                                              ones, False)
    assert (coding, flag) == ("1=no event", True)
    assert "curatedBreastData" in why
    assert mp.guess_event_coding("os", "OS_STATUS", "OS_MONTHS", ones, False)[:1] == ("1=event",)
    bare = mp.guess_event_coding("os", "OS", "OS_time", ones, False)
    assert bare[0] == "1=event"
    assert bare[2] is True
    assert mp.guess_event_coding("os", "alive", None, ones, False)[0] == "1=no event"


def test_mapping_is_hashable_and_json_round_trips():
    mapping = Mapping(columns={"A": "age", "B": None}, values={"er_status": {"1": "positive"}},
                      time_units={"os_months": "days"}, event_coding={"os": "0=event"})
    assert hash(mapping) == hash(Mapping.from_json(mapping.to_json()))
    assert Mapping.from_json(mapping.to_json()) == mapping
    assert dict(mapping.event_coding) == {"os": "1=no event"}


# ---- names that look canonical but are not, content checks, evidence ---------------------

@pytest.mark.parametrize("name", ["HR_HER2_STATUS", "HR_HER2_CATEGORY", "CLAUDIN_SUBTYPE",
                                  "Breast Subtype (2010+)", "ajcc_pathologic_tumor_stage",
                                  "er_ihc_score", "nte_er_status", "THREEGENE"])
def test_names_with_no_canonical_column_say_why(name):
    canonical, score, reason = mp.match_name(name)
    assert canonical is None
    assert reason


@pytest.mark.parametrize(("name", "canonical"), [
    ("Her2MostPos", "her2_status"), ("drfs_even_time_years", "drfs_months"),
    ("drfs_1_event_0_censored", "drfs_event"), ("Relapse Free Status (Months)", "rfs_months"),
    ("pathologic_response_pcr_rd", "pcr"), ("ajcc_tumor_pathologic_pt", "t_stage"),
    ("her2_cent17_ratio", "her2_ish_ratio"), ("Derived HER2 Recode (2010+)", "her2_status"),
    ("days_to_surgery", "surgery_months"), ("bcr_patient_barcode", "patient_id"),
])
def test_more_names_map(name, canonical):
    assert mp.match_name(name)[0] == canonical


def test_event_coding_stated_in_the_name_is_believed():
    ones = pd.Series([1, 1, 1, 0], dtype=float)
    coding, why, flag = mp.guess_event_coding("drfs", "drfs_1_event_0_censored", None, ones, False)
    assert (coding, flag) == ("1=event", False)
    assert "states the coding" in why


def test_status_words_in_other_languages_and_signs():
    parsed = mp.parse_status(pd.Series(["阳性", "阴性", "négatif", "ER+", "ER-", "Positivo"]))
    assert parsed.values.tolist() == ["positive", "negative", "negative", "positive", "negative",
                                      "positive"]


def test_levels_count_every_raw_value():
    parsed = mp.parse_binary(pd.Series(["1:DECEASED", "0:LIVING", "0:LIVING", None]), kind="event")
    assert dict(parsed.levels) == {"0:LIVING": 2, "1:DECEASED": 1}


def test_description_matching_and_hints():
    from her2er_dash.ingest import evidence

    assert evidence.match_description("Recurrence-free survival time (time unit is days)")[0] \
        == "rfs_months"
    assert evidence.match_description("3-level HR/Her2 category pre-treatment")[0] is None
    assert evidence.unit_hint("Survival date (time unit is days") == "days"
    assert evidence.origin_hint("Overall survival in months since initial diagonosis.") \
        == "diagnosis"
    assert evidence.origin_hint("time from neoadjuvant chemotherapy start date until ...") \
        == "start of therapy"
    assert evidence.pcr_definition_hint(
        "no residual invasive disease in breast or lymph nodes; only in situ disease allowed")[0] \
        == "ypT0/is ypN0"
    assert evidence.pcr_definition_hint("pCR_ypT0ypN0")[0] == "ypT0 ypN0"


def test_layout_finds_the_header_by_content():
    from her2er_dash.ingest import layout

    rows = [["#Patient Identifier", "Overall Survival (Months)"], ["#Identifier.", "OS in months."],
            ["#STRING", "NUMBER"], ["#1", "1"], ["PATIENT_ID", "OS_MONTHS"], ["P1", "12"]]
    found = layout.detect(rows)
    assert (found.header, found.first_data) == (4, 5)
    assert found.evidence["OS_MONTHS"].names == ["Overall Survival (Months)"]
    assert found.evidence["OS_MONTHS"].datatype == "NUMBER"
    biotab = [["uuid", "days_to_death_new", "vital_status"], ["uuid", "days_to_death", "vital_status"],
              ["CDE_ID:", "CDE_ID:3165475", "CDE_ID:5"], ["6E7D5EC6-A469", "120", "Dead"]]
    found = layout.detect(biotab)
    assert (found.header, found.first_data) == (0, 3)
    titled = [["Case listing"], [], ["Patient ID", "Age", "Sex"], ["001", "52", "F"],
              ["002", "61", "F"]]
    assert layout.detect(titled).header == 2
    assert layout.trailing_notes([["a", "b", "c"], [], ["Footnote: simulated"]], 3) == 2


def test_mapping_with_rules_round_trips():
    rule = {"rule": "death_or_last_contact", "unit": "days", "values": {"Dead": 1.0, "Alive": 0.0},
            "inputs": {"death": "d", "last_contact": "l", "status": "v"}}
    mapping = Mapping(derived={"os_months": rule, "her2_status": None})
    again = Mapping.from_json(mapping.to_json())
    assert again == mapping
    assert hash(again) == hash(mapping)
    assert "'d' for patients whose 'v' is Dead" in again.rules["os_months"].describe("os_months")
    with pytest.raises(ValueError, match="cannot produce"):
        Mapping(derived={"age": rule})
    with pytest.raises(ValueError, match="needs the input"):
        Mapping(derived={"os_months": {"rule": "death_or_last_contact", "inputs": {"death": "d"}}})
