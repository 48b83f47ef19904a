"""The bundled real cohorts: published counts reproduced through the public API, provenance
complete, and the shipped files exactly what scripts/build_bundled.py makes from the sources."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from her2er_dash import datasets, response, schema
from tests.conftest import REAL, REAL_SOURCES, ROOT

REAL_KEYS = ("ispy1", "ispy2", "curated_neoadjuvant")


def _counts(rates: pd.DataFrame, by: list[str]) -> dict[tuple, tuple[int, int]]:
    """{group values: (pCR, n)} from a pcr_rates table (the overall row dropped)."""
    return {tuple(str(v) for v in row[by]): (int(row["pcr"]), int(row["n"]))
            for _, row in rates.iterrows()}


@pytest.fixture(scope="module")
def ispy1() -> datasets.BundledCohort:
    return datasets.bundled("ispy1")


@pytest.fixture(scope="module")
def ispy2() -> datasets.BundledCohort:
    return datasets.bundled("ispy2")


@pytest.fixture(scope="module")
def curated() -> datasets.BundledCohort:
    return datasets.bundled("curated_neoadjuvant")


# -- I-SPY 2 --------------------------------------------------------------------------------


def test_ispy2_patients_arms_and_her2_positive_pcr_by_hr(ispy2):
    data = ispy2.data
    assert len(data) == 987
    assert data["patient_id"].is_unique
    assert data["arm"].nunique() == 10
    her2 = data[data["her2_status"] == "positive"]
    counts = _counts(response.pcr_rates(her2, "hr_status"), ["hr_status"])
    assert counts == {("negative",): (56, 89), ("positive",): (58, 156)}
    her2_neg = _counts(response.pcr_rates(data[data["her2_status"] == "negative"], "hr_status"),
                       ["hr_status"])
    assert her2_neg == {("negative",): (140, 363), ("positive",): (63, 379)}


def test_ispy2_her2_positive_pcr_by_blueprint_and_pam50(ispy2):
    her2 = ispy2.data[ispy2.data["her2_status"] == "positive"]
    blueprint = _counts(response.pcr_rates(her2, "blueprint_subtype"), ["blueprint_subtype"])
    assert blueprint == {("Luminal-type",): (9, 60), ("HER2-type",): (95, 164),
                         ("Basal-type",): (10, 21)}
    pam50 = _counts(response.pcr_rates(her2, "pam50_subtype"), ["pam50_subtype"])
    assert pam50 == {("LumA",): (16, 59), ("LumB",): (19, 58), ("Her2",): (67, 103),
                     ("Basal",): (8, 20), ("Normal",): (2, 3)}


def test_ispy2_regimen_classes_follow_the_treatment_given(ispy2):
    data = ispy2.data
    assert set(data["regimen_class"].dropna()) <= set(schema.REGIMEN_CLASSES)
    assert data["regimen_class"].notna().all()
    by_arm = data.groupby(["arm", "her2_status"], observed=True)["regimen_class"].nunique()
    assert (by_arm == 1).all()  # one regimen per arm and HER2 status
    tdm1 = data[data["arm"] == "T-DM1 + pertuzumab (no paclitaxel)"]
    assert len(tdm1) == 52
    assert (tdm1["regimen_class"] == "anti-HER2 ADC").all()
    control = data[data["arm"].str.startswith("Control")]
    assert set(zip(control["her2_status"], control["regimen_class"], strict=True)) == {
        ("negative", "chemotherapy alone"), ("positive", "chemotherapy + anti-HER2")}


def test_ispy2_signatures_and_subtypes_are_canonical(ispy2):
    data = ispy2.data
    assert schema.available_signatures(data.columns) == list(schema.SIGNATURE_COLUMNS)
    assert set(data["pam50_subtype"].dropna()) <= set(schema.PAM50_SUBTYPES)
    assert set(data["blueprint_subtype"].dropna()) <= set(schema.BLUEPRINT_SUBTYPES)
    assert data["blueprint_subtype"].isna().sum() == 6
    assert data["pam50_subtype"].isna().sum() == 15
    # the ERBB2 amplicon module separates HER2+ from HER2- tumours (a sanity check of the join)
    means = data.groupby("her2_status")["mod7_erbb2"].mean()
    assert means["positive"] > means["negative"] + 1
    assert data["her2_category"].value_counts().to_dict() == {
        "HER2-low": 368, "HER2-positive": 245, "HER2-zero": 217}
    assert not schema.available_endpoints(data.columns)  # no survival in GSE194040


# -- I-SPY 1 --------------------------------------------------------------------------------


def test_ispy1_reproduces_table_2_and_the_event_counts(ispy1):
    data = ispy1.data
    assert len(data) == 221
    rates = response.pcr_rates(data, ["hr_status", "her2_status"])
    counts = _counts(rates, ["hr_status", "her2_status"])
    assert counts[("positive", "negative")] == (8, 93)   # Esserman 2012, Table 2
    assert counts[("negative", "negative")] == (18, 51)  # Esserman 2012, Table 2
    assert (data["her2_status"] == "positive").sum() == 67
    assert int(data["rfs_event"].sum()) == 63
    assert int(data["os_event"].sum()) == 40  # sstat 8 = dead
    assert data["survival_status"].value_counts().to_dict() == {
        "alive": 176, "dead": 40, "lost to follow-up": 5}
    assert int(data["pcr"].isna().sum()) == 6  # no surgery


def test_ispy1_times_and_origin(ispy1):
    data = ispy1.data
    assert ispy1.time_origin == data.attrs["time_origin"] == "start of therapy"
    assert schema.available_endpoints(data.columns) == ["rfs", "os"]
    # months are the workbook's days / 30.4375: RFS 179-2520 days
    assert data["rfs_months"].min() * 30.4375 == pytest.approx(179)
    assert data["rfs_months"].max() * 30.4375 == pytest.approx(2520)
    assert "surgery_months" not in data.columns
    assert any("No surgery date" in s for s in ispy1.cannot_show)
    her2_pos = data[data["her2_status"] == "positive"]
    assert (her2_pos["regimen_class"] == "not recorded").all()  # trastuzumab not recorded


# -- curated GEO neoadjuvant studies ---------------------------------------------------------


def test_curated_studies_and_her2_positive_counts(curated):
    data = curated.data
    assert sorted(data["study"].unique()) == [
        "GSE16446", "GSE20194", "GSE21997", "GSE22226", "GSE22358", "GSE25055", "GSE25065",
        "GSE32646"]
    assert len(data) == 1280
    six = ["GSE20194", "GSE22226", "GSE22358", "GSE32646", "GSE21997", "GSE16446"]
    her2 = data[data["study"].isin(six) & (data["her2_status"] == "positive") & data["pcr"].notna()]
    assert len(her2) == 212
    # The status as the file records it: the shared README says ER+ 84 / ER- 128; the file has
    # 83 / 128 and one missing (GSE22226). GSE20194 recorded ER+ from 10 % of cells.
    recorded = her2["er_status_recorded"].value_counts(dropna=False).to_dict()
    assert recorded == {"negative": 128, "positive": 83, np.nan: 1}
    gse20194 = her2[her2["study"] == "GSE20194"]
    counts = _counts(response.pcr_rates(gse20194, "er_status_recorded"), ["er_status_recorded"])
    assert counts == {("negative",): (19, 31), ("positive",): (3, 23)}
    # ER status follows the ASCO/CAP 2020 cut-points where ER % exists (>= 1 % positive): two of
    # GSE20194's tumours recorded negative have 1-10 % ER cells and are ER-low, so positive.
    assert her2["er_status"].value_counts(dropna=False).to_dict() == {
        "negative": 126, "positive": 85, np.nan: 1}


def test_curated_events_are_inverted_to_one_means_event(curated, curated_raw):
    data = curated.data.set_index("patient_id")
    raw = curated_raw.assign(patient_id=curated_raw["patient_ID"].astype(str)).set_index("patient_id")
    raw = raw.loc[data.index]
    for endpoint, column in (("rfs", "RFS"), ("dfs", "DFS"), ("os", "OS")):
        has = raw[column].notna()
        np.testing.assert_array_equal(data.loc[has, f"{endpoint}_event"], 1 - raw.loc[has, column])
        assert data.loc[~has, f"{endpoint}_event"].isna().all()
    # GSE16446: 25 DFS events and 16 deaths (the source's DFS = 0 / OS = 0)
    top = curated.data[curated.data["study"] == "GSE16446"]
    assert (int(top["dfs_event"].sum()), int(top["os_event"].sum())) == (25, 16)


def test_curated_leaves_out_series_whose_pcr_is_a_clinical_response(curated, curated_raw):
    assert not set(curated.data["geo_series"]) & {"GSE20181", "GSE23428", "GSE33658"}
    # GSE20181 (neoadjuvant letrozole) calls 37 of 53 tumours "pCR": a clinical response
    letrozole = curated_raw[curated_raw["series_id"] == "GSE20181"]
    assert letrozole["pCR"].sum() == 37


# -- every real cohort -----------------------------------------------------------------------


@pytest.mark.parametrize("key", REAL_KEYS)
def test_real_cohort_provenance_and_canonical_values(key):
    cohort = datasets.bundled(key)
    assert not cohort.synthetic
    assert cohort.label == ""
    for text in (cohort.title, cohort.source, cohort.citation, cohort.licence):
        assert text.strip()
    assert cohort.can_show
    assert cohort.cannot_show
    assert cohort.time_origin in schema.TIME_ORIGINS
    data = cohort.data
    assert data["patient_id"].is_unique
    assert data["pcr_definition"].notna().all()
    assert set(data["pcr_definition"]) <= set(schema.PCR_DEFINITIONS)
    assert data["pcr"].dropna().isin([0, 1]).all()
    for status in schema.STATUS_COLUMNS:
        if status in data.columns:
            assert set(data[status].dropna()) <= {"positive", "negative"}
    for endpoint in schema.available_endpoints(data.columns):
        assert data[f"{endpoint}_event"].dropna().isin([0, 1]).all()
        assert (data[f"{endpoint}_months"].dropna() >= 0).all()
    assert set(data["regimen_class"].dropna()) <= set(schema.REGIMEN_CLASSES)
    assert key in (ROOT / "data" / "README.md").read_text()


def test_shipped_files_stay_small():
    sizes = {key: (ROOT / "data" / f"{key}.csv.gz").stat().st_size for key in REAL_KEYS}
    assert sum(sizes.values()) < 1_000_000, sizes


def test_build_script_reproduces_the_shipped_files_byte_for_byte(real_source_dir, tmp_path):
    """scripts/build_bundled.py on the public sources (shipped in tests/data/real) writes exactly
    the files in data/: the bundle is reproducible and nobody edited it by hand."""
    if not all((REAL / name).exists() or (REAL / f"{name}.gz").exists() for name in REAL_SOURCES):
        pytest.skip(f"the public source files are not in {REAL}: nothing to rebuild from")
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_bundled.py"), "--source", str(real_source_dir),
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for key in REAL_KEYS:
        built = (tmp_path / f"{key}.csv.gz").read_bytes()
        shipped = (ROOT / "data" / f"{key}.csv.gz").read_bytes()
        assert built == shipped, f"data/{key}.csv.gz differs from a rebuild: rerun the script"


def test_build_script_requires_a_source_folder(tmp_path):
    script = str(ROOT / "scripts" / "build_bundled.py")
    missing = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0
    assert "--source" in missing.stderr
    absent = subprocess.run([sys.executable, script, "--source", str(tmp_path / "nowhere"),
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert absent.returncode != 0
    assert "is not a folder" in absent.stderr
