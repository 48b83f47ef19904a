"""prognosis.pcr_by_er: is pCR equally prognostic in ER-positive and ER-negative disease?"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import prognosis, simulate, subgroups
from her2er_dash.errors import AnalysisError
from tests.rref import r_reference


@pytest.fixture(scope="module")
def curated_dfs(curated_raw) -> pd.DataFrame:
    """Every patient of the curated table with pCR, ER and DFS (events re-coded to 1 = event):
    482 patients, 106 events. Few HER2+ patients have follow-up, so the R comparison uses all."""
    raw = curated_raw
    out = pd.DataFrame({
        "dfs_months": raw["DFS_months_or_MIN_months_of_DFS"],
        "dfs_event": 1 - raw["DFS"],
        "pcr": raw["pCR"],
        "er_status": raw["ER_preTrt"].map({1: "positive", 0: "negative"}),
    })  # fmt: skip
    return out.dropna().reset_index(drop=True)


@pytest.mark.r
def test_matches_r_on_real_data(curated_dfs):
    """R (tests/r/prognosis_pcr_by_er.R): landmark at 6 months, coxph per ER level, anova LRT.

    In this table no ER-positive patient with pCR has a DFS event (0 of 23), so pCR's hazard
    ratio there is zero: R reports a meaningless 1e-11 (with a convergence warning) and an
    interaction p built on it; ours declines that level, names the separation, and runs no
    interaction test on a single estimable level. Every number ours does report equals R's.
    """
    ref = r_reference("prognosis_pcr_by_er", {"table": curated_dfs})
    ours = prognosis.pcr_by_er(curated_dfs, time="dfs_months", event="dfs_event", at=6.0)
    expected = ref["forest"].assign(level=lambda f: f["level"].astype(str))
    merged = ours.merge(expected, on=["subgroup", "level"], suffixes=("", "_r"), validate="1:1")
    assert len(merged) == len(ours) == 3
    assert (merged["n"] == merged["n_r"]).all()
    assert (merged["events"] == merged["events_r"]).all()
    estimated = merged["estimate"].notna()
    assert merged.loc[estimated, "level"].tolist() == ["All patients", "negative"]
    for column in ["estimate", "ci_low", "ci_high", "p"]:
        np.testing.assert_allclose(
            merged.loc[estimated, column], merged.loc[estimated, f"{column}_r"], rtol=1e-6
        )
    declined = merged.loc[~estimated].iloc[0]
    assert declined["estimate_r"] < 1e-6  # R's "estimate" is the infinite coefficient
    assert "separation" in declined["warning"]
    assert merged["p_interaction"].isna().all()
    landmark = ours.attrs["landmark"]
    assert landmark["excluded_event_before"] == ref["landmark"]["excluded_event_before"].iloc[0]
    assert landmark["excluded_censored_before"] == ref["landmark"]["excluded_censored_before"].iloc[0]


def test_is_the_forest_of_the_landmarked_patients(curated_dfs):
    at = 12.0
    ours = prognosis.pcr_by_er(curated_dfs, time="dfs_months", event="dfs_event", at=at)
    t, e = curated_dfs["dfs_months"], curated_dfs["dfs_event"]
    kept = curated_dfs[~(((e == 1) & (t <= at)) | ((e == 0) & (t < at)))]
    expected = subgroups.forest(
        kept.assign(dfs_months=kept["dfs_months"] - at), exposure="pcr", subgroups="er_status",
        outcome=("dfs_months", "dfs_event"), reference=0,
    )  # fmt: skip
    pd.testing.assert_frame_equal(ours, expected, rtol=1e-12)
    excluded = ours.attrs["landmark"]
    assert excluded["n_input"] == len(curated_dfs)
    assert excluded["excluded_event_before"] + excluded["excluded_censored_before"] == (
        len(curated_dfs) - len(kept)
    )
    # No surgery times in this table: the fixed landmark is the stated fallback, and says so.
    assert f"Fixed landmark at {at:g} months" in ours.attrs["landmark_note"]
    assert ours.attrs["landmark"]["method"] == "fixed"
    assert "records no surgery times" in ours.attrs["warning"]


def test_synthetic_trial_shows_pcr_more_prognostic_in_er_negative_disease():
    """The simulator is calibrated so that pCR lowers the EFS hazard more in ER- than in ER+
    HER2+ disease (HR about 0.3 vs 0.6); the seed question's analysis must recover that."""
    trial = simulate.trial(20_000, seed=11)
    her2 = trial[trial["her2_status"] == "positive"]
    table = prognosis.pcr_by_er(her2, time="efs_months", event="efs_event", er="er_status")
    assert table.attrs["landmark"]["method"] == "surgery"  # each patient's own surgery
    hr = table.set_index("level")["estimate"]
    assert hr["negative"] < 0.45 < hr["positive"] < 0.9
    assert table["p_interaction"].iloc[1] < 0.001


def test_refuses_a_landmark_after_all_follow_up(curated_dfs):
    with pytest.raises(AnalysisError, match="earlier landmark"):
        prognosis.pcr_by_er(curated_dfs, time="dfs_months", event="dfs_event", at=10_000.0)
    with pytest.raises(AnalysisError, match="no column 'rfs_months'"):
        prognosis.pcr_by_er(curated_dfs, time="rfs_months", event="dfs_event")
