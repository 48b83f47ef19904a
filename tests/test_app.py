"""AppTest tests for every page: renders, filters, navigation, uploads, bad files, URL restore."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from her2er_dash import datasets, simulate
from tests.apptest_helpers import ROOT, goto, run_app, sidebar_count, text_defects

# Streamlit caches are process-wide: every test starts from empty ones.
pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")

PAGES = ["1_Cohort.py", "2_Response.py", "3_Survival.py", "4_Subgroups.py", "7_Subsets.py", "5_Evidence.py",
         "6_Methods.py"]


def all_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert not text_defects(at), text_defects(at)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_the_default_cohort(page):
    """The app opens on a real cohort (I-SPY 1), never on the synthetic trial."""
    at = goto(run_app(), page)
    assert_clean(at)
    assert at.sidebar.selectbox(key="cohort").value == datasets.DEFAULT_BUNDLE == "ispy1"
    assert "SYNTHETIC" not in all_text(at)
    assert sidebar_count(at).startswith("n = 221 of 221 patients")


def test_real_cohorts_are_listed_first_and_the_synthetic_trial_last():
    options = run_app().sidebar.selectbox(key="cohort").options
    assert options[:3] == [datasets.bundled(k).title for k in datasets.REAL_PATIENT_LEVEL]
    assert "SYNTHETIC" in options[-1]


@pytest.mark.parametrize(
    ("cohort", "count", "expect"),
    [
        ("ispy2", "n = 987 of 987", "no survival endpoint"),  # Survival page says why it is empty
        ("curated_neoadjuvant", "n = 1,280 of 1,280", "GSE20194"),
        ("synthetic", "n = 2,000 of 2,000", "SYNTHETIC"),
    ],
)
def test_every_page_renders_each_bundled_cohort(cohort, count, expect):
    at = run_app(cohort=cohort)
    seen = []
    for page in PAGES:
        at = goto(at, page)
        assert_clean(at)
        assert at.sidebar.selectbox(key="cohort").value == cohort
        assert sidebar_count(at).startswith(count), page
        seen.append(all_text(at) + " ".join(str(d.value.to_dict()) for d in at.dataframe))
        if cohort == "synthetic":  # labelled SYNTHETIC on every page
            assert "SYNTHETIC" in all_text(at), page
    assert expect in " ".join(seen)


def test_changing_a_filter_changes_the_numbers_shown():
    at = goto(run_app(), "2_Response.py")
    before_count = sidebar_count(at)
    before = at.dataframe[0].value.copy()
    at.sidebar.multiselect(key="f_her2").set_value(["positive"]).run()
    assert_clean(at)
    assert sidebar_count(at) != before_count
    after = at.dataframe[0].value
    assert not before["n"].equals(after["n"])


def test_the_cohort_page_charts_the_flow_once_a_filter_adds_a_step():
    # Unfiltered, the flow is one bar repeating the total: a sentence says it instead.
    at = goto(run_app(), "1_Cohort.py")
    assert_clean(at)
    assert not at.get("plotly_chart")
    total = sidebar_count(at).split(" of ")[1].split()[0]
    assert f"No filter applied: all {total} patients are analysed" in all_text(at)
    at.sidebar.multiselect(key="f_her2").set_value(["positive"]).run()
    assert_clean(at)
    flow = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(flow["data"][0]["y"]) == 2  # all patients, then HER2 status
    assert "No filter applied" not in all_text(at)


def test_page_switch_keeps_the_filters():
    at = goto(run_app(), "2_Response.py")
    at.sidebar.multiselect(key="f_her2").set_value(["positive"]).run()
    count = sidebar_count(at)
    at = goto(at, "3_Survival.py")
    assert_clean(at)
    assert at.sidebar.multiselect(key="f_her2").value == ["positive"]
    assert sidebar_count(at) == count


def test_url_query_parameters_restore_the_view():
    # the synthetic trial has ER % (so an ER-low band) for every patient
    at = run_app(cohort="synthetic", f_her2="positive", f_er_cat="ER-negative|ER-low",
                 resp_ci="jeffreys")
    at = goto(at, "2_Response.py")
    assert_clean(at)
    assert at.sidebar.multiselect(key="f_her2").value == ["positive"]
    assert at.sidebar.multiselect(key="f_er_cat").value == ["ER-negative", "ER-low"]
    assert at.selectbox(key="resp_ci").value == "jeffreys"
    assert at.sidebar.selectbox(key="cohort").value == "synthetic"


def test_filters_are_written_to_the_url():
    at = goto(run_app(), "2_Response.py")
    at.sidebar.multiselect(key="f_her2").set_value(["positive"]).run()
    assert at.query_params["f_her2"] in ("positive", ["positive"])


def _upload_frame() -> pd.DataFrame:
    df = simulate.trial(n=400, seed=7)
    return pd.DataFrame(
        {
            "Patient ID": df["patient_id"],
            "ER %": df["er_percent"],
            "HER2 status": df["her2_status"].map({"positive": "Pos", "negative": "Neg"}),
            "Treatment arm": df["arm"],
            "Age at diagnosis": df["age"],
            "pCR": df["pcr"],
            "EFS_months": df["efs_months"],
            "EFS_status": df["efs_event"],
        }
    )


def _xlsx_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer) as writer:
        frame.drop(columns=["pCR", "EFS_months", "EFS_status"]).to_excel(writer, sheet_name="Predictors", index=False)
        frame[["Patient ID", "pCR", "EFS_months", "EFS_status"]].to_excel(writer, sheet_name="Outcomes", index=False)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_uploaded_file_flows_through_mapping_to_response_and_survival(kind):
    frame = _upload_frame()
    content = frame.to_csv(index=False).encode() if kind == "csv" else _xlsx_bytes(frame)
    mime = "text/csv" if kind == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    at = run_app()
    at.file_uploader(key="upload_files").set_value((f"trial.{kind}", content, mime)).run()
    assert_clean(at)
    assert at.sidebar.selectbox(key="cohort").value.startswith("upload:")
    assert sidebar_count(at).startswith("n = 400 of 400")
    assert "SYNTHETIC DATA" not in all_text(at)
    at = goto(at, "2_Response.py")
    assert_clean(at)
    rates = at.dataframe[0].value
    assert rates["n"].sum() <= 400
    at = goto(at, "3_Survival.py")
    assert_clean(at)


def test_a_bad_file_shows_an_error_and_the_app_keeps_working():
    at = run_app()
    at.file_uploader(key="upload_files").set_value(("junk.csv", b"\x00\x01\x02\xff" * 200, "text/csv")).run()
    assert not at.exception
    assert at.error
    assert "junk.csv" in at.error[0].value.replace("\\", "")  # Markdown escapes removed
    assert at.sidebar.selectbox(key="cohort").value == datasets.DEFAULT_BUNDLE
    at = goto(at, "2_Response.py")
    assert_clean(at)


def test_methods_page_describes_what_was_seen():
    at = goto(run_app(cohort="synthetic"), "2_Response.py")
    at = goto(at, "6_Methods.py")
    assert_clean(at)
    text = all_text(at)
    assert "Wilson" in text
    assert "SYNTHETIC" in text


def test_methods_page_cites_the_real_bundled_cohort():
    at = goto(run_app(), "6_Methods.py")
    assert_clean(at)
    text = all_text(at).replace("\\", "")  # Markdown escapes removed
    assert "doi:10.7937/K9/TCIA.2016.HdHpgJLK" in text  # the TCIA collection the licence names
    assert "Esserman LJ" in text
    assert "CC BY 3.0" in text
    assert "SYNTHETIC" not in text


def test_gbsg2_says_what_it_cannot_show():
    at = run_app()
    at.sidebar.selectbox(key="cohort").set_value("gbsg2").run()
    assert not at.exception
    assert "HER2 status is unknown" in all_text(at)
    for page in PAGES[1:]:
        at = goto(at, page)
        assert not at.exception, page
        assert not text_defects(at), (page, text_defects(at))


def test_view_json_is_valid():
    at = goto(run_app(), "6_Methods.py")
    view = json.loads(at.session_state["_last_view"])
    assert view.get("cohort", datasets.DEFAULT_BUNDLE) == datasets.DEFAULT_BUNDLE


def test_reproducibility_script_recomputes_the_view(tmp_path):
    import subprocess
    import sys

    at = run_app()
    for page in PAGES[1:]:
        at = goto(at, page)
        assert_clean(at)
    script = at.session_state["_repro_script"]
    path = tmp_path / "reproduce.py"
    path.write_text(script)
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # as for a user with her2er_dash importable
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "pcr_rates" in run.stdout


def test_mapping_edits_and_event_direction_reload_the_upload():
    frame = _upload_frame()
    at = run_app()
    at.file_uploader(key="upload_files").set_value(("trial.csv", frame.to_csv(index=False).encode(),
                                                    "text/csv")).run()
    assert_clean(at)
    token = at.sidebar.selectbox(key="cohort").value
    before = at.session_state["_uploads"][token]["cohort"].data["efs_event"].sum()
    # The event direction is set in the recoding table: which raw value means an event.
    at.selectbox(key=f"map_rc_col_{token}").set_value("efs_event").run()
    boxes = {b.label.split("'")[1]: b for b in at.selectbox
             if b.key and b.key.startswith(f"map_rc_{token}_efs_event_")}
    assert boxes["1"].value == "event"
    assert boxes["0"].value == "censored"
    boxes["1"].set_value("censored")
    boxes["0"].set_value("event").run()
    at.button(key=f"map_apply_{token}").click().run()
    assert_clean(at)
    new_token = at.sidebar.selectbox(key="cohort").value
    assert new_token != token  # a re-mapped cohort never reuses cached results of the old mapping
    after = at.session_state["_uploads"][new_token]["cohort"].data["efs_event"].sum()
    assert after == frame["EFS_status"].notna().sum() - before
    mapping = at.session_state["_uploads"][new_token]["cohort"].mapping
    assert mapping.value_maps["efs_event"] == {"0": 1.0, "1": 0.0}


def test_uploaded_data_never_reaches_the_url():
    frame = _upload_frame()
    frame["Treatment arm"] = "Secret arm " + frame["Treatment arm"].astype(str)
    at = run_app()
    at.file_uploader(key="upload_files").set_value(("trial.csv", frame.to_csv(index=False).encode(),
                                                    "text/csv")).run()
    arms = at.sidebar.multiselect(key="f_arm").options
    at.sidebar.multiselect(key="f_arm").set_value([arms[0]]).run()
    assert_clean(at)
    assert "Secret" not in json.dumps(dict(at.query_params))
    # the URL says only that the cohort is the user's own: no name, hash or value
    assert dict(at.query_params) == {"cohort": ui_marker()}


def test_the_same_file_uploaded_again_becomes_the_active_cohort_again():
    """Found by the randomised browser test: a file loaded, another cohort picked, the same file
    dropped again: nothing happened (the file sat in the uploader, the cohort stayed)."""
    data = ("trial.csv", _upload_frame().to_csv(index=False).encode(), "text/csv")
    at = run_app(cohort="synthetic")
    at.file_uploader(key="upload_files").set_value(data).run()
    token = at.sidebar.selectbox(key="cohort").value
    assert token.startswith("upload:")
    at.sidebar.selectbox(key="cohort").set_value("synthetic").run()
    at.file_uploader(key="upload_files_1").set_value(data).run()
    assert_clean(at)
    assert at.sidebar.selectbox(key="cohort").value == token
    assert any("already loaded" in s.value for s in at.success)
    assert len(at.session_state["_uploads"]) == 1
    assert at.file_uploader(key="upload_files_2").value in (None, [])  # released, empty again


def ui_marker() -> str:
    import ui

    return ui.UPLOAD_MARKER


def test_a_link_to_an_upload_no_longer_in_memory_asks_for_the_file_again():
    """A reload, an expired session or a restarted server: the upload is gone. The page says so
    and shows no other cohort's numbers in its place; uploading again (or picking a bundled
    cohort) ends it."""
    at = run_app(cohort=ui_marker())
    assert not at.exception
    assert any("no longer in memory" in w.value for w in at.warning)
    assert not at.dataframe  # the Cohort page stops below its uploader
    assert at.query_params["cohort"] in (ui_marker(), [ui_marker()])
    at = goto(at, "2_Response.py")
    assert not at.exception
    assert any("no longer in memory" in w.value for w in at.warning)
    assert not at.dataframe
    assert not at.get("plotly_chart")
    at = goto(at, "1_Cohort.py")
    at.file_uploader(key="upload_files").set_value(
        ("trial.csv", _upload_frame().to_csv(index=False).encode(), "text/csv")).run()
    assert_clean(at)
    assert not any("no longer in memory" in w.value for w in at.warning)
    assert at.sidebar.selectbox(key="cohort").value.startswith("upload:")
    assert at.dataframe

    at = run_app(cohort=ui_marker())
    at.sidebar.selectbox(key="cohort").set_value("synthetic").run()
    assert not any("no longer in memory" in w.value for w in at.warning)
    assert at.dataframe


BAD_DIR = ROOT / "tests" / "data" / "bad"


@pytest.mark.parametrize("path", sorted(BAD_DIR.iterdir()), ids=lambda p: p.name)
def test_every_bad_file_is_explained_in_the_app_and_the_app_keeps_working(path):
    at = run_app()
    at.file_uploader(key="upload_files").set_value((path.name, path.read_bytes(), "text/plain")).run()
    assert not at.exception, [e.value for e in at.exception]
    explained = [e.value for e in at.error] + [
        str(d.value.to_dict()) for d in at.dataframe if "severity" in d.value.columns
    ]
    loaded = at.sidebar.selectbox(key="cohort").value.startswith("upload:")
    assert explained or loaded, "the file was neither refused with a message nor loaded"
    at = goto(at, "2_Response.py")
    assert not at.exception, [e.value for e in at.exception]


def test_evidence_page_filters_published_arms_by_regimen_class():
    at = goto(run_app(), "5_Evidence.py")
    assert_clean(at)
    chosen = at.multiselect(key="ev_regimen")
    assert "anti-HER2 ADC" in chosen.value
    assert "anti-HER2 only" in chosen.value
    published = next(d.value for d in at.dataframe if "regimen_class" in d.value.columns)
    assert set(published["regimen_class"]) == set(chosen.value)
    chosen.set_value(["anti-HER2 only"]).run()
    assert_clean(at)
    published = next(d.value for d in at.dataframe if "regimen_class" in d.value.columns)
    assert set(published["regimen_class"]) == {"anti-HER2 only"}
    assert (published["chemo"] == "no").all()
    definitions = set(published["pcr_definition"].astype(str))
    assert len(definitions) == 2  # NeoSphere HP (breast only) and ADAPT HR- HP (breast and nodes)
    assert any("2 pCR definitions" in w.value for w in at.warning)
