"""What the app keeps in memory (issue 15.4), driven as a user would (AppTest).

- The Evidence page's cached copies of the selection (an ER-category subset, a landmarked copy)
  carry only the columns their analysis reads, and every number on the page equals the one
  computed from copies with every column.
- The Survival page's cached IPTW result keeps no per-patient values, and the page is unchanged.
- A large upload keeps only its first rows for the mapping editor (not its whole parsed table),
  and the app says plainly that changing its mapping needs the file again.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from her2er_dash import evidence, memory, meta, simulate
from tests.apptest_helpers import goto, run_app

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _ui():
    return sys.modules["ui"]


def _cached_frames(kind: str) -> list[pd.DataFrame]:
    return [value for key, value in _ui().FRAME_CACHE.entries() if key[0] == kind]


def _evidence_tables() -> tuple[list[pd.DataFrame], list[str]]:
    """Every table and sentence of the Evidence page on the synthetic trial (HER2+ only), with
    ER-category as the exposure (a cached subset) and the CTNeoBC panel (a landmarked copy)."""
    at = goto(run_app(cohort="synthetic"), "5_Evidence.py")
    at.sidebar.multiselect(key="f_her2").set_value(["positive"]).run()
    _clean(at)
    assert at.selectbox(key="ev_exposure").value == "er_category"
    for kind in ("pcr_or", "hr"):
        at.selectbox(key="ev_kind").set_value(kind).run()
        _clean(at)
    tables = [d.value for d in at.dataframe]
    texts = [str(e.value) for kind in ("markdown", "caption", "info", "warning")
             for e in getattr(at, kind)]
    return tables, texts


def test_evidence_copies_keep_only_the_analysis_columns_and_every_number_is_unchanged(monkeypatch):
    narrow_tables, narrow_texts = _evidence_tables()
    subsets, landmarked = _cached_frames("subset"), _cached_frames("landmarked")
    assert subsets
    assert landmarked
    width = len(simulate.trial(10, seed=1).columns)
    for frame in subsets + landmarked:
        assert frame.shape[1] <= 8 < width, list(frame.columns)
    landmark_columns = set(landmarked[0].columns)
    assert {"study", "pcr", "hr_status", "efs_months", "efs_event"} <= landmark_columns
    assert "patient_id" not in landmark_columns

    # the same page with copies of every column (the app before this change)
    import streamlit as st

    st.cache_data.clear()
    _ui().FRAME_CACHE.clear()
    monkeypatch.setattr(_ui().analysis, "analysis_columns", lambda *args: None)
    wide_tables, wide_texts = _evidence_tables()
    assert max(f.shape[1] for f in _cached_frames("subset")) > 8
    assert narrow_texts == wide_texts
    assert len(narrow_tables) == len(wide_tables)
    for narrow, wide in zip(narrow_tables, wide_tables, strict=True):
        pd.testing.assert_frame_equal(narrow, wide, check_exact=True)


def _survival_page(spy: list) -> tuple[list[pd.DataFrame], list[str]]:
    """Every table and sentence of the Survival page on the synthetic trial (IPTW panel
    included), with each IPTW result the app computed recorded in ``spy``."""
    at = run_app(cohort="synthetic")
    at.session_state["surv_iptw_open"] = True  # the panel computes only when opened
    at = goto(at, "3_Survival.py")
    _clean(at)
    at.selectbox(key="surv_iptw_trunc").set_value("1st / 99th percentiles").run()
    _clean(at)
    assert "iptw_rmst_diff_efs" in at.session_state["_tables"]
    assert spy
    tables = [d.value for d in at.dataframe]
    texts = [str(e.value) for kind in ("markdown", "caption", "info", "warning")
             for e in getattr(at, kind)]
    return tables, texts


def test_the_cached_iptw_result_keeps_no_per_patient_values_and_the_page_is_unchanged(monkeypatch):
    from her2er_dash import survival

    real = survival.iptw_kaplan_meier
    spy: list = []

    def recorded(*args, **kwargs):
        spy.append(result := real(*args, **kwargs))
        return result

    monkeypatch.setattr(survival, "iptw_kaplan_meier", recorded)
    lean_tables, lean_texts = _survival_page(spy)
    assert all(r.weights.weights is None and r.weights.propensity is None for r in spy)
    assert any("weights range" in t for t in lean_texts)

    # the same page from results that keep every patient's weight (the app before this change)
    import streamlit as st

    st.cache_data.clear()
    _ui().FRAME_CACHE.clear()
    spy.clear()
    monkeypatch.setattr(_ui().analysis, "CACHED_OPTIONS", {})
    full_tables, full_texts = _survival_page(spy)
    assert all(r.weights.weights is not None for r in spy)
    assert lean_texts == full_texts
    assert len(lean_tables) == len(full_tables)
    for lean, full in zip(lean_tables, full_tables, strict=True):
        pd.testing.assert_frame_equal(lean, full, check_exact=True)


@pytest.mark.parametrize(("fn", "kwargs", "uses", "expected"), [
    ("meta.by_study", {"study": "study", "analysis": "pcr_or", "exposure": "er_category",
                       "reference": "ER-negative", "method": "REML", "hksj": False},
     ["er_category"], {"study", "er_category", "pcr", "surgery_months"}),
    ("evidence.study_table", {"analysis": "hr", "exposure": "hr_status", "time": "os_months",
                              "event": "os_event", "share": ["arm", "Chemo + trastuzumab"]},
     [], {"study", "hr_status", "os_months", "os_event", "arm", "pcr", "pcr_definition",
          "surgery_months"}),
    ("meta.ctneobc", {"time": "efs_months", "event": "efs_event", "group": "er_status",
                      "landmark": None, "study": "study"},
     ["pcr", "er_status"], {"study", "er_status", "pcr", "efs_months", "efs_event", "surgery_months"}),
])
def test_the_columns_of_an_analysis_suffice_for_its_numbers(fn, kwargs, uses, expected):
    import ui

    data = simulate.trial(3000, seed=5, n_studies=6)
    data = data.assign(er_category=np.where(data["er_percent"] >= 10, "ER-positive",
                                            np.where(data["er_percent"] >= 1, "ER-low", "ER-negative")))
    data = data[data["er_category"] != "ER-low"]
    columns = ui.analysis_columns(fn, kwargs, [*uses, *ui.analysis._LANDMARK_READS], data.columns)
    assert set(columns) == expected
    function = {"meta.by_study": meta.by_study, "evidence.study_table": evidence.study_table,
                "meta.ctneobc": meta.ctneobc}[fn]
    whole, narrow = function(data, **kwargs), function(data[list(columns)], **kwargs)
    if isinstance(whole, pd.DataFrame):
        pd.testing.assert_frame_equal(whole, narrow, check_exact=True)
    else:
        for name in ("table", "per_study", "pooled", "contrast"):
            if hasattr(whole, name):
                pd.testing.assert_frame_equal(getattr(whole, name), getattr(narrow, name),
                                              check_exact=True)
    assert ui.analysis_columns("survival.cox", kwargs, uses, data.columns) is None  # not listed


def _csv(n: int = 120) -> bytes:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "patient_id": [f"P{i:04d}" for i in range(n)],
        "er_percent": rng.integers(0, 100, n),
        "her2_status": rng.choice(["positive", "negative"], n),
        "pcr": rng.integers(0, 2, n),
        "os_months": np.round(rng.exponential(40, n) + 1, 1),
        "os_event": rng.integers(0, 2, n),
    })
    return frame.to_csv(index=False).encode()


def test_a_large_upload_keeps_its_first_rows_only_and_remapping_asks_for_the_file(monkeypatch):
    monkeypatch.setattr(memory, "REMAP_TABLE_CELLS", 100)  # 120 rows x 6 columns is "large"
    monkeypatch.setattr(memory, "REMAP_SAMPLE_ROWS", 20)
    at = run_app()
    at.file_uploader(key="upload_files").set_value(("big.csv", _csv(), "text/csv")).run()
    _clean(at)
    token = at.sidebar.selectbox(key="cohort").value
    item = at.session_state["_uploads"][token]
    assert item["remap_needs_file"]
    assert len(item["source"].frame) == 20  # the editor's guide, not the table
    assert len(item["cohort"].data) == 120  # the cohort itself is whole
    said = " ".join(s.value for s in at.success).replace("\\", "")
    assert "only its first 20 rows stay in memory" in said
    assert "uploading the file again with the edited mapping" in said
    notes = " ".join(i.value for i in at.info).replace("\\", "")
    assert "big.csv is large, so only its first 20 rows were kept" in notes

    # an edit cannot be applied to 20 rows: the app says so, offers the mapping, changes nothing
    sources = at.selectbox(key=f"map_src_{token}").options
    at.selectbox(key=f"map_src_{token}").set_value("os_months").run()
    at.selectbox(key=f"map_to_{token}_{sources.index('os_months')}").set_value("efs_months").run()
    at.button(key=f"map_apply_{token}").click().run()
    _clean(at)
    warned = " ".join(w.value for w in at.warning).replace("\\", "")
    assert "download the edited mapping and upload the file again together with it" in warned
    assert any(b.key == f"map_dl_needs_file_{token}" for b in at.get("download_button"))
    assert at.sidebar.selectbox(key="cohort").value == token
    assert "os_months" in at.session_state["_uploads"][token]["cohort"].data.columns


def test_a_small_upload_keeps_its_whole_table_to_remap():
    at = run_app()
    at.file_uploader(key="upload_files").set_value(("small.csv", _csv(), "text/csv")).run()
    _clean(at)
    item = at.session_state["_uploads"][at.sidebar.selectbox(key="cohort").value]
    assert not item["remap_needs_file"]
    assert len(item["source"].frame) == 120
    said = " ".join(s.value for s in at.success).replace("\\", "")
    assert "its table stays in this session's memory to re-map it" in said


def test_only_tables_of_more_values_than_the_limit_are_cut():
    assert memory.keeps_table_for_remapping(1000, 27)
    assert memory.keeps_table_for_remapping(memory.REMAP_TABLE_CELLS, 1)
    assert not memory.keeps_table_for_remapping(1_000_000, 27)


def test_widget_labels_keep_no_page_namespace_alive():
    """Streamlit keeps each widget's ``format_func`` after its page is left; a page's lambda
    would hold the page's namespace, and with it the page's filtered copy of the cohort, outside
    the byte-bounded frame cache. ``ui.selectbox``/``ui.multiselect`` hand Streamlit the labels
    instead, and the widgets show the same labels."""
    import gc

    from her2er_dash import schema

    at = goto(run_app(cohort="synthetic"), "3_Survival.py")
    at.sidebar.multiselect(key="f_her2").set_value(["positive"]).run()
    _clean(at)
    compare = at.selectbox(key="surv_by")  # its format_func is a lambda of the page
    assert compare.value == "er_category"
    assert compare.options[0] == "(none)"
    assert schema.column_label("er_category") in compare.options
    assert schema.column_label("hr_status") in compare.options
    filtered = [v for key, v in _ui().FRAME_CACHE.entries() if key[0] == "filtered"]
    assert filtered
    selected, width = filtered[-1].data.shape
    del filtered
    goto(at, "6_Methods.py")
    _clean(at)
    _ui().FRAME_CACHE.clear()
    gc.collect()
    alive = [o for o in gc.get_objects()
             if isinstance(o, pd.DataFrame) and len(o) == selected and o.shape[1] == width]
    assert not alive, "the Survival page's filtered copy outlived the page"


def test_option_labels_are_the_format_funcs_and_hold_no_reference_to_it():
    import gc

    from ui.view import OptionLabels

    def label(option):
        return f"<{option}>"

    labels = OptionLabels(["a", "b", 3], label)
    assert [labels(o) for o in ["a", "b", 3]] == ["<a>", "<b>", "<3>"]
    with pytest.raises(KeyError):
        labels("not an option")  # Streamlit then shows str(value), as for a failing format_func
    assert label not in gc.get_referents(labels)
    assert all(label not in gc.get_referents(r) for r in gc.get_referents(labels))
