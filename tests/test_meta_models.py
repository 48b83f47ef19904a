"""Meta-regression, subgroup analysis, leave-one-out and Egger's test against R metafor.

Reference inputs (all real, from the curatedBreastData HER2+ table, ``curated_her2``):

- ``study_er``: pCR events/n per study x ER group (12 rows; logit proportions, escalc "PLO"),
  with study-level moderators ``er_status`` (categorical) and ``mean_age`` (continuous: the mean
  age of that group's patients; missing where the study reports no age, so those rows are
  excluded, as R's complete cases). It is clearly heterogeneous, so tau² > 0 is exercised.
- ``er_or``: ER-positive vs ER-negative 2x2 pCR counts per study (5 studies with both groups;
  escalc "OR"), with ``trastuzumab`` ("yes" when any patient of the study had trastuzumab) and
  ``mean_age``.

R code: tests/r/meta_regress.R (``rma(yi, vi, mods = ~ ..., method, test)``), meta_subgroup.R,
meta_leave1out.R (``leave1out``), meta_regtest.R (``regtest``), all with
``control = list(threshold = 1e-12, tol = 1e-12)`` as in tests/r/meta_common.R.
Tolerance 1e-6 relative (absolute 1e-9 for tau² on its boundary at 0, as test_meta.py).
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
BOUNDARY_ATOL = {"tau2": 1e-9, "i2": 1e-6, "h2": 1e-8, "r2": 1e-5}
METHODS = ("FE", "DL", "REML", "PM")
TESTS = ("z", "knha")
METAFOR = ("metafor",)

#: (dataset, moderators) of every meta-regression compared with R (model number = index + 1).
MODELS = [
    ("study_er", ["er_status"]),
    ("study_er", ["mean_age"]),
    ("study_er", ["er_status", "mean_age"]),
    ("er_or", ["trastuzumab"]),
    ("er_or", ["mean_age"]),
]
SUBGROUPS = [("study_er", "er_status"), ("er_or", "trastuzumab")]


# ------------------------------------------------------------------------------------------
# Real inputs
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tables(curated_her2) -> dict[str, pd.DataFrame]:
    rows = curated_her2.dropna(subset=["study", "pcr", "er_status"])
    study_er = (
        rows.groupby(["study", "er_status"])
        .agg(events=("pcr", "sum"), n=("pcr", "size"), mean_age=("age", "mean"))
        .reset_index()
        .rename(columns={"study": "trial"})
    )
    study_er.insert(0, "study", study_er["trial"] + " / ER " + study_er["er_status"])
    per_study = rows.groupby("study").agg(
        trastuzumab=("trastuzumab", lambda t: "yes" if (t == 1).any() else "no"),
        mean_age=("age", "mean"),
    )
    pos, neg = (rows[rows["er_status"] == s].groupby("study")["pcr"] for s in ("positive", "negative"))
    er_or = pd.DataFrame(
        {"ai": pos.sum(), "n1i": pos.size(), "ci": neg.sum(), "n2i": neg.size()}
    ).dropna()
    er_or = er_or.join(per_study).reset_index().rename(columns={"index": "study"})
    return {
        "study_er": study_er.drop(columns="trial"),
        "er_or": er_or[["study", "ai", "n1i", "ci", "n2i", "trastuzumab", "mean_age"]],
    }


def _python_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The R input in the study-table form of her2er_dash.meta (2x2 column names)."""
    return frame.rename(
        columns={"ai": "events_exp", "n1i": "n_exp", "ci": "events_ref", "n2i": "n_ref"}
    )


@pytest.fixture(scope="module")
def r_regress(tables):
    models = pd.DataFrame(
        {"dataset": [d for d, _ in MODELS], "formula": ["~ " + " + ".join(m) for _, m in MODELS]}
    )
    return r_reference("meta_regress", {**tables, "models": models}, packages=METAFOR)


@pytest.fixture(scope="module")
def r_subgroup(tables):
    spec = pd.DataFrame({"dataset": [d for d, _ in SUBGROUPS], "by": [b for _, b in SUBGROUPS]})
    return r_reference("meta_subgroup", {**tables, "subgroups": spec}, packages=METAFOR)


@pytest.fixture(scope="module")
def r_leave1out(tables):
    spec = pd.DataFrame({"dataset": list(tables)})
    return r_reference("meta_leave1out", {**tables, "datasets": spec}, packages=METAFOR)


@pytest.fixture(scope="module")
def r_regtest(tables):
    spec = pd.DataFrame({"dataset": ["study_er"]})
    return r_reference("meta_regtest", {"study_er": tables["study_er"], "datasets": spec},
                       packages=METAFOR)


def _close(ours, theirs, name: str) -> None:
    np.testing.assert_allclose(
        ours, theirs, rtol=RTOL, atol=BOUNDARY_ATOL.get(name, ATOL), err_msg=name
    )


def _cases():
    return [(m, t) for m in METHODS for t in TESTS]


# ------------------------------------------------------------------------------------------
# Meta-regression
# ------------------------------------------------------------------------------------------
@pytest.mark.r
@pytest.mark.parametrize(("method", "test"), _cases())
@pytest.mark.parametrize("model", range(len(MODELS)))
def test_regress_matches_rma_with_moderators(tables, r_regress, model, method, test):
    dataset, moderators = MODELS[model]
    result = meta.regress(
        _python_table(tables[dataset]), moderators, method=method, hksj=test == "knha"
    )
    select = lambda f: f[(f["model"] == model + 1) & (f["method"] == method) & (f["test"] == test)]  # noqa: E731
    coefficients = select(r_regress["coefficients"]).sort_values("term")
    assert len(coefficients) == len(result.table)
    for column in ("estimate", "se", "statistic", "ci_low", "ci_high", "p"):
        _close(result.table[column].to_numpy(), coefficients[column].to_numpy(), column)
    fit = select(r_regress["fits"]).iloc[0]
    assert result.k == fit["k"]
    assert result.qm_df == fit["qm_df"]
    assert result.qm_test == ("F" if test == "knha" else "chi2")
    if test == "knha":
        assert result.qm_df2 == fit["qm_df2"] == result.df
    for name in ("qm", "qm_p", "qe", "qe_p", "tau2", "i2", "h2", "r2"):
        _close(getattr(result, name), fit[name], name)


def test_regress_without_moderators_equals_pool(tables):
    table = _python_table(tables["study_er"])
    for method in METHODS:
        for hksj in (False, True):
            pooled = meta.pool(table, method=method, hksj=hksj)
            fit = meta.regress(table, [], method=method, hksj=hksj)
            row = fit.table.iloc[0]
            assert row["term"] == "intercept"
            for ours, theirs in [
                (row["estimate"], pooled.estimate),
                (row["se"], pooled.se),
                (row["ci_low"], pooled.ci_low),
                (row["p"], pooled.p_value),
                (fit.tau2, pooled.tau2),
                (fit.qe, pooled.q),
                (fit.i2, pooled.i2),
            ]:
                assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)
            assert np.isnan(fit.r2)


def test_regress_names_terms_and_lists_excluded_studies(tables):
    result = meta.regress(_python_table(tables["study_er"]), ["er_status", "mean_age"])
    assert list(result.table["term"]) == [
        "intercept",
        "er_status: positive vs negative",
        "mean_age",
    ]
    missing = result.studies[result.studies["excluded"] == "missing mean_age"]
    assert len(missing) == len(tables["study_er"]) - result.k > 0
    assert result.studies["weight"].sum() == pytest.approx(100.0)
    flipped = meta.regress(
        _python_table(tables["study_er"]), ["er_status"], reference={"er_status": "positive"}
    )
    assert flipped.table["term"].iloc[1] == "er_status: negative vs positive"
    unflipped = meta.regress(_python_table(tables["study_er"]), ["er_status"])
    assert flipped.table["estimate"].iloc[1] == pytest.approx(-unflipped.table["estimate"].iloc[1])


# ------------------------------------------------------------------------------------------
# Subgroups
# ------------------------------------------------------------------------------------------
@pytest.mark.r
@pytest.mark.parametrize(("method", "test"), _cases())
@pytest.mark.parametrize("mode", ["separate", "common"])
@pytest.mark.parametrize("spec", range(len(SUBGROUPS)))
def test_subgroup_difference_matches_metafor(tables, r_subgroup, spec, mode, method, test):
    dataset, by = SUBGROUPS[spec]
    result = meta.subgroup(
        _python_table(tables[dataset]), by, method=method, hksj=test == "knha", tau2=mode
    )

    def select(f):
        return f[
            (f["spec"] == spec + 1)
            & (f["mode"] == mode)
            & (f["method"] == method)
            & (f["test"] == test)
        ]

    groups = select(r_subgroup["groups"])
    ours = result.table.set_index(result.table["subgroup"].astype(str))
    theirs = groups.set_index(groups["subgroup"].astype(str)).loc[ours.index]
    assert list(ours["k"]) == list(theirs["k"])
    for column in ("estimate", "se", "ci_low", "ci_high", "p", "tau2"):
        _close(ours[column].to_numpy(float), theirs[column].to_numpy(float), column)
    row = select(r_subgroup["tests"]).iloc[0]
    assert result.q_between_df == row["q_between_df"]
    assert result.test == ("F" if mode == "common" and test == "knha" else "chi2")
    for name in ("q_between", "q_between_p", "q_within", "q_within_p"):
        _close(getattr(result, name), row[name], name)


def test_subgroup_summary_frame_groups_studies_with_their_pooled_row(tables):
    result = meta.subgroup(_python_table(tables["study_er"]), "er_status", method="DL")
    frame = result.summary_frame()
    assert list(frame.loc[frame["kind"] == "pooled", "label"]) == [
        "er_status = negative (DL)",
        "er_status = positive (DL)",
    ]
    assert frame.attrs["scale"] == "proportion"
    within = frame[frame["kind"] == "study"].groupby("subgroup")["weight"].sum()
    np.testing.assert_allclose(within.to_numpy(), 100.0)
    pooled = frame[frame["kind"] == "pooled"]
    assert ((pooled["ci_low"] <= pooled["estimate"]) & (pooled["estimate"] <= pooled["ci_high"])).all()


def test_subgroup_of_one_study_uses_its_own_estimate(tables):
    table = _python_table(tables["er_or"]).copy()
    table["arm"] = ["single"] + ["rest"] * (len(table) - 1)
    result = meta.subgroup(table, "arm", method="REML")
    single = result.table.set_index("subgroup").loc["single"]
    alone = meta.pool(table.iloc[[0, 1]], method="FE").table.iloc[0]
    assert single["k"] == 1
    assert single["estimate"] == pytest.approx(alone["estimate"])
    assert single["se"] == pytest.approx(alone["se"])
    assert any("single study" in note for note in result.notes)


# ------------------------------------------------------------------------------------------
# Leave-one-out
# ------------------------------------------------------------------------------------------
@pytest.mark.r
@pytest.mark.parametrize(
    ("dataset", "method", "test"),
    [(d, m, t) for d in ("study_er", "er_or") for m, t in _cases()] + [("er_or", "MH", "z")],
)
def test_leave_one_out_matches_leave1out(tables, r_leave1out, dataset, method, test):
    expected = r_leave1out["leave1out"]
    expected = expected[
        (expected["dataset"] == dataset) & (expected["method"] == method) & (expected["test"] == test)
    ]
    result = meta.leave_one_out(
        _python_table(tables[dataset]), method=method, hksj=test == "knha"
    )
    ours = result.table.set_index(result.table["study"].astype(str))
    theirs = expected.set_index(expected["study"].astype(str))
    assert sorted(ours.index) == sorted(theirs.index)
    theirs = theirs.loc[ours.index]
    for column in ("estimate", "se", "ci_low", "ci_high", "p", "q", "q_p", "tau2", "i2", "h2"):
        _close(ours[column].to_numpy(float), theirs[column].to_numpy(float), column)


def test_leave_one_out_has_one_row_per_pooled_study(tables):
    for dataset in ("study_er", "er_or"):
        table = _python_table(tables[dataset])
        result = meta.leave_one_out(table)
        assert len(result.table) == result.full.k
        assert (result.table["k"] == result.full.k - 1).all()
        assert (result.table["tau2"] >= 0).all()
        inside = (result.table["ci_low"] <= result.table["estimate"]) & (
            result.table["estimate"] <= result.table["ci_high"]
        )
        assert inside.all()
        np.testing.assert_allclose(
            result.table["change"], result.table["estimate"] - result.full.estimate
        )
    frame = result.summary_frame()
    assert list(frame["kind"]).count("pooled") == 1
    assert frame.attrs["scale"] == "OR"


def test_leave_one_out_needs_three_studies():
    table = pd.DataFrame({"study": ["A", "B"], "estimate": [0.1, 0.4], "se": [0.2, 0.3]})
    with pytest.raises(AnalysisError, match="at least 3 pooled studies"):
        meta.leave_one_out(table)


# ------------------------------------------------------------------------------------------
# Egger's test and funnel data
# ------------------------------------------------------------------------------------------
@pytest.mark.r
@pytest.mark.parametrize("predictor", ["sei", "vi"])
@pytest.mark.parametrize(("method", "test"), [*_cases(), ("lm", "t")])
def test_egger_matches_regtest(tables, r_regtest, method, test, predictor):
    expected = r_regtest["regtest"]
    row = expected[
        (expected["method"] == method)
        & (expected["test"] == test)
        & (expected["predictor"] == predictor)
    ].iloc[0]
    model = "lm" if method == "lm" else "rma"
    result = meta.egger(
        _python_table(tables["study_er"]),
        model=model,
        predictor=predictor,
        method="REML" if model == "lm" else method,
        hksj=test == "knha",
    )
    assert result.test == ("z" if test == "z" else "t")
    if result.df is not None:
        assert result.df == row["df"]
    for ours, name in [
        (result.statistic, "statistic"),
        (result.p, "p"),
        (result.slope, "slope"),
        (result.slope_se, "slope_se"),
        (result.limit_estimate, "limit"),
        (result.limit_ci_low, "limit_low"),
        (result.limit_ci_high, "limit_high"),
    ]:
        _close(ours, row[name], name)


def test_funnel_and_egger_need_ten_studies(tables):
    five = _python_table(tables["er_or"])
    for function in (meta.funnel, meta.egger):
        with pytest.raises(AnalysisError, match="at least 10 studies; this analysis has 5 usable"):
            function(five)
    assert meta.egger(five, min_studies=5).k == 5


def test_funnel_region_is_centred_on_the_pooled_estimate(tables):
    result = meta.funnel(_python_table(tables["study_er"]), method="DL")
    assert len(result.table) == result.pooled.k == 12
    region = result.region
    assert region["se"].iloc[0] == 0
    assert region["se"].iloc[1] == pytest.approx(result.table["se"].max())
    np.testing.assert_allclose(region["ci_low"].iloc[0], result.pooled.estimate)
    np.testing.assert_allclose(
        region["ci_high"].iloc[1] - result.pooled.estimate,
        1.959963984540054 * result.table["se"].max(),
    )


# ------------------------------------------------------------------------------------------
# Invariants and failure cases
# ------------------------------------------------------------------------------------------
moderated_tables = st.integers(min_value=4, max_value=14).flatmap(
    lambda k: st.tuples(
        st.lists(st.floats(-3, 3, allow_nan=False), min_size=k, max_size=k),
        st.lists(st.floats(0.05, 2.0, allow_nan=False), min_size=k, max_size=k),
        st.lists(st.floats(-5, 5, allow_nan=False), min_size=k, max_size=k),
    )
)


@settings(max_examples=60, deadline=None)
@given(data=moderated_tables, method=st.sampled_from(METHODS), hksj=st.booleans())
def test_regression_invariants_on_random_tables(data, method, hksj):
    estimates, ses, moderator = data
    if np.ptp(moderator) < 1e-3:
        return  # a constant moderator is refused (collinear with the intercept)
    table = pd.DataFrame({"estimate": estimates, "se": ses, "x": moderator})
    result = meta.regress(table, ["x"], method=method, hksj=hksj)
    assert result.tau2 >= 0
    assert result.qe >= 0
    assert 0 <= result.r2 <= 100
    assert 0 <= result.qm_p <= 1
    assert ((result.table["ci_low"] <= result.table["estimate"] + 1e-12)
            & (result.table["estimate"] <= result.table["ci_high"] + 1e-12)).all()
    shuffled = meta.regress(table.iloc[::-1], ["x"], method=method, hksj=hksj)
    np.testing.assert_allclose(shuffled.table["estimate"], result.table["estimate"], rtol=1e-7,
                               atol=1e-10)


@pytest.mark.parametrize(
    ("moderators", "options", "message"),
    [
        (["regimen"], {}, "no column 'regimen'"),
        (["x"], {"method": "MH"}, "Meta-regression needs inverse-variance pooling"),
        (["same"], {}, "single level"),
        (["x", "twice_x"], {}, "collinear"),
        (["x", "group"], {}, "needs at least 4 usable studies; 3 are left"),
        (["group"], {"reference": {"group": "c"}}, "Reference level 'c'"),
    ],
)
def test_regress_refuses_with_a_clear_message(moderators, options, message):
    table = pd.DataFrame(
        {
            "estimate": [0.1, 0.5, 0.3],
            "se": [0.2, 0.3, 0.25],
            "x": [1.0, 2.0, 4.0],
            "twice_x": [2.0, 4.0, 8.0],
            "same": ["a", "a", "a"],
            "group": ["a", "b", "b"],
        }
    )
    with pytest.raises(AnalysisError, match=message):
        meta.regress(table, moderators, **options)


def test_subgroup_refuses_a_single_level_and_unknown_mode(tables):
    table = _python_table(tables["er_or"]).assign(arm="one")
    with pytest.raises(AnalysisError, match="at least 2 levels"):
        meta.subgroup(table, "arm")
    with pytest.raises(AnalysisError, match="tau2 must be 'separate' or 'common'"):
        meta.subgroup(table, "trastuzumab", tau2="shared")


def test_egger_refuses_unknown_options(tables):
    table = _python_table(tables["study_er"])
    with pytest.raises(AnalysisError, match="model must be one of"):
        meta.egger(table, model="glm")
    with pytest.raises(AnalysisError, match="predictor must be one of"):
        meta.egger(table, predictor="ni")
