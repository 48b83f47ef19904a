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
