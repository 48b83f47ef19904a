"""How the app draws figures and tables (ui.chart, ui.table): presenter mode, watermark, the figure
cache's key, and missing medians said in words."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import ui
from her2er_dash import figures, simulate, survival
from tests.apptest_helpers import goto, run_app

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def test_fingerprint_depends_on_the_numbers_not_on_the_object():
    cohort = simulate.trial(300, seed=3)
    first = survival.kaplan_meier(cohort, "efs_months", "efs_event", by="arm")
    again = survival.kaplan_meier(cohort.copy(), "efs_months", "efs_event", by="arm")
    assert first is not again
    assert ui.fingerprint((first, {"presenter": False})) == ui.fingerprint((again, {"presenter": False}))
    assert ui.fingerprint((first, {"presenter": False})) != ui.fingerprint((first, {"presenter": True}))
    other = survival.kaplan_meier(cohort.iloc[10:], "efs_months", "efs_event", by="arm")
    assert ui.fingerprint(first) != ui.fingerprint(other)
    table = pd.DataFrame({"a": [1.0, 2.0]})
    assert ui.fingerprint(table) != ui.fingerprint(table.assign(a=[1.0, 2.000001]))
    assert ui.fingerprint(table) != ui.fingerprint(table.rename(columns={"a": "b"}))
    assert ui.fingerprint(np.arange(3)) != ui.fingerprint(np.arange(3.0))


def test_missing_medians_read_not_reached_and_the_download_keeps_numbers():
    medians = pd.DataFrame({"group": ["A", "B"], "median": [14.2, np.nan], "ci_low": [10.0, np.nan],
                            "ci_high": [np.nan, np.nan]})  # fmt: skip
    shown = ui.display_frame(medians, ui.MEDIAN_MISSING)
    assert shown["median"].tolist() == ["14.2", "not reached"]
    assert shown["ci_low"].tolist() == ["10", "—"]
    assert shown["ci_high"].tolist() == ["—", "—"]
    assert medians["median"].isna().sum() == 1  # the table itself is not changed


def _figure_specs(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_presenter_mode_and_watermark_reach_every_figure_of_a_page():
    at = goto(run_app(cohort="synthetic"), "3_Survival.py")
    assert not at.exception
    normal = _figure_specs(at)
    assert normal
    for spec in normal:
        assert spec["layout"]["font"]["size"] == figures.BASE_FONT_PX
        assert any(a.get("name") == "watermark" for a in spec["layout"].get("annotations", []))
    at.sidebar.toggle(key="presenter").set_value(True).run()
    assert not at.exception
    for spec in _figure_specs(at):
        assert spec["layout"]["font"]["size"] == round(figures.BASE_FONT_PX * figures.PRESENTER_SCALE)


def test_real_cohorts_and_published_data_are_never_watermarked():
    at = goto(run_app(cohort="synthetic"), "5_Evidence.py")
    assert not at.exception
    published = [s for s in _figure_specs(at)
                 if any(a.get("name", "").startswith("column header: Trial") for a in s["layout"].get("annotations", []))]  # fmt: skip
    assert published
    for spec in published:
        assert not any(a.get("name") == "watermark" for a in spec["layout"].get("annotations", []))
    real = goto(run_app(cohort="ispy1"), "3_Survival.py")
    for spec in _figure_specs(real):
        assert not any(a.get("name") == "watermark" for a in spec["layout"].get("annotations", []))


# ---------------------------------------------------------------------------------------------
# What makes a render cheap must not change what it shows (issue 15: CPU per render)
# ---------------------------------------------------------------------------------------------


def test_a_known_result_is_fingerprinted_by_its_key_and_forgotten_when_it_dies():
    import gc

    cohort = simulate.trial(300, seed=3)
    first = survival.kaplan_meier(cohort, "efs_months", "efs_event", by="arm")
    again = survival.kaplan_meier(cohort, "efs_months", "efs_event", by="arm")
    key = ("analysis", "token", "filter", "survival.kaplan_meier", {"by": "arm"})
    assert ui.known_as(first, key) is first
    assert ui.known_key(first) == key
    assert ui.known_key(first.table) == (*key, "table")  # its tables are known too
    assert ui.known_key(again) is None  # an equal result that no cache returned is not
    assert ui.fingerprint(first) == ui.fingerprint(ui.known_as(again, key))
    assert ui.fingerprint(first) != ui.fingerprint(survival.kaplan_meier(cohort, "efs_months", "efs_event", by="arm"))
    other = ui.known_as(survival.kaplan_meier(cohort.iloc[10:], "efs_months", "efs_event", by="arm"),
                        (*key[:2], "another filter", *key[3:]))  # fmt: skip
    assert ui.fingerprint(first) != ui.fingerprint(other)
    ident = id(first)
    del first, again
    gc.collect()
    assert ident not in ui.keys._KNOWN  # no entry outlives its object (ids are reused)


def test_csv_payloads_of_known_tables_are_reused_and_equal_to_a_fresh_export():
    from her2er_dash.export import SYNTHETIC_CSV_BANNER, safe_csv_bytes

    cohort = simulate.trial(300, seed=3)
    km = ui.known_as(survival.kaplan_meier(cohort, "efs_months", "efs_event", by="arm"), ("k", 1))
    once = ui.csv_payload(km.medians, banner=None)
    assert once == safe_csv_bytes(km.medians)
    assert ui.csv_payload(km.medians, banner=None) is once  # from the store
    marked = ui.csv_payload(km.medians, banner=SYNTHETIC_CSV_BANNER)  # the banner is part of the key
    assert marked == safe_csv_bytes(km.medians, banner=SYNTHETIC_CSV_BANNER) != once
    table = km.medians.copy()  # not known: written each time
    assert ui.csv_payload(table, banner=None) == once
    assert ui.csv_payload(table, banner=None) is not ui.csv_payload(table, banner=None)


def _wire_builders():
    from tests.test_figures import FOREST, KM_TABLE, _builders

    def km_real():
        cohort = simulate.trial(500, seed=5)
        km = survival.kaplan_meier(cohort, "efs_months", "efs_event", by="arm")
        return figures.km_figure(km, watermark="SYNTHETIC DATA", presenter=True)

    return {**_builders(), "km_real": km_real, "km_literal": lambda: figures.km_figure(KM_TABLE),
            "forest_narrow": lambda: figures.forest_figure(FOREST, narrow=True)}


@pytest.mark.parametrize("name", ["rates", "dose", "forest", "meta", "flow", "km_real", "km_literal",
                                  "forest_narrow"])
def test_a_wire_ready_figure_sends_exactly_the_same_chart(name):
    import plotly.io as pio

    fig = _wire_builders()[name]()
    ready = ui.wire_ready(fig)
    # the same content (plotly may write a layout's keys in another order)
    assert json.loads(pio.to_json(ready, validate=False)) == json.loads(pio.to_json(fig, validate=False))


def test_only_figures_with_many_values_are_re_encoded():
    """Re-encoding pays for itself on a Kaplan-Meier figure's thousands of values, not on a forest
    plot's few (the small figure is cached as built)."""
    builders = _wire_builders()
    forest = builders["forest"]()
    assert ui.wire_ready(forest) is forest
    km = builders["km_real"]()
    assert ui.render._array_values(km) >= ui.render.WIRE_READY_MIN_VALUES
    ready = ui.wire_ready(km)
    assert ready is not km
    encoded = [t.y for t in ready.data if isinstance(t.y, dict)]
    assert encoded
    assert all("bdata" in y for y in encoded)  # plotly's base64 typed arrays


def test_followed_up_coverage_matches_a_scan_of_the_rows():
    from types import SimpleNamespace

    from her2er_dash.filters import CohortFilter

    data = simulate.trial(400, seed=8)
    data.loc[data.index[:50], "efs_months"] = np.nan
    data.loc[data.index[40:140], "grade"] = np.nan
    ctx = SimpleNamespace(data=data, cohort=SimpleNamespace(token="followed-test"), flt=CohortFilter(),
                          classified=True)  # fmt: skip
    got = ui.followed_up(ctx, "efs_months", "efs_event", ("grade", "her2_status", "not_a_column"))
    followed = data[["efs_months", "efs_event"]].notna().all(axis=1)
    assert set(got) == {"grade", "her2_status"}
    for column in got:
        values = data.loc[followed, column]
        assert got[column] == (pytest.approx(values.notna().mean()), values.dropna().nunique())


def _page_signature(at) -> dict:
    """What a user sees and can download: every chart's JSON, table, text and download file."""
    kinds = ("title", "subheader", "markdown", "caption", "info", "warning", "error")
    return {
        "charts": [chart.proto.spec for chart in at.get("plotly_chart")],
        "tables": [frame.value.to_csv() for frame in at.dataframe],
        "texts": {kind: [str(e.value) for e in getattr(at, kind)] for kind in kinds},
        # a download's URL names its file by the hash of its bytes
        "downloads": [(d.proto.label, d.proto.url) for d in at.get("download_button")],
        "buttons": [b.label for b in at.button],
    }


def test_survival_renders_the_same_from_cold_and_warm_caches():
    """The second session is served from the figure, CSV and widget-option stores the first one
    filled; both see exactly the same page, before and after a filter change."""
    signatures = []
    for _ in range(2):
        at = goto(run_app(cohort="synthetic"), "3_Survival.py")
        assert not at.exception
        first = _page_signature(at)
        at.sidebar.multiselect(key="f_her2").set_value(["positive"]).run()
        assert not at.exception
        signatures.append((first, _page_signature(at)))
    (cold, cold_filtered), (warm, warm_filtered) = signatures
    assert all(cold[part] for part in ("charts", "tables", "downloads"))
    assert cold == warm
    assert cold_filtered == warm_filtered
    assert cold_filtered["tables"] != cold["tables"]  # the filter did change the numbers


def test_prepare_builds_the_figure_file_only_when_asked():
    at = goto(run_app(cohort="synthetic"), "3_Survival.py")
    prepare = [b for b in at.button if b.key and b.key.startswith("prepare_dlfig_km_")]
    assert len(prepare) == 1
    figure_files = [d for d in at.get("download_button") if d.proto.label == "Download figure (HTML)"]
    assert figure_files == []
    prepare[0].click().run()
    assert not at.exception
    figure_files = [d for d in at.get("download_button") if d.proto.label == "Download figure (HTML)"]
    assert len(figure_files) == 1
    assert figure_files[0].proto.url.endswith(".html")
    assert not [b for b in at.button if b.key == prepare[0].key]  # the file replaced its button


def test_a_known_table_is_sent_as_the_same_arrow_bytes_as_its_frame():
    from streamlit.testing.v1 import AppTest

    def script():
        import numpy as np
        import pandas as pd
        import streamlit as st

        import ui

        medians = pd.DataFrame({"group": ["A", "=B"], "median": [14.2, np.nan], "ci_low": [10.0, np.nan],
                                "ci_high": [np.nan, np.nan], "p": [0.0004, 0.2]})  # fmt: skip
        for missing in (None, ui.MEDIAN_MISSING):
            st.dataframe(ui.display_frame(medians, missing), hide_index=True)
            known = ui.known_as(medians.copy(), ("medians", 1))
            st.dataframe(ui.shown_table(known, missing), hide_index=True)
            st.dataframe(ui.shown_table(known, missing), hide_index=True)  # from the store

    at = AppTest.from_function(script).run()
    assert not at.exception
    sent = [frame.proto.arrow_data.data for frame in at.dataframe]
    assert len(sent) == 6
    assert sent[0] == sent[1] == sent[2]
    assert sent[3] == sent[4] == sent[5] != sent[0]
    assert at.dataframe[3].value["median"].tolist() == ["14.2", "not reached"]
