"""ER/PR/HR/HER2 classification: every ASCO/CAP branch and boundary, table-driven."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import classify
from her2er_dash.classify import ERCutpoints, default_cutpoints
from her2er_dash.errors import AnalysisError
from her2er_dash.schema import ER_CATEGORIES

# -- ER cut-points -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measure", "value", "expected"),
    [
        # ASCO/CAP 2020 on % of nuclei: < 1 negative, 1-10 ER-low, > 10 positive.
        ("er_percent", 0.0, "ER-negative"),
        ("er_percent", 0.99, "ER-negative"),
        ("er_percent", 1.0, "ER-low"),
        ("er_percent", 10.0, "ER-low"),
        ("er_percent", 10.01, "ER-positive"),
        ("er_percent", 100.0, "ER-positive"),
        # Allred: 0-2 negative, >= 3 positive, no ER-low band.
        ("er_allred", 2.0, "ER-negative"),
        ("er_allred", 3.0, "ER-positive"),
        # Ligand binding: >= 10 fmol/mg positive.
        ("er_fmol", 9.99, "ER-negative"),
        ("er_fmol", 10.0, "ER-positive"),
        # H-score convention of the app: < 1 negative, 1-30 ER-low, > 30 positive.
        ("er_hscore", 0.0, "ER-negative"),
        ("er_hscore", 1.0, "ER-low"),
        ("er_hscore", 30.0, "ER-low"),
        ("er_hscore", 31.0, "ER-positive"),
    ],
)
def test_er_category_boundaries(measure, value, expected):
    df = pd.DataFrame({measure: [value]})
    got = classify.er_category(df, default_cutpoints(measure))
    assert got.iloc[0] == expected


def test_er_category_is_ordered_with_schema_levels():
    got = classify.er_category(pd.DataFrame({"er_percent": [0.0, 5.0, 50.0]}))
    assert list(got.cat.categories) == list(ER_CATEGORIES)
    assert got.cat.ordered
    assert got.cat.codes.tolist() == [0, 1, 2]
    assert (got < "ER-positive").tolist() == [True, True, False]


def test_er_category_falls_back_to_status_where_measure_missing():
    df = pd.DataFrame(
        {
            "er_percent": [np.nan, np.nan, np.nan, 5.0],
            "er_status": ["positive", "negative", np.nan, "negative"],
        }
    )
    got = classify.er_category(df)
    assert got.tolist()[:2] == ["ER-positive", "ER-negative"]
    assert pd.isna(got.iloc[2])
    assert got.iloc[3] == "ER-low"  # the measure wins over the status where both exist
    source = classify.er_category_source(df)
    assert "ASCO/CAP 2020" in source
    assert "2 patient(s)" in source


def test_er_category_source_says_status_only():
    df = pd.DataFrame({"er_status": ["positive", "negative"]})
    assert "er_status only" in classify.er_category_source(df)
    assert classify.er_category(df).tolist() == ["ER-positive", "ER-negative"]


def test_er_category_without_any_er_information_raises():
    with pytest.raises(AnalysisError, match="ER category needs"):
        classify.er_category(pd.DataFrame({"age": [50]}))


def test_er_category_rejects_text_in_measure():
    with pytest.raises(AnalysisError, match="not numbers"):
        classify.er_category(pd.DataFrame({"er_percent": ["high", "10"]}))


def test_er_category_unchanged_by_row_order():
    df = pd.DataFrame({"er_percent": [0, 1, 10, 11, 50, np.nan], "er_status": [np.nan] * 5 + ["positive"]})
    forward = classify.er_category(df)
    backward = classify.er_category(df.iloc[::-1])
    pd.testing.assert_series_equal(forward, backward.sort_index())


@pytest.mark.parametrize(
    ("cutpoints", "text"),
    [
        (ERCutpoints(), "ER-negative < 1 %, ER-low 1–10 %, ER-positive > 10 % (ASCO/CAP 2020)"),
        (default_cutpoints("er_allred"), "ER-negative < Allred 3, ER-positive >= Allred 3"),
        (default_cutpoints("er_fmol"), "ER-positive >= 10 fmol/mg"),
        (ERCutpoints("er_percent", 1.0, 20.0), "ER-low 1–20 %, ER-positive > 20 %"),
    ],
)
def test_describe_states_the_rule(cutpoints, text):
    assert text in cutpoints.describe()


def test_custom_cutpoints_have_no_default_reference():
    assert "ASCO" not in ERCutpoints("er_percent", 1.0, 20.0).describe()


def test_esr1_default_is_cohort_median_and_needs_values():
    cut = default_cutpoints("esr1_mrna", values=[1.0, 2.0, 3.0, np.nan])
    assert cut.high == 2.0
    assert cut.is_binary
    assert "median" in cut.describe()
    with pytest.raises(AnalysisError, match="cohort median"):
        default_cutpoints("esr1_mrna")
    df = pd.DataFrame({"esr1_mrna": [1.0, 2.0, 3.0]})
    assert classify.er_category(df).tolist() == ["ER-negative", "ER-positive", "ER-positive"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"measure": "er_blood"}, "Unknown ER measure"),
        ({"low": 20.0, "high": 10.0}, "ER-low band is empty"),
        ({"high": float("nan")}, "finite"),
    ],
)
def test_invalid_cutpoints_raise(kwargs, match):
    with pytest.raises(AnalysisError, match=match):
        ERCutpoints(**kwargs)


# -- HER2 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "copies", "group"),
    [
        (2.0, 4.0, 1),
        (1.99, 4.0, 4),
        (2.0, 3.99, 2),
        (1.99, 3.99, 5),
        (1.5, 5.99, 4),
        (1.5, 6.0, 3),
        (5.0, 12.0, 1),
        (np.nan, 5.0, pd.NA),
        (2.5, np.nan, pd.NA),
    ],
)
def test_ish_group_boundaries(ratio, copies, group):
    got = classify.ish_group(pd.Series([ratio]), pd.Series([copies])).iloc[0]
    if group is pd.NA:
        assert pd.isna(got)
    else:
        assert got == group


POS, NEG, NA = "positive", "negative", None


@pytest.mark.parametrize(
    ("ihc", "ratio", "copies", "expected"),
    [
        (3, np.nan, np.nan, POS),  # IHC 3+ is positive whatever ISH says
        (3, 1.2, 2.0, POS),
        (0, np.nan, np.nan, NEG),
        (1, np.nan, np.nan, NEG),
        (1, 2.5, 6.0, NEG),  # IHC 0/1+ is negative; ISH is for IHC 2+
        (2, np.nan, np.nan, NA),  # equivocal without ISH
        (2, 2.0, 4.0, POS),  # group 1
        (2, 2.0, 3.99, NEG),  # group 2
        (2, 1.99, 6.0, POS),  # group 3 with IHC 2+
        (2, 1.99, 5.99, NEG),  # group 4
        (2, 1.99, 4.0, NEG),  # group 4 lower edge
        (2, 1.99, 3.99, NEG),  # group 5
        (np.nan, 2.0, 4.0, POS),  # ISH only: group 1
        (np.nan, 1.5, 3.0, NEG),  # ISH only: group 5
        (np.nan, 2.5, 3.0, NA),  # ISH only: group 2 needs IHC
        (np.nan, 1.5, 7.0, NA),  # ISH only: group 3 needs IHC
        (np.nan, 1.5, 5.0, NA),  # ISH only: group 4 needs IHC
        (np.nan, np.nan, np.nan, NA),
    ],
)
def test_her2_status_asco_cap_2018(ihc, ratio, copies, expected):
    got = classify.her2_status(pd.Series([ihc]), pd.Series([ratio]), pd.Series([copies])).iloc[0]
    if expected is None:
        assert pd.isna(got)
    else:
        assert got == expected


def test_her2_status_reads_plus_notation_and_rejects_bad_scores():
    got = classify.her2_status(pd.Series(["3+", "1+", "0"]))
    assert got.tolist() == [POS, NEG, NEG]
    with pytest.raises(AnalysisError, match="0, 1, 2 or 3"):
        classify.her2_status(pd.Series([4.0]))


@pytest.mark.parametrize(
    ("ihc", "status", "expected"),
    [
        (3, POS, "HER2-positive"),
        (2, POS, "HER2-positive"),
        (np.nan, POS, "HER2-positive"),
        (2, NEG, "HER2-low"),
        (1, NEG, "HER2-low"),
        (0, NEG, "HER2-zero"),
        (1, np.nan, "HER2-low"),  # IHC 1+ decides on its own
        (0, np.nan, "HER2-zero"),
        (3, np.nan, "HER2-positive"),
        (2, np.nan, None),  # equivocal, unresolved
        (np.nan, NEG, None),  # negative but low vs zero unknown
        (3, NEG, None),  # contradictory input
    ],
)
def test_her2_category(ihc, status, expected):
    got = classify.her2_category(pd.Series([ihc]), pd.Series([status], dtype=object)).iloc[0]
    if expected is None:
        assert pd.isna(got)
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("er", "pr", "expected"),
    [
        (POS, POS, POS),
        (POS, NEG, POS),
        (NEG, POS, POS),
        (POS, np.nan, POS),
        (np.nan, POS, POS),
        (NEG, NEG, NEG),
        (NEG, np.nan, None),
        (np.nan, np.nan, None),
    ],
)
def test_hr_status(er, pr, expected):
    got = classify.hr_status(pd.Series([er], dtype=object), pd.Series([pr], dtype=object)).iloc[0]
    if expected is None:
        assert pd.isna(got)
    else:
        assert got == expected


# -- whole cohort -------------------------------------------------------------------------------


def test_classify_cohort_fills_only_missing_values():
    df = pd.DataFrame(
        {
            "er_percent": [0.0, 5.0, 50.0, np.nan],
            "er_status": ["positive", np.nan, np.nan, np.nan],  # row 0 as given by the file
            "pr_percent": [0.0, 0.0, 30.0, np.nan],
            "her2_ihc": [3.0, 2.0, 1.0, np.nan],
            "her2_ish_ratio": [np.nan, 2.4, np.nan, np.nan],
            "her2_copy_number": [np.nan, 5.0, np.nan, np.nan],
            "her2_status": [np.nan, np.nan, np.nan, "positive"],
        }
    )
    out = classify.classify_cohort(df)
    assert out["er_category"].tolist()[:3] == ["ER-negative", "ER-low", "ER-positive"]
    assert out["er_status"].tolist()[:3] == ["positive", "positive", "positive"]  # row 0 kept
    assert pd.isna(out["er_status"].iloc[3])
    assert out["pr_status"].tolist()[:3] == ["negative", "negative", "positive"]
    assert out["her2_status"].tolist() == ["positive", "positive", "negative", "positive"]
    assert out["her2_category"].tolist() == ["HER2-positive", "HER2-positive", "HER2-low", "HER2-positive"]
    assert out["hr_status"].tolist()[:3] == ["positive", "positive", "positive"]
    assert "er_category" not in df.columns  # the input is not modified
    assert out.attrs["er_category_source"].startswith("ER category from ER (% positive nuclei)")


def test_classify_cohort_keeps_provided_category_and_hr():
    df = pd.DataFrame(
        {
            "her2_ihc": [0.0, 1.0],
            "her2_category": ["HER2-low", np.nan],
            "er_status": ["negative", "negative"],
            "pr_status": ["negative", "negative"],
            "hr_status": ["positive", np.nan],
        }
    )
    out = classify.classify_cohort(df)
    assert out["her2_category"].tolist() == ["HER2-low", "HER2-low"]
    assert out["hr_status"].tolist() == ["positive", "negative"]


def test_classify_cohort_without_er_information_adds_empty_category():
    out = classify.classify_cohort(pd.DataFrame({"age": [40.0, 60.0]}))
    assert out["er_category"].isna().all()
    assert "unavailable" in out.attrs["er_category_source"]


def test_classify_cohort_hr_without_pr_uses_er_positive_only():
    out = classify.classify_cohort(pd.DataFrame({"er_percent": [0.0, 50.0]}))
    assert pd.isna(out["hr_status"].iloc[0])  # PR unknown: HR could still be positive
    assert out["hr_status"].iloc[1] == "positive"


def test_classify_cohort_with_user_cutpoints():
    df = pd.DataFrame({"er_percent": [5.0, 15.0, 25.0]})
    out = classify.classify_cohort(df, er_cutpoints=ERCutpoints("er_percent", 1.0, 20.0))
    assert out["er_category"].tolist() == ["ER-low", "ER-low", "ER-positive"]


def test_status_columns_with_pandas_na_are_unknown_not_an_error():
    df = pd.DataFrame(
        {"er_status": ["positive", pd.NA, None, np.nan, "negative"], "pr_status": [pd.NA] * 5}
    )
    out = classify.classify_cohort(df)
    assert out["hr_status"].tolist()[0] == "positive"
    assert out["hr_status"].isna().sum() == 4  # ER-negative with PR unknown is HR unknown
