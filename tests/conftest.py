"""Shared fixtures: real data sets for reference comparisons, all shipped in tests/data/real."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

# CI replays the same generated examples on every run (a failure there is then reproducible);
# local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "real"
CURATED_CSV = REAL / "curated_breast" / "bcClinicalTable.csv.gz"

#: The public source files as published (see tests/data/real/README.md): name -> SHA-256.
REAL_SOURCES = {
    "curated_breast/bcClinicalTable.csv":
        "2f673b6d2c13e18f2667cecda2e786d422f56ca3d189421772f87d7e8caaa850",
    "ispy1/I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx":
        "b488e8479d89986de72de0553c379a11417d8e207f001c1bd1851c22508813ba",
    "ispy2/ispy2_clinical_GSE194040.csv":
        "bf8b7e957dc6ded28e97adf26bb2ca3fcf333bf922257d3d8e07f1aeb4afd480",
}  # fmt: skip


def real_file_bytes(name: str) -> bytes:
    """The original bytes of a shipped public file (``name`` as published, e.g.
    ``"curated_breast/bcClinicalTable.csv"``), decompressed when it is shipped gzipped, and
    checked against its published SHA-256."""
    plain = REAL / name
    data = plain.read_bytes() if plain.exists() else gzip.decompress((REAL / f"{name}.gz").read_bytes())
    digest = hashlib.sha256(data).hexdigest()
    if digest != REAL_SOURCES[name]:
        raise AssertionError(f"{name}: SHA-256 {digest} differs from the published file's")
    return data


@pytest.fixture(scope="session")
def gbsg2() -> pd.DataFrame:
    """GBSG2 (686 patients, recurrence-free survival) as shipped by lifelines."""
    from lifelines.datasets import load_gbsg2

    return load_gbsg2()


@pytest.fixture(scope="session")
def real_source_dir(tmp_path_factory) -> Path:
    """A folder laid out as the public sources are published (ispy1/, ispy2/, curated_breast/),
    restored from tests/data/real: what ``scripts/build_bundled.py --source`` expects."""
    folder = tmp_path_factory.mktemp("real_sources")
    for name in REAL_SOURCES:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(real_file_bytes(name))
    return folder


@pytest.fixture(scope="session")
def curated_raw() -> pd.DataFrame:
    """The curatedBreastData clinical table (2,719 patients), shipped in tests/data/real."""
    return pd.read_csv(CURATED_CSV, low_memory=False)


@pytest.fixture(scope="session")
def curated_her2(curated_raw: pd.DataFrame) -> pd.DataFrame:
    """HER2+ patients of the curated table in canonical columns, events re-coded to 1 = event.

    The source codes RFS/DFS/OS as 1 = no event, so they are inverted here.
    """
    raw = curated_raw[curated_raw["HER2_preTrt"] == 1]
    out = pd.DataFrame(
        {
            "patient_id": raw["patient_ID"].astype(str),
            "study": raw["series_id"],
            "age": raw["age"],
            "er_status": raw["ER_preTrt"].map({1: "positive", 0: "negative"}),
            "er_percent": raw["ER_percentage_preTrt"],
            "pr_status": raw["PR_preTrt"].map({1: "positive", 0: "negative"}),
            "her2_status": "positive",
            "pcr": raw["pCR"],
            "rfs_months": raw["RFS_months_or_MIN_months_of_RFS"],
            "rfs_event": 1 - raw["RFS"],
            "dfs_months": raw["DFS_months_or_MIN_months_of_DFS"],
            "dfs_event": 1 - raw["DFS"],
            "os_months": raw["OS_months_or_MIN_months_of_OS"],
            "os_event": 1 - raw["OS"],
            "grade": raw["hist_grade"],
            "trastuzumab": raw["trastuzumab"],
        }
    )
    return out.reset_index(drop=True)


@pytest.fixture
def fresh_streamlit_caches():
    """Empty Streamlit's process-wide caches before and after a test (app tests must not see
    results, or uploads, cached by an earlier test)."""
    import sys

    import streamlit as st

    def clear():
        st.cache_data.clear()
        st.cache_resource.clear()
        if "ui" in sys.modules:  # the app's byte-bounded cache of whole-cohort frames
            sys.modules["ui"].FRAME_CACHE.clear()

    clear()
    yield
    clear()


METABRIC_CSV = ROOT / "tests" / "data" / "real" / "metabric_clinical.csv"


@pytest.fixture(scope="session")
def metabric_raw() -> pd.DataFrame:
    """METABRIC clinical data as shipped in tests/data/real (cBioPortal names and values)."""
    return pd.read_csv(METABRIC_CSV)


@pytest.fixture(scope="session")
def metabric(metabric_raw: pd.DataFrame) -> pd.DataFrame:
    """The 1,979 METABRIC patients with follow-up and a known cause, in analysis columns.

    ``bcss_event``: 0 alive, 1 died of breast cancer, 2 died of other causes (from VITAL_STATUS);
    statuses as "positive"/"negative"; grade as text "1"-"3"; missing values kept.
    """
    from her2er_dash.events import vital_status_event

    raw = metabric_raw
    status = {"+": "positive", "-": "negative"}
    out = pd.DataFrame(
        {
            "patient_id": raw["PATIENT_ID"],
            "study": raw["COHORT"].map(lambda v: f"cohort {int(v)}" if pd.notna(v) else None),
            "age": raw["AGE_AT_DIAGNOSIS"],
            "bcss_months": raw["OS_MONTHS"],
            "bcss_event": vital_status_event(raw["VITAL_STATUS"], raw["OS_MONTHS"]),
            "os_months": raw["OS_MONTHS"],
            "os_event": raw["OS_STATUS"].map({"DECEASED": 1.0, "LIVING": 0.0}),
            "er_status": raw["ER_STATUS"].map(status),
            "pr_status": raw["PR_STATUS"].map(status),
            "her2_status": raw["HER2_STATUS"].map(status),
            "grade": raw["GRADE"].map(lambda v: str(int(v)) if pd.notna(v) else None),
            "tumour_size": raw["TUMOR_SIZE"],
            "chemotherapy": raw["CHEMOTHERAPY"].map({"YES": "yes", "NO": "no"}),
            "hormone_therapy": raw["HORMONE_THERAPY"].map({"YES": "yes", "NO": "no"}),
        }
    )
    return out.dropna(subset=["bcss_months", "bcss_event"]).reset_index(drop=True)


# Real-browser tests: one app server and one Chromium per test module (a module may define its
# own ``server``, e.g. with a private data folder; its ``browser`` then uses that one).


@pytest.fixture(scope="module")
def server():
    from tests import browser_utils as bu

    bu.require_browser()
    with bu.streamlit_server() as running:
        yield running


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    from tests import browser_utils as bu

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(**bu.launch_kwargs())
        try:
            yield chromium
        finally:
            chromium.close()
