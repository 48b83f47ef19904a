"""CohortFilter: serialisation, selection, the flow of counts, and plain-language descriptions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import AnalysisError, datasets
from her2er_dash.filters import CohortFilter


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return datasets.bundled("synthetic").data


CASES = [
    CohortFilter(),
    CohortFilter(her2_status=("positive",)),
    CohortFilter(her2_status=("positive",), er_categories=("ER-negative", "ER-low")),
    CohortFilter(er_measure="er_percent", er_range=(1.0, 50.0), age_range=(40.0, 70.0)),
    CohortFilter(arms=("Chemo + trastuzumab",), t_stage=("T1", "T2"), n_stage=("N0",)),
    CohortFilter(er_measure="er_percent", er_low=5.0, er_high=20.0, er_categories=("ER-low",)),
    CohortFilter(age_range=(40.0, 70.0), exclude_missing=("age",)),
]


@pytest.mark.parametrize("flt", CASES, ids=lambda f: f.describe())
def test_no_row_is_lost_in_the_flow(cohort, flt):
    result = flt.apply(cohort)
    flow = result.flow
    assert flow["n_remaining"].iloc[0] == len(cohort)
    assert flow["n_remaining"].iloc[-1] == result.n
    assert result.n + flow["n_excluded"].sum() == len(cohort)
    assert (np.diff(flow["n_remaining"]) <= 0).all()


@pytest.mark.parametrize("flt", CASES, ids=lambda f: f.describe())
def test_round_trip_through_a_plain_dict(flt):
    assert CohortFilter.from_dict(flt.to_dict()) == flt


def test_selection_keeps_exactly_the_matching_rows(cohort):
    flt = CohortFilter(her2_status=("positive",), er_categories=("ER-positive",), age_range=(40, 60))
    data = flt.apply(cohort).data
    assert (data["her2_status"] == "positive").all()
    assert (data["er_category"] == "ER-positive").all()
    assert data["age"].between(40, 60).all()
    classified = flt.classify(cohort)
    expected = (
        (classified["her2_status"] == "positive")
        & (classified["er_category"] == "ER-positive")
        & classified["age"].between(40, 60)
    )
    assert len(data) == int(expected.sum())


def test_cut_points_change_the_er_categories(cohort):
    default = CohortFilter(er_measure="er_percent").apply(cohort).data["er_category"]
    wider = CohortFilter(er_measure="er_percent", er_high=30.0).apply(cohort).data["er_category"]
    assert (wider == "ER-low").sum() > (default == "ER-low").sum()
    assert "ASCO/CAP" in CohortFilter().cutpoints(cohort).describe()


def test_unknown_values_fail_a_criterion_and_are_counted():
    df = datasets.bundled("synthetic").data.head(200).copy()
    df["arm"] = df["arm"].astype(object)
    df.loc[df.index[:7], "arm"] = pd.NA
    arms = tuple(df["arm"].dropna().unique())
    result = CohortFilter(arms=arms).apply(df)
    assert result.n == 193
    assert "7 with unknown arm excluded" in result.flow["note"].iloc[1]
    assert "193 of 200" in result.describe()


def test_filter_on_a_column_the_cohort_lacks_is_a_clear_error():
    gbsg2 = datasets.bundled("gbsg2").data
    with pytest.raises(AnalysisError, match="no her2_status column"):
        CohortFilter(her2_status=("positive",)).apply(gbsg2)


def test_from_dict_ignores_unknown_keys_and_orders_ranges():
    flt = CohortFilter.from_dict({"age_range": [70, 40], "colour": "blue", "arms": ["A"]})
    assert flt.age_range == (40.0, 70.0)
    assert flt.arms == ("A",)


def test_describe_says_what_is_selected():
    flt = CohortFilter(her2_status=("positive",), age_range=(40, 70))
    assert flt.describe() == "age in [40, 70] (unknown kept); HER2 status: positive"
    assert CohortFilter().describe() == "no filters (all patients)"
    assert CohortFilter(exclude_missing=("age",)).describe() == "known age"


def test_a_range_keeps_unknown_values_unless_they_are_excluded_explicitly():
    df = datasets.bundled("synthetic").data.head(300).copy()
    df["age"] = df["age"].astype(float)
    df.loc[df.index[:40], "age"] = np.nan
    in_range = df["age"].between(40, 70)
    ranged = CohortFilter(age_range=(40, 70)).apply(df)
    assert ranged.n == int(in_range.sum()) + 40  # unknown ages are not excluded by the range
    assert "40 with unknown age kept" in ranged.flow["note"].iloc[1]
    explicit = CohortFilter(age_range=(40, 70), exclude_missing=("age",)).apply(df)
    assert explicit.n == int(in_range.sum())
    step = explicit.flow.set_index("criterion").loc["known age"]
    assert step["n_excluded"] == 40  # the explicit step says how many it excluded
    assert "known age → −40" in explicit.describe()


def test_filter_is_hashable_for_caching():
    assert hash(CASES[2]) == hash(CohortFilter.from_dict(CASES[2].to_dict()))
