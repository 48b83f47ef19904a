"""her2er_dash.evidence: what the Evidence page pools, tests and withholds.

Reference values: tests/r/evidence_published.R runs metafor (rma, rma.glmm, leave1out) on the
published inputs the page pools, so the numbers on the page are checked against R, not only the
meta functions in general (tests/test_meta_*.py).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from her2er_dash import datasets, evidence, meta
from her2er_dash.errors import AnalysisError
from tests.rref import r_reference

RTOL = 1e-6


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    return datasets.published_trials()


@pytest.fixture(scope="module")
def curated() -> pd.DataFrame:
    return datasets.bundled("curated_neoadjuvant").data


# ------------------------------------------------------------------------------------------
# Published arms: only printed counts are pooled
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("quantity", list(evidence.PUBLISHED_QUANTITIES))
def test_published_counts_are_the_printed_ones_and_every_arm_is_accounted_for(trials, quantity):
    table = evidence.published_table(trials, quantity=quantity)
    left = evidence.published_not_pooled(trials, quantity=quantity)
    assert len(table) + len(left) == len(trials)
    assert table["study"].is_unique
    assert not set(table["study"]) & set(left["study"])
    rows = trials.set_index(evidence.arm_labels(trials))
    groups = {"or": [("events_exp", "n_exp", "hr_pos"), ("events_ref", "n_ref", "hr_neg")],
              "rate_hr_pos": [("events", "n", "hr_pos")], "rate_hr_neg": [("events", "n", "hr_neg")]}
    for events, n, group in groups[quantity]:
        printed = rows.loc[table["study"]]
        np.testing.assert_array_equal(table[events], printed[f"pcr_events_{group}"].astype(int))
        np.testing.assert_array_equal(table[n], printed[f"n_{group}"].astype(int))
    # every arm left out lacks a printed count: none could have been pooled
    for label in left["study"]:
        row = rows.loc[label]
        needed = [g for _, _, g in groups[quantity]]
        assert any(pd.isna(row[f"n_{g}"]) or pd.isna(row[f"pcr_events_{g}"]) for g in needed), label


def test_the_full_table_pools_buzdar_for_the_odds_ratio_and_four_arms_for_hr_positive(trials):
    odds = evidence.published_table(trials, quantity="or")
    assert list(odds["events_exp"]) == [8, 3]
    assert list(odds["n_exp"]) == [13, 11]
    assert list(odds["events_ref"]) == [7, 2]
    assert list(odds["n_ref"]) == [10, 8]
    assert odds["trial"].str.startswith("MDACC").all()
    positive = evidence.published_table(trials, quantity="rate_hr_pos")
    assert sorted(zip(positive["events"], positive["n"], strict=True)) == [(3, 11), (8, 13), (8, 30), (9, 44)]
    assert (positive["small"] != "").sum() == 2  # the two MDACC arms


def test_filters_restrict_the_arms(trials):
    only = evidence.select_published(trials, regimen_classes=["anti-HER2 only"])
    assert set(only["regimen_class"].astype(str)) == {"anti-HER2 only"}
    primary = evidence.select_published(trials, verification=["primary"], pcr_definitions=["ypT0/is ypN0"])
    assert set(primary["verification"].astype(str)) == {"primary"}
    assert set(primary["pcr_definition"].astype(str)) == {"ypT0/is ypN0"}
    table = evidence.published_table(trials, quantity="rate_hr_pos", regimen_classes=["endocrine + anti-HER2"])
    assert len(table) == 2
    assert set(table["regimen_class"]) == {"endocrine + anti-HER2"}


def test_not_pooled_sentence_counts_each_arm_once(trials):
    left = evidence.published_not_pooled(trials, quantity="or")
    text = evidence.not_pooled_sentence(left, 2, "or")
    assert text.startswith(f"{len(left)} of {len(trials)} chosen arms are not pooled")
    numbers = [int(s.split()[0]) for s in text.split("(", 1)[1].split(")")[0].split("; ")]
    assert sum(numbers) == len(left)
    assert "never reconstructed from a rounded percentage" in text


# ------------------------------------------------------------------------------------------
# Moderators: >= 2 studies per level, exact against metafor
# ------------------------------------------------------------------------------------------
def test_moderator_support_rule():
    table = pd.DataFrame({"study": list("abcde"), "estimate": [0.1, 0.2, 0.3, 0.5, 0.4],
                          "se": [0.2] * 5, "m": ["x", "x", "y", "y", "z"], "c": [1.0] * 5,
                          "v": [0.1, 0.2, 0.3, 0.4, 0.5]})
    support = evidence.moderator_support(table, "m")
    assert support.supported
    assert support.dropped == ("e",)
    assert support.k == 4
    assert not evidence.moderator_support(table.iloc[[0, 1, 2, 4]], "m").supported  # y has 1 study
    constant = evidence.moderator_support(table, "c")
    assert not constant.supported
    assert "same value" in constant.reason
    assert evidence.moderator_support(table, "v").supported
    assert list(evidence.restrict_to_supported(table, "m")["study"]) == list("abcd")
    with pytest.raises(AnalysisError, match="no moderator column"):
        evidence.moderator_support(table, "nope")


def test_moderator_tests_are_regress_on_the_supported_studies(trials):
    arms = evidence.published_table(trials, quantity="rate_hr_pos")
    tests = evidence.moderator_tests(arms, list(evidence.PUBLISHED_MODERATORS)).set_index("column")
    assert not np.isfinite(tests.loc["regimen_class", "qm"])  # 2 + 1 + 1 arms: one level with 2
    assert "at least 2 levels" in tests.loc["regimen_class", "message"]
    direct = meta.regress(arms, ["dual_blockade"])
    assert tests.loc["dual_blockade", "qm"] == pytest.approx(direct.qm, rel=1e-12)
    assert tests.loc["dual_blockade", "qm_p"] == pytest.approx(direct.qm_p, rel=1e-12)
    # the three two-level moderators split these four arms identically: said, not hidden
    assert "Splits the studies exactly as pCR definition" in tests.loc["dual_blockade", "message"]
    assert evidence.qm_text(tests.loc["dual_blockade"]).startswith("QM = 3.89 (df 1), p = 0.048")
    knapp = evidence.moderator_tests(arms, ["dual_blockade"], hksj=True).iloc[0]
    assert evidence.qm_text(knapp).startswith("F(1, 2) = ")


@pytest.fixture(scope="module")
def r_published(trials):
    rates = evidence.published_table(trials, quantity="rate_hr_pos")
    counts = evidence.published_table(trials, quantity="or")
    prognosis = datasets.published_prognosis()
    pairs = evidence.prognosis_pairs(prognosis)
    chosen = pd.concat([evidence.prognosis_contrast_table(prognosis, study=s, endpoint=e)
                        .assign(study=s, endpoint=e) for s, e in pairs])
    inputs = {
        "rate_hr_pos": rates[["study", "events", "n", "dual_blockade", "pcr_definition", "chemo"]],
        "or": counts[["study", "events_exp", "n_exp", "events_ref", "n_ref"]].rename(
            columns={"events_exp": "ai", "n_exp": "n1i", "events_ref": "ci", "n_ref": "n2i"}),
        "prognosis": chosen[["study", "endpoint", "hr_status", "hr", "ci_low", "ci_high"]],
    }
    return r_reference("evidence_published", inputs, packages=("metafor", "lme4"))


@pytest.mark.r
@pytest.mark.parametrize("method", ["FE", "DL", "REML", "PM"])
@pytest.mark.parametrize("test", ["z", "knha"])
def test_published_moderator_tests_match_metafor(trials, r_published, method, test):
    arms = evidence.published_table(trials, quantity="rate_hr_pos")
    ours = evidence.moderator_tests(arms, ["dual_blockade", "pcr_definition", "chemo"], method=method,
                                    hksj=test == "knha").set_index("column")
    reference = r_published["moderators"]
    for row in reference[(reference["method"] == method) & (reference["test"] == test)].itertuples():
        mine = ours.loc[row.moderator]
        for name in ("qm", "qm_p", "qe", "qe_p"):
            np.testing.assert_allclose(mine[name], getattr(row, name), rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(mine["tau2"], row.tau2, rtol=RTOL, atol=1e-10)
        if not pd.isna(row.r2):
            np.testing.assert_allclose(mine["r2"], row.r2, rtol=RTOL, atol=1e-8)


@pytest.mark.r
def test_published_pooled_models_and_leave_one_out_match_metafor(trials, r_published):
    pooled = r_published["pooled"]
    for quantity in ("rate_hr_pos", "or"):
        arms = evidence.published_table(trials, quantity=quantity)
        ours = {"GLMM": meta.glmm(arms), "REML": meta.pool(arms, method="REML")}
        for row in pooled[pooled["dataset"] == quantity].itertuples():
            fit = ours[row.model]
            np.testing.assert_allclose([fit.estimate, fit.se, fit.ci_low, fit.ci_high],
                                       [row.estimate, row.se, row.ci_low, row.ci_high], rtol=RTOL)
            np.testing.assert_allclose(fit.tau2, row.tau2, rtol=1e-5, atol=1e-8)
    arms = evidence.published_table(trials, quantity="rate_hr_pos")
    loo = meta.leave_one_out(arms, method="REML").table
    reference = r_published["leave1out"]
    np.testing.assert_allclose(loo[["estimate", "se"]].to_numpy(), reference[["estimate", "se"]].to_numpy(),
                               rtol=RTOL)


@pytest.mark.r
def test_published_prognosis_contrasts_match_metafor(r_published):
    ours = evidence.prognosis_contrasts(datasets.published_prognosis()).set_index(["study", "endpoint"])
    for row in r_published["prognosis"].itertuples():
        mine = ours.loc[(row.study, row.endpoint)]
        np.testing.assert_allclose([mine["log_ratio"], mine["se"], mine["p"]], [row.estimate, row.se, row.p],
                                   rtol=RTOL)
        np.testing.assert_allclose([math.log(mine["ratio_ci_low"]), math.log(mine["ratio_ci_high"])],
                                   [row.ci_low, row.ci_high], rtol=RTOL)


def test_ispy2_efs_contrast_by_hand():
    """HR+ 0.15 (0.03-0.63) vs HR- 0.14 (0.05-0.41): log ratio and SE from the printed CIs."""
    row = evidence.prognosis_contrasts(datasets.published_prognosis()).set_index("endpoint").loc["EFS"]
    z = 1.959963984540054
    se_pos = (math.log(0.63) - math.log(0.03)) / (2 * z)
    se_neg = (math.log(0.41) - math.log(0.05)) / (2 * z)
    assert row["ratio"] == pytest.approx(0.15 / 0.14, rel=1e-12)
    assert row["se"] == pytest.approx(math.hypot(se_pos, se_neg), rel=1e-12)
    assert row["hr_pos"] == "0.15 (0.03-0.63)"
    assert row["verification"] == "primary"


def test_prognosis_pairs_need_both_groups():
    prognosis = datasets.published_prognosis()
    pairs = evidence.prognosis_pairs(prognosis)
    assert all(s.startswith("I-SPY2") for s, _ in pairs)  # CTNeoBC prints HR- only here
    with pytest.raises(AnalysisError, match="both HR"):
        evidence.prognosis_contrast_table(prognosis, study="CTNeoBC (Cortazar, Lancet 2014)", endpoint="EFS")
    rows = evidence.prognosis_rows(prognosis, endpoints=["EFS"])
    assert set(rows["endpoint"]) == {"EFS"}


# ------------------------------------------------------------------------------------------
# A multi-study cohort
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        {"analysis": "pcr_or", "exposure": "er_status"},
        {"analysis": "pcr_rate"},
        {"analysis": "hr", "exposure": "er_status", "time": "dfs_months", "event": "dfs_event"},
    ],
)
@pytest.mark.parametrize("method", ["REML", "DL"])
def test_pooling_the_study_table_equals_by_study(curated, options, method):
    table = evidence.study_table(curated, **options)
    direct = meta.by_study(curated, **options, method=method)
    pooled = meta.pool(table, method=method)
    assert pooled.k == direct.k
    np.testing.assert_allclose([pooled.estimate, pooled.se, pooled.tau2],
                               [direct.estimate, direct.se, direct.tau2], rtol=1e-12, atol=1e-15)
    assert list(table["excluded"]) == list(direct.table["excluded"])


def test_study_level_moderators_come_from_the_patients(curated):
    table = evidence.study_table(curated, analysis="pcr_or", exposure="er_status",
                                 share=["regimen_class", "chemotherapy + anti-HER2"]).set_index("study")
    assert table.loc["GSE20194", "pcr_definition"] == "ypT0/is ypN0"
    assert table.loc["GSE21997", "pcr_definition"] == "not recorded"
    share = table["share of chemotherapy + anti-HER2"]
    assert share["GSE22358"] == pytest.approx(27 / 122)
    assert share["GSE25055"] == 0.0
    assert table.loc["GSE16446", "excluded"] == "no patient with ER status positive"
    assert table["patients"].sum() == len(curated)
    tests = evidence.moderator_tests(table.reset_index(), ["pcr_definition", "share of chemotherapy + anti-HER2"])
    assert np.isfinite(tests["qm"]).all()
    assert (tests["k"] == 7).all()
    restricted = evidence.study_table(curated, analysis="pcr_or", exposure="er_status",
                                      supported_for="pcr_definition")
    assert len(restricted) == 7
    assert "GSE16446" not in set(restricted["study"])


def test_small_study_flags_and_p_value_guard():
    table = pd.DataFrame({"study": ["a", "b"], "events_exp": [3, 30], "n_exp": [12, 80],
                          "events_ref": [6, 40], "n_ref": [15, 90]})
    flags = evidence.small_study_flags(table)
    assert "fewer than 5 patients with or without pCR" in flags[0]
    assert flags[1] == ""
    assert evidence.p_value_guard(table) == ""
    assert evidence.p_value_guard(table.iloc[:1]) == "only 1 usable study"
    both_small = table.assign(n_exp=[12, 15], events_exp=[3, 6], n_ref=[15, 16], events_ref=[6, 7])
    both_small["small"] = evidence.small_study_flags(both_small)
    assert evidence.p_value_guard(both_small) == "every study is small"
    rows = evidence.model_rows(meta.pool(table), guard="every study is small")
    assert np.isnan(rows.loc[0, "p"])
    assert rows.loc[0, "estimate"] > 0


def test_ctneobc_forest_labels_and_guard():
    data = datasets.bundled("synthetic").data
    data = data[data["her2_status"] == "positive"]
    result = meta.ctneobc(data, time="efs_months", event="efs_event", group="hr_status",
                          landmark="surgery_months")
    frame = evidence.ctneobc_forest_frame(result, {"positive": "HR+", "negative": "HR−"})
    studies = frame[frame["kind"] == "study"]["label"]
    assert studies.str.endswith((" · HR+", " · HR−")).all()
    assert studies.is_unique
    assert set(frame.loc[frame["kind"] == "pooled", "label"]) == {"Pooled HR+ (REML)", "Pooled HR− (REML)"}
    flags, withheld = evidence.ctneobc_guard(result)
    assert len(flags) == len(result.per_study)
    assert withheld == ""
    one_study = data[data["study"] == "SYN-05"]
    few = meta.ctneobc(one_study.assign(study="SYN-05"), time="efs_months", event="efs_event",
                       group="hr_status", landmark="surgery_months")
    assert "after pCR" in evidence.ctneobc_guard(few)[1]
