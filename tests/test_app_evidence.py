"""AppTest proof of the Evidence page (issue 13, part 2 in the app).

Every test picks its cohort explicitly. The numbers on the page are compared with the package
functions called directly on the same (filtered, classified) data.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from her2er_dash import datasets, evidence, meta, simulate, survival
from her2er_dash.filters import CohortFilter
from tests.apptest_helpers import ROOT, goto, run_app

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")
PAGE = "5_Evidence.py"


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts).replace("\\", "")  # Markdown escapes removed


def _frame_with(at: AppTest, *columns: str, nth: int = 0) -> pd.DataFrame:
    frames = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(frames) > nth, f"no table with {columns}"
    return frames[nth]


def _evidence(cohort: str, **query) -> AppTest:
    at = goto(run_app(cohort=cohort, **query), PAGE)
    _clean(at)
    return at


def _app_data(cohort: str, flt: CohortFilter | None = None) -> pd.DataFrame:
    """The patients the app analyses: classified under the default cut-points, then filtered."""
    return (flt or CohortFilter()).apply(datasets.bundled(cohort).data).data


# ------------------------------------------------------------------------------------------
# Published trials
# ------------------------------------------------------------------------------------------
def test_published_arms_filter_by_class_definition_and_verification_and_show_the_moderator_test():
    at = _evidence("ispy1")  # one study: every moderator test on the page is the published arms''' one
    at.selectbox(key="ev_pub_quantity").set_value("rate_hr_pos").run()
    _clean(at)
    arms = evidence.published_table(datasets.published_trials(), quantity="rate_hr_pos")
    direct = evidence.moderator_tests(arms, list(evidence.PUBLISHED_MODERATORS)).set_index("column")
    expected = evidence.qm_text(direct.loc["dual_blockade"])
    assert expected.startswith("QM = 3.89 (df 1), p = 0.048")
    assert f"Dual HER2 blockade**: {expected}" in _text(at)
    shown = _frame_with(at, "moderator", "levels", "test").set_index("moderator")
    np.testing.assert_allclose(shown.loc["Dual HER2 blockade", "qm"], direct.loc["dual_blockade", "qm"], rtol=1e-12)
    assert shown.loc["Dual HER2 blockade", "qm_p"] == "0.048"
    assert "Regimen class: a test needs at least 2 levels" in _text(at)
    # the subgroup forest of a tested moderator is drawn with the same test
    assert at.selectbox(key="ev_pub_moderator").value == "pcr_definition"

    at.toggle(key="ev_pub_hksj").set_value(True).run()
    _clean(at)
    assert "Dual HER2 blockade**: F(1, 2) = 2.70, p = 0.242" in _text(at)

    classes = at.multiselect(key="ev_regimen").options
    at.multiselect(key="ev_regimen").set_value([c for c in classes if c != "endocrine + anti-HER2"]).run()
    _clean(at)
    published = _frame_with(at, "regimen_class", "chemo")
    assert "endocrine + anti-HER2" not in set(published["regimen_class"])
    text = _text(at)
    assert "QM =" not in text  # two MDACC arms left: nothing to test
    assert "F(1" not in text
    assert "Dual HER2 blockade: a test needs at least 2 levels" in text
    assert "Leave-one-out influence needs at least 3 pooled studies; there are 2." in text

    at.multiselect(key="ev_pcr_def").set_value(["ypT0/is ypN0"]).run()
    at.multiselect(key="ev_verification").set_value(["primary"]).run()
    _clean(at)
    published = _frame_with(at, "regimen_class", "chemo")
    assert set(published["pcr_definition"].astype(str)) == {"ypT0/is ypN0"}
    assert set(published["verification"].astype(str)) == {"primary"}


def test_published_pooling_withholds_p_for_small_arms_and_counts_the_rest():
    at = _evidence("curated_neoadjuvant")
    text = _text(at)
    assert "31 of 33 chosen arms are not pooled" in text
    assert "never reconstructed from a rounded percentage" in text
    models = _frame_with(at, "model", "tau2")  # the first such table: the published arms
    glmm = meta.glmm(evidence.published_table(datasets.published_trials(), quantity="or"))
    row = models.set_index("model").loc[glmm.label]
    np.testing.assert_allclose(row["estimate"], np.exp(glmm.estimate), rtol=1e-9)
    assert row["p"] == "—"  # both MDACC arms are small: no p-value
    assert "p-values withheld: every study is small" in text
    assert "Funnel plot and Egger's test are not shown: they need at least 10 studies, and this analysis has 2" in text
    at.selectbox(key="ev_pub_quantity").set_value("rate_hr_pos").run()
    _clean(at)
    loo = _frame_with(at, "label", "change")
    assert loo["label"].str.startswith("Omitting ").sum() == 4
    assert "and this analysis has 4" in _text(at)


def test_published_prognosis_forest_and_the_ispy2_contrast():
    at = _evidence("ispy1")
    rows = _frame_with(at, "population", "printed", "source_location")
    assert "0.15 (0.03-0.63)" in set(rows["printed"])
    contrasts = _frame_with(at, "hr_pos", "hr_neg", "ratio")
    expected = evidence.prognosis_contrasts(datasets.published_prognosis())
    np.testing.assert_allclose(contrasts["ratio"].to_numpy(float), expected["ratio"].to_numpy(float), rtol=1e-12)
    text = _text(at)
    assert "HR+ 0.15 (0.03-0.63) vs HR− 0.14 (0.05-0.41) → ratio **1.07** (95% CI 0.17–6.82)" in text
    assert "Verification: " in text
    assert "tertiary" in text
    assert "Printed for one HR group only (no contrast possible): CTNeoBC" in text
    # a single-study cohort: nothing to pool across its studies, said plainly
    assert "The current selection holds 1 study" in text
    assert "The CTNeoBC analysis pools studies" in text


# ------------------------------------------------------------------------------------------
# A multi-study cohort: curated GEO studies
# ------------------------------------------------------------------------------------------
def test_curated_studies_pooled_with_moderator_tests_leave_one_out_and_a_definition_sensitivity_view():
    at = _evidence("curated_neoadjuvant")
    at.selectbox(key="ev_exposure").set_value("er_status").run()
    _clean(at)
    share = ["regimen_class", "chemotherapy + anti-HER2"]
    assert at.selectbox(key="ev_share").value == share[1]
    table = evidence.study_table(_app_data("curated_neoadjuvant"), analysis="pcr_or", exposure="er_status",
                                 share=share)
    tests = evidence.moderator_tests(table, ["pcr_definition", evidence.share_name(share[1])]).set_index("column")
    text = _text(at)
    assert f"pCR definition**: {evidence.qm_text(tests.loc['pcr_definition'])}" in text
    assert evidence.qm_text(tests.loc["pcr_definition"]).startswith("QM = ")
    assert "The studies define pCR differently" in text
    loo = _frame_with(at, "label", "change")
    assert loo["label"].str.startswith("Omitting ").sum() == 7
    direct = meta.leave_one_out(table)
    np.testing.assert_allclose(loo["estimate"].to_numpy(float)[:7],
                               np.exp(direct.table["estimate"].to_numpy(float)), rtol=1e-10)
    assert "and this analysis has 7" in text  # funnel and Egger withheld
    # the CTNeoBC analysis is refused with the reason: no surgery times, unstated time origin
    assert "Not computed: pCR is known only at surgery" in text
    # GLMM on the cohort's counts
    at.toggle(key="ev_glmm").set_value(True).run()
    _clean(at)
    glmm = meta.glmm(table)
    models = _frame_with(at, "model", "tau2", nth=2).set_index("model")  # published, cohort, cohort GLMM
    assert models.loc[glmm.label, "k"] == 7
    np.testing.assert_allclose(models.loc[glmm.label, "estimate"], np.exp(glmm.estimate), rtol=1e-9)

    at.selectbox(key="ev_definition").set_value("ypT0/is ypN0").run()
    _clean(at)
    text = _text(at)
    assert "Sensitivity view: only the studies defining pCR as ypT0/is ypN0" in text
    per_study = _frame_with(at, "label", "weight", "pcr_definition")
    assert set(per_study.loc[per_study["kind"] == "study", "pcr_definition"]) == {"ypT0/is ypN0"}
    assert (per_study["kind"] == "study").sum() == 4
    assert "pCR definition: a test needs at least 2 levels" in text


# ------------------------------------------------------------------------------------------
# The CTNeoBC analysis on the synthetic cohort (6 studies, per-patient surgery times)
# ------------------------------------------------------------------------------------------
def test_synthetic_ctneobc_panel_equals_meta_ctneobc_and_the_script_reproduces_it(tmp_path):
    at = _evidence("synthetic")
    assert "includes 325 HER2-negative patients" in _text(at)
    at.sidebar.multiselect(key="f_her2").set_value(["positive"]).run()
    _clean(at)
    assert "HER2-negative patients" not in _text(at)
    assert at.selectbox(key="ev_ct_group").value == "hr_status"
    data = _app_data("synthetic", CohortFilter(her2_status=("positive",)))
    landmarked = survival.pcr_landmark(data, "efs_months", "efs_event", method="surgery", at=None,
                                       time_origin="diagnosis")
    expected = meta.ctneobc(landmarked, time="efs_months", event="efs_event", group="hr_status", landmark=None)
    per_study = _frame_with(at, "events_exposed", "small")
    assert len(per_study) == 12
    assert set(per_study["group"]) == {"positive", "negative"}
    numeric = ["n", "n_exposed", "events", "events_exposed", "estimate", "se", "hr"]
    np.testing.assert_allclose(per_study[numeric].to_numpy(float), expected.per_study[numeric].to_numpy(float),
                               rtol=1e-10)
    contrast = _frame_with(at, "approach", "ratio")
    assert list(contrast["approach"]) == ["two-stage", "within-study", "one-stage"]
    numeric = ["estimate", "se", "ratio", "ratio_ci_low", "ratio_ci_high"]
    np.testing.assert_allclose(contrast[numeric].to_numpy(float), expected.contrast[numeric].to_numpy(float),
                               rtol=1e-10)
    two_stage = expected.contrast.iloc[0]
    text = _text(at)
    assert (f"**two-stage**: ratio of hazard ratios HR+/HR− = **{two_stage['ratio']:.2f}** "
            f"(95% CI {two_stage['ratio_ci_low']:.2f}–{two_stage['ratio_ci_high']:.2f})") in text
    assert "Landmark at each patient's surgery" in text
    assert "share of " in text
    assert "QM = " in text
    assert "and this analysis has 6" in text  # funnel and Egger withheld below 10 studies

    at = goto(at, "6_Methods.py")
    _clean(at)
    methods = _text(at)
    assert "CTNeoBC pooled analysis" in methods
    assert "each patient was followed from her own surgery" in methods
    script = tmp_path / "reproduce.py"
    script.write_text(at.session_state["_repro_script"], encoding="utf-8")
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "tables")], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    printed = sorted((tmp_path / "tables").glob("*_meta_contrast.csv"))
    assert printed, "the script printed no CTNeoBC contrast"
    reproduced = pd.read_csv(printed[-1])
    np.testing.assert_allclose(reproduced[numeric].to_numpy(float), expected.contrast[numeric].to_numpy(float),
                               rtol=1e-10)


def test_twelve_uploaded_studies_show_the_funnel_plot_and_egger_test():
    frame = simulate.trial(n=3000, n_studies=12, seed=11)
    at = run_app()
    at.file_uploader(key="upload_files").set_value(("twelve.csv", frame.to_csv(index=False).encode(),
                                                    "text/csv")).run()
    at = goto(at, PAGE)
    _clean(at)
    assert len(at.sidebar.multiselect(key="f_study").options) == 12
    text = _text(at)
    assert "Funnel plot and Egger's test are not shown" in text  # the published arms: 2
    assert "and this analysis has 12" not in text
    egger = _frame_with(at, "term", "statistic")
    assert list(egger["term"]) == ["intercept (limit estimate)", "sei"]


