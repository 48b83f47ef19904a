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
    assert "2 patients" in source


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

# -- HER2 by ASCO/CAP 2018: every IHC x ISH-group combination ----------------------------------
#
# Wolff AC et al. Human epidermal growth factor receptor 2 testing in breast cancer: ASCO/CAP
# clinical practice guideline focused update. J Clin Oncol 2018;36:2105-22 (confirmed 2023), as
# numbered in the ASCO/CAP guideline summary: Figure 1 (IHC: 3+ positive, 2+ equivocal, 1+ and 0
# negative; IHC 0 includes faint incomplete staining in <= 10 % of cells, the "ultralow"
# pattern), Figure 3 (dual-probe ISH: group 1 "ISH positive", group 5 "ISH negative", groups 2-4
# "additional workup required") and Figures 4-6 (that workup with the concomitant IHC: group 2
# positive only with IHC 3+; group 3 positive with IHC 2+ or 3+, negative with IHC 0/1+; group 4
# positive only with IHC 3+). Rows: IHC score (0.5 = ultralow, >0 <1+; nan = not done).
# Columns: no ISH result, then ISH groups 1-5, each from a representative (ratio, copies).

ISH_GROUPS = {
    None: (np.nan, np.nan),
    1: (2.5, 6.0),  # ratio >= 2.0, copies >= 4.0
    2: (2.2, 3.0),  # ratio >= 2.0, copies < 4.0
    3: (1.5, 7.0),  # ratio < 2.0, copies >= 6.0
    4: (1.5, 5.0),  # ratio < 2.0, copies 4.0-< 6.0
    5: (1.2, 2.5),  # ratio < 2.0, copies < 4.0
}
#            no ISH  G1   G2   G3   G4   G5
HER2_STATUS_TABLE = {
    0.0:    (NEG,   POS, NEG, NEG, NEG, NEG),
    0.5:    (NEG,   POS, NEG, NEG, NEG, NEG),
    1.0:    (NEG,   POS, NEG, NEG, NEG, NEG),
    2.0:    (NA,    POS, NEG, POS, NEG, NEG),
    3.0:    (POS,   POS, POS, POS, POS, NEG),
    np.nan: (NA,    POS, NA,  NA,  NA,  NEG),
}  # fmt: skip
PLUS, LOW, ULTRA, ZERO = "HER2-positive", "HER2-low", "HER2-ultralow", "HER2-zero"
HER2_CATEGORY_TABLE = {
    0.0:    (ZERO,  PLUS, ZERO,  ZERO,  ZERO,  ZERO),
    0.5:    (ULTRA, PLUS, ULTRA, ULTRA, ULTRA, ULTRA),
    1.0:    (LOW,   PLUS, LOW,   LOW,   LOW,   LOW),
    2.0:    (NA,    PLUS, LOW,   PLUS,  LOW,   LOW),
    3.0:    (PLUS,  PLUS, PLUS,  PLUS,  PLUS,  NA),  # IHC 3+ with group 5: discordant
    np.nan: (NA,    PLUS, NA,    NA,    NA,    NA),  # negative, but low vs zero unknown
}  # fmt: skip

GRID = [
    (ihc, group, HER2_STATUS_TABLE[ihc][col], HER2_CATEGORY_TABLE[ihc][col])
    for ihc in HER2_STATUS_TABLE
    for col, group in enumerate(ISH_GROUPS)
]


def _same(got, expected) -> bool:
    return pd.isna(got) if expected is None else got == expected


@pytest.mark.parametrize(("ihc", "group", "status", "category"), GRID)
def test_her2_every_ihc_by_ish_group_combination(ihc, group, status, category):
    ratio, copies = ISH_GROUPS[group]
    if group is not None:
        assert classify.ish_group(pd.Series([ratio]), pd.Series([copies])).iloc[0] == group
    got = classify.her2_status(pd.Series([ihc]), pd.Series([ratio]), pd.Series([copies]))
    assert _same(got.iloc[0], status)
    cat = classify.her2_category(pd.Series([ihc]), got)
    assert _same(cat.iloc[0], category)


def test_her2_grid_through_the_whole_cohort_path():
    """classify_cohort derives the same status and category for the whole grid at once."""
    frame = pd.DataFrame(
        [
            {"her2_ihc": ihc, "her2_ish_ratio": ISH_GROUPS[g][0],
             "her2_copy_number": ISH_GROUPS[g][1]}
            for ihc, g, _, _ in GRID
        ]
    )  # fmt: skip
    out = classify.classify_cohort(frame)
    for row, (_, _, status, category) in zip(out.itertuples(), GRID, strict=True):
        assert _same(row.her2_status, status)
        assert _same(row.her2_category, category)


@pytest.mark.parametrize(
    ("ihc", "ratio", "copies", "expected"),
    [
        (1, 3.0, 8.0, POS),  # the reviewer's case: IHC 1+, ratio 3.0, 8 copies is group 1
        (2, 2.0, 4.0, POS),  # group 1 lower edges
        (2, 2.0, 3.99, NEG),  # group 2
        (2, 1.99, 6.0, POS),  # group 3 with IHC 2+
        (1, 1.99, 6.0, NEG),  # group 3 with IHC 1+
        (2, 1.99, 5.99, NEG),  # group 4
        (3, 1.99, 4.0, POS),  # group 4 lower edge with IHC 3+
        (2, 1.99, 3.99, NEG),  # group 5
    ],
)
def test_her2_status_at_ish_boundaries(ihc, ratio, copies, expected):
    got = classify.her2_status(pd.Series([ihc]), pd.Series([ratio]), pd.Series([copies])).iloc[0]
    assert got == expected


def test_her2_status_reads_plus_notation_and_rejects_bad_scores():
    got = classify.her2_status(pd.Series(["3+", "1+", "0"]))
    assert got.tolist() == [POS, NEG, NEG]
    with pytest.raises(AnalysisError, match="0, 1, 2 or 3"):
        classify.her2_status(pd.Series([4.0]))
    with pytest.raises(AnalysisError, match="0, 1, 2 or 3"):
        classify.her2_status(pd.Series([0.7]))


@pytest.mark.parametrize(
    ("ihc", "status", "expected"),
    [
        (3, POS, "HER2-positive"),
        (2, POS, "HER2-positive"),
        (np.nan, POS, "HER2-positive"),
        (2, NEG, "HER2-low"),
        (1, NEG, "HER2-low"),
        (0, NEG, "HER2-zero"),
        (0.5, NEG, "HER2-ultralow"),
        (0.5, np.nan, "HER2-ultralow"),
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
    # ER status follows the ER level (row 0: 0 % is negative whatever the file said) ...
    assert out["er_status"].tolist()[:3] == ["negative", "positive", "positive"]
    # ... and the file's own call stays available.
    assert out["er_status_recorded"].tolist()[0] == "positive"
    assert pd.isna(out["er_status"].iloc[3])
    assert out["pr_status"].tolist()[:3] == ["negative", "negative", "positive"]
    assert out["her2_status"].tolist() == ["positive", "positive", "negative", "positive"]
    assert out["her2_category"].tolist() == ["HER2-positive", "HER2-positive", "HER2-low", "HER2-positive"]
    assert out["hr_status"].tolist()[:3] == ["negative", "positive", "positive"]
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


# -- one ER definition: category, ER status and HR status move together ------------------------


def _recorded_cohort() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "er_percent": [0.0, 5.0, 5.0, 50.0, np.nan, np.nan],
            "er_status": ["negative", "positive", "positive", "positive", "positive", "negative"],
            "pr_status": ["negative", "negative", np.nan, "negative", "negative", np.nan],
            "hr_status": ["negative", "positive", "positive", "positive", "positive", "positive"],
        }
    )


def test_editing_the_cutpoints_moves_er_status_and_hr_status():
    """The reviewer's case: with ER-negative below 10 %, a tumour at 5 % is ER-negative in
    category, ER status and (PR negative) HR status alike."""
    df = _recorded_cohort()
    out = classify.classify_cohort(df, er_cutpoints=ERCutpoints("er_percent", 10.0, 10.0))
    assert out["er_category"].tolist()[:4] == ["ER-negative", "ER-negative", "ER-negative",
                                               "ER-positive"]  # fmt: skip
    assert out["er_status"].tolist()[:4] == ["negative", "negative", "negative", "positive"]
    # PR negative: HR negative. PR unknown and ER changed: HR cannot be told from the file.
    assert out["hr_status"].iloc[1] == "negative"
    assert pd.isna(out["hr_status"].iloc[2])
    # Without an ER level the recorded statuses stand.
    assert out["er_status"].tolist()[4:] == ["positive", "negative"]
    assert out["hr_status"].tolist()[4:] == ["positive", "positive"]
    # What the file recorded stays available, unchanged.
    assert out["er_status_recorded"].tolist() == df["er_status"].tolist()
    assert out["hr_status_recorded"].tolist() == df["hr_status"].tolist()


def test_classifying_again_starts_from_the_recorded_status():
    """Re-classifying with other cut-points (what the app does on every edit) gives the same
    result as classifying the file directly: derived statuses are never taken as recorded."""
    df = _recorded_cohort()
    strict = ERCutpoints("er_percent", 10.0, 10.0)
    once = classify.classify_cohort(classify.classify_cohort(df), er_cutpoints=strict)
    direct = classify.classify_cohort(df, er_cutpoints=strict)
    for column in ("er_category", "er_status", "hr_status", "er_status_recorded"):
        assert once[column].astype(object).tolist() == direct[column].astype(object).tolist()
    level_only = pd.DataFrame({"er_percent": [5.0, 50.0], "pr_status": ["negative", "negative"]})
    back = classify.classify_cohort(classify.classify_cohort(level_only), er_cutpoints=strict)
    assert back["er_status"].tolist() == ["negative", "positive"]
    assert back["hr_status"].tolist() == ["negative", "positive"]
    assert back["er_status_recorded"].isna().all()


def test_er_low_counts_as_er_positive_status_by_default():
    out = classify.classify_cohort(pd.DataFrame({"er_percent": [0.0, 1.0, 10.0, 11.0]}))
    assert out["er_category"].tolist() == ["ER-negative", "ER-low", "ER-low", "ER-positive"]
    assert out["er_status"].tolist() == ["negative", "positive", "positive", "positive"]


def test_recorded_er_cutoffs_name_each_studys_rule():
    df = pd.DataFrame(
        {
            "study": ["A"] * 4 + ["B"] * 4,
            "er_percent": [0.0, 5.0, 10.0, 80.0, 0.0, 2.0, 30.0, 90.0],
            "er_status": ["negative", "negative", "positive", "positive",
                          "negative", "positive", "positive", "positive"],
        }
    )  # fmt: skip
    table = classify.recorded_er_cutoffs(df).set_index("study")
    assert table.loc["A", "implied_rule"] == "positive from 10 % (negative up to 5 %)"
    assert not table.loc["A", "consistent_with_current"]
    assert table.loc["A", "n_changed"] == 1  # 5 %: negative in the file, ER-low (positive) now
    assert table.loc["B", "implied_rule"] == "positive from 2 % (negative up to 0 %)"
    assert table.loc["B", "consistent_with_current"]
    assert table.loc["B", "n_changed"] == 0
    strict = classify.recorded_er_cutoffs(df, ERCutpoints("er_percent", 10.0, 10.0))
    assert strict.set_index("study").loc["A", "consistent_with_current"]
    assert classify.recorded_er_cutoffs(df.drop(columns="er_status")).empty


def test_status_columns_with_pandas_na_are_unknown_not_an_error():
    df = pd.DataFrame(
        {"er_status": ["positive", pd.NA, None, np.nan, "negative"], "pr_status": [pd.NA] * 5}
    )
    out = classify.classify_cohort(df)
    assert out["hr_status"].tolist()[0] == "positive"
    assert out["hr_status"].isna().sum() == 4  # ER-negative with PR unknown is HR unknown


def test_ish_groups_by_masks_equal_the_asco_cap_decision_tree():
    """Groups 1-5 (ASCO/CAP 2018) on every boundary and missing value, as the nested rule."""
    from her2er_dash.classify import _ish_group_array

    values = np.array([np.nan, 0.0, 1.99, 2.0, 2.01, 3.99, 4.0, 4.01, 5.99, 6.0, 6.01, 12.0])
    ratio, copies = (a.ravel() for a in np.meshgrid(values, values))
    expected = np.where(ratio >= 2.0, np.where(copies >= 4.0, 1.0, 2.0),
                        np.where(copies >= 6.0, 3.0, np.where(copies >= 4.0, 4.0, 5.0)))
    expected[np.isnan(ratio) | np.isnan(copies)] = np.nan
    got = _ish_group_array(ratio, copies)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
