"""The synthetic trial: determinism, schema, internal consistency and calibration to published rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import classify, simulate
from her2er_dash.errors import AnalysisError
from her2er_dash.schema import (
    CANONICAL_COLUMNS,
    CATEGORY_COLUMNS,
    NUMERIC_COLUMNS,
    STATUS_COLUMNS,
    STATUS_VALUES,
)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return simulate.trial(3000, seed=11, n_studies=5)


@pytest.fixture(scope="module")
def large() -> pd.DataFrame:
    """200,000 patients: calibration checks are then precise to about +-0.01."""
    return simulate.trial(200_000, seed=20121)


def _cox_hr_binary(time: np.ndarray, event: np.ndarray, x: np.ndarray) -> float:
    """Hazard ratio of a 0/1 covariate by Newton-Raphson on the Breslow partial likelihood.

    A quick Cox for the calibration check (lifelines takes seconds at this size); agrees with
    lifelines' Efron fit to about 1e-3 on these nearly tie-free times.
    """
    order = np.argsort(-time, kind="stable")
    e, z = event[order].astype(bool), x[order].astype(float)
    beta = 0.0
    for _ in range(25):
        w = np.exp(beta * z)
        s0, s1 = np.cumsum(w)[e], np.cumsum(w * z)[e]
        mean = s1 / s0
        score = float(np.sum(z[e] - mean))
        info = float(np.sum(mean * (1.0 - mean)))
        beta += score / info
        if abs(score / info) < 1e-10:
            break
    return float(np.exp(beta))


# -- determinism and structure -----------------------------------------------------------------


def test_same_seed_gives_identical_frame(small):
    pd.testing.assert_frame_equal(small, simulate.trial(3000, seed=11, n_studies=5))


def test_different_seed_gives_different_frame(small):
    other = simulate.trial(3000, seed=12, n_studies=5)
    assert not other["er_percent"].equals(small["er_percent"])
    assert not other["efs_months"].equals(small["efs_months"])


def test_columns_and_dtypes_follow_schema(small):
    assert set(small.columns) <= set(CANONICAL_COLUMNS)
    assert {"efs_months", "efs_event", "os_months", "os_event", "pcr"} <= set(small.columns)
    assert not {"rfs_months", "dfs_months", "drfs_months"} & set(small.columns)
    for col in set(NUMERIC_COLUMNS) & set(small.columns):
        assert small[col].dtype == np.float64, col
    for col in set(STATUS_COLUMNS) & set(small.columns):
        assert set(small[col].unique()) <= set(STATUS_VALUES), col
    for col in set(CATEGORY_COLUMNS) & set(small.columns):
        assert isinstance(small[col].dtype, pd.CategoricalDtype), col
    for col in ("pcr", "efs_event", "os_event"):
        assert set(small[col].dropna().unique()) <= {0, 1}, col
    assert small["pcr_definition"].astype(str).unique().tolist() == ["ypT0/is ypN0"]
    assert small.attrs["time_origin"] == "diagnosis"
    assert small.attrs["synthetic"] is True
    assert small.attrs["label"] == simulate.SYNTHETIC_LABEL
    assert small["patient_id"].iloc[0] == "SYN-000001"
    assert small["patient_id"].is_unique


def test_studies_and_arms(small):
    assert list(small["study"].cat.categories) == [f"SYN-0{i}" for i in range(1, 6)]
    assert simulate.trial(50)["study"].unique().tolist() == ["SYN-01"]
    her2_neg = small["her2_status"] == "negative"
    assert (small.loc[her2_neg, "arm"] == simulate.HER2_NEGATIVE_ARM).all()
    assert small.loc[~her2_neg, "arm"].isin(simulate.HER2_POSITIVE_ARMS).all()
    assert set(small["arm"].unique()) == set(simulate.ARMS)


def test_values_in_valid_ranges(small):
    assert small["age"].between(18, 90).all()
    assert small["er_percent"].between(0, 100).all()
    assert small["er_allred"].between(0, 8).all()
    assert small["er_hscore"].between(0, 300).all()
    assert small["pr_percent"].between(0, 100).all()
    assert small["her2_ihc"].isin([0, 1, 2, 3]).all()
    assert (small["efs_months"] >= 0).all()
    assert (small["os_months"] <= 120).all()


# -- internal consistency ----------------------------------------------------------------------


def test_er_measures_agree(small):
    er = small["er_percent"]
    assert (small["er_hscore"] >= er).all()
    assert (small["er_hscore"] <= 3 * er).all()
    assert ((small["er_allred"] >= 3) == (er >= 1)).all()
    assert ((small["er_status"] == "positive") == (er >= 1)).all()


def test_her2_columns_agree_with_asco_cap(small):
    status = classify.her2_status(
        small["her2_ihc"], small["her2_ish_ratio"], small["her2_copy_number"]
    )
    assert status.tolist() == small["her2_status"].tolist()
    category = classify.her2_category(small["her2_ihc"], small["her2_status"])
    assert category.astype(str).tolist() == small["her2_category"].astype(str).tolist()


def test_hr_status_agrees_with_er_and_pr(small):
    hr = classify.hr_status(small["er_status"], small["pr_status"])
    assert hr.tolist() == small["hr_status"].tolist()


def test_pcr_rcb_and_survival_agree(small):
    is_rcb0 = small["rcb_class"] == "RCB-0"
    assert (is_rcb0 == (small["pcr"] == 1)).all()
    assert (small["efs_months"] <= small["os_months"]).all()
    assert (small.loc[small["os_event"] == 1, "efs_event"] == 1).all()


def test_surgery_times_spread_over_three_to_nine_months(large):
    surgery = large["surgery_months"].dropna()
    low, high = simulate.SURGERY_WINDOW_MONTHS
    assert surgery.between(low, high).all()
    assert surgery.mean() == pytest.approx((low + high) / 2, abs=0.05)
    assert surgery.std() == pytest.approx((high - low) / 12**0.5, abs=0.05)  # uniform
    # Follow-up after surgery: every event or censoring comes after the patient's surgery.
    operated = large["surgery_months"].notna()
    assert (large.loc[operated, "efs_months"] >= large.loc[operated, "surgery_months"]).all()


def test_patients_without_surgery_have_no_pcr_and_an_early_event(large):
    """Progression or death before surgery: no surgery, so no pCR result (ITT counts them as
    non-pCR), no RCB, and an EFS event before the end of the surgery window."""
    no_surgery = large["surgery_months"].isna()
    assert no_surgery.any()
    assert (large["pcr"].isna() == no_surgery).all()
    assert large.loc[no_surgery, "rcb_class"].isna().all()
    assert (large.loc[no_surgery, "efs_event"] == 1).all()
    assert (large.loc[no_surgery, "efs_months"] < simulate.SURGERY_WINDOW_MONTHS[1]).all()


def test_invalid_arguments_raise():
    with pytest.raises(AnalysisError, match="n must be"):
        simulate.trial(0)
    with pytest.raises(AnalysisError, match="n_studies"):
        simulate.trial(10, n_studies=0)
    with pytest.raises(AnalysisError, match="her2_low_share"):
        simulate.trial(10, her2_low_share=1.5)


# -- calibration to published figures ----------------------------------------------------------


def test_er_mixture_matches_design(large):
    her2_pos = large[large["her2_status"] == "positive"]
    er = her2_pos["er_percent"]
    assert (er == 0).mean() == pytest.approx(0.40, abs=0.01)
    assert er.between(1, 10).mean() == pytest.approx(0.09, abs=0.01)
    assert er[er > 10].median() > 60  # skewed high


@pytest.mark.parametrize("arm", simulate.ARMS)
def test_pcr_by_hr_matches_targets(large, arm):
    rates = large[large["arm"] == arm].groupby("hr_status")["pcr"].mean()
    hr_pos_target, hr_neg_target = simulate.PCR_TARGETS[arm]
    assert rates["positive"] == pytest.approx(hr_pos_target, abs=0.02)
    assert rates["negative"] == pytest.approx(hr_neg_target, abs=0.02)
    assert rates["negative"] > rates["positive"]


def test_pooled_chemo_anti_her2_pcr_within_published_range(large):
    """Median of 17 chemo + anti-HER2 arms 26 % HR+ / 56 % HR-; I-SPY2 pooled 40 % / 68 %."""
    chemo = large[large["arm"].isin(simulate.HER2_POSITIVE_ARMS[:2])]
    rates = chemo.groupby("hr_status")["pcr"].mean()
    assert 0.26 <= rates["positive"] <= 0.40
    assert 0.56 <= rates["negative"] <= 0.68


def test_no_chemo_arms_have_lower_pcr_in_hr_positive(large):
    """NeoSphere HP 5.9 % HR+ vs THP 26 %; TBCRC 006 (with letrozole) 21 % HR+."""
    hr_pos = large[large["hr_status"] == "positive"].groupby("arm", observed=True)["pcr"].mean()
    chemo_free = hr_pos[list(simulate.HER2_POSITIVE_ARMS[2:])]
    assert (chemo_free < hr_pos[simulate.HER2_POSITIVE_ARMS[0]]).all()
    assert hr_pos[simulate.HER2_POSITIVE_ARMS[2]] < 0.12
    assert 0.15 <= hr_pos[simulate.HER2_POSITIVE_ARMS[3]] <= 0.27


def test_pcr_falls_with_er_level_most_steeply_without_chemo(large):
    her2_pos = large[(large["her2_status"] == "positive") & (large["er_percent"] > 10)]
    high = her2_pos["er_percent"] >= 90
    ratio = {}
    for arm in simulate.HER2_POSITIVE_ARMS[:3]:
        in_arm = her2_pos["arm"] == arm
        ratio[arm] = her2_pos.loc[in_arm & high, "pcr"].mean() / her2_pos.loc[in_arm & ~high, "pcr"].mean()
    assert all(r < 1 for r in ratio.values())
    assert ratio[simulate.HER2_POSITIVE_ARMS[2]] < min(ratio[a] for a in simulate.HER2_POSITIVE_ARMS[:2])


def test_pcr_predicts_efs_more_strongly_in_er_negative(large):
    """Landmark at each patient's surgery: EFS HR of pCR about 0.3 in ER-negative, 0.6-0.7 in
    ER-positive (the generator's assumption, see the module docstring)."""
    her2_pos = large[
        (large["her2_status"] == "positive") & (large["efs_months"] > large["surgery_months"])
    ]
    hrs = {}
    for name, mask in (("neg", her2_pos["er_percent"] < 1), ("pos", her2_pos["er_percent"] > 10)):
        sub = her2_pos[mask]
        hrs[name] = _cox_hr_binary(
            (sub["efs_months"] - sub["surgery_months"]).to_numpy(),
            sub["efs_event"].to_numpy(),
            sub["pcr"].to_numpy(),
        )
    assert 0.2 <= hrs["neg"] <= 0.4
    assert 0.55 <= hrs["pos"] <= 0.75
    assert hrs["pos"] - hrs["neg"] > 0.2


def test_quick_cox_matches_lifelines():
    from lifelines import CoxPHFitter

    df = simulate.trial(3000, seed=5)
    df = df[df["efs_months"] > df["surgery_months"]]
    frame = df[["efs_months", "efs_event", "pcr"]].astype(float)
    fitted = CoxPHFitter().fit(frame, "efs_months", "efs_event")
    ours = _cox_hr_binary(frame["efs_months"].to_numpy(), frame["efs_event"].to_numpy(), frame["pcr"].to_numpy())
    assert ours == pytest.approx(float(fitted.hazard_ratios_["pcr"]), rel=2e-3)


def test_few_events_before_surgery(large):
    early = large["surgery_months"].isna()
    assert 0.005 < early.mean() < 0.03


# -- command line ------------------------------------------------------------------------------


def test_cli_writes_parquet(tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "simulate_cohort.py"
    spec = importlib.util.spec_from_file_location("simulate_cohort", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "syn.parquet"
    assert module.main(["--n", "500", "--seed", "3", "--studies", "4", "--out", str(out)]) == 0
    back = pd.read_parquet(out)
    expected = simulate.trial(500, seed=3, n_studies=4)
    pd.testing.assert_frame_equal(back, expected, check_categorical=False)
    assert back["study"].nunique() <= 4
