"""On real data: the 16 GSE20194 tumours with ER 1-10 % are ER-low in every panel.

GSE20194 (MAQC-II, T/FAC neoadjuvant chemotherapy) records ER % of nuclei and an ER status; its
status calls 1-9 % negative and 10 % positive, i.e. a >= 10 % cut-off, not ASCO/CAP's >= 1 %.
With the ASCO/CAP defaults every panel must show those tumours as ER-low, and the app must say
which cut-off the study used. Data: the curatedBreastData clinical table (``curated_raw``).
"""

from __future__ import annotations

import pandas as pd
import pytest

from her2er_dash import classify, cohort, contrasts, response, subgroups, summary
from her2er_dash.filters import CohortFilter
from tests.apptest_helpers import goto, run_app

STATUS = {1: "positive", 0: "negative"}


@pytest.fixture(scope="module")
def gse20194_file(curated_raw) -> pd.DataFrame:
    """GSE20194 as a researcher would upload it: one row per patient, canonical-looking names."""
    raw = curated_raw[curated_raw["series_id"].str.contains("GSE20194", na=False)]
    return pd.DataFrame(
        {
            "patient_id": raw["patient_ID"].astype(str),
            "study": "GSE20194",
            "age": raw["age"],
            "er_percent": raw["ER_percentage_preTrt"],
            "er_status": raw["ER_preTrt"].map(STATUS),
            "pr_status": raw["PR_preTrt"].map(STATUS),
            "her2_status": raw["HER2_preTrt"].map(STATUS),
            "pcr": raw["pCR"],
        }
    ).reset_index(drop=True)


@pytest.fixture(scope="module")
def er_low_ids(gse20194_file) -> set[str]:
    er = gse20194_file["er_percent"]
    ids = set(gse20194_file.loc[er.between(1, 10), "patient_id"])
    assert len(ids) == 16
    return ids


@pytest.fixture(scope="module")
def classified(gse20194_file) -> pd.DataFrame:
    loaded = cohort.from_frame(gse20194_file, name="GSE20194")
    return CohortFilter().apply(loaded.data).data  # the app's path, ASCO/CAP defaults


def test_the_16_tumours_are_er_low_and_er_status_follows(classified, er_low_ids):
    low = classified[classified["er_category"] == "ER-low"]
    assert set(low["patient_id"]) == er_low_ids
    assert (low["er_status"] == "positive").all()  # "ER low positive" (ASCO/CAP 2020)
    # The file called 11 of them negative: kept, beside the current status.
    assert (low["er_status_recorded"] == "negative").sum() == 11
    assert (low["hr_status"] == "positive").all()


def test_the_study_cutoff_is_shown(classified, gse20194_file):
    table = classify.recorded_er_cutoffs(classified)
    row = table.set_index("study").loc["GSE20194"]
    assert row["implied_rule"] == "positive from 10 % (negative up to 5 %)"
    assert not row["consistent_with_current"]
    assert row["n_changed"] == 11
    report = cohort.from_frame(gse20194_file, name="GSE20194").issues
    assert report["message"].str.contains("Study GSE20194: its recorded ER status implies").any()


def test_er_low_in_every_panel(classified, er_low_ids):
    n_low = len(er_low_ids)
    low = classified[classified["patient_id"].isin(er_low_ids)]
    # Filter
    selected = CohortFilter(er_categories=("ER-low",)).apply(classified).data
    assert set(selected["patient_id"]) == er_low_ids
    # pCR rates and the comparison
    rates = response.pcr_rates(classified, by="er_category").set_index("er_category")
    assert rates.loc["ER-low", "n"] == n_low
    assert rates.loc["ER-low", "pcr"] == int(low["pcr"].sum())
    compared = response.compare(classified, "er_category").set_index("level")
    assert compared.loc["ER-low", "n"] == n_low
    # Table 1
    table_one = summary.table_one(classified)
    n_row = table_one[table_one["variable"] == "n"].iloc[0]
    er_low_columns = [c for c in table_one.columns if c.startswith("ER-low")]
    assert sum(int(n_row[c].replace(",", "")) for c in er_low_columns) == n_low
    # Adjusted odds ratios
    model = response.logistic(classified, ["er_category", "age"])
    assert "er_category: ER-low vs ER-negative" in model.table["term"].tolist()
    # Subgroup forest (ER category as subgroup) and ER category as exposure
    forest = subgroups.forest(classified, exposure="her2_status", subgroups="er_category")
    level = forest[(forest["subgroup"] == "er_category") & (forest["level"] == "ER-low")]
    assert level["n"].tolist() == [n_low]
    contrast = contrasts.two_level_forest(classified, exposure="er_category", level="ER-low",
                                          reference="ER-negative", subgroups_=["her2_status"])  # fmt: skip
    n_negative = int((classified["er_category"] == "ER-negative").sum())
    assert contrast["n"].iloc[0] == n_low + n_negative


def test_er_low_in_every_panel_of_the_app(gse20194_file, er_low_ids):
    """The same file uploaded to the app: ER-low has 16 patients on the Cohort, Response and
    Subgroups pages, and the Cohort page names the study's own cut-off."""
    at = run_app()
    upload = gse20194_file.to_csv(index=False).encode()
    at.file_uploader(key="upload_files").set_value(("GSE20194.csv", upload, "text/csv")).run()
    assert not at.exception
    assert at.sidebar.selectbox(key="cohort").value.startswith("upload:")
    cutoffs = next(d.value for d in at.dataframe if "implied_rule" in d.value.columns)
    assert cutoffs["implied_rule"].tolist() == ["positive from 10 % (negative up to 5 %)"]
    table_one = next(d.value for d in at.dataframe if "variable" in d.value.columns)
    n_row = table_one[table_one["variable"] == "n"].iloc[0]
    assert sum(int(n_row[c].replace(",", "")) for c in table_one.columns
               if c.startswith("ER-low")) == len(er_low_ids)  # fmt: skip

    at = goto(at, "2_Response.py")
    at.multiselect(key="resp_by").set_value(["er_category"]).run()
    rates = next(d.value for d in at.dataframe if "rate" in d.value.columns)
    assert rates.set_index("er_category").loc["ER-low", "n"] == len(er_low_ids)
    compared = next(d.value for d in at.dataframe if "risk_difference" in d.value.columns)
    assert compared.set_index("level").loc["ER-low", "n"] == len(er_low_ids)

    at = goto(at, "4_Subgroups.py")
    at.selectbox(key="sub_exposure").set_value("her2_status").run()
    at.selectbox(key="sub_level").set_value("positive").run()
    at.selectbox(key="sub_reference").set_value("negative").run()
    at.multiselect(key="sub_vars").set_value(["er_category"]).run()
    assert not at.exception
    forest = next(d.value for d in at.dataframe if "p_interaction" in d.value.columns)
    row = forest[(forest["subgroup"] == "er_category") & (forest["level"] == "ER-low")]
    assert row["n"].tolist() == [len(er_low_ids)]
