"""Competing-risk endpoints read from real files: METABRIC's vital status with cause of death."""

from __future__ import annotations

import io

import pandas as pd

from her2er_dash import cohort, validate
from tests.conftest import METABRIC_CSV


def test_metabric_file_gets_breast_cancer_specific_survival_with_competing_deaths():
    loaded = cohort.load(str(METABRIC_CSV))
    data = loaded.data
    assert data["bcss_event"].value_counts().to_dict() == {0.0: 837, 1.0: 646, 2.0: 496}
    assert data["bcss_months"].equals(data["os_months"])
    assert data["os_event"].value_counts().to_dict() == {1.0: 1143, 0.0: 837}
    notes = " ".join(loaded.issues["message"])
    assert "bcss_event from 'VITAL_STATUS' (cause of death)" in notes
    # The derivation is a rule of the mapping: shown in words, saved, and reproduced from JSON.
    rule = loaded.mapping.rules["bcss_event"]
    assert rule.kind == "cause_from_status"
    assert dict(rule.values) == {"Living": 0.0, "Died of Disease": 1.0, "Died of Other Causes": 2.0}
    again = cohort.load(str(METABRIC_CSV), mapping=type(loaded.mapping).from_json(loaded.mapping.to_json()))
    assert again.data["bcss_event"].equals(data["bcss_event"])
    assert not (loaded.issues["severity"] == "error").any()


def _csv(frame: pd.DataFrame) -> io.BytesIO:
    buffer = io.BytesIO(frame.to_csv(index=False).encode())
    buffer.name = "bcss.csv"
    return buffer


def test_named_bcss_columns_map_and_keep_their_codes():
    frame = pd.DataFrame({"Patient": ["a", "b", "c", "d"], "BCSS_months": [10, 20, 30, 40],
                          "BCSS_status": [0, 1, 2, 1], "ER status": ["pos", "neg", "pos", "neg"]})
    data = cohort.load(_csv(frame)).data
    assert data["bcss_event"].tolist() == [0.0, 1.0, 2.0, 1.0]
    assert data["bcss_months"].tolist() == [10.0, 20.0, 30.0, 40.0]


def test_text_causes_in_a_mapped_bcss_column_are_coded_and_unknown_ones_reported():
    frame = pd.DataFrame({"id": ["a", "b", "c", "d"], "dss_months": [1.0, 2.0, 3.0, 4.0],
                          "dss_status": ["Alive", "Died of Disease", "Died of Other Causes", "??"]})
    loaded = cohort.load(_csv(frame))
    assert loaded.data["bcss_event"].tolist()[:3] == [0.0, 1.0, 2.0]
    assert pd.isna(loaded.data["bcss_event"].iloc[3])
    assert loaded.issues["message"].str.contains("'\\?\\?'").any()


def test_validation_allows_competing_codes_only_for_competing_endpoints():
    frame = pd.DataFrame({"bcss_months": [1.0, 2.0, 3.0], "bcss_event": [0, 1, 2],
                          "os_months": [1.0, 2.0, 3.0], "os_event": [0, 1, 2]})
    issues = validate.validate_cohort(frame)
    errors = issues[issues["severity"] == "error"]
    assert list(errors["column"]) == ["os_event"]
    bad = validate.validate_cohort(frame.assign(bcss_event=[0, 1.5, -1]))
    assert "competing causes" in " ".join(bad.loc[bad["column"] == "bcss_event", "message"])
