"""Loading real and round-tripped cohorts: the curatedBreastData proof, every format giving the
same canonical data, mapping round trips, sheet joins and file joins."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from her2er_dash import cohort
from her2er_dash.cohort import Mapping
from her2er_dash.errors import CohortError
from tests.conftest import ROOT, real_file_bytes

GOOD = ROOT / "tests" / "data" / "good"
PCR_STUDIES = ("GSE20194", "GSE22226", "GSE22358", "GSE32646", "GSE21997", "GSE16446")


@pytest.fixture(scope="module")
def curated() -> cohort.Cohort:
    """The curated table loaded as a researcher's upload would be (the file's own bytes)."""
    return cohort.load(real_file_bytes("curated_breast/bcClinicalTable.csv"), name="bcClinicalTable.csv")


def _in_pcr_studies(study: pd.Series) -> pd.Series:
    # GSE20194 is spelled "GSE16716,GSE20194" in series_id (two GEO series, one cohort)
    return study.str.split(",").map(lambda ids: any(i in PCR_STUDIES for i in ids))


def test_curated_her2_pcr_counts(curated):
    data = curated.data
    her2 = data[_in_pcr_studies(data.study) & (data.her2_status == "positive") & data.pcr.notna()]
    assert len(her2) == 212
    # the shared README says ER+ 84 / ER- 128; the file has 83 ER_preTrt = 1, 128 = 0 and one
    # patient (GSE22226) with ER_preTrt missing, which the loader keeps as missing
    assert her2.er_status_recorded.value_counts(dropna=False).to_dict() == {
        "negative": 128, "positive": 83, np.nan: 1}
    # ER status follows ER % where it is recorded (ASCO/CAP: >= 1 % positive): two GSE20194
    # tumours at 5 % the file called negative are ER-low, hence ER-positive.
    assert her2.er_status.value_counts(dropna=False).to_dict() == {
        "negative": 126, "positive": 85, np.nan: 1}
    gse20194 = her2[her2.study == "GSE16716,GSE20194"]
    by_er = gse20194.groupby("er_status_recorded", observed=True).pcr.agg(["sum", "count"])
    assert by_er.loc["positive"].tolist() == [3, 23]
    assert by_er.loc["negative"].tolist() == [19, 31]


def test_curated_mapping_and_inverted_events(curated, curated_her2):
    assert curated.mapping.column_map["patient_ID"] == "patient_id"
    assert curated.mapping.column_map["series_id"] == "study"
    assert dict(curated.mapping.event_coding) == {
        "rfs": "1=no event", "dfs": "1=no event", "os": "1=no event", "drfs": "1=event"}
    flagged = curated.issues[curated.issues.message.str.contains("could be inverted")]
    assert set(flagged.column) == {"rfs_event", "dfs_event", "os_event"}
    assert (flagged.severity == "warning").all()
    # same events as the hand-coded fixture (1 - RFS etc.)
    ours = curated.data[curated.data.her2_status == "positive"].reset_index(drop=True)
    for col in ("rfs_event", "os_event", "rfs_months", "pcr", "age", "er_percent"):
        np.testing.assert_array_equal(ours[col].to_numpy(float),
                                      curated_her2[col].to_numpy(float))


def test_curated_rows_never_dropped(curated, curated_raw):
    assert curated.n == len(curated_raw) == curated.source.rows
    assert curated.data.patient_id.tolist() == curated_raw.patient_ID.astype(str).tolist()


# ---- round trip through every format ------------------------------------------------------


@pytest.fixture(scope="module")
def canonical() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 40
    return pd.DataFrame({
        "patient_id": [f"P{i:03d}" for i in range(n)],
        "study": rng.choice(["S1", "S2"], n),
        "arm": rng.choice(["TCH", "AC-T"], n),
        "age": rng.integers(30, 80, n).astype(float),
        "er_status": rng.choice(["positive", "negative"], n),
        "er_percent": rng.choice([0.0, 5.5, 80.0], n),
        "her2_status": "positive",
        "her2_ihc": rng.choice([2.0, 3.0], n),
        "pcr": rng.integers(0, 2, n).astype(float),
        "grade": rng.choice(["1", "2", "3"], n).astype(object),
        "os_months": rng.uniform(1, 90, n).round(2),
        "os_event": rng.integers(0, 2, n).astype(float),
    })


def _sorted(data: pd.DataFrame) -> pd.DataFrame:
    return data.sort_values("patient_id").reset_index(drop=True)


def _formats(df: pd.DataFrame) -> dict[str, object]:
    xlsx = io.BytesIO()
    with pd.ExcelWriter(xlsx, engine="openpyxl") as writer:
        df[["patient_id", "study", "arm", "age", "er_status", "er_percent", "her2_status",
            "her2_ihc", "grade"]].to_excel(writer, sheet_name="predictors", index=False)
        df[["patient_id", "pcr", "os_months", "os_event"]].sample(frac=1, random_state=1).to_excel(
            writer, sheet_name="outcomes", index=False)
    parquet = io.BytesIO()
    df.to_parquet(parquet)
    semicolon = df.to_csv(index=False, sep=";", decimal=",")
    patient = df.rename(columns={"patient_id": "PATIENT_ID"}).drop(columns=["grade", "her2_ihc"])
    sample = df[["patient_id", "grade", "her2_ihc"]].rename(columns={"patient_id": "PATIENT_ID"})
    sample.insert(1, "SAMPLE_ID", sample.PATIENT_ID + "-T")
    return {
        "csv": df.to_csv(index=False).encode(),
        "tsv": df.to_csv(index=False, sep="\t").encode(),
        "semicolon": semicolon.encode(),
        "xlsx": xlsx.getvalue(),
        "parquet": parquet.getvalue(),
        "cbioportal": [_cbio(patient).encode(), _cbio(sample).encode()],
    }


def _cbio(frame: pd.DataFrame) -> str:
    meta = ["#" + "\t".join(frame.columns)] * 2 + ["#" + "\t".join(["STRING"] * frame.shape[1]),
                                                  "#" + "\t".join(["1"] * frame.shape[1])]
    return "\n".join(meta) + "\n" + frame.to_csv(index=False, sep="\t")


@pytest.mark.parametrize("fmt", ["csv", "tsv", "semicolon", "xlsx", "parquet", "cbioportal"])
def test_every_format_gives_the_same_canonical_data(canonical, fmt):
    reference = _sorted(cohort.from_frame(canonical).data)
    source = _formats(canonical)[fmt]
    loaded = cohort.load(source, name=f"cohort.{fmt}")
    pd.testing.assert_frame_equal(_sorted(loaded.data), reference)
    if fmt == "xlsx":
        assert loaded.source.sheets == ("predictors", "outcomes")
        assert loaded.source.joined_on == "patient_id"


def test_mapping_json_round_trip_reproduces_and_overrides(canonical):
    data = canonical.rename(columns={"os_months": "OS_days", "os_event": "dead"}).to_csv(
        index=False).encode()
    first = cohort.load(data, name="a.csv")
    saved = first.mapping.to_json()
    again = cohort.load(data, name="a.csv", mapping=Mapping.from_json(saved))
    pd.testing.assert_frame_equal(again.data, first.data)
    assert again.mapping == first.mapping
    # overriding: months, not days; the event inverted; grade ignored
    edited = Mapping(columns={**first.mapping.column_map, "grade": None},
                     values=first.mapping.value_maps,
                     time_units={"os_months": "months"}, event_coding={"os": "1=no event"})
    changed = cohort.load(data, name="a.csv", mapping=edited)
    np.testing.assert_allclose(changed.data.os_months, canonical.os_months)
    np.testing.assert_array_equal(changed.data.os_event, 1 - canonical.os_event)
    assert "grade" not in changed.data
    assert "grade" in changed.unmapped


def test_saved_value_map_is_applied_exactly():
    data = b"id,ER\na,yes\nb,no\nc,maybe\n"
    mapping = Mapping(columns={"id": "patient_id", "ER": "er_status"},
                      values={"er_status": {"yes": "negative", "no": "positive"}})
    result = cohort.load(data, name="x.csv", mapping=mapping)
    assert result.data.er_status.tolist()[:2] == ["negative", "positive"]
    assert pd.isna(result.data.er_status[2])
    assert result.issues.message.str.contains("could not be read as positive/negative").any()


def test_bad_mapping_is_a_cohort_error():
    with pytest.raises(CohortError, match="unknown canonical column"):
        Mapping(columns={"x": "tumour_size"})
    with pytest.raises(CohortError, match="not valid JSON"):
        Mapping.from_json("{nope")
    with pytest.raises(CohortError, match="several source columns"):
        cohort.load(b"a,b\n1,2\n", name="x.csv",
                    mapping=Mapping(columns={"a": "age", "b": "age"}))


def test_cbioportal_patient_and_sample_files():
    result = cohort.load([GOOD / "data_clinical_patient.txt", GOOD / "data_clinical_sample.txt"])
    data = result.data
    assert result.n == 5
    assert result.source.joined_on == "PATIENT_ID"
    assert data.os_event.tolist() == [0, 1, 0, 1, 0]
    assert data.dfs_event.tolist()[:4] == [0, 1, 0, 1]
    assert pd.isna(data.dfs_event[4])
    assert data.er_status.tolist() == ["positive", "negative", "positive", "negative", "positive"]
    assert data.t_stage.tolist() == ["T2", "T3", "T1", "T2", "T1"]
    assert result.issues.message.str.contains("first sample of each patient").any()


def test_upload_object_is_read_from_memory(tmp_path, monkeypatch):
    class Upload:
        name = "upload.csv"

        def __init__(self, data: bytes):
            self._data, self.size = data, len(data)

        def getvalue(self) -> bytes:
            return self._data

        def read(self) -> bytes:
            return self._data

    monkeypatch.chdir(tmp_path)
    result = cohort.load(Upload((GOOD / "data_clinical_patient.txt").read_bytes()))
    assert result.source.name == "upload.csv"
    assert result.n == 5
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_missing_path_is_a_cohort_error(tmp_path):
    with pytest.raises(CohortError, match="no such file"):
        cohort.load(tmp_path / "absent.csv")


@pytest.mark.slow
def test_million_rows_load_completely():
    """1M-row canonical CSV and Parquet load in full (time measured by hand, see report)."""
    rng = np.random.default_rng(1)
    n = 1_000_000
    frame = pd.DataFrame({
        "patient_id": np.char.add("P", np.arange(n).astype(str)),
        "er_status": rng.choice(["positive", "negative"], n),
        "her2_status": rng.choice(["positive", "negative"], n),
        "pcr": rng.integers(0, 2, n),
        "os_months": rng.exponential(50, n).round(2),
        "os_event": rng.integers(0, 2, n),
    })
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    for data in (frame.to_csv(index=False).encode(), parquet.getvalue()):
        result = cohort.load(data, name="big")
        assert result.n == n
        assert result.data.os_event.sum() == frame.os_event.sum()


def test_legacy_xls_workbook_is_read():
    """tests/data/good/legacy_workbook.xls was written once with xlwt (BIFF8, as old Excel); the
    calamine engine reads it like .xlsx."""
    from pathlib import Path

    from her2er_dash import cohort as cohort_io

    path = Path(__file__).parent / "data" / "good" / "legacy_workbook.xls"
    loaded = cohort_io.load(path)
    assert loaded.source.format == "Excel (.xls)"
    assert loaded.source.sheets == ("Clinical",)
    data = loaded.data.set_index("patient_id")
    assert data.loc["P2", "er_percent"] == 80
    assert data["her2_status"].tolist() == ["positive", "positive", "negative"]
    assert data["os_event"].tolist() == [0, 1, 0]
    assert data.loc["P3", "os_months"] == 36.25


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_released_raw_table_gives_the_same_cohort(canonical, fmt):
    """``build_cohort(release=True)`` (the app's large uploads) lets the parsed rows go once
    mapped; data, issues, mapping and source description are those of a kept table."""
    source = _formats(canonical)[fmt]
    kept = cohort.read_source(source, name=f"cohort.{fmt}")
    released = cohort.read_source(source, name=f"cohort.{fmt}")
    columns = list(released.frame.columns)
    a = cohort.build_cohort(kept, None)
    b = cohort.build_cohort(released, None, release=True)
    assert len(kept.frame) == len(canonical)
    assert len(released.frame) == 0
    assert list(released.frame.columns) == columns
    pd.testing.assert_frame_equal(a.data, b.data, check_exact=True)
    pd.testing.assert_frame_equal(a.issues, b.issues, check_exact=True)
    assert a.source == b.source
    assert a.mapping.to_json() == b.mapping.to_json()
