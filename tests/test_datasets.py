"""Bundled cohorts: registry, GBSG2 conversion, and the published table checked against its source."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from her2er_dash import datasets, schema, simulate
from her2er_dash.errors import CohortError

#: The project's verification table the published rows were transcribed from (a copy of the
#: team's shared reference table, shipped so that this check runs on a bare clone).
REFERENCE_TRIALS = Path(__file__).resolve().parent / "data" / "real" / "published_trials_reference.csv"


def test_list_bundled_describes_every_cohort_real_ones_first():
    table = datasets.list_bundled()
    assert table["key"].tolist() == [
        "ispy1", "ispy2", "curated_neoadjuvant", "gbsg2", "synthetic", "published"]
    assert list(table.columns) == ["key", "title", "kind", "synthetic", "source", "licence",
                                   "time_origin", "can_show", "cannot_show"]
    assert table.set_index("key").loc["published", "kind"] == "trial-level"
    assert table["synthetic"].tolist() == [False, False, False, False, True, False]
    assert table["cannot_show"].str.len().gt(0).all()
    assert table["time_origin"].isin(list(schema.TIME_ORIGINS)).all()
    assert "SYNTHETIC" in table.set_index("key").loc["synthetic", "title"]


def test_default_bundle_is_a_real_cohort_with_survival():
    cohort = datasets.bundled()
    assert cohort.key == datasets.DEFAULT_BUNDLE == "ispy1"
    assert not cohort.synthetic
    assert schema.available_endpoints(cohort.data.columns) == ["rfs", "os"]


def test_synthetic_is_labelled_and_classified():
    cohort = datasets.bundled("synthetic")
    assert cohort.key == "synthetic"
    assert cohort.synthetic
    assert cohort.label == simulate.SYNTHETIC_LABEL
    assert len(cohort.data) == 2000
    assert cohort.data["study"].nunique() == 6
    assert "er_category" in cohort.data.columns
    assert cohort.data.attrs["synthetic"] is True
    smaller = datasets.bundled("synthetic", n=300, seed=2)
    assert len(smaller.data) == 300


def test_gbsg2_conversion(gbsg2):
    cohort = datasets.bundled("gbsg2")
    data = cohort.data
    assert not cohort.synthetic
    assert cohort.label == ""
    assert len(data) == len(gbsg2) == 686
    assert data["patient_id"].iloc[0] == "GBSG2-001"
    assert (data["study"] == "GBSG2").all()
    assert (data["arm"] == "Hormone therapy").sum() == (gbsg2["horTh"] == "yes").sum()
    np.testing.assert_allclose(data["rfs_months"] * 30.4375, gbsg2["time"])
    assert data["rfs_event"].tolist() == gbsg2["cens"].tolist()
    np.testing.assert_array_equal(data["er_fmol"], gbsg2["estrec"])
    assert ((data["pr_status"] == "positive") == (gbsg2["progrec"] >= 10)).all()
    assert ((data["er_status"] == "positive") == (gbsg2["estrec"] >= 10)).all()
    assert (data["er_category"] != "ER-low").all()  # binary fmol rule: no ER-low band


@pytest.mark.parametrize(
    ("low", "high", "t_stage"), [(0, 20, "T1"), (21, 50, "T2"), (51, 999, "T3")]
)
def test_gbsg2_t_stage_boundaries(gbsg2, low, high, t_stage):
    data = datasets.gbsg2()
    rows = gbsg2["tsize"].between(low, high).to_numpy()
    assert rows.any()
    assert (data.loc[rows, "t_stage"] == t_stage).all()
    assert (data.loc[~rows, "t_stage"] != t_stage).all()


@pytest.mark.parametrize(("nodes", "n_stage"), [(1, "N1"), (3, "N1"), (4, "N2"), (9, "N2"), (10, "N3")])
def test_gbsg2_n_stage_boundaries(gbsg2, nodes, n_stage):
    data = datasets.gbsg2()
    rows = (gbsg2["pnodes"] == nodes).to_numpy()
    assert rows.any()
    assert (data.loc[rows, "n_stage"] == n_stage).all()


def test_gbsg2_cannot_show_her2():
    cohort = datasets.bundled("gbsg2")
    assert any("HER2 status is unknown in GBSG2" in s for s in cohort.cannot_show)
    assert "her2_status" not in cohort.data.columns
    assert "pcr" not in cohort.data.columns


def test_unknown_key_and_options_raise():
    with pytest.raises(CohortError, match="No bundled cohort called 'metabric'"):
        datasets.bundled("metabric")
    with pytest.raises(CohortError, match="takes no options"):
        datasets.bundled("gbsg2", n=10)


# -- published trial-level table ----------------------------------------------------------------


def test_published_table_shape_and_ranges():
    table = datasets.bundled("published").data
    expected = [
        "trial", "arm", "anti_her2", "chemo", "endocrine", "pcr_definition",
        "n_hr_pos", "pcr_rate_hr_pos", "pcr_events_hr_pos",
        "n_hr_neg", "pcr_rate_hr_neg", "pcr_events_hr_neg",
        "verification", "citation", "source_url", "notes",
    ]  # fmt: skip
    assert list(table.columns) == expected
    assert set(table["chemo"]) == {"yes", "no"}
    for group in ("hr_pos", "hr_neg"):
        rate = table[f"pcr_rate_{group}"].dropna()
        assert rate.between(0, 1).all()
        events, n = table[f"pcr_events_{group}"], table[f"n_{group}"]
        assert (events.dropna() <= n[events.notna()]).all()
    # Every row reports both HR groups, or one group with its n.
    both = table["pcr_rate_hr_pos"].notna() & table["pcr_rate_hr_neg"].notna()
    one_with_n = (table["pcr_rate_hr_pos"].notna() & table["n_hr_pos"].notna()) | (
        table["pcr_rate_hr_neg"].notna() & table["n_hr_neg"].notna()
    )
    assert (both | one_with_n).all()


def test_published_anchor_values():
    table = datasets.published_trials().set_index(["trial", "arm"])
    ispy = table.loc[table.index.get_level_values(0).str.startswith("I-SPY2")].iloc[0]
    assert (ispy["n_hr_pos"], ispy["pcr_rate_hr_pos"]) == (173, 0.40)
    assert (ispy["n_hr_neg"], ispy["pcr_rate_hr_neg"]) == (90, 0.68)
    assert pd.isna(ispy["pcr_events_hr_pos"])  # 40 % of 173 is not printed as a count
    rows_with_events = table[table["pcr_events_hr_pos"].notna()]
    assert rows_with_events["pcr_events_hr_pos"].tolist() == [8]  # NA-PHER2, printed as 8/30


def _percent(cell) -> float:
    match = re.match(r"\s*([\d.]+)\s*%", str(cell))
    return float(match.group(1)) / 100 if match else np.nan


def _printed_count(cell):
    match = re.search(r"\((\d+)/(\d+)\)", str(cell))
    return int(match.group(1)) if match else None


@pytest.fixture(scope="module")
def shared_trials() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_TRIALS)


def test_every_published_number_matches_the_shared_source(shared_trials):
    ours = datasets.published_trials()
    source = shared_trials.set_index(["trial", "arm_regimen"])
    for _, row in ours.iterrows():
        src = source.loc[(row["trial"], row["arm"])]
        for group, rate_col, n_col in (("hr_pos", "pCR_HRpos", "n_HRpos"), ("hr_neg", "pCR_HRneg", "n_HRneg")):
            expected_rate = _percent(src[rate_col])
            got_rate = row[f"pcr_rate_{group}"]
            assert (np.isnan(expected_rate) and pd.isna(got_rate)) or got_rate == pytest.approx(
                expected_rate, abs=1e-9
            ), (row["trial"], row["arm"], group)
            expected_n = src[n_col]
            got_n = row[f"n_{group}"]
            assert (pd.isna(expected_n) and pd.isna(got_n)) or int(expected_n) == got_n
            printed = _printed_count(src[rate_col])
            got_events = row[f"pcr_events_{group}"]
            assert (printed is None and pd.isna(got_events)) or printed == got_events
        assert row["verification"] == src["source_level"]
        assert row["chemo"] == ("yes" if str(src["chemotherapy"]).startswith("yes") else "no")


def test_published_table_has_every_qualifying_source_row(shared_trials):
    rates_pos = shared_trials["pCR_HRpos"].map(_percent)
    rates_neg = shared_trials["pCR_HRneg"].map(_percent)
    qualifies = (rates_pos.notna() & rates_neg.notna()) | (
        (rates_pos.notna() & shared_trials["n_HRpos"].notna())
        | (rates_neg.notna() & shared_trials["n_HRneg"].notna())
    )
    expected = set(zip(shared_trials.loc[qualifies, "trial"], shared_trials.loc[qualifies, "arm_regimen"], strict=True))
    ours = datasets.published_trials()
    assert set(zip(ours["trial"], ours["arm"], strict=True)) == expected
