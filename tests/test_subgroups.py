"""her2er_dash.subgroups.forest: R agreement on real data, invariants, and named failure cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import subgroups
from her2er_dash.errors import AnalysisError
from tests.rref import r_reference

NUMBERS = ["estimate", "ci_low", "ci_high", "p", "p_interaction"]


def assert_matches(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Same rows (matched on subgroup and level), counts equal, numbers to 1e-6 relative."""
    ref = ref.assign(level=ref["level"].astype(str))
    merged = ours.merge(ref, on=["subgroup", "level"], suffixes=("", "_r"), validate="1:1")
    assert len(merged) == len(ours) == len(ref)
    assert (merged["n"] == merged["n_r"]).all()
    assert (merged["events"] == merged["events_r"]).all()
    for col in NUMBERS:
        a, b = merged[col].to_numpy(float), merged[f"{col}_r"].to_numpy(float)
        assert (np.isnan(a) == np.isnan(b)).all(), col
        np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-6, atol=1e-12)


@pytest.fixture(scope="module")
def her2(curated_her2):
    return curated_her2[["pcr", "er_status", "study", "grade", "pr_status", "trastuzumab"]]


@pytest.fixture(scope="module")
def gbsg(gbsg2):
    ages = pd.cut(gbsg2["age"], [0, 45, 60, 100], labels=["<=45", "46-60", ">60"])
    return gbsg2.assign(agegroup=ages.astype(str))


@pytest.fixture(scope="module")
def pcr_reference(her2):
    return r_reference("subgroups_forest_pcr", {"table": her2})


@pytest.mark.r
def test_pcr_forest_er_status_matches_r(her2, pcr_reference):
    """R (tests/r/subgroups_forest_pcr.R): per level glm(pcr ~ er, binomial) -> exp(coef),
    exp(confint.default); interaction anova(glm(pcr ~ er + g), glm(pcr ~ er * g), test = "LRT")."""
    ours = subgroups.forest(
        her2, exposure="er_status", subgroups=["study", "grade", "pr_status", "trastuzumab"]
    )
    assert_matches(ours, pcr_reference["er_status"])
    assert ours.attrs["contrast"] == "positive vs negative"


@pytest.mark.r
def test_pcr_forest_numeric_exposure_matches_r(her2, pcr_reference):
    """R: the same with x = trastuzumab (0/1, numeric: per-unit odds ratio)."""
    ours = subgroups.forest(her2, exposure="trastuzumab", subgroups=["er_status", "grade"])
    assert_matches(ours, pcr_reference["trastuzumab"])


@pytest.mark.r
def test_cox_forest_matches_r(gbsg):
    """R (tests/r/subgroups_forest_cox.R): coxph(Surv(time, cens) ~ horTh, ties = "efron") per
    level; anova(coxph(~ horTh + g), coxph(~ horTh * g)) for the interaction."""
    table = gbsg[["time", "cens", "horTh", "menostat", "tgrade", "agegroup"]]
    ref = r_reference("subgroups_forest_cox", {"table": table})["forest"]
    ours = subgroups.forest(
        gbsg, exposure="horTh", subgroups=["menostat", "tgrade", "agegroup"],
        outcome=("time", "cens"),
    )  # fmt: skip
    assert_matches(ours, ref)
    assert (ours["measure"] == "hazard ratio").all()


def test_layout_small_levels_and_multiplicity(her2):
    out = subgroups.forest(her2, exposure="er_status", subgroups=["study", "grade"])
    assert list(out.columns) == list(subgroups.COLUMNS)
    assert out.iloc[0][["subgroup", "level"]].tolist() == ["Overall", "All patients"]
    tiny = out[(out["subgroup"] == "study") & (out["level"] == "GSE25065,GSE25066")].iloc[0]
    assert tiny["n"] == 2
    assert np.isnan(tiny["estimate"])
    assert "fewer than 10 patients" in tiny["warning"]
    grade1 = out[(out["subgroup"] == "grade") & (out["level"] == "1")].iloc[0]
    assert np.isnan(grade1["estimate"])
    assert grade1["warning"]
    assert out.groupby("subgroup")["p_interaction"].nunique(dropna=False).max() == 1
    assert out.attrs["n_subgroups"] == 2
    assert out.attrs["n_interaction_tests"] == 2
    assert out.attrs["exclusions"].n_used == out["n"].iloc[0]


def test_ci_brackets_estimate_and_row_order_free(gbsg):
    kwargs = {"exposure": "horTh", "subgroups": ["tgrade", "agegroup"], "outcome": ("time", "cens")}
    out = subgroups.forest(gbsg, **kwargs)
    assert ((out["ci_low"] <= out["estimate"]) & (out["estimate"] <= out["ci_high"])).all()
    shuffled = subgroups.forest(gbsg.sample(frac=1, random_state=4), **kwargs)
    pd.testing.assert_frame_equal(out, shuffled, rtol=1e-9)


def test_reference_flips_the_odds_ratio(her2):
    default = subgroups.forest(her2, exposure="er_status", subgroups="pr_status")
    flipped = subgroups.forest(
        her2, exposure="er_status", subgroups="pr_status", reference="positive"
    )
    np.testing.assert_allclose(flipped["estimate"], 1 / default["estimate"], rtol=1e-9)
    np.testing.assert_allclose(flipped["p_interaction"], default["p_interaction"], rtol=1e-9)


def test_progress_is_reported(her2):
    calls = []
    subgroups.forest(
        her2, exposure="er_status", subgroups=["grade", "pr_status"],
        progress=lambda fraction, message: calls.append((fraction, message)),
    )  # fmt: skip
    assert [f for f, _ in calls] == [0.0, 0.5, 1.0]
    assert "grade" in calls[0][1]


def test_separated_level_gets_no_estimate():
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"arm": np.repeat(["A", "B"], 100), "site": np.tile(["x", "y"], 100)})
    df["pcr"] = rng.integers(0, 2, 200)
    df.loc[(df["site"] == "y") & (df["arm"] == "B"), "pcr"] = 1  # everyone on B at site y
    out = subgroups.forest(df, exposure="arm", subgroups="site")
    site_y = out[out["level"] == "y"].iloc[0]
    assert np.isnan(site_y["estimate"])
    assert "separation" in site_y["warning"]
    assert np.isfinite(out[out["level"] == "x"]["estimate"].iloc[0])


def test_forest_failures(her2, gbsg):
    with pytest.raises(AnalysisError, match="exactly two levels"):
        subgroups.forest(her2, exposure="study", subgroups="grade")
    with pytest.raises(AnalysisError, match="same pCR value"):
        subgroups.forest(her2.assign(pcr=1.0), exposure="er_status", subgroups="grade")
    with pytest.raises(AnalysisError, match="distinct values"):
        subgroups.forest(gbsg, exposure="horTh", subgroups="age", outcome="cens")
    with pytest.raises(AnalysisError, match="no column 'arm'"):
        subgroups.forest(her2, exposure="arm", subgroups="grade")
    with pytest.raises(AnalysisError, match="negative value"):
        subgroups.forest(gbsg.assign(time=-gbsg["time"]), exposure="horTh", subgroups="tgrade",
                         outcome=("time", "cens"))  # fmt: skip
    with pytest.raises(AnalysisError, match="no events"):
        subgroups.forest(gbsg.assign(cens=0), exposure="horTh", subgroups="tgrade",
                         outcome=("time", "cens"))  # fmt: skip
    with pytest.raises(AnalysisError, match="No patient has every value"):
        subgroups.forest(her2.iloc[:0], exposure="er_status", subgroups="grade")
    with pytest.raises(AnalysisError, match="missing"):
        subgroups.forest(gbsg.assign(time=np.nan), exposure="horTh", subgroups="tgrade",
                         outcome=("time", "cens"))  # fmt: skip


def test_categorical_subgroup_keeps_its_level_order(gbsg):
    bands = pd.Categorical(gbsg["agegroup"], ["<=45", "46-60", ">60"])
    out = subgroups.forest(gbsg.assign(agegroup=bands), exposure="horTh", subgroups="agegroup",
                           outcome="cens")  # fmt: skip
    assert out["level"].tolist() == ["All patients", "<=45", "46-60", ">60"]


@pytest.mark.parametrize("exposure", ["horTh", "age"])
def test_cox_forest_on_tied_months_equals_plain_row_fits(gbsg, exposure):
    """The forest merges identical (time, event, level, exposure) rows into weighted rows and
    fits on numbers at risk; with time in months (many ties) that must equal plain Cox fits on
    the patients' rows (a numeric exposure takes the unmerged path)."""
    from her2er_dash.survival import cox_fit_arrays

    data = gbsg.assign(month=gbsg["time"] // 30)
    out = subgroups.forest(
        data, exposure=exposure, subgroups=["tgrade"], outcome=("month", "cens")
    ).set_index("level")
    x = (
        (data[exposure] == "yes").to_numpy(float)
        if exposure == "horTh"
        else data["age"].to_numpy(float)
    )
    grade = data["tgrade"].astype(str).to_numpy()
    for level in ["I", "II", "III"]:
        rows = grade == level
        beta = cox_fit_arrays(data["month"][rows], data["cens"][rows], x[rows, None])[0]
        np.testing.assert_allclose(np.log(out.loc[level, "estimate"]), beta[0], rtol=1e-10)
    dummies = np.column_stack([grade == "II", grade == "III"]).astype(float)
    main = np.column_stack([x, dummies])
    loglik = [
        cox_fit_arrays(data["month"], data["cens"], design)[2]
        for design in (main, np.column_stack([main, dummies * x[:, None]]))
    ]
    from scipy.stats import chi2

    expected = chi2.sf(2 * (loglik[1] - loglik[0]), 2)
    np.testing.assert_allclose(out["p_interaction"].iloc[1], expected, rtol=1e-9)


# --------------------------------------------------------------------------------------------
# Study as a stratum (Cox) or fixed effect (logistic)


@pytest.fixture(scope="module")
def strata_data(metabric):
    from her2er_dash import simulate

    trial = simulate.trial(n=2000, seed=5, n_studies=6)  # SYNTHETIC: a numerical check only
    trial = trial.dropna(subset=["pcr"])  # no surgery, no pCR result: not a complete case
    pcr = pd.DataFrame({"pcr": trial["pcr"], "x": (trial["er_status"] == "positive").astype(int),
                        "study": trial["study"].astype(str), "grade": trial["grade"].astype(str),
                        "t_stage": trial["t_stage"].astype(str)})
    known = metabric.dropna(subset=["os_event", "chemotherapy", "er_status", "grade", "study"])
    surv = pd.DataFrame({"time": known["os_months"], "event": known["os_event"].astype(int),
                         "x": (known["chemotherapy"] == "yes").astype(int), "study": known["study"],
                         "er_status": known["er_status"], "grade": known["grade"]})
    return {"pcr": pcr, "surv": surv}  # fmt: skip


@pytest.fixture(scope="module")
def strata_reference(strata_data):
    groups = pd.DataFrame({"table": ["pcr", "pcr", "surv", "surv"],
                           "subgroup": ["grade", "t_stage", "er_status", "grade"]})  # fmt: skip
    return r_reference("subgroups_forest_strata", {**strata_data, "subgroups": groups})


def _matches_where_estimated(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    ref = ref.assign(level=ref["level"].astype(str))
    merged = ours.merge(ref, on=["subgroup", "level"], suffixes=("", "_r"), validate="1:1")
    assert len(merged) == len(ours)
    assert (merged["n"] == merged["n_r"]).all()
    estimated = merged["estimate"].notna()
    assert estimated.sum() >= len(merged) - 1
    for col in NUMBERS:
        a = merged.loc[estimated, col].to_numpy(float)
        b = merged.loc[estimated, f"{col}_r"].to_numpy(float)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12, equal_nan=True)


@pytest.mark.r
def test_pcr_forest_with_study_fixed_effects_matches_glm(strata_data, strata_reference):
    """R: glm(pcr ~ x + study) per level; anova(glm(~ x + g + study), glm(~ x * g + study))."""
    ours = subgroups.forest(strata_data["pcr"], exposure="x", subgroups=["grade", "t_stage"],
                            strata="study")  # fmt: skip
    _matches_where_estimated(ours, strata_reference["forest_pcr"])
    assert ours.attrs["strata"] == "study"


@pytest.mark.r
def test_cox_forest_stratified_by_study_matches_coxph(strata_data, strata_reference):
    """R: coxph(Surv ~ x + strata(study)) per level; anova of x + g vs x * g, both stratified."""
    ours = subgroups.forest(strata_data["surv"], exposure="x", subgroups=["er_status", "grade"],
                            outcome=("time", "event"), strata="study")  # fmt: skip
    _matches_where_estimated(ours, strata_reference["forest_surv"])


@pytest.mark.r
def test_logistic_with_study_fixed_effect_matches_glm(strata_data, strata_reference):
    """R: glm(pcr ~ x + grade + study): x and grade coefficients; LR test vs glm(pcr ~ study)."""
    from her2er_dash import response

    fit = response.logistic(strata_data["pcr"], ["x", "grade"], strata="study")
    ref, lr = strata_reference["logistic"], strata_reference["logistic_lr"].iloc[0]
    assert len(fit.table) == len(ref) == 3
    np.testing.assert_allclose(fit.table["coef"], ref["coef"], rtol=1e-6)
    np.testing.assert_allclose(fit.table["se"], ref["se"], rtol=1e-6)
    np.testing.assert_allclose([fit.lr_statistic, fit.lr_df], [lr["statistic"], lr["df"]], rtol=1e-6)
    assert fit.strata == "study"


def test_one_study_stratum_changes_nothing(gbsg):
    plain = subgroups.forest(gbsg, exposure="horTh", subgroups=["tgrade"], outcome=("time", "cens"))
    one = subgroups.forest(gbsg.assign(study="one"), exposure="horTh", subgroups=["tgrade"],
                           outcome=("time", "cens"), strata="study")  # fmt: skip
    np.testing.assert_allclose(one["estimate"], plain["estimate"], rtol=1e-9)
    np.testing.assert_allclose(one["p_interaction"], plain["p_interaction"], rtol=1e-7)


def test_study_adjusted_pcr_estimate_is_refused_when_no_study_has_both_exposure_levels():
    """Within grade G1 every study has one ER status only: with study fixed effects the ER
    effect does not exist. The row fit used to return an odds ratio with a 0-to-infinity interval
    (and a count table called it separation); both now say why there is no estimate."""
    from her2er_dash.counts import Counts

    rng = np.random.default_rng(4)
    n = 200
    study = np.where(np.arange(n) < 100, "S1", "S2")
    grade = np.where(np.arange(n) % 2 == 0, "G1", "G2")
    er = np.where(study == "S1", "positive", "negative")
    er[(grade == "G2") & (np.arange(n) % 4 == 1)] = "negative"  # G2: both levels in S1
    df = pd.DataFrame({"study": study, "grade": grade, "er_status": er,
                       "pcr": (rng.random(n) < 0.3).astype(float)})
    results = [subgroups.forest(data, exposure="er_status", subgroups=["grade"], outcome="pcr",
                                reference="negative", strata="study")
               for data in (df, Counts.from_rows(df, ["pcr", "er_status", "grade", "study"]))]
    for table in results:
        g1 = table[table["level"] == "G1"].iloc[0]
        assert np.isnan(g1["estimate"])
        assert "does not vary within any study" in g1["warning"]
        g2 = table[table["level"] == "G2"].iloc[0]
        assert np.isfinite(g2["estimate"])
        assert np.isfinite(g2["ci_high"])
    np.testing.assert_allclose(results[0]["estimate"], results[1]["estimate"], rtol=1e-9)
