"""Shared fixtures: real data sets for reference comparisons."""

from __future__ import annotations

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
SHARED = ROOT.parent / "shared"
CURATED_CSV = SHARED / "data" / "curated_breast" / "bcClinicalTable.csv"


@pytest.fixture(scope="session")
def gbsg2() -> pd.DataFrame:
    """GBSG2 (686 patients, recurrence-free survival) as shipped by lifelines."""
    from lifelines.datasets import load_gbsg2

    return load_gbsg2()


@pytest.fixture(scope="session")
def curated_raw() -> pd.DataFrame:
    """The curatedBreastData clinical table from ../shared (skips when absent)."""
    if not CURATED_CSV.exists():
        pytest.skip(f"shared data not available at {CURATED_CSV}")
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
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
