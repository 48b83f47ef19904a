"""The mapping editor and cohort switching, driven as a user would (AppTest).

Uploads go through the real file uploader; edits through the editor's widgets only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_helpers import ROOT, run_app, sidebar_count

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")

ISPY = ROOT / "tests" / "data" / "real" / "ispy1" / "I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx"
METABRIC = ROOT / "tests" / "data" / "formats" / "cbioportal_metabric_like"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _upload(at: AppTest, *files: tuple[str, bytes, str]) -> AppTest:
    return at.file_uploader(key=_uploader_key(at)).set_value(
        list(files) if len(files) > 1 else files[0]).run()


def _uploader_key(at: AppTest) -> str:
    return next(u.key for u in at.get("file_uploader") if u.key.startswith("upload_files"))


def _count(at: AppTest) -> str:
    return sidebar_count(at).replace("\\", "")  # Markdown escapes removed


def _token(at: AppTest) -> str:
    return at.sidebar.selectbox(key="cohort").value


def _table(at: AppTest, token: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "source column" in d.value.columns)


def _lung_like() -> bytes:
    """Generic names ('time', 'status' coded 1 = censored, 2 = dead) and an odd ER code."""
    rng = np.random.default_rng(11)
    n = 120
    frame = pd.DataFrame({
        "id": [f"L{i:03d}" for i in range(n)],
        "time": np.round(rng.exponential(30, n) + 1, 1),
        "status": rng.choice([1, 2], n, p=[0.4, 0.6]),
        "ER": rng.choice(["pos", "neg", "weak"], n),
        "HER2": rng.choice(["pos", "neg"], n),
    })
    return frame.to_csv(index=False).encode()


def test_ispy1_upload_needs_no_edit_and_every_column_is_listed():
    at = _upload(run_app(), (ISPY.name, ISPY.read_bytes(), XLSX))
    _clean(at)
    token = _token(at)
    assert token.startswith("upload:")
    assert _count(at).startswith("n = 221 of 221")
    table = _table(at, token)
    assert len(table) == 23  # every source column, no scrolling window of ten
    rows = table.set_index("source column")
    assert rows.loc["RFS", "maps to"] == "rfs_months"
    assert rows.loc["Her2MostPos", "maps to"] == "her2_status"
    assert "Recurrence-free survival time" in rows.loc["RFS", "the file describes it as"]
    assert rows.loc["rfs_ind", "means"].startswith("Recurrence-free survival: 1 = event")
    assert at.selectbox(key=f"map_origin_{token}").value == "start of therapy"
    assert at.selectbox(key=f"map_pcrdef_{token}").value == "ypT0/is ypN0"
    # the uploaded bytes are not kept: the session holds the parsed table, the uploader is new
    item = at.session_state["_uploads"][token]
    assert "files" not in item
    assert item["source"] is not None
    assert _uploader_key(at) == "upload_files_1"


def test_the_loaded_files_leave_the_session_through_a_new_uploader():
    at = _upload(run_app(), (ISPY.name, ISPY.read_bytes(), XLSX))
    _clean(at)
    # the uploader that held the file is replaced by an empty one (a new key, public API only)
    assert _uploader_key(at) == "upload_files_1"
    assert not at.file_uploader(key="upload_files_1").value
    assert "upload_files" not in at.session_state
    item = next(iter(at.session_state["_uploads"].values()))
    assert not any(isinstance(v, bytes | bytearray | memoryview) for v in item.values())


def test_an_upload_over_the_memory_budget_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setenv("HER2ER_UPLOAD_BUDGET_MB", "0.01")
    at = _upload(run_app(), ("lung_like.csv", _lung_like(), "text/csv"))
    assert not at.exception
    message = " ".join(e.value for e in at.error).replace("\\", "")
    assert "lung_like.csv" in message
    assert "120 rows" in message
    assert "0.0 MB per upload" in message
    assert "Fix:" in message
    assert not at.session_state["_uploads"]
    assert not _token(at).startswith("upload:")


def test_search_filters_the_table_and_an_edit_updates_confidence_and_reason():
    at = _upload(run_app(), (ISPY.name, ISPY.read_bytes(), XLSX))
    token = _token(at)
    at.text_input(key=f"map_search_{token}").set_value("her2").run()
    assert set(_table(at, token)["source column"]) == {"Her2MostPos", "HR_HER2_CATEGORY",
                                                        "HR_HER2_STATUS"}
    sources = at.selectbox(key=f"map_src_{token}").options
    at.selectbox(key=f"map_src_{token}").set_value("HR_HER2_STATUS").run()
    index = sources.index("HR_HER2_STATUS")
    at.selectbox(key=f"map_to_{token}_{index}").set_value("her2_status").run()
    _clean(at)
    row = _table(at, token).set_index("source column").loc["HR_HER2_STATUS"]
    assert row["maps to"] == "her2_status (edited)"
    assert row["confidence"] == "low"
    assert "subtype" in row["why"]
    assert any("HR_HER2_STATUS" in i.value for i in at.info)  # listed as a pending change
    # choosing another source shows that column's own choice: the edit stays on its row
    at.selectbox(key=f"map_src_{token}").set_value("age").run()
    age_index = sources.index("age")
    assert at.selectbox(key=f"map_to_{token}_{age_index}").value == "age"
    at.button(key=f"map_discard_{token}").click().run()
    assert "(edited)" not in " ".join(_table(at, token)["maps to"])


def test_a_wrong_guess_and_a_value_code_are_fixed_in_the_editor():
    at = _upload(run_app(), ("lung_like.csv", _lung_like(), "text/csv"))
    _clean(at)
    token = _token(at)
    sources = at.selectbox(key=f"map_src_{token}").options
    for source, target in (("time", "os_months"), ("status", "os_event")):
        at.selectbox(key=f"map_src_{token}").set_value(source).run()
        at.selectbox(key=f"map_to_{token}_{sources.index(source)}").set_value(target).run()
    at.button(key=f"map_apply_{token}").click().run()
    token = _token(at)
    loaded = at.session_state["_uploads"][token]["cohort"]
    assert {"os_months", "os_event"} <= set(loaded.data.columns)
    assert "efs_months" not in loaded.data
    # status is coded 1 = censored, 2 = dead: say so in the recoding table
    at.selectbox(key=f"map_rc_col_{token}").set_value("os_event").run()
    boxes = {b.label.split("'")[1]: b for b in at.selectbox
             if b.key and b.key.startswith(f"map_rc_{token}_os_event_")}
    boxes["2"].set_value("event")
    boxes["1"].set_value("censored").run()
    at.selectbox(key=f"map_rc_col_{token}").set_value("er_status").run()
    weak = next(b for b in at.selectbox if b.key and b.key.startswith(f"map_rc_{token}_er_status_")
                and "'weak'" in b.label)
    assert weak.value == "missing"  # an unreadable code is shown as missing, never guessed
    weak.set_value("positive").run()
    at.button(key=f"map_apply_{token}").click().run()
    _clean(at)
    loaded = at.session_state["_uploads"][_token(at)]["cohort"]
    raw = pd.read_csv(pd.io.common.BytesIO(_lung_like()))
    assert loaded.data.os_event.tolist() == (raw.status == 2).astype(float).tolist()
    assert int((loaded.data.er_status == "positive").sum()) == int(raw.ER.isin(["pos", "weak"]).sum())
    assert loaded.mapping.value_maps["os_event"] == {"1": 0.0, "2": 1.0}


def test_time_origin_and_pcr_definition_are_chosen_in_the_editor():
    frame = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "pcr": [1, 0, 1, 0],
                          "os_months": [5.0, 9, 12, 20], "os_event": [1, 0, 0, 1]})
    at = _upload(run_app(), ("small.csv", frame.to_csv(index=False).encode(), "text/csv"))
    token = _token(at)
    assert at.selectbox(key=f"map_pcrdef_{token}").value == "not recorded"
    at.selectbox(key=f"map_origin_{token}").set_value("randomisation")
    at.selectbox(key=f"map_pcrdef_{token}").set_value("ypT0 ypN0").run()
    at.button(key=f"map_apply_{token}").click().run()
    mapping = at.session_state["_uploads"][_token(at)]["cohort"].mapping
    assert (mapping.time_origin, mapping.pcr_definition) == ("randomisation", "ypT0 ypN0")


def test_a_derived_rule_can_be_switched_off():
    biotab = ROOT / "tests" / "data" / "formats" / "gdc_biotab" / \
        "nationwidechildrens.org_clinical_patient_brca.txt"
    at = _upload(run_app(), (biotab.name, biotab.read_bytes(), "text/plain"))
    token = _token(at)
    assert at.checkbox(key=f"map_rule_{token}_os_months").value
    at.checkbox(key=f"map_rule_{token}_os_months").uncheck().run()
    at.button(key=f"map_apply_{token}").click().run()
    _clean(at)
    loaded = at.session_state["_uploads"][_token(at)]["cohort"]
    assert "os_months" not in loaded.data
    assert loaded.mapping.rules["os_months"] is None


def test_loading_another_cohort_resets_every_filter():
    at = run_app(cohort="synthetic")
    low, high = at.sidebar.slider(key="f_age").value
    at.sidebar.slider(key="f_age").set_value((low + 10, high - 10)).run()
    at.sidebar.multiselect(key="f_her2").set_value(["positive"]).run()
    assert "age in" in _count(at)
    files = [(p.name, p.read_bytes(), "text/plain") for p in
             (METABRIC / "data_clinical_patient.txt", METABRIC / "data_clinical_sample.txt")]
    at = _upload(at, *files)
    _clean(at)
    assert _count(at).startswith("n = 2,509 of 2,509 patients; excluded: none")
    assert at.sidebar.multiselect(key="f_her2").value == []
    span = at.sidebar.slider(key="f_age").value
    ages = at.session_state["_uploads"][_token(at)]["cohort"].data.age
    assert span == (ages.min(), ages.max())
    # unknown ages are excluded only on request, and the sidebar says how many
    unknown = int(ages.isna().sum())
    toggle = at.sidebar.toggle(key="f_age_known")
    assert str(unknown) in toggle.label
    toggle.set_value(True).run()
    assert f"known age → −{unknown:,}" in _count(at)


def test_the_methods_paragraph_states_the_derived_rules():
    from tests.apptest_helpers import goto

    biotab = ROOT / "tests" / "data" / "formats" / "gdc_biotab" / \
        "nationwidechildrens.org_clinical_patient_brca.txt"
    at = _upload(run_app(), (biotab.name, biotab.read_bytes(), "text/plain"))
    at = goto(at, "6_Methods.py")
    _clean(at)
    text = " ".join(m.value for m in at.markdown).replace("\\", "")
    assert "Derived columns: " in text
    assert "os_months = 'death_days_to' for patients whose 'vital_status' is Dead" in text
    assert "Times are counted in months from diagnosis" in text
