"""Real file formats map correctly with zero edits.

Every fixture in tests/data/formats follows the public specification of its format with the quirks
real exports have (see its README); the expected numbers are computed here from the files with
plain pandas or text parsing, independently of the loader. The real TCIA I-SPY 1 workbook
(tests/data/real) must reproduce the published counts with no mapping edit.
"""

from __future__ import annotations

import csv
import gzip
import io

import numpy as np
import pandas as pd
import pytest

from her2er_dash import cohort, export
from her2er_dash.cohort import Mapping
from her2er_dash.errors import CohortError
from tests.conftest import ROOT

FORMATS = ROOT / "tests" / "data" / "formats"
REAL = ROOT / "tests" / "data" / "real"
ISPY = REAL / "ispy1" / "I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx"
METABRIC = FORMATS / "cbioportal_metabric_like"
BIOTAB = FORMATS / "gdc_biotab" / "nationwidechildrens.org_clinical_patient_brca.txt"
MATRIX = FORMATS / "geo" / "GSE25066_like_series_matrix.txt"
SOFT = FORMATS / "geo" / "GSE25066_like_family.soft"
STUDY_VIEW = FORMATS / "cbioportal_study_view" / "brca_tcga_pan_can_atlas_2018_clinical_data.tsv"
SEER = FORMATS / "seer" / "case_listing.csv"
GB18030 = FORMATS / "encodings" / "gb18030.csv"


def _mapped(result: cohort.Cohort) -> dict[str, str]:
    return {s: c for s, c in result.mapping.column_map.items() if c is not None}


def _text(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, skiprows=4)


# --------------------------------------------------------------------------------------------
# I-SPY 1 (real TCIA workbook, data-dictionary sheets)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ispy() -> cohort.Cohort:
    return cohort.load(ISPY)


def _pcr(data: pd.DataFrame, hr: str, her2: str) -> tuple[int, int]:
    group = data[(data.hr_status == hr) & (data.her2_status == her2) & data.pcr.notna()]
    return int(group.pcr.sum()), len(group)


def test_ispy1_with_zero_edits_gives_the_published_counts(ispy):
    data = ispy.data
    assert ispy.n == 221
    assert _pcr(data, "positive", "negative") == (8, 93)   # Esserman 2012, Table 2
    assert _pcr(data, "negative", "negative") == (18, 51)
    assert int((data.her2_status == "positive").sum()) == 67
    assert int(data.rfs_event.sum()) == 63


def test_ispy1_columns_go_where_the_data_dictionary_says(ispy):
    mapped = _mapped(ispy)
    assert mapped["RFS"] == "rfs_months"
    assert mapped["rfs_ind"] == "rfs_event"
    assert mapped["Her2MostPos"] == "her2_status"
    assert mapped["survDtD2 (tx)"] == "os_months"
    assert mapped["sstat"] == "os_event"
    assert "HR_HER2_STATUS" not in mapped
    assert "HR_HER2_CATEGORY" not in mapped
    guesses = ispy.guesses.set_index("source_column")
    assert guesses.loc["RFS", "confidence"] != "high"  # the name said event, the values times
    assert "subtype" in guesses.loc["HR_HER2_STATUS", "reason"]
    assert dict(ispy.mapping.time_units) == {"rfs_months": "days", "os_months": "days"}


def test_ispy1_overall_survival_from_sstat_codes(ispy):
    raw = pd.read_excel(ISPY, sheet_name="outcomes", engine="calamine")
    data = ispy.data.set_index("patient_id")
    codes = raw.set_index(raw.SUBJECTID.astype(str)).sstat
    assert (data.os_event[codes == 8] == 1).all()        # 8 = dead
    assert (data.os_event[codes.isin([7, 9])] == 0).all()  # 7 alive, 9 lost: censored
    days = raw.set_index(raw.SUBJECTID.astype(str))["survDtD2 (tx)"]
    np.testing.assert_allclose(data.os_months[days.index], days * 12 / 365.25)
    assert ispy.mapping.value_maps["os_event"] == {"7": 0.0, "8": 1.0, "9": 0.0}


def test_ispy1_time_origin_and_pcr_definition_come_from_the_dictionary(ispy):
    assert ispy.mapping.time_origin == "start of therapy"
    assert ispy.mapping.pcr_definition == "ypT0/is ypN0"
    assert set(ispy.data.pcr_definition.dropna()) == {"ypT0/is ypN0"}
    notes = " ".join(ispy.issues.message)
    assert "Data dictionary sheet(s)" in notes
    assert "not as patients" in notes


# --------------------------------------------------------------------------------------------
# cBioPortal clinical files (METABRIC layout, '#' attribute lines)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metabric() -> cohort.Cohort:
    return cohort.load([METABRIC / "data_clinical_patient.txt",
                        METABRIC / "data_clinical_sample.txt"])


def test_cbioportal_hash_lines_are_never_patients(metabric):
    patients, samples = _text(METABRIC / "data_clinical_patient.txt"), _text(
        METABRIC / "data_clinical_sample.txt")
    data = metabric.data
    assert metabric.n == len(patients) == 2509
    assert not data.patient_id.str.startswith("#").any()
    assert int((data.her2_status == "positive").sum()) == int((samples.HER2_STATUS == "Positive").sum())
    assert int((data.er_status == "positive").sum()) == int((samples.ER_STATUS == "Positive").sum())
    assert int(data.os_event.sum()) == int((patients.OS_STATUS == "1:DECEASED").sum())
    assert int(data.os_months.notna().sum()) == int((patients.OS_MONTHS != "").sum())
    assert int(data.age.isna().sum()) == int((patients.AGE_AT_DIAGNOSIS == "").sum())
    assert int(data.rfs_event.sum()) == int((patients.RFS_STATUS == "1:Recurred").sum())
    skipped = metabric.issues[metabric.issues.message.str.contains("not patients, skipped")]
    assert skipped.message.str.contains("lines 1-4 (cBioPortal attribute lines: display names",
                                       regex=False).all()


def test_cbioportal_descriptions_are_evidence(metabric):
    mapped = _mapped(metabric)
    assert mapped["OS_MONTHS"] == "os_months"
    assert mapped["RFS_MONTHS"] == "rfs_months"
    assert mapped["HER2_STATUS"] == "her2_status"
    for subtype in ("CLAUDIN_SUBTYPE", "THREEGENE", "TUMOR_STAGE"):
        assert subtype not in mapped
    assert metabric.mapping.time_origin == "diagnosis"  # "since initial diagonosis"
    guesses = metabric.guesses.set_index("source_column")
    assert "Overall survival in months" in guesses.loc["OS_MONTHS", "described_as"]


def _patient_bytes() -> bytes:
    return (METABRIC / "data_clinical_patient.txt").read_bytes()


def _as_rows() -> list[list[str]]:
    return [line.split("\t") for line in _patient_bytes().decode().splitlines()]


def _xlsx(rows: list[list[str]]) -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame(rows).to_excel(buffer, header=False, index=False)
    return buffer.getvalue()


def _quoted_csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


@pytest.mark.parametrize("variant", ["renamed", "excel", "quoted_csv", "bom_blank_line"])
def test_a_cbioportal_file_in_disguise_still_has_2509_patients(variant):
    """The issue's file: renamed by the user, or opened and saved by a spreadsheet."""
    source = {
        "renamed": (_patient_bytes(), "metabric_patients_2024.tsv"),
        "excel": (_xlsx(_as_rows()), "metabric.xlsx"),
        "quoted_csv": (_quoted_csv(_as_rows()), "metabric.csv"),
        "bom_blank_line": (b"\xef\xbb\xbf\n" + _patient_bytes(), "export.txt"),
    }[variant]
    result = cohort.load(source[0], name=source[1])
    patients = _text(METABRIC / "data_clinical_patient.txt")
    assert result.n == 2509
    assert not result.data.patient_id.astype(str).str.startswith("#").any()
    assert int(result.data.os_event.sum()) == int((patients.OS_STATUS == "1:DECEASED").sum())
    assert _mapped(result)["OS_MONTHS"] == "os_months"


# --------------------------------------------------------------------------------------------
# GDC biotab
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def biotab() -> cohort.Cohort:
    return cohort.load(BIOTAB)


@pytest.fixture(scope="module")
def biotab_raw() -> pd.DataFrame:
    return pd.read_csv(BIOTAB, sep="\t", dtype=str, skiprows=[1, 2], keep_default_na=False)


def test_biotab_extra_header_rows_are_not_patients(biotab, biotab_raw):
    assert biotab.n == len(biotab_raw) == 1097
    assert not biotab.data.patient_id.isin(["bcr_patient_barcode", "CDE_ID:2673794"]).any()
    assert not biotab.data.t_stage.astype(str).str.startswith("CDE_ID").any()
    notes = " ".join(biotab.issues.message)
    assert "line 2 (second header row (alternative column names))" in notes
    assert "line 3 (GDC CDE_ID row" in notes


def test_biotab_overall_survival_is_derived_from_death_and_last_contact(biotab, biotab_raw):
    dead = biotab_raw.vital_status == "Dead"
    days = np.where(dead, pd.to_numeric(biotab_raw.death_days_to, errors="coerce"),
                    pd.to_numeric(biotab_raw.last_contact_days_to, errors="coerce"))
    data = biotab.data
    np.testing.assert_allclose(data.os_months, days * 12 / 365.25)
    assert data.os_event.tolist() == dead.astype(float).tolist()
    assert 0 < data.os_event.mean() < 0.5  # the living are in the curve, not only the dead
    rules = biotab.mapping.rules
    assert rules["os_months"].kind == "death_or_last_contact"
    assert rules["os_event"].kind == "event_from_status"
    assert biotab.mapping.time_origin == "diagnosis"  # GDC days_to_* count from diagnosis
    assert "death_days_to" in " ".join(biotab.describe_rules())


def test_biotab_her2_status_combines_ihc_and_ish(biotab, biotab_raw):
    score = biotab_raw.her2_ihc_score
    fish = biotab_raw.her2_fish_status.map({"Positive": "positive", "Negative": "negative"})
    ratio = pd.to_numeric(biotab_raw.her2_cent17_ratio, errors="coerce")
    copies = pd.to_numeric(biotab_raw.her2_copy_number, errors="coerce")
    # the fixture's ISH numbers fall in ASCO/CAP group 1 (ratio >= 2, >= 4 copies: positive)
    # or group 5 (ratio < 2, < 4 copies: negative)
    by_numbers = np.select([(ratio >= 2) & (copies >= 4), (ratio < 2) & (copies < 4)],
                           ["positive", "negative"], default=None).astype(object)
    # ASCO/CAP 2018: ISH group 1 or 5 decides whatever the IHC; otherwise IHC 3+ positive,
    # 0/1+ negative, and IHC 2+ or no IHC is decided by the laboratory's recorded ISH result
    expected = np.select([score == "3+", score.isin(["0", "1+"])], ["positive", "negative"],
                         default=None).astype(object)
    undecided = ~score.isin(["0", "1+", "2+", "3+"]) | (score == "2+")
    expected[undecided] = fish.to_numpy(dtype=object)[undecided]
    grouped = pd.notna(by_numbers)
    expected[grouped] = by_numbers[grouped]
    got = biotab.data.her2_status.astype(object).where(biotab.data.her2_status.notna(), None)
    assert got.tolist() == pd.Series(expected).where(pd.notna(expected), None).tolist()
    assert biotab.mapping.rules["her2_status"].kind == "her2_asco_cap"


def test_biotab_columns_that_only_look_canonical_stay_unused(biotab):
    mapped = _mapped(biotab)
    for column in ("ajcc_pathologic_tumor_stage", "er_ihc_score", "er_status_ihc_Percent_Positive",
                   "nte_er_status"):
        assert column not in mapped
    assert mapped["ajcc_tumor_pathologic_pt"] == "t_stage"
    assert mapped["bcr_patient_barcode"] == "patient_id"


# --------------------------------------------------------------------------------------------
# GEO series matrix and SOFT
# --------------------------------------------------------------------------------------------


def _geo_truth() -> pd.DataFrame:
    samples: list[dict[str, str]] = []
    for line in MATRIX.read_text().splitlines():
        if line.startswith("!Sample_geo_accession"):
            samples = [{"geo_accession": c.strip('"')} for c in line.split("\t")[1:]]
        if line.startswith("!Sample_characteristics_ch1"):
            for sample, cell in zip(samples, line.split("\t")[1:], strict=True):
                key, _, value = cell.strip('"').partition(": ")
                if key:
                    sample[key] = value
    return pd.DataFrame(samples)


@pytest.fixture(scope="module")
def geo() -> cohort.Cohort:
    return cohort.load(MATRIX)


def test_series_matrix_characteristics_become_columns_by_key(geo):
    truth = _geo_truth()
    data = geo.data
    assert geo.n == len(truth) == 508
    assert data.patient_id.tolist() == truth.geo_accession.tolist()
    # drifted rows: "grade" is missing for some samples, so rows hold other keys there
    grade = truth.grade.where(truth.grade.isin(["1", "2", "3"]))
    assert data.grade.astype(object).where(data.grade.notna(), None).tolist() == \
        grade.where(grade.notna(), None).tolist()
    assert int(data.drfs_event.sum()) == int((truth.drfs_1_event_0_censored == "1").sum())
    np.testing.assert_allclose(data.drfs_months, truth.drfs_even_time_years.astype(float) * 12)
    assert int(data.pcr.sum()) == int((truth.pathologic_response_pcr_rd == "pCR").sum())
    assert geo.source.format == "GEO series matrix"
    assert dict(geo.mapping.event_coding) == {"drfs": "1=event"}  # the name states the coding
    assert geo.mapping.pcr_definition == "not recorded"


def test_gzipped_series_matrix_is_read_by_content(geo):
    packed = gzip.compress(MATRIX.read_bytes())
    result = cohort.load(packed, name="GSE25066_series_matrix.txt.gz")
    pd.testing.assert_frame_equal(result.data, geo.data)
    assert result.source.format == "GEO series matrix (gzip)"


def test_soft_family_file_gives_the_same_samples(geo):
    result = cohort.load(SOFT)
    assert result.n == 24
    pd.testing.assert_frame_equal(result.data.drop(columns="her2_category", errors="ignore"),
                                  geo.data.iloc[:24].drop(columns="her2_category",
                                                          errors="ignore"),
                                  check_categorical=False)


# --------------------------------------------------------------------------------------------
# cBioPortal study-view download, SEER*Stat listing, GB18030 text
# --------------------------------------------------------------------------------------------


def test_study_view_download_keeps_one_row_per_patient():
    result = cohort.load(STUDY_VIEW)
    truth = pd.read_csv(STUDY_VIEW, sep="\t", dtype=str, keep_default_na=False)
    first = truth.drop_duplicates("Patient ID")
    assert result.n == first["Patient ID"].nunique() == 400
    assert result.source.format.startswith("cBioPortal study-view download")
    assert int(result.data.os_event.sum()) == int((first["Overall Survival Status"]
                                                   == "1:DECEASED").sum())
    assert result.mapping.rules["her2_status"].kind == "her2_asco_cap"
    equivocal = first["IHC-HER2"].eq("Equivocal").to_numpy()
    fish = first["HER2 fish status"].map({"Positive": "positive", "Negative": "negative"})
    got = result.data.her2_status.astype(object).to_numpy()
    assert [g if isinstance(g, str) else None for g in got[equivocal]] == \
        [f if isinstance(f, str) else None for f in fish.to_numpy()[equivocal]]


def test_seer_listing_with_title_and_footnotes():
    result = cohort.load(SEER)
    truth = pd.read_csv(SEER, skiprows=2, dtype=str, keep_default_na=False).iloc[:600]
    assert result.n == 600
    assert result.data.patient_id.tolist() == truth["Patient ID"].tolist()  # leading zeros kept
    np.testing.assert_array_equal(result.data.os_months, truth["Survival months"].astype(float))
    assert result.data.os_event.tolist() == (truth["Vital status recode (study cutoff used)"]
                                             == "Dead").astype(float).tolist()
    assert result.data.age.max() == 90  # "90+ years" is top-coded, read as 90
    assert result.mapping.time_origin == "diagnosis"
    mapped = _mapped(result)
    assert "Breast Subtype (2010+)" not in mapped
    assert "Age recode with <1 year olds" not in mapped
    notes = " ".join(result.issues.message)
    assert "line 1 (title line above the header)" in notes
    assert "footnote line" in notes


def test_gb18030_text_is_detected_not_garbled():
    result = cohort.load(GB18030)
    assert result.source.encoding == "GB18030 (detected)"
    assert set(result.data.arm) == {"曲妥珠单抗+化疗", "化疗"}
    truth = pd.read_csv(GB18030, encoding="gb18030")
    assert (result.data.er_status == "positive").sum() == (truth.er_status == "阳性").sum()
    chosen = cohort.load(GB18030, encoding="Latin-1")  # an override is obeyed (and shown)
    assert chosen.source.encoding == "Latin-1 (chosen)"
    with pytest.raises(CohortError, match="cannot be decoded as UTF-8"):
        cohort.load(GB18030, encoding="UTF-8")


# --------------------------------------------------------------------------------------------
# Rules, inferences, memory
# --------------------------------------------------------------------------------------------


def test_derived_rules_round_trip_and_can_be_switched_off(biotab):
    again = Mapping.from_json(biotab.mapping.to_json())
    assert again == biotab.mapping
    reloaded = cohort.load(BIOTAB, mapping=again)
    pd.testing.assert_frame_equal(reloaded.data, biotab.data)
    off = cohort.load(BIOTAB, mapping=Mapping(derived={"os_months": None, "os_event": None}))
    assert "os_months" not in off.data  # no single column holds the OS time
    assert _mapped(off)["vital_status"] == "os_event"  # the event falls back to the direct guess
    assert dict(off.mapping.derived)["os_months"] is None
    sentence = export.derived_rules_sentence(biotab.mapping.to_json())
    assert sentence.startswith("Derived columns: ")
    assert "last\\_contact\\_days\\_to" in sentence


@pytest.mark.parametrize(("column", "values", "definition"), [
    ("pCR_ypT0ypN0", [1, 0, 1], "ypT0 ypN0"),
    ("pcr", ["ypT0isN0", "residual", "ypT0isN0"], "ypT0/is ypN0"),
    ("pcr", ["RCB-0", "RCB-II", "RCB-0"], "RCB-0"),
    ("pcr", ["pCR", "RD", "pCR"], "not recorded"),
])
def test_pcr_definition_is_inferred_never_assumed(column, values, definition):
    frame = pd.DataFrame({"patient_id": ["a", "b", "c"], column: values})
    result = cohort.from_frame(frame)
    assert result.mapping.pcr_definition == definition
    assert set(result.data.pcr_definition.dropna()) == {definition}
    assert result.data.pcr.tolist() == [1.0, 0.0, 1.0]
    chosen = cohort.from_frame(frame, mapping=Mapping(pcr_definition="ypT0/is"))
    assert chosen.mapping.pcr_definition == "ypT0/is"


def test_content_beats_a_misleading_name():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({
        "patient": [f"p{i}" for i in range(60)],
        "RFS": rng.integers(100, 3000, 60),           # a time in days, named like the event
        "rfs_ind": rng.integers(0, 2, 60),
        "HR_HER2_STATUS": rng.choice(["HRposHER2neg", "HER2pos", "TripleNeg"], 60),
        "dfs_time_weeks": rng.integers(5, 400, 60),
        "censor": rng.integers(0, 2, 60),            # pairs with the only time lacking an event
    })
    result = cohort.from_frame(frame)
    mapped = _mapped(result)
    assert mapped["RFS"] == "rfs_months"
    assert mapped["rfs_ind"] == "rfs_event"
    assert "HR_HER2_STATUS" not in mapped
    assert mapped["censor"] == "dfs_event"
    guesses = result.guesses.set_index("source_column")
    assert guesses.loc["RFS", "confidence"] != "high"
    assert "times" in guesses.loc["RFS", "reason"]


def test_a_dictionary_file_uploaded_with_the_data_describes_it():
    data = b"id,sstat,survdays\n1,7,900\n2,8,400\n3,9,700\n4,8,120\n"
    dictionary = (b"Variable,Description\nsstat,Survival status\n,7=Alive\n,8=Dead\n,9=Lost\n"
                  b"survdays,Time from study entry to death or last follow-up (days)\n")
    result = cohort.load([data, dictionary])
    assert result.n == 4
    assert result.data.os_event.tolist() == [0.0, 1.0, 0.0, 1.0]
    np.testing.assert_allclose(result.data.os_months, [900 * 12 / 365.25, 400 * 12 / 365.25,
                                                       700 * 12 / 365.25, 120 * 12 / 365.25])
    assert result.issues.message.str.contains("is a data dictionary").any()


def test_large_files_keep_only_the_mapped_columns(monkeypatch):
    full = cohort.load(METABRIC / "data_clinical_patient.txt")
    monkeypatch.setattr(cohort, "LARGE_FILE_BYTES", 10_000)
    monkeypatch.setattr(cohort, "SAMPLE_ROWS", 300)
    raw = cohort.read_source(METABRIC / "data_clinical_patient.txt")
    assert raw.frame.shape[1] < len(raw.all_columns) == 24
    small = cohort.build_cohort(raw, None)
    assert not small.source.complete
    pd.testing.assert_frame_equal(small.data, full.data)
    assert len(small.guesses) == 24  # every column is still listed in the mapping editor
    needs_more = Mapping(columns={"NPI": "er_allred"})
    with pytest.raises(CohortError, match="not kept in memory"):
        cohort.build_cohort(raw, needs_more)


def test_tables_of_many_cells_and_saved_mappings_keep_only_the_mapped_columns(monkeypatch):
    """A small file of many rows (compressed Parquet) is sized by its cells, not its bytes; a
    saved mapping says which columns are used, so the others are not read at any size."""
    path = METABRIC / "data_clinical_patient.txt"
    full = cohort.load(path)
    assert cohort.read_source(path).frame.shape[1] == 24  # small: every column, to re-map
    monkeypatch.setattr(cohort, "LARGE_TABLE_CELLS", 1_000)
    raw = cohort.read_source(path)
    assert raw.frame.shape[1] < 24
    assert "rows x 24 columns" in " ".join(n[2] for n in raw.notes)
    pd.testing.assert_frame_equal(cohort.build_cohort(raw, None).data, full.data)
    monkeypatch.setattr(cohort, "LARGE_TABLE_CELLS", 10**12)
    raw = cohort.read_source(path, mapping=full.mapping)
    assert raw.frame.shape[1] < 24
    assert "saved mapping" in " ".join(n[2] for n in raw.notes)
    pd.testing.assert_frame_equal(cohort.build_cohort(raw, full.mapping).data, full.data)


def test_a_compacted_source_remaps_to_the_same_cohort():
    raw = cohort.read_source(BIOTAB)
    small = cohort.compact(raw)
    assert small.frame.memory_usage(deep=True).sum() < raw.frame.memory_usage(deep=True).sum()
    pd.testing.assert_frame_equal(cohort.build_cohort(cohort.expand(small), None).data,
                                  cohort.build_cohort(raw, None).data)


def test_time_to_surgery_is_mapped_and_converted():
    days = cohort.from_frame(pd.DataFrame({"id": ["a", "b"], "days_to_surgery": [120, 183],
                                           "pcr": [1, 0]}))
    assert _mapped(days)["days_to_surgery"] == "surgery_months"
    np.testing.assert_allclose(days.data.surgery_months, np.array([120, 183]) * 12 / 365.25)
    dates = cohort.from_frame(pd.DataFrame({
        "id": ["a", "b"], "date_of_diagnosis": ["2015-01-10", "2016-03-01"],
        "date_of_surgery": ["2015-06-10", "2016-09-15"], "pcr": [1, 0]}))
    rule = dates.mapping.rules["surgery_months"]
    assert rule.kind == "date_difference"
    np.testing.assert_allclose(dates.data.surgery_months, np.array([151, 198]) * 12 / 365.25)
    assert "date_of_surgery" in " ".join(dates.describe_rules())
