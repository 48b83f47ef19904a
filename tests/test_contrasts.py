"""contrasts.two_level_forest: one level of a many-level exposure against another."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import contrasts, subgroups
from her2er_dash.errors import AnalysisError


@pytest.fixture(scope="module")
def gbsg(gbsg2):
    return gbsg2.assign(grade=gbsg2["tgrade"].astype(str), extra=np.arange(len(gbsg2)))


@pytest.mark.parametrize("as_category", [False, True])
def test_equals_the_forest_of_the_two_levels(gbsg, as_category):
    data = gbsg.assign(grade=gbsg["grade"].astype("category")) if as_category else gbsg
    table = contrasts.two_level_forest(
        data, exposure="grade", level="III", reference="I", subgroups_=["menostat", "horTh"],
        outcome=("time", "cens"),
    )  # fmt: skip
    two = gbsg[gbsg["grade"].isin(["I", "III"])]
    expected = subgroups.forest(
        two.assign(grade=(two["grade"] == "III").astype(int)), exposure="grade",
        subgroups=["menostat", "horTh"], outcome=("time", "cens"), reference=0,
    )  # fmt: skip
    pd.testing.assert_frame_equal(table, expected, rtol=1e-12)
    excluded = table.attrs["contrast_exclusions"]
    assert excluded.n_used == len(two)
    assert excluded.reasons == (("Grade not III or I", int((gbsg["grade"] == "II").sum())),)
    assert table.attrs["contrast"] == "Grade: III vs I"


def test_numeric_exposure_levels_are_read_as_text(gbsg):
    data = gbsg.assign(treated=(gbsg["horTh"] == "yes").astype(int))
    table = contrasts.two_level_forest(
        data, exposure="treated", level="1", reference="0", subgroups_=["menostat"],
        outcome=("time", "cens"),
    )  # fmt: skip
    assert table.attrs["contrast_exclusions"].n_excluded == 0
    assert table["estimate"].iloc[0] < 1  # hormone therapy lowers the hazard in GBSG2


def test_failures_name_the_problem(gbsg):
    with pytest.raises(AnalysisError, match="two different levels"):
        contrasts.two_level_forest(gbsg, exposure="grade", level="I", reference="I",
                                   subgroups_=["menostat"], outcome=("time", "cens"))  # fmt: skip
    with pytest.raises(AnalysisError, match="no column 'arm'"):
        contrasts.two_level_forest(gbsg, exposure="arm", level="a", reference="b",
                                   subgroups_=["menostat"], outcome=("time", "cens"))  # fmt: skip
