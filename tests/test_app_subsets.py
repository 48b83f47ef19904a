"""AppTest of the ER-driven subset page: the I-SPY 2 numbers on screen, cohorts without the needed
columns, survival by subtype, and the methods text and script it feeds."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_helpers import APP, ROOT, TIMEOUT, goto, run_app

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")
PAGE = "7_Subsets.py"


def text_of(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts).replace("\\", "")  # Markdown escapes removed


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def table_with(at: AppTest, *columns: str):
    return next(d.value for d in at.dataframe if set(columns) <= set(d.value.columns))


def counts(table, subtype: str, hr: str = "all") -> dict:
    rows = table[table["hr_status"] == hr]
    return {r[subtype]: (int(r["pcr"]), int(r["n"])) for _, r in rows.iterrows()}


def test_the_page_reproduces_the_ispy2_counts_and_tests():
    at = goto(run_app(cohort="ispy2"), PAGE)
    assert_clean(at)
    assert at.sidebar.selectbox(key="cohort").value == "ispy2"
    blueprint = table_with(at, "blueprint_subtype", "hr_status", "n", "pcr")
    assert counts(blueprint, "blueprint_subtype") == {
        "Luminal-type": (9, 60), "HER2-type": (95, 164), "Basal-type": (10, 21), "all": (114, 245)}
    assert counts(blueprint, "blueprint_subtype", "positive")["Luminal-type"] == (7, 58)
    text = text_of(at)
    assert "245 HER2-positive patients" in text
    assert "does BluePrint subtype add to HR status (ER or PR)?** χ² = 24.88 on 2 df" in text
    assert "cannot show whether ER-driven tumours could be spared chemotherapy" in text
    assert "T-DM1 + pertuzumab, an antibody–drug conjugate" in text
    assert "Overall p = 2.4e-10; non-linearity p = 0.072" in text  # luminal index spline, 3 df
    tests = table_with(at, "marker", "test", "statistic", "p_value").set_index(["marker", "test"])
    assert tests.loc[("her2_index", "interaction"), "p_value"] == "0.013"
    assert tests.loc[("luminal_index", "interaction"), "p_value"] == "0.717"
    assert "I-SPY 2 has no survival data" in text
    scan = table_with(at, "signature", "p_overall_holm").set_index("signature")
    assert len(scan) == 10
    assert scan.loc["erbb2_y1248", "n"] == 224

    at.selectbox(key="ers_subtype").set_value("pam50_subtype").run()
    assert_clean(at)
    pam50 = table_with(at, "pam50_subtype", "hr_status", "n", "pcr")
    assert counts(pam50, "pam50_subtype") == {
        "LumA": (16, 59), "LumB": (19, 58), "Her2": (67, 103), "Basal": (8, 20), "Normal": (2, 3),
        "all": (112, 243)}
    assert "left out of the tests (fewer than 10 patients or 5 responders/non-responders): Normal" in text_of(at)


def test_the_cohort_picked_through_session_state_gives_the_same_page():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["cohort"] = "ispy2"
    at = goto(at.run(), PAGE)
    assert_clean(at)
    blueprint = table_with(at, "blueprint_subtype", "hr_status", "n", "pcr")
    assert counts(blueprint, "blueprint_subtype")["Luminal-type"] == (9, 60)


def test_a_cohort_without_subtypes_or_signatures_says_what_it_needs_and_offers_ispy2():
    at = goto(run_app(cohort="ispy1"), PAGE)
    assert_clean(at)
    text = text_of(at)
    assert "none of the columns the subset explorer needs" in text
    assert "a subtype column (BluePrint `blueprint_subtype` or PAM50 `pam50_subtype`)" in text
    assert "a continuous signature" in text
    assert not at.dataframe  # nothing is computed, nothing is blank either
    at.button(key="ers_open_ispy2_top").click().run()
    assert_clean(at)
    assert at.sidebar.selectbox(key="cohort").value == "ispy2"
    assert counts(table_with(at, "blueprint_subtype", "n"), "blueprint_subtype")["HER2-type"] == (95, 164)


def test_survival_by_subtype_on_the_curated_studies_is_descriptive():
    at = goto(run_app(cohort="curated_neoadjuvant"), PAGE)
    assert_clean(at)
    groups = table_with(at, "group", "n", "events", "median")
    assert groups["n"].sum() == 43
    assert "No log-rank test" in text_of(at)
    assert "Every analysed patient is in one regimen group" in text_of(at)  # chemotherapy only


def test_methods_and_script_describe_the_subset_analyses(tmp_path):
    at = goto(run_app(cohort="ispy2"), PAGE)
    at = goto(at, "6_Methods.py")
    assert_clean(at)
    text = text_of(at)
    assert "natural cubic spline with 3 degrees of freedom" in text
    assert "Krijgsman O, Roepman P, Zwart W" in text
    assert "Peduzzi P, Concato J" in text
    script = at.session_state["_repro_script"]
    assert "subsets.subtype_response(data, subtype='blueprint_subtype'" in script
    path = tmp_path / "reproduce.py"
    path.write_text(script)
    run = subprocess.run([sys.executable, str(path), str(tmp_path / "out")], capture_output=True,
                         text=True, cwd=tmp_path, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-2000:]
    import pandas as pd

    table = pd.read_csv(tmp_path / "out" / "01_subtype_response_table.csv")
    assert counts(table, "blueprint_subtype")["Luminal-type"] == (9, 60)
    assert (tmp_path / "out" / "05_regimen_interaction_tests.csv").exists()


def test_an_upload_of_the_public_gse194040_table_reaches_the_same_counts():
    """The raw GEO table as a user would upload it: its columns are mapped (BP.subtype,
    PAM50.Subtype, Luminal_Index, HER2_Index...), the page gives the same BluePrint and PAM50
    counts, and the regimen panel says what the file lacks (no regimen class or arm column)."""
    from tests.conftest import real_file_bytes

    content = real_file_bytes("ispy2/ispy2_clinical_GSE194040.csv")
    at = run_app()
    at.file_uploader(key="upload_files").set_value(("GSE194040.csv", content, "text/csv")).run()
    assert not at.exception
    assert at.sidebar.selectbox(key="cohort").value.startswith("upload:")
    at = goto(at, PAGE)
    assert_clean(at)
    blueprint = table_with(at, "blueprint_subtype", "hr_status", "n", "pcr")
    assert counts(blueprint, "blueprint_subtype")["Luminal-type"] == (9, 60)
    assert counts(blueprint, "blueprint_subtype")["HER2-type"] == (95, 164)
    at.selectbox(key="ers_subtype").set_value("pam50_subtype").run()
    assert_clean(at)
    pam50 = table_with(at, "pam50_subtype", "hr_status", "n", "pcr")
    assert counts(pam50, "pam50_subtype") == {
        "Basal": (8, 20), "Her2": (67, 103), "LumA": (16, 59), "LumB": (19, 58), "Normal": (2, 3),
        "all": (112, 243)}
    assert "it needs a regimen class or arm (`regimen_class` or `arm`)" in text_of(at)
    assert at.button(key="ers_open_ispy2_regimen")  # one click to the bundled copy, with regimens


def test_an_upload_with_subtypes_and_survival_gets_kaplan_meier_by_subtype():
    from her2er_dash import datasets

    curated = datasets.bundled("curated_neoadjuvant").data
    part = curated[curated["study"] == "GSE22226"]
    upload = pd.DataFrame({
        "patient": part["patient_id"], "her2": part["her2_status"], "er": part["er_status"],
        "pCR": part["pcr"], "PAM50 subtype": part["pam50_subtype"].astype(object),
        "RFS_months": part["rfs_months"], "RFS_event": part["rfs_event"],
    })  # fmt: skip
    at = run_app()
    at.file_uploader(key="upload_files").set_value(
        ("ispy1_expression.csv", upload.to_csv(index=False).encode(), "text/csv")).run()
    at = goto(at, PAGE)
    assert_clean(at)
    groups = table_with(at, "group", "n", "events", "median")
    assert groups["n"].sum() == 43
    assert groups["events"].sum() == 13


def test_a_selection_without_her2_positive_patients_says_so():
    at = goto(run_app(cohort="ispy2"), PAGE)
    at.sidebar.multiselect(key="f_her2").set_value(["negative"]).run()
    assert_clean(at)
    assert "No HER2-positive patient is in the current selection" in text_of(at)
