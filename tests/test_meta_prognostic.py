"""The CTNeoBC analysis (meta.ctneobc, meta.ctneobc_from_summary) against R survival + metafor.

Reference inputs (real):

- ``gbsg2``: GBSG2 (686 patients) split into pseudo-studies by tumour grade (I, II, III), with
  hormone therapy (``horTh``) in the role of pCR and menopausal status (``menostat``) as the
  group. Not a pCR data set: it is the one real multi-study-shaped survival table here with
  events in every study x group x exposure cell, so every pooling path (k = 3 per group, the
  within-study interaction over 3 studies, a 3-stratum one-stage model) is exercised. Run
  without a landmark and with one at 180 days.
- ``curated_rfs``: HER2+ patients of the curated table with pCR, ER status and relapse-free
  survival (months; only GSE22226 has all three), landmark at 6 months: the real CTNeoBC
  question on real data, where each group has a single study.
- Published CTNeoBC numbers (Cortazar et al., Lancet 2014;384:164-72): pCR (ypT0/is ypN0) vs
  residual disease, event-free survival, HER2-positive patients, by hormone-receptor status:
  HR-positive HR 0.58 (95% CI 0.42-0.82), HR-negative HR 0.25 (0.18-0.34) — the HER2-positive
  rows of the paper's EFS-by-subtype forest plot (Figure 3). Only the paper's Summary is stored
  in the search corpus (it quotes the HER2+/HR- trastuzumab-treated subgroup, EFS HR 0.15,
  0.09-0.27); the two figure values above are transcribed from the paper and are to be confirmed
  by the published-trials verification (issue 13, part 1). The parity test does not depend on
  them being right: it checks that the contrast equals metafor's on the same numbers.

R code: tests/r/meta_ctneobc.R (coxph per cell, rma per group and for the contrasts,
``coxph(Surv(time, event) ~ exposed * group + strata(study))``) and meta_ctneobc_summary.R
(``rma(yi, sei, mods = ~ group, method = "FE")``). Tolerance 1e-6 relative.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import meta
from her2er_dash.errors import AnalysisError
from tests.rref import r_reference

RTOL = 1e-6
ATOL = 1e-9
METHODS = ("FE", "DL", "REML", "PM")
TESTS = ("z", "knha")
#: dataset -> (keyword arguments of meta.ctneobc, landmark passed to R)
DATASETS = {
    "gbsg2": ({"landmark": None}, np.nan),
    "gbsg2_landmark": ({"landmark": 180.0}, 180.0),
    "curated_rfs": ({"landmark": 6.0}, 6.0),
}
PUBLISHED = pd.DataFrame(
    {
        "study": ["CTNeoBC HER2+/HR+", "CTNeoBC HER2+/HR-"],
        "group": ["HR-positive", "HR-negative"],
        "hr": [0.58, 0.25],
        "ci_low": [0.42, 0.18],
        "ci_high": [0.82, 0.34],
    }
)


@pytest.fixture(scope="module")
def cohorts(gbsg2, curated_her2) -> dict[str, tuple[pd.DataFrame, dict]]:
    grades = pd.DataFrame(
        {
            "study": gbsg2["tgrade"].astype(str),
            "group": gbsg2["menostat"].astype(str),
            "exposure": gbsg2["horTh"].astype(str),
            "time": gbsg2["time"].astype(float),
            "event": gbsg2["cens"].astype(int),
        }
    )
    grade_options = {"group_reference": "Pre", "exposure_reference": "no"}
    rfs = curated_her2.dropna(subset=["study", "er_status", "pcr", "rfs_months", "rfs_event"])
    curated = pd.DataFrame(
        {
            "study": rfs["study"],
            "group": rfs["er_status"],
            "exposure": rfs["pcr"].astype(int),
            "time": rfs["rfs_months"].astype(float),
            "event": rfs["rfs_event"].astype(int),
        }
    )
    curated_options = {"group_reference": "negative", "exposure_reference": 0}
    return {
        "gbsg2": (grades, grade_options),
        "gbsg2_landmark": (grades, grade_options),
        "curated_rfs": (curated, curated_options),
    }


@pytest.fixture(scope="module")
def r_ctneobc(cohorts):
    inputs = {}
    for name, (frame, options) in cohorts.items():
        inputs[name] = pd.DataFrame(
            {
                "study": frame["study"],
                "group": (frame["group"] != options["group_reference"]).astype(int),
                "exposed": (frame["exposure"] != options["exposure_reference"]).astype(int),
                "time": frame["time"],
                "event": frame["event"],
            }
        )
    inputs["datasets"] = pd.DataFrame(
        {"dataset": list(DATASETS), "landmark": [at for _, at in DATASETS.values()]}
    )
    return r_reference("meta_ctneobc", inputs)


def _run(cohorts, name, **options):
    frame, coding = cohorts[name]
    return meta.ctneobc(
        frame, time="time", event="event", group="group", exposure="exposure",
        **coding, **DATASETS[name][0], **options,
    )


def _close(ours, theirs, what):
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float), rtol=RTOL, atol=ATOL,
        err_msg=what,
    )


@pytest.mark.r
@pytest.mark.parametrize("name", list(DATASETS))
def test_per_study_hazard_ratios_and_one_stage_match_coxph(cohorts, r_ctneobc, name):
    result = _run(cohorts, name)
    reference = cohorts[name][1]["group_reference"]
    cells = r_ctneobc["cells"]
    cells = cells[cells["dataset"] == name]
    ours = result.per_study.assign(g=(result.per_study["group"] != reference).astype(int))
    merged = ours.merge(cells, left_on=["study", "g"], right_on=["study", "group"])
    assert len(merged) == len(ours) == len(cells)
    assert list(merged["n_x"]) == list(merged["n_y"])
    assert list(merged["excluded"] != "") == list(merged["yi"].isna())
    usable = merged[merged["excluded"] == ""]
    _close(usable["estimate"], usable["yi"], "log HR")
    _close(usable["se"] ** 2, usable["vi"], "variance")
    one = r_ctneobc["one_stage"]
    one = one[one["dataset"] == name]
    for column in ("coef", "se", "z", "p"):
        _close(result.one_stage[column], one[column], column)
    groups = r_ctneobc["one_stage_groups"]
    groups = groups[groups["dataset"] == name].sort_values("group")
    _close(result.one_stage_groups["estimate"], groups["estimate"], "group log HR")
    _close(result.one_stage_groups["se"], groups["se"], "group se")
    one_row = result.contrast.set_index("approach").loc["one-stage"]
    _close(one_row["p_lr"], one["p_lr"].iloc[0], "LR p")
    if result.landmark is not None:
        assert result.landmark["at"] == DATASETS[name][1]


@pytest.mark.r
@pytest.mark.parametrize("test", TESTS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", list(DATASETS))
def test_two_stage_pooling_and_contrasts_match_metafor(cohorts, r_ctneobc, name, method, test):
    result = _run(cohorts, name, method=method, hksj=test == "knha")
    reference = cohorts[name][1]["group_reference"]

    def select(frame):
        return frame[
            (frame["dataset"] == name) & (frame["method"] == method) & (frame["test"] == test)
        ]

    pooled = select(r_ctneobc["pooled"])
    ours = result.pooled.assign(g=(result.pooled["group"] != reference).astype(int))
    merged = ours.merge(pooled, left_on="g", right_on="group")
    assert list(merged["k_x"]) == list(merged["k_y"])
    for column in ("estimate", "se", "ci_low", "ci_high", "p", "tau2"):
        _close(merged[f"{column}_x"], merged[f"{column}_y"], column)
    contrast = select(r_ctneobc["contrast"]).set_index("approach")
    for approach in ("two-stage", "within-study"):
        row = result.contrast.set_index("approach").loc[approach]
        for column in ("estimate", "se", "ci_low", "ci_high", "p"):
            _close(row[column], contrast.loc[approach, column], f"{approach} {column}")
        assert row["k"] == contrast.loc[approach, "k"]


def test_two_stage_contrast_is_the_subgroup_test(cohorts):
    """z² of the difference of the pooled log HRs is the subgroup Q between (1 df)."""
    result = _run(cohorts, "gbsg2")
    two_stage = result.contrast.set_index("approach").loc["two-stage"]
    z = two_stage["estimate"] / two_stage["se"]
    assert z**2 == pytest.approx(result.subgroups.q_between, rel=1e-10)
    assert two_stage["p"] == pytest.approx(result.subgroups.q_between_p, rel=1e-8)
    assert two_stage["ratio"] == pytest.approx(np.exp(two_stage["estimate"]))


def test_result_invariants_and_forest_frame(cohorts):
    result = _run(cohorts, "gbsg2_landmark")
    usable = result.per_study[result.per_study["excluded"] == ""]
    assert ((usable["ci_low"] <= usable["estimate"]) & (usable["estimate"] <= usable["ci_high"])).all()
    assert (result.pooled["tau2"] >= 0).all()
    rows = result.contrast
    assert ((rows["ci_low"] <= rows["estimate"]) & (rows["estimate"] <= rows["ci_high"])).all()
    assert list(rows["approach"]) == ["two-stage", "within-study", "one-stage"]
    frame = result.forest_frame()
    assert frame.attrs["scale"] == "HR"
    assert (frame["kind"] == "pooled").sum() == 2
    assert result.exclusions.n_input == len(cohorts["gbsg2_landmark"][0])
    assert result.exclusions.n_used == sum(result.per_study["n"])
    dropped = dict(result.exclusions.reasons)
    assert dropped["event at or before the landmark (180)"] == result.landmark["excluded_event_before"]
    landmark_note = next(note for note in result.notes if note.startswith("Landmark at 180: "))
    assert f"{result.landmark['excluded_event_before']:,} patients with an event" in landmark_note


def test_single_study_groups_still_give_all_three_contrasts(cohorts):
    result = _run(cohorts, "curated_rfs")
    assert list(result.pooled["k"]) == [1, 1]
    assert list(result.contrast["k"]) == [2, 1, 1]
    two_stage, within = (result.contrast.set_index("approach").loc[a] for a in ("two-stage", "within-study"))
    assert two_stage["estimate"] == pytest.approx(within["estimate"], rel=1e-12)
    assert any("single study" in note for note in result.notes)


def test_group_without_any_estimate_is_refused_with_the_reason(cohorts):
    frame, coding = cohorts["gbsg2"]
    no_events_pre = frame.assign(event=np.where(frame["group"] == "Pre", 0, frame["event"]))
    with pytest.raises(AnalysisError, match="needs a pCR hazard ratio in both group groups"):
        meta.ctneobc(
            no_events_pre, time="time", event="event", group="group", exposure="exposure",
            landmark=None, **coding,
        )


def test_missing_columns_are_named(cohorts):
    frame, coding = cohorts["gbsg2"]
    with pytest.raises(AnalysisError, match="no column 'er_status'"):
        meta.ctneobc(frame, time="time", event="event", exposure="exposure", landmark=None)


# ------------------------------------------------------------------------------------------
# Published per-group hazard ratios
# ------------------------------------------------------------------------------------------
@pytest.mark.r
def test_summary_contrast_matches_rma_fe_on_the_published_numbers():
    expected = r_reference("meta_ctneobc_summary", {"published": PUBLISHED})
    result = meta.ctneobc_from_summary(PUBLISHED)
    coefficients = expected["coefficients"].sort_values("term")
    for column in ("estimate", "se", "statistic", "ci_low", "ci_high", "p"):
        _close(result.table[column], coefficients[column], column)
    fit = expected["fit"].iloc[0]
    _close(result.qm, fit["qm"], "QM")
    _close(result.qm_p, fit["qm_p"], "QM p")
    assert result.qe == 0
    assert result.table["term"].iloc[1] == "group: HR-positive vs HR-negative"


def test_summary_contrast_by_hand():
    """log(0.58/0.25) with se² the sum of the two CI-derived variances; ratio ~ 2.3."""
    result = meta.ctneobc_from_summary(PUBLISHED)
    se = (np.log(PUBLISHED["ci_high"]) - np.log(PUBLISHED["ci_low"])) / (2 * 1.959963984540054)
    contrast = result.table.iloc[1]
    assert contrast["estimate"] == pytest.approx(np.log(0.58 / 0.25), rel=1e-12)
    assert contrast["se"] == pytest.approx(np.sqrt(np.sum(se**2)), rel=1e-12)
    assert np.exp(contrast["estimate"]) == pytest.approx(2.32, rel=1e-12)
    flipped = meta.ctneobc_from_summary(PUBLISHED, reference="HR-positive")
    assert flipped.table["estimate"].iloc[1] == pytest.approx(-contrast["estimate"], rel=1e-12)


def test_summary_input_accepts_log_estimates_and_refuses_bad_intervals():
    logs = PUBLISHED.assign(
        estimate=np.log(PUBLISHED["hr"]),
        se=(np.log(PUBLISHED["ci_high"]) - np.log(PUBLISHED["ci_low"])) / (2 * 1.959963984540054),
    ).drop(columns=["hr", "ci_low", "ci_high"])
    assert meta.ctneobc_from_summary(logs).table["estimate"].iloc[1] == pytest.approx(
        np.log(0.58 / 0.25)
    )
    inverted = PUBLISHED.assign(ci_low=[0.82, 0.18], ci_high=[0.42, 0.34])
    with pytest.raises(AnalysisError, match="ci_low <= hr <= ci_high"):
        meta.ctneobc_from_summary(inverted)


def _tied_multi_study(seed: int, n: int = 3000) -> pd.DataFrame:
    """Random multi-study data with many tied times (2 decimals of few values) and uneven
    studies, labelled so that their sorted order differs from their order of appearance."""
    rng = np.random.default_rng(seed)
    study = rng.choice(["s9", "s10", "a", "B", "s2"], n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    er = rng.choice(["positive", "negative"], n)
    pcr = (rng.random(n) < np.where(er == "negative", 0.5, 0.25)).astype(float)
    hazard = 0.02 * np.exp(-0.8 * pcr + 0.3 * (er == "positive") + 0.5 * pcr * (er == "positive"))
    time = np.round(rng.exponential(1 / hazard), 0) / 4 + 0.25  # heavy ties
    censor = rng.uniform(5, 40, n)
    return pd.DataFrame({
        "study": pd.Categorical(study, categories=["s9", "s2", "a", "s10", "B"]),
        "er_status": er, "pcr": pcr,
        "efs_months": np.minimum(time, censor), "efs_event": (time <= censor).astype(int),
    })


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_stage_equals_the_stratified_cox_models_it_replaces(seed):
    """The one-stage model is fitted on arrays (no frame copies, no PH test); its numbers are
    exactly those of survival.cox on the same model, and the LR test that of the two models."""
    from her2er_dash import survival

    df = _tied_multi_study(seed)
    result = meta.ctneobc(df, time="efs_months", event="efs_event", landmark=None)
    frame = pd.DataFrame({
        "x": df["pcr"], "g": (df["er_status"] == "positive").astype(float),
        "study": df["study"].astype(str), "t": df["efs_months"], "e": df["efs_event"],
    })
    frame["i"] = frame["x"] * frame["g"]
    full = survival.cox(frame, "t", "e", ["x", "g", "i"], strata="study")
    reduced = survival.cox(frame, "t", "e", ["x", "g"], strata="study")
    columns = ["coef", "se", "hr", "ci_low", "ci_high", "z", "p"]
    np.testing.assert_array_equal(result.one_stage[columns].to_numpy(),
                                  full.table[columns].to_numpy())
    assert list(result.one_stage["term"]) == [
        "pcr", "er_status: positive vs negative", "pcr x er_status: positive"]
    one_stage = result.contrast.set_index("approach").loc["one-stage"]
    from scipy.special import chdtrc

    lr = max(0.0, 2 * (full.loglik[1] - reduced.loglik[1]))
    assert one_stage["p_lr"] == chdtrc(1, lr)
    assert one_stage["k"] == 5
    assert one_stage["estimate"] == full.table["coef"].iloc[2]
    groups = result.one_stage_groups.set_index("group")
    assert groups.loc["negative", "estimate"] == full.table["coef"].iloc[0]
    assert groups.loc["negative", "se"] == full.table["se"].iloc[0]
    assert np.isclose(groups.loc["positive", "estimate"],
                      full.table["coef"].iloc[0] + full.table["coef"].iloc[2], rtol=1e-14)
