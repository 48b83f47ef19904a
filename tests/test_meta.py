"""her2er_dash.meta against R metafor on real data, plus invariants and named failure cases.

Reference inputs (all real):

(a) ER+ vs ER- odds ratio of pCR per study among HER2+ patients of the curated table (studies with
    both ER groups; the two ER-negative-only studies are excluded and listed);
    PR+ vs PR- the same way: it has zero cells (GSE22358, GSE25065/6), so it checks the
    continuity correction of ``escalc(add = 1/2, to = "only0")``.
(b) logit pCR proportion per study, and per study x ER group (which is clearly heterogeneous, so
    tau² > 0 is exercised for every estimator).
(c) log HR of hormone therapy (horTh) in GBSG2 split into pseudo-studies by tumour grade (tgrade:
    I, II, III). This is not a real multi-study data set: the split only gives three real Cox
    fits to pool. Here REML finds a small positive tau² while DL and PM are truncated at 0.
(d) published trials (data/published_trials.csv): not used. Only Buzdar's two small arms print
    counts for both HR groups; I-SPY2 prints n with rounded percentages only (40 % of 173 could be
    69 or 70 responders), so no further real 2x2 table can be formed.

Tolerance: 1e-6 relative (atol 1e-10 for quantities that are exactly 0, e.g. tau² on the
boundary). R is run with ``control = list(threshold = 1e-12, tol = 1e-12)`` because metafor's
default REML threshold (1e-5 change in tau²) and PM root tolerance (1.2e-4) stop short of the
converged value; Python iterates REML to a change below 1e-10 and solves PM to 1e-15.

R code (tests/r/meta_common.R, meta_or.R, meta_plo.R, meta_hr.R), in short::

    es <- escalc("OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, add = 1/2, to = "only0",
                 drop00 = TRUE)                       # or escalc("PLO", xi = xi, ni = ni)
    # or, per study: fit <- coxph(Surv(time, event) ~ exposed, ties = "efron"); yi = coef(fit)
    res <- rma(yi, vi, data = es, method = m, test = t,          # m: FE DL REML PM; t: z knha
               control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000))
    predict(res)$pi.lb; predict(res)$pi.ub; weights(res)
    rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, measure = "OR"); weights(mh)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from her2er_dash import meta
from her2er_dash.errors import AnalysisError
from tests.rref import r_reference

RTOL = 1e-6
ATOL = 1e-10
#: On the boundary REML creeps towards tau² = 0 in halved steps and stops within its threshold
#: (1e-10 here, 1e-12 in R), so tau² and the statistics derived from it get an absolute tolerance.
BOUNDARY_ATOL = {"tau2": 1e-9, "i2": 1e-6, "h2": 1e-8}
IV_METHODS = ("FE", "DL", "REML", "PM")
TESTS = ("z", "knha")

#: MetaResult attribute -> column of the R pooled table.
POOLED_FIELDS = {
    "estimate": "estimate",
    "se": "se",
    "ci_low": "ci_low",
    "ci_high": "ci_high",
    "p_value": "p_value",
    "tau2": "tau2",
    "i2": "i2",
    "h2": "h2",
    "q": "q",
    "p_heterogeneity": "q_p",
    "pi_low": "pi_low",
    "pi_high": "pi_high",
}


# ------------------------------------------------------------------------------------------
# Real inputs
# ------------------------------------------------------------------------------------------
def _two_group_patients(curated_her2: pd.DataFrame, status: str) -> pd.DataFrame:
    rows = curated_her2.dropna(subset=["study", status, "pcr"])
    return pd.DataFrame(
        {
            "study": rows["study"].to_numpy(),
            status: rows[status].to_numpy(),
            "pcr": rows["pcr"].astype(int).to_numpy(),
        }
    )


def _as_r_binary(patients: pd.DataFrame, status: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": patients["study"],
            "exposed": (patients[status] == "positive").astype(int),
            "outcome": patients["pcr"],
        }
    )


@pytest.fixture(scope="module")
def er_patients(curated_her2):
    return _two_group_patients(curated_her2, "er_status")


@pytest.fixture(scope="module")
def pr_patients(curated_her2):
    return _two_group_patients(curated_her2, "pr_status")


@pytest.fixture(scope="module")
def rate_patients(curated_her2):
    """pCR per study, and per study x ER group (heterogeneous by construction of biology)."""
    rows = curated_her2.dropna(subset=["study", "pcr"])
    by_study = pd.DataFrame({"study": rows["study"], "pcr": rows["pcr"].astype(int)})
    with_er = rows.dropna(subset=["er_status"])
    by_study_er = pd.DataFrame(
        {
            "study": with_er["study"] + " / ER " + with_er["er_status"],
            "pcr": with_er["pcr"].astype(int),
        }
    )
    return {"studies": by_study, "study_er": by_study_er}


@pytest.fixture(scope="module")
def grade_patients(gbsg2):
    return pd.DataFrame(
        {
            "study": gbsg2["tgrade"].astype(str),
            "time": gbsg2["time"].astype(float),
            "event": gbsg2["cens"].astype(int),
            "horTh": gbsg2["horTh"].astype(str),
        }
    )


@pytest.fixture(scope="module")
def r_or(er_patients, pr_patients):
    return r_reference(
        "meta_or",
        {
            "er": _as_r_binary(er_patients, "er_status"),
            "pr": _as_r_binary(pr_patients, "pr_status"),
        },
    )


@pytest.fixture(scope="module")
def r_plo(rate_patients):
    return r_reference(
        "meta_plo",
        {name: frame.rename(columns={"pcr": "outcome"}) for name, frame in rate_patients.items()},
    )


@pytest.fixture(scope="module")
def r_hr(grade_patients):
    frame = grade_patients.assign(exposed=(grade_patients["horTh"] == "yes").astype(int))
    return r_reference("meta_hr", {"tgrade": frame.drop(columns="horTh")})


# ------------------------------------------------------------------------------------------
# Comparison helpers
# ------------------------------------------------------------------------------------------
def _r_row(pooled: pd.DataFrame, method: str, test: str) -> pd.Series:
    match = pooled[(pooled["method"] == method) & (pooled["test"] == test)]
    assert len(match) == 1, f"no R row for {method}/{test}"
    return match.iloc[0]


def _assert_pooled_matches(result: meta.MetaResult, row: pd.Series) -> None:
    assert result.k == int(row["k"])
    for ours, theirs in POOLED_FIELDS.items():
        if pd.isna(row[theirs]):  # metafor gives no prediction interval for FE / MH models
            continue
        np.testing.assert_allclose(
            getattr(result, ours),
            row[theirs],
            rtol=RTOL,
            atol=BOUNDARY_ATOL.get(ours, ATOL),
            err_msg=ours,
        )


def _assert_weights_match(result, weights: pd.DataFrame, method: str, test: str) -> None:
    expected = weights[(weights["method"] == method) & (weights["test"] == test)]
    ours = result.table.set_index(result.table["study"].astype(str))["weight"]
    np.testing.assert_allclose(
        ours.loc[expected["study"].astype(str)].to_numpy(),
        expected["weight"].to_numpy(),
        rtol=RTOL,
        atol=ATOL,
    )


def _assert_effects_match(result, escalc: pd.DataFrame) -> None:
    used = result.table[result.table["excluded"] == ""].set_index("study")
    assert sorted(used.index.astype(str)) == sorted(escalc["study"].dropna().astype(str))
    ref = escalc.set_index("study").loc[used.index]
    np.testing.assert_allclose(used["estimate"], ref["yi"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(used["se"] ** 2, ref["vi"], rtol=RTOL, atol=ATOL)


def _cases():
    return [(m, t) for m in IV_METHODS for t in TESTS]


# ------------------------------------------------------------------------------------------
# (a) odds ratios per study
# ------------------------------------------------------------------------------------------
@pytest.mark.r
@pytest.mark.parametrize(("method", "test"), _cases())
@pytest.mark.parametrize("status", ["er", "pr"])
def test_or_by_study_matches_metafor(r_or, er_patients, pr_patients, status, method, test):
    patients = er_patients if status == "er" else pr_patients
    result = meta.by_study(
        patients, exposure=f"{status}_status", method=method, hksj=test == "knha"
    )
    _assert_effects_match(result, r_or[f"{status}_escalc"])
    _assert_pooled_matches(result, _r_row(r_or[f"{status}_pooled"], method, test))
    _assert_weights_match(result, r_or[f"{status}_weights"], method, test)


@pytest.mark.r
@pytest.mark.parametrize("status", ["er", "pr"])
def test_mantel_haenszel_matches_rma_mh(r_or, er_patients, pr_patients, status):
    patients = er_patients if status == "er" else pr_patients
    result = meta.by_study(patients, exposure=f"{status}_status", method="MH")
    _assert_pooled_matches(result, _r_row(r_or[f"{status}_pooled"], "MH", "z"))
    _assert_weights_match(result, r_or[f"{status}_weights"], "MH", "z")
    assert result.tau2 == 0
    assert (result.pi_low, result.pi_high) == (result.ci_low, result.ci_high)


@pytest.mark.r
def test_zero_cells_get_continuity_correction_as_escalc(r_or, pr_patients):
    result = meta.by_study(pr_patients, exposure="pr_status")
    corrected = result.table.loc[result.table["continuity_corrected"], "study"]
    assert sorted(corrected) == ["GSE22358", "GSE25065,GSE25066"]
    assert any("Continuity correction: 0.5" in note for note in result.notes)
    _assert_effects_match(result, r_or["pr_escalc"])


def test_studies_without_both_groups_are_listed_not_dropped(er_patients):
    result = meta.by_study(er_patients, exposure="er_status")
    excluded = result.table[result.table["excluded"] != ""]
    assert sorted(excluded["study"]) == ["GSE16446", "GSE25065,GSE25066"]
    assert set(excluded["excluded"]) == {"no patient with ER status positive"}
    assert excluded["weight"].isna().all()
    n_in_excluded = int((excluded["n_exp"] + excluded["n_ref"]).sum())
    assert result.exclusions.n_used == len(er_patients) - n_in_excluded
    assert any("2 of 7 studies excluded" in note for note in result.notes)


def test_pool_on_counts_equals_two_stage(er_patients):
    two_stage = meta.by_study(er_patients, exposure="er_status", method="DL")
    counts = two_stage.table.loc[
        two_stage.table["excluded"] == "", ["study", *meta.TWO_BY_TWO_COLUMNS]
    ]
    pooled = meta.pool(counts, method="DL")
    assert pooled.estimate == pytest.approx(two_stage.estimate, rel=1e-12)
    assert pooled.se == pytest.approx(two_stage.se, rel=1e-12)
    assert pooled.scale == "log OR"


# ------------------------------------------------------------------------------------------
# (b) logit proportions per study
# ------------------------------------------------------------------------------------------
@pytest.mark.r
@pytest.mark.parametrize(("method", "test"), _cases())
@pytest.mark.parametrize("name", ["studies", "study_er"])
def test_pcr_rates_match_metafor(r_plo, rate_patients, name, method, test):
    result = meta.by_study(
        rate_patients[name], analysis="pcr_rate", method=method, hksj=test == "knha"
    )
    assert result.scale == "logit proportion"
    _assert_effects_match(result, r_plo[f"{name}_escalc"])
    _assert_pooled_matches(result, _r_row(r_plo[f"{name}_pooled"], method, test))
    _assert_weights_match(result, r_plo[f"{name}_weights"], method, test)


@pytest.mark.r
def test_heterogeneous_rates_have_positive_tau2(r_plo, rate_patients):
    reml = _r_row(r_plo["study_er_pooled"], "REML", "z")
    assert reml["tau2"] > 0.1  # guards that the reference case really exercises tau² > 0
    result = meta.by_study(rate_patients["study_er"], analysis="pcr_rate")
    assert result.pi_low < result.ci_low < result.ci_high < result.pi_high


# ------------------------------------------------------------------------------------------
# (c) log hazard ratios per (pseudo-)study
# ------------------------------------------------------------------------------------------
@pytest.mark.r
@pytest.mark.parametrize(("method", "test"), _cases())
def test_hazard_ratios_match_coxph_and_metafor(r_hr, grade_patients, method, test):
    result = meta.by_study(
        grade_patients,
        analysis="hr",
        exposure="horTh",
        reference="no",
        time="time",
        event="event",
        method=method,
        hksj=test == "knha",
    )
    assert result.scale == "log HR"
    _assert_effects_match(result, r_hr["tgrade_escalc"])
    _assert_pooled_matches(result, _r_row(r_hr["tgrade_pooled"], method, test))
    _assert_weights_match(result, r_hr["tgrade_weights"], method, test)


@pytest.mark.r
@pytest.mark.parametrize("method", IV_METHODS)
def test_pool_of_estimates_matches_metafor(r_hr, method):
    escalc = r_hr["tgrade_escalc"]
    table = pd.DataFrame(
        {"study": escalc["study"], "estimate": escalc["yi"], "se": np.sqrt(escalc["vi"])}
    )
    result = meta.pool(table, method=method, measure="HR")
    assert result.scale == "log HR"
    _assert_pooled_matches(result, _r_row(r_hr["tgrade_pooled"], method, "z"))


# ------------------------------------------------------------------------------------------
# Summary frame
# ------------------------------------------------------------------------------------------
def test_summary_frame_back_transforms_and_adds_pooled_rows(er_patients):
    result = meta.by_study(er_patients, exposure="er_status")
    frame = result.summary_frame()
    assert list(frame["kind"])[-2:] == ["pooled", "prediction"]
    pooled = frame[frame["kind"] == "pooled"].iloc[0]
    assert pooled["label"] == "Pooled (REML)"
    assert pooled["estimate"] == pytest.approx(np.exp(result.estimate), rel=1e-12)
    assert pooled["ci_low"] == pytest.approx(np.exp(result.ci_low), rel=1e-12)
    prediction = frame[frame["kind"] == "prediction"].iloc[0]
    assert prediction["ci_high"] == pytest.approx(np.exp(result.pi_high), rel=1e-12)
    assert frame.attrs["scale"] == "OR"
    assert (frame["kind"] == "excluded").sum() == 2
    raw = result.summary_frame(exponentiate=False)
    assert raw.loc[raw["kind"] == "pooled", "estimate"].iloc[0] == result.estimate


def test_summary_frame_of_proportions_uses_inverse_logit(rate_patients):
    result = meta.by_study(rate_patients["studies"], analysis="pcr_rate", method="FE")
    frame = result.summary_frame()
    studies = frame[frame["kind"] == "study"]
    expected = (result.table["events"] / result.table["n"]).to_numpy()
    plain = ~result.table["continuity_corrected"].to_numpy()
    np.testing.assert_allclose(studies["estimate"].to_numpy()[plain], expected[plain])
    assert "prediction" not in set(frame["kind"])  # fixed effect: no prediction interval row
    assert frame.attrs["scale"] == "proportion"


# ------------------------------------------------------------------------------------------
# Invariants
# ------------------------------------------------------------------------------------------
study_tables = st.integers(min_value=2, max_value=12).flatmap(
    lambda k: st.tuples(
        st.lists(st.floats(-3, 3, allow_nan=False), min_size=k, max_size=k),
        st.lists(st.floats(0.05, 2.0, allow_nan=False), min_size=k, max_size=k),
    )
)


@settings(max_examples=60, deadline=None)
@given(data=study_tables, method=st.sampled_from(IV_METHODS), hksj=st.booleans())
def test_invariants_on_random_study_tables(data, method, hksj):
    estimates, ses = data
    table = pd.DataFrame(
        {"study": [f"S{i}" for i in range(len(ses))], "estimate": estimates, "se": ses}
    )
    result = meta.pool(table, method=method, hksj=hksj)
    assert result.tau2 >= 0
    assert 0 <= result.i2 <= 100
    assert result.h2 >= 0
    assert result.ci_low <= result.estimate <= result.ci_high
    assert result.pi_low <= result.ci_low + 1e-12
    assert result.ci_high <= result.pi_high + 1e-12
    assert result.table["weight"].sum() == pytest.approx(100.0)
    assert 0 <= result.p_value <= 1
    assert 0 <= result.p_heterogeneity <= 1
    if method == "FE":
        assert min(estimates) - 1e-9 <= result.estimate <= max(estimates) + 1e-9
    shuffled = meta.pool(table.iloc[::-1], method=method, hksj=hksj)
    assert shuffled.estimate == pytest.approx(result.estimate, rel=1e-9, abs=1e-12)
    assert shuffled.tau2 == pytest.approx(result.tau2, rel=1e-7, abs=1e-12)
    assert shuffled.se == pytest.approx(result.se, rel=1e-7)


@pytest.mark.parametrize("analysis", ["pcr_or", "pcr_rate"])
def test_by_study_unchanged_by_row_order(er_patients, analysis):
    shuffled = er_patients.sample(frac=1.0, random_state=7)
    first = meta.by_study(er_patients, exposure="er_status", analysis=analysis)
    second = meta.by_study(shuffled, exposure="er_status", analysis=analysis)
    assert second.estimate == pytest.approx(first.estimate, rel=1e-12)
    assert second.tau2 == pytest.approx(first.tau2, rel=1e-9, abs=1e-15)
    pd.testing.assert_frame_equal(first.table, second.table)


def test_hr_by_study_unchanged_by_row_order(grade_patients):
    kwargs = {"analysis": "hr", "exposure": "horTh", "time": "time", "event": "event"}
    first = meta.by_study(grade_patients, **kwargs)
    second = meta.by_study(grade_patients.sample(frac=1.0, random_state=3), **kwargs)
    assert second.estimate == pytest.approx(first.estimate, rel=1e-10)
    np.testing.assert_allclose(second.table["estimate"], first.table["estimate"], rtol=1e-10)


def test_two_studies_warn_that_tau2_is_unreliable():
    table = pd.DataFrame({"study": ["A", "B"], "estimate": [0.1, 0.5], "se": [0.2, 0.3]})
    result = meta.pool(table)
    assert any("Only 2 studies" in note for note in result.notes)
    assert result.scale == "log ratio"


def test_missing_estimate_is_excluded_and_counted():
    table = pd.DataFrame(
        {"study": ["A", "B", "C"], "estimate": [0.1, np.nan, 0.5], "se": [0.2, 0.3, 0.3]}
    )
    result = meta.pool(table, method="FE")
    assert result.k == 2
    assert result.table.loc[1, "excluded"] == "missing estimate or standard error"
    assert result.exclusions.n_input == 3
    assert result.exclusions.n_used == 2


def test_double_zero_and_all_event_studies_are_excluded():
    table = pd.DataFrame(
        {
            "study": ["A", "B", "C", "D"],
            "events_exp": [3, 0, 10, 4],
            "n_exp": [10, 12, 10, 20],
            "events_ref": [5, 0, 8, 9],
            "n_ref": [11, 9, 8, 21],
        }
    )
    result = meta.pool(table, method="FE")
    reasons = dict(zip(result.table["study"], result.table["excluded"], strict=True))
    assert reasons["B"] == "no events in either group"
    assert reasons["C"] == "every patient had the event in both groups"
    assert result.k == 2


# ------------------------------------------------------------------------------------------
# Failure cases
# ------------------------------------------------------------------------------------------
def test_one_study_is_refused():
    table = pd.DataFrame({"study": ["A"], "estimate": [0.2], "se": [0.1]})
    with pytest.raises(AnalysisError, match="pool needs at least 2 studies"):
        meta.pool(table)


def test_empty_table_is_refused():
    with pytest.raises(AnalysisError, match="pool needs at least 2 studies"):
        meta.pool(pd.DataFrame(columns=["study", "estimate", "se"]))


def test_no_usable_studies_is_refused():
    table = pd.DataFrame(
        {
            "study": ["A", "B"],
            "events_exp": [0, 0],
            "n_exp": [5, 6],
            "events_ref": [0, 0],
            "n_ref": [4, 7],
        }
    )
    with pytest.raises(AnalysisError, match="pool needs at least 2 studies.*no events"):
        meta.pool(table)


def test_negative_se_is_refused():
    table = pd.DataFrame({"study": ["A", "B"], "estimate": [0.2, 0.4], "se": [0.1, -0.3]})
    with pytest.raises(AnalysisError, match="Standard errors must be positive"):
        meta.pool(table)


def test_missing_columns_are_named():
    table = pd.DataFrame({"study": ["A", "B"], "estimate": [0.2, 0.4]})
    with pytest.raises(AnalysisError, match="needs either 'estimate' and 'se'"):
        meta.pool(table)


def test_more_events_than_patients_is_refused():
    table = pd.DataFrame({"study": ["A", "B"], "events": [5, 12], "n": [10, 11]})
    with pytest.raises(AnalysisError, match="more events than patients"):
        meta.pool(table)


def test_mantel_haenszel_needs_counts():
    table = pd.DataFrame({"study": ["A", "B"], "estimate": [0.2, 0.4], "se": [0.1, 0.3]})
    with pytest.raises(AnalysisError, match="Mantel-Haenszel pooling needs 2x2 counts"):
        meta.pool(table, method="MH")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "XX"}, "Unknown pooling method"),
        ({"method": "MH", "hksj": True}, "not defined for Mantel-Haenszel"),
        ({"alpha": 1.5}, "alpha must be between 0 and 1"),
        ({"continuity": 0}, "continuity correction must be positive"),
        ({"measure": "HR"}, "pooled as log OR"),
    ],
)
def test_bad_options_are_refused(options, message):
    table = pd.DataFrame(
        {
            "study": ["A", "B"],
            "events_exp": [2, 3],
            "n_exp": [9, 8],
            "events_ref": [4, 1],
            "n_ref": [7, 9],
        }
    )
    with pytest.raises(AnalysisError, match=message):
        meta.pool(table, **options)


def test_by_study_with_one_exposure_group_overall(er_patients):
    only_negative = er_patients[er_patients["er_status"] == "negative"]
    with pytest.raises(AnalysisError, match="exactly 2 levels"):
        meta.by_study(only_negative, exposure="er_status")


def test_by_study_all_pcr_leaves_no_study(er_patients):
    all_pcr = er_patients.assign(pcr=1)
    with pytest.raises(AnalysisError, match="pool needs at least 2 studies.*every patient had"):
        meta.by_study(all_pcr, exposure="er_status")


def test_by_study_empty_data():
    empty = pd.DataFrame(columns=["study", "er_status", "pcr"])
    with pytest.raises(AnalysisError, match="no patients"):
        meta.by_study(empty, exposure="er_status")


def test_by_study_needs_an_exposure_for_odds_ratios(er_patients):
    with pytest.raises(AnalysisError, match="Choose the exposure"):
        meta.by_study(er_patients)


@pytest.mark.parametrize("analysis", ["pcr_or", "pcr_rate"])
def test_by_study_reads_categorical_columns_as_their_text(er_patients, analysis):
    """The app's classified cohort holds study and ER status as categoricals (read from their
    codes); an upload may hold text. Categories in reverse order, one never used, missing values
    in every column and shuffled rows must give the same studies, numbers and exclusions."""
    holes = er_patients.sample(frac=1.0, random_state=7).reset_index(drop=True).astype(
        {"study": object, "er_status": object, "pcr": float}
    )
    holes.loc[::11, "pcr"] = np.nan
    holes.loc[3::13, "er_status"] = None
    holes.loc[5::17, "study"] = None
    studies = sorted(holes["study"].dropna().unique(), reverse=True)
    coded = holes.assign(
        study=pd.Categorical(holes["study"], categories=[*studies, "never used"]),
        er_status=pd.Categorical(holes["er_status"], categories=["positive", "negative", "low"]),
    )
    options = {"analysis": analysis, "exposure": "er_status"}
    as_text = meta.by_study(holes, **options)
    as_codes = meta.by_study(coded, **options)
    assert as_codes.exclusions == as_text.exclusions
    assert as_text.exclusions.n_excluded > 0
    by_label = as_text.table.set_index("study")
    assert list(as_codes.table["study"]) == [s for s in studies if s in by_label.index]
    # (pooled sums run over the studies in another order: equal to rounding)
    pd.testing.assert_frame_equal(
        as_codes.table.set_index("study"), by_label.loc[as_codes.table["study"]], rtol=1e-12
    )
    assert as_codes.estimate == pytest.approx(as_text.estimate, rel=1e-12)
    assert as_codes.tau2 == pytest.approx(as_text.tau2, rel=1e-9, abs=1e-15)


def test_by_study_refuses_non_binary_outcome(er_patients):
    with pytest.raises(AnalysisError, match="pcr must be 0 or 1"):
        meta.by_study(er_patients.assign(pcr=er_patients["pcr"] * 2), exposure="er_status")


def test_hr_zero_events_is_refused(grade_patients):
    with pytest.raises(AnalysisError, match="no events"):
        meta.by_study(
            grade_patients.assign(event=0),
            analysis="hr",
            exposure="horTh",
            time="time",
            event="event",
        )


def test_hr_negative_times_are_refused(grade_patients):
    bad = grade_patients.assign(time=grade_patients["time"] - 1000)
    with pytest.raises(AnalysisError, match="negative value"):
        meta.by_study(bad, analysis="hr", exposure="horTh", time="time", event="event")


def test_hr_nan_times_are_excluded_and_counted(grade_patients):
    holes = grade_patients.copy()
    holes.loc[:9, "time"] = np.nan
    result = meta.by_study(holes, analysis="hr", exposure="horTh", time="time", event="event")
    assert ("missing time", 10) in result.exclusions.reasons
    assert result.exclusions.n_used == len(holes) - 10


def test_hr_study_with_events_in_one_group_is_excluded(grade_patients):
    # grade I: give every hormone-treated patient a censored time, so only untreated have events
    edited = grade_patients.copy()
    treated_grade_one = (edited["study"] == "I") & (edited["horTh"] == "yes")
    edited.loc[treated_grade_one, "event"] = 0
    result = meta.by_study(edited, analysis="hr", exposure="horTh", time="time", event="event")
    row = result.table.set_index("study").loc["I"]
    assert row["excluded"].startswith("events in one group only")
    assert result.k == 2


def test_numeric_exposure_and_reference_level(er_patients):
    as_strings = meta.by_study(er_patients, exposure="er_status", method="FE")
    coded = er_patients.assign(er_status=(er_patients["er_status"] == "positive").astype(int))
    as_numbers = meta.by_study(coded, exposure="er_status", method="FE")
    assert as_numbers.estimate == pytest.approx(as_strings.estimate, rel=1e-12)
    flipped = meta.by_study(er_patients, exposure="er_status", method="FE", reference="positive")
    assert flipped.estimate == pytest.approx(-as_strings.estimate, rel=1e-12)
    with pytest.raises(AnalysisError, match="Reference level 'low' is not a value"):
        meta.by_study(er_patients, exposure="er_status", reference="low")


def test_reml_converges_when_fisher_scoring_oscillates():
    """One precise outlying study makes Fisher scoring oscillate; REML must still be found.

    > library(metafor)
    > rma(yi = c(0,0,0,0,0,1), sei = c(1,1,1,1,1,0.25), method = "REML",
    +     control = list(stepadj = 0.5, maxiter = 1000, threshold = 1e-12))$tau2
    [1] 0.147339837527479
    (metafor's default step does not converge on these data.)
    """
    table = pd.DataFrame(
        {"study": list("abcdef"), "estimate": [0, 0, 0, 0, 0, 1.0], "se": [1, 1, 1, 1, 1, 0.25]}
    )
    result = meta.pool(table, method="REML")
    yi, vi = table["estimate"].to_numpy(), table["se"].to_numpy() ** 2
    score = (meta._reml_loglik(result.tau2 + 1e-7, yi, vi) - meta._reml_loglik(result.tau2 - 1e-7, yi, vi))
    assert result.tau2 == pytest.approx(0.147339837527479, rel=1e-6)
    assert abs(score) < 1e-6  # a stationary point of the restricted likelihood
