"""AppTest of the Survival page's competing-risk, pooled-cohort, adjusted and imputation panels.

Cohorts are picked explicitly: the real METABRIC file (tests/data/real) uploaded through the app,
and the bundled synthetic trial (six studies) chosen by URL.
"""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_helpers import goto, run_app
from tests.conftest import METABRIC_CSV

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def text_of(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [i.value for i in at.info] + [w.value for w in at.warning] + [s.value for s in at.subheader]
    return "\n".join(str(p) for p in parts)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metabric_survival_page() -> AppTest:
    at = run_app()
    at.file_uploader(key="upload_files").set_value(
        ("metabric_clinical.csv", METABRIC_CSV.read_bytes(), "text/csv")
    ).run()
    assert_clean(at)
    at = goto(at, "3_Survival.py")
    at.selectbox(key="surv_ep").set_value("bcss").run()
    assert_clean(at)
    return at


def test_competing_causes_show_cumulative_incidence_and_grays_test():
    at = metabric_survival_page()
    text = text_of(at)
    assert "Cumulative incidence (competing risks)" in text
    assert "Why not 1 − Kaplan–Meier?" in text
    assert "death from other causes is censored" in text  # the KM panels below say what they do
    tables = at.session_state["_tables"]
    gray = tables["gray_test_bcss"]
    assert list(gray["cause"]) == [1, 2]
    assert (gray["p"] < 0.001).all()  # ER status: real, strong differences in both causes
    compare = tables["cif_vs_km_bcss"]
    assert (compare.iloc[:, 3] > compare.iloc[:, 2]).all()  # 1 - KM overstates the incidence
    assert "fine_gray_bcss" in tables
    cif_chart = [c for c in at.get("plotly_chart") if str(c.proto.id).endswith("fig_cif_bcss")]
    assert len(cif_chart) == 1
    names = {t.get("name") for t in json.loads(cif_chart[0].proto.spec)["data"]}
    assert {"ER-negative", "ER-positive"} <= names


def test_pooled_cohort_shows_the_stratified_logrank_by_default():
    at = goto(run_app(cohort="synthetic"), "3_Survival.py")
    assert_clean(at)
    assert at.toggle(key="surv_lr_strata").value is True
    text = text_of(at)
    assert "log-rank, stratified by study (6 studies)" in text
    assert "logrank_weighted_efs" in at.session_state["_tables"]
    at.selectbox(key="surv_lr_weights").set_value("late differences — G(0, 1)").run()
    assert_clean(at)
    assert "Fleming-Harrington G(0, 1), stratified by study" in text_of(at)


def survival_page_with_adjusted_curves() -> AppTest:
    """The synthetic trial's Survival page with the adjusted-curves panel opened."""
    at = goto(run_app(cohort="synthetic"), "3_Survival.py")
    assert_clean(at)
    at.session_state["surv_iptw_open"] = True  # as the user opening the expander
    return at.run()


def test_adjusted_curves_run_only_once_their_panel_is_opened(monkeypatch):
    from her2er_dash import survival

    calls = []
    real = survival.iptw_kaplan_meier
    monkeypatch.setattr(survival, "iptw_kaplan_meier",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    at = goto(run_app(cohort="synthetic"), "3_Survival.py")
    assert_clean(at)
    assert "Adjusted survival curves (inverse probability of treatment weighting)" in [
        e.label for e in at.expander]
    assert not [k for k in at.session_state["_tables"] if k.startswith("iptw_")]
    assert not calls
    assert at.session_state["surv_iptw_open"] is False
    at.session_state["surv_iptw_open"] = True
    at.run()
    assert_clean(at)
    assert calls
    assert "iptw_balance_efs" in at.session_state["_tables"]
    assert "surv_iptw_open=1" in "&".join(f"{k}={v}" for k, v in at.query_params.items())


def test_adjusted_curves_panel_shows_balance_and_rmst_difference():
    at = survival_page_with_adjusted_curves()
    assert_clean(at)
    tables = at.session_state["_tables"]
    balance = tables["iptw_balance_efs"]
    assert {"smd_before", "smd_after"} <= set(balance.columns)
    assert "iptw_rmst_diff_efs" in tables
    at.selectbox(key="surv_iptw_trunc").set_value("1st / 99th percentiles").run()
    assert_clean(at)
    assert "weights truncated to" in text_of(at)


def test_imputation_panel_shows_complete_case_and_imputed_results():
    at = metabric_survival_page()
    at.multiselect(key="surv_mi_terms").set_value(["er_status", "grade", "age"]).run()
    assert_clean(at)
    assert "miss at least one term" in text_of(at)
    at.selectbox(key="surv_mi_m").set_value(5).run()
    at.button(key="surv_mi_run").click().run()
    assert_clean(at)
    table = at.session_state["_tables"]["mi_cox_bcss"]
    assert set(table["analysis"]) == {"complete case", "multiple imputation"}
    complete = table[table["analysis"] == "complete case"]["n"].iloc[0]
    imputed = table[table["analysis"] == "multiple imputation"]["n"].iloc[0]
    assert imputed > complete
    at = goto(at, "6_Methods.py")
    assert_clean(at)
    methods = text_of(at)
    assert "5 imputed data sets" in methods
    assert "Barnard–Rubin" in methods
    assert "Gray's test" in methods


def test_landmark_sensitivity_is_computed_when_switched_on():
    at = goto(run_app(cohort="synthetic"), "3_Survival.py")
    assert_clean(at)
    assert "pcr_by_er_efs" in at.session_state["_tables"]
    assert "pcr_by_er_landmarks_efs" not in at.session_state["_tables"]  # not computed unseen
    at.toggle(key="surv_pcr_sensitivity").set_value(True).run()
    assert_clean(at)
    table = at.session_state["_tables"]["pcr_by_er_landmarks_efs"]
    assert list(table["landmark"].unique()) == ["at each patient's surgery", "fixed at 6 months",
                                                "none (guarantee-time bias)"]
    surgery = table[table["landmark"] == "at each patient's surgery"].reset_index(drop=True)
    main = at.session_state["_tables"]["pcr_by_er_efs"]
    assert list(surgery["estimate"]) == list(main["estimate"])  # the panel's own result, reused


def test_adjusted_curves_are_compared_with_the_crude_curves_of_the_same_patients():
    at = survival_page_with_adjusted_curves()
    assert_clean(at)
    assert "unadjusted Kaplan–Meier of the same patients" in text_of(at)
    chart = [c for c in at.get("plotly_chart") if str(c.proto.id).endswith("fig_iptw_efs")]
    assert len(chart) == 1
    names = [t.get("name") for t in json.loads(chart[0].proto.spec)["data"]]
    assert sum(str(n).endswith("(unadjusted)") for n in names) == 2
