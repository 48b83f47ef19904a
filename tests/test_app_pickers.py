"""Pickers of a contrast (a level and its reference) can never hold the same value, and the
Subgroups progress bar never outlives its run (issue 16: picking a new exposure set Level and
Reference to the same value, and "Fitting subgroup models…" stayed on screen for good)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_helpers import goto, run_app

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _pair(at: AppTest, first: str, second: str) -> tuple[str, str]:
    return at.selectbox(key=first).value, at.selectbox(key=second).value


def _no_progress_bar(at: AppTest) -> bool:
    return not at.get("progress")


@pytest.mark.parametrize("cohort", ["synthetic", "ispy1"])
def test_every_exposure_gets_two_different_levels_and_the_forest_finishes(cohort):
    at = goto(run_app(cohort=cohort), "4_Subgroups.py")
    exposures = at.selectbox(key="sub_exposure").options
    assert len(exposures) >= 3
    for exposure in exposures:
        at.selectbox(key="sub_exposure").set_value(exposure).run()
        _clean(at)
        level, reference = _pair(at, "sub_level", "sub_reference")
        assert level != reference, (exposure, level)
        assert reference in at.selectbox(key="sub_reference").options
        assert level not in at.selectbox(key="sub_reference").options  # cannot be picked at all
        assert _no_progress_bar(at), exposure
        assert "Choose two different levels" not in " ".join(i.value for i in at.info)


def test_picking_the_reference_as_level_moves_the_reference():
    at = goto(run_app(cohort="synthetic"), "4_Subgroups.py")
    at.selectbox(key="sub_exposure").set_value("er_category").run()
    level, reference = _pair(at, "sub_level", "sub_reference")
    at.selectbox(key="sub_level").set_value(reference).run()
    _clean(at)
    new_level, new_reference = _pair(at, "sub_level", "sub_reference")
    assert new_level == reference
    assert new_reference != new_level
    assert _no_progress_bar(at)


def test_a_url_asking_for_the_same_level_twice_still_gets_two_levels():
    at = goto(run_app(cohort="synthetic", sub_exposure="er_category", sub_level="ER-low",
                      sub_reference="ER-low"), "4_Subgroups.py")
    _clean(at)
    assert _pair(at, "sub_level", "sub_reference") == ("ER-low", "ER-negative")


def test_a_refused_forest_leaves_no_progress_bar():
    # Two levels, but a subgroup variable with a single patient per level: the fit may refuse;
    # whatever it does, the bar must be gone at the end of the run.
    at = goto(run_app(cohort="synthetic", f_age="24|26"), "4_Subgroups.py")
    assert not at.exception, [e.value for e in at.exception]
    assert _no_progress_bar(at)


def test_evidence_er_categories_are_always_two_different_ones():
    at = goto(run_app(cohort="synthetic"), "5_Evidence.py")
    assert at.selectbox(key="ev_exposure").value == "er_category"
    level, reference = _pair(at, "ev_er_level", "ev_er_ref")
    at.selectbox(key="ev_er_level").set_value(reference).run()
    _clean(at)
    level, reference = _pair(at, "ev_er_level", "ev_er_ref")
    assert level != reference
    assert level not in at.selectbox(key="ev_er_ref").options
    assert not any("Choose two different" in i.value for i in at.info)
