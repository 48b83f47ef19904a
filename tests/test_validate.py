"""The validation report and Table 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import cohort
from her2er_dash.errors import AnalysisError
from her2er_dash.summary import reverse_km_median, table_one
from her2er_dash.validate import ISSUE_COLUMNS, validate_cohort


def _report(**columns) -> pd.DataFrame:
    return validate_cohort(pd.DataFrame(columns))


def _find(report: pd.DataFrame, column: str, fragment: str) -> pd.Series:
    hits = report[(report.column == column) & report.message.str.contains(fragment, regex=False)]
    assert len(hits) == 1, report.to_string()
    return hits.iloc[0]


def test_report_shape_and_order():
    report = _report(patient_id=["a", "b"], age=[50, 130], os_months=[1.0, np.nan],
                     os_event=[1, 0])
    assert tuple(report.columns) == ISSUE_COLUMNS
    assert report.severity.tolist() == sorted(report.severity, key=["error", "warning",
                                                                    "info"].index)


def test_rows_are_first_five_one_based():
    report = _report(patient_id=list("abcdefgh"), age=[200, 1, 200, 200, 200, 200, 200, 2])
    row = _find(report, "age", "outside 0-120")
    assert row["count"] == 6
    assert row["rows"] == "1, 3, 4, 5, 6"


def test_duplicate_ids_and_contradictions():
    report = _report(patient_id=["a", "a", "b"], her2_ihc=[3, 0, 1],
                     her2_status=["negative", "positive", "negative"],
                     er_percent=[50, 0.5, 0], er_status=["negative", "negative", "positive"])
    assert _find(report, "patient_id", "more than one row")["rows"] == "1, 2"
    assert _find(report, "her2_status", "IHC 3+")["rows"] == "1"
    assert _find(report, "her2_status", "IHC 0")["rows"] == "2"
    assert _find(report, "er_status", "1 or more")["rows"] == "1"  # 0.5 % is ER-negative
    assert _find(report, "er_status", "below 1")["rows"] == "3"


def test_ish_ratio_explains_ihc0_positive():
    report = _report(her2_ihc=[0], her2_status=["positive"], her2_ish_ratio=[2.5])
    assert not report.message.str.contains("IHC 0").any()


def test_endpoint_checks():
    report = _report(os_months=[-1, 0, np.inf, np.nan, 5], os_event=[0, 0, 0, 0, 0],
                     rfs_months=[1, 2, 3, 4, 5])
    assert _find(report, "os_months", "negative")["severity"] == "error"
    assert _find(report, "os_months", "exactly 0")["count"] == 1
    assert _find(report, "os_months", "infinite")["rows"] == "3"
    assert _find(report, "os_event", "every patient is censored")["severity"] == "warning"
    assert _find(report, "rfs_months", "rfs_event is not")["severity"] == "warning"


def test_clean_cohort_has_no_errors_or_warnings():
    report = _report(patient_id=["a", "b", "c", "d"], er_status=["positive", "negative"] * 2,
                     her2_status=["positive"] * 4, pcr=[1, 0, 0, 1],
                     os_months=[1.0, 2, 3, 4], os_event=[1, 0, 1, 0])
    assert set(report.severity) <= {"info"}


def test_validation_does_not_depend_on_row_order():
    frame = pd.DataFrame({"patient_id": list("abcdef"), "age": [50, 130, 40, 150, 60, 70],
                          "os_months": [1, -2, 3, 4, 5, 6.0], "os_event": [1, 0, 2, 0, 1, 0]})
    a = validate_cohort(frame)
    b = validate_cohort(frame.iloc[::-1].reset_index(drop=True))
    pd.testing.assert_frame_equal(a.drop(columns="rows"), b.drop(columns="rows"))


# ---- Table 1 ------------------------------------------------------------------------------


@pytest.fixture
def small() -> pd.DataFrame:
    return pd.DataFrame({
        "patient_id": list("abcdefg"),
        "er_status": ["positive", "positive", "negative", "negative", "negative", None,
                      "positive"],
        "her2_status": ["positive"] * 7,
        "age": [40, 50, 60, 70, 80, 55, 45],
        "pcr": [1, 0, 1, 1, np.nan, 0, 0],
        "grade": ["3", "2", "3", None, "3", "2", "1"],
        "os_months": [10, 20, 30, 40, 50, 60, 70.0],
        "os_event": [1, 0, 0, 1, 0, 0, 1],
    })


def test_table_one_counts(small):
    table = table_one(small, by=("er_status", "her2_status")).set_index(["variable", "level"])
    assert list(table.columns) == ["negative / positive", "positive / positive",
                                   "Missing group", "All"]
    assert table.loc[("n", ""), "All"] == "7"
    assert table.loc[("n", ""), "negative / positive"] == "3"
    assert table.loc[("Age, median [IQR]", ""), "negative / positive"] == "70 [65-75]"
    assert table.loc[("pCR", "available"), "negative / positive"] == "2 (67%)"
    assert table.loc[("pCR", "rate"), "negative / positive"] == "2 (100%)"
    assert table.loc[("Grade", "missing"), "negative / positive"] == "1 (33%)"
    assert table.loc[("Overall survival", "events"), "All"] == "3"
    exclusions = table_one(small, by="er_status").attrs["exclusions"]
    assert (exclusions.n_input, exclusions.n_used) == (7, 6)


def test_table_one_needs_data_and_columns(small):
    with pytest.raises(AnalysisError, match="no column 'er_category'"):
        table_one(small)
    with pytest.raises(AnalysisError, match="empty"):
        table_one(small.iloc[:0], by="er_status")


def test_reverse_km_median_follow_up():
    # censoring times 20, 30, 50, 60 among 7 (events at 10, 40, 70): reverse KM drops below
    # 0.5 at 50: S = (1 - 1/6)(1 - 1/5)(1 - 1/3) = 0.444
    time = np.array([10, 20, 30, 40, 50, 60, 70.0])
    event = np.array([1, 0, 0, 1, 0, 0, 1.0])
    assert reverse_km_median(time, event) == 50.0


def test_table_one_on_a_loaded_cohort_uses_er_category():
    data = cohort.from_frame(pd.DataFrame({"id": ["a", "b", "c"], "ER%": [0, 5, 80],
                                           "HER2_STATUS": ["pos", "pos", "neg"]})).data
    table = table_one(data)
    assert {"ER-negative / positive", "ER-low / positive", "ER-positive / negative"} <= set(
        table.columns)


@pytest.mark.parametrize("dtype", [object, pd.StringDtype(), pd.StringDtype("pyarrow"), "category"])
def test_text_checks_do_not_depend_on_the_dtype(dtype):
    """pandas 3 reads text as the "str" dtype: formula and HTML checks must still run."""
    report = validate_cohort(pd.DataFrame({
        "patient_id": ["a", "b", "c"],
        "study": pd.Series(['=HYPERLINK("http://x")', "<script>alert(1)</script>", "S1"],
                           dtype=dtype),
    }))
    assert _find(report, "study", "spreadsheet formula")["rows"] == "1"
    assert _find(report, "study", "HTML markup")["rows"] == "2"


def test_text_checks_with_pandas_3_string_inference():
    with pd.option_context("future.infer_string", True):
        frame = pd.DataFrame({"patient_id": ["a", "b"], "arm": ["@SUM(1)", "<b>x</b>"]})
        assert str(frame["arm"].dtype) in ("str", "string")  # pandas 3 / pandas 2 with the option
        report = validate_cohort(frame)
    assert _find(report, "arm", "spreadsheet formula")["rows"] == "1"
    assert _find(report, "arm", "HTML markup")["rows"] == "2"


@pytest.mark.parametrize("dtype", [object, pd.StringDtype(), pd.StringDtype("pyarrow")])
def test_patient_ids_are_checked_cell_by_cell_with_the_same_result(dtype):
    """Patient IDs (one per patient) are checked without finding their distinct values first
    (a hash table of 1M IDs for nothing); the masks equal those of the distinct-value path."""
    from her2er_dash.validate import _text_masks

    ids = pd.Series(["=cmd|' /C calc'!A0", "P2", "<img src=x>", None, "-12", "+3.5e2", "@x",
                     "\tq", "P2", "- 1"], dtype=dtype)
    cell = _text_masks(ids, distinct=True)
    distinct = _text_masks(ids)
    for a, b in zip(cell, distinct, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype == bool
    np.testing.assert_array_equal(np.flatnonzero(cell[0]), [0, 6, 7, 9])
    np.testing.assert_array_equal(np.flatnonzero(cell[1]), [2])
    mixed = pd.Series([1, "=a", 2.5, None, "<p>", np.nan], dtype=object)
    for a, b in zip(_text_masks(mixed, distinct=True), _text_masks(mixed), strict=True):
        np.testing.assert_array_equal(a, b)
    report = validate_cohort(pd.DataFrame({"patient_id": ids.fillna("P0"), "study": "S1"}))
    assert _find(report, "patient_id", "spreadsheet formula")["rows"] == "1, 7, 8, 10"
    assert _find(report, "patient_id", "HTML markup")["rows"] == "3"
