"""The bad-input corpus: every file gives a CohortError naming the problem, or a Cohort whose
issues name every problem, with all rows kept. Plus property tests: nothing but CohortError
escapes for random bytes or random small tables."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from her2er_dash import cohort
from her2er_dash.errors import CohortError

DATA = Path(__file__).resolve().parent / "data"
BAD = DATA / "bad"
sys.path.insert(0, str(DATA))
import make_bad_inputs as corpus  # noqa: E402

#: file -> message fragment of the CohortError
REFUSED = {
    "empty.csv": "the file is empty",
    "header_only.csv": "column names but no data rows",
    "comments_only.csv": "has no table in it",
    "whitespace_only.csv": "has no table in it",
    "binary_junk.csv": "holds binary data",
    "ragged_rows.csv": "same number of fields",
    "unclosed_quote.csv": "quotes are closed",
    "no_matching_columns.csv": "matches the cohort model",
    "corrupt.xls": "the Excel file could not be read",
    "corrupt.parquet": "the Parquet file could not be read",
    "zip_not_excel.xlsx": "zip archive but not an Excel workbook",
    "geo_without_samples.txt": "GEO file without samples",
}

#: file -> (rows expected in .data, (severity, column, message fragment) that must be reported)
REPORTED = {
    "really_csv.xlsx": (6, ("warning", "", "holds a text table")),
    "mixed_types_age.csv": (6, ("warning", "age", "mixed types")),
    "duplicate_columns.csv": (3, ("warning", "er_status", "appears more than once")),
    "duplicate_ids.csv": (6, ("error", "patient_id", "appear on more than one row")),
    "negative_times.csv": (6, ("error", "os_months", "negative times")),
    "zero_times.csv": (6, ("warning", "os_months", "times of exactly 0")),
    "nan_times.csv": (6, ("info", "os_months", "missing times")),
    "text_times.csv": (6, ("warning", "os_months", "could not be read as a number ('lost')")),
    "infinite_times.csv": (6, ("warning", "os_months", "infinite times")),
    "event_two.csv": (6, ("error", "os_event", "found [2.0]")),
    "event_minus_one.csv": (6, ("error", "os_event", "found [-1.0]")),
    "event_yes_no.csv": (6, ("info", "os_event", "'yes' -> 1.0")),
    "event_dead_alive.csv": (6, ("info", "os_event", "'dead' -> 1.0")),
    "all_censored.csv": (6, ("warning", "os_event", "every patient is censored")),
    "single_group.csv": (6, ("info", "er_status", "comparisons by er_status are not possible")),
    "pcr_all_in_group.csv": (6, ("warning", "pcr", "separation")),
    "one_patient.csv": (1, ("warning", "", "single patient")),
    "unicode_columns.csv": (2, ("info", "her2_status", "recoded")),
    "formula_injection.csv": (6, ("warning", "study", "spreadsheet formula")),
    "html_labels.csv": (6, ("warning", "study", "HTML markup")),
    "latin1.csv": (2, ("info", "", "Windows-1252")),
    "utf16.csv": (6, ("info", "", "UTF-16")),
    "utf8_bom.csv": (6, ("info", "er_status", "recoded")),
    "decimal_comma.csv": (3, ("info", "", "decimal commas")),
    "data_clinical_patient.txt": (2, ("warning", "", "no '#' header rows")),
    "data_clinical_patient_partial.txt": (2, ("warning", "", "has 2 '#' header rows")),
    "status_typos.csv": (6, ("info", "er_status", "'Positve' -> positive")),
    "er_percent_out_of_range.csv": (6, ("error", "er_percent", "outside 0-100")),
    "allred_out_of_range.csv": (6, ("error", "er_allred", "outside 0-8")),
    "hscore_out_of_range.csv": (6, ("error", "er_hscore", "outside 0-300")),
    "her2_ihc_out_of_range.csv": (6, ("error", "her2_ihc", "must be 0, 1, 2 or 3")),
    "her2_ihc3_negative.csv": (6, ("warning", "her2_status", "IHC 3+ but her2_status negative")),
    "her2_ihc0_positive.csv": (6, ("warning", "her2_status", "IHC 0 but her2_status positive")),
    "er_percent_vs_status.csv": (6, ("warning", "er_status", "1 or more but er_status is neg")),
    "age_out_of_range.csv": (6, ("error", "age", "outside 0-120")),
    "pcr_not_binary.csv": (6, ("error", "pcr", "pCR must be 1")),
    "time_without_event.csv": (2, ("warning", "os_months", "os_event is not")),
    "days_times.csv": (6, ("info", "os_months", "read in days")),
    "inverted_rfs.csv": (5, ("warning", "rfs_event", "could be inverted")),
    "renamed_cbioportal.tsv": (2, ("info", "", "lines 1-4 (cBioPortal attribute")),
    "title_and_footnote.csv": (6, ("info", "", "line 1 (title line above the header)")),
    "biotab_extra_header_rows.txt": (2, ("info", "os_months", "Derived: os_months")),
}


def test_corpus_is_complete():
    """Every committed file is in exactly one table, and there are at least 40 of them."""
    files = {p.name for p in BAD.iterdir()}
    assert files == set(REFUSED) | set(REPORTED)
    assert len(files) >= 40


@pytest.mark.parametrize(("name", "fragment"), sorted(REFUSED.items()))
def test_refused_with_a_clear_message(name, fragment):
    with pytest.raises(CohortError, match=re.escape(fragment)) as info:
        cohort.load(BAD / name)
    assert name in str(info.value)


@pytest.mark.parametrize(("name", "expected"), sorted(REPORTED.items()))
def test_reported_and_no_row_dropped(name, expected):
    n_rows, (severity, column, fragment) = expected
    result = cohort.load(BAD / name)
    assert result.n == n_rows == result.source.rows
    hits = result.issues[(result.issues.severity == severity) & (result.issues.column == column)]
    assert hits.message.str.contains(fragment, regex=False).any(), result.issues.to_string()


def test_recoded_values_are_canonical():
    typos = cohort.load(BAD / "status_typos.csv").data.er_status
    assert typos.tolist()[:2] == ["positive", "negative"]
    assert pd.isna(typos[2])
    events = cohort.load(BAD / "event_dead_alive.csv").data.os_event
    assert events.tolist() == [1, 0, 0, 1, 0, 1]
    comma = cohort.load(BAD / "decimal_comma.csv").data
    assert comma.er_percent.tolist() == [45.5, 0.5, 90.0]
    days = cohort.load(BAD / "days_times.csv").data.os_months
    assert days[0] == pytest.approx(380.5 * 12 / 365.25)
    latin = cohort.load(BAD / "latin1.csv").data
    assert latin.study.tolist() == ["Genève", "Zürich"]
    assert latin.er_status.tolist() == ["positive", "negative"]


def test_formula_cells_are_kept_as_text():
    data = cohort.load(BAD / "formula_injection.csv").data
    assert data.study[0] == '=HYPERLINK("http://x")'


# ---- big or binary cases, built in memory ------------------------------------------------


def test_zip_bomb_is_refused():
    with pytest.raises(CohortError, match="zip bomb"):
        cohort.load(corpus.zip_bomb(), name="bomb.xlsx")


def test_gzip_bomb_is_refused():
    with pytest.raises(CohortError, match="would expand"):
        cohort.load(corpus.gzip_bomb(), name="matrix.txt.gz")


def test_skipped_lines_are_never_patients():
    renamed = cohort.load(BAD / "renamed_cbioportal.tsv")
    assert renamed.data.patient_id.tolist() == ["P1", "P2"]
    biotab = cohort.load(BAD / "biotab_extra_header_rows.txt")
    assert biotab.data.patient_id.tolist() == ["TCGA-A1-A0SB", "TCGA-A1-A0SD"]
    assert biotab.data.os_event.tolist() == [0.0, 1.0]
    np.testing.assert_allclose(biotab.data.os_months, np.array([259, 437]) * 12 / 365.25)


def test_ten_megabyte_line_is_refused_quickly():
    with pytest.raises(CohortError, match=r"line 2 is 10\.0 MB long"):
        cohort.load(corpus.long_line(10), name="long.csv")


def test_over_the_upload_limit():
    with pytest.raises(CohortError, match=r"the file is 1\.0 MB; the limit is 0\.5 MB"):
        cohort.load(b"a,b\n" + b"1,2\n" * (256 * 1024), name="big.csv", max_bytes=512 * 1024)


def test_upload_object_over_the_limit_is_refused_before_reading():
    class Upload:
        name, size = "huge.csv", 300 * 1024**2

        def getvalue(self):  # pragma: no cover - must not be called
            raise AssertionError("read despite the size")

    with pytest.raises(CohortError, match="huge.csv: the file is 300.0 MB"):
        cohort.load(Upload())


def test_thirty_sheet_workbook_reads_the_first_sheet_and_says_so():
    result = cohort.load(corpus.many_sheets(30), name="thirty.xlsx")
    assert result.source.sheets == ("S0",)
    assert result.issues.message.str.contains("has 30 sheets with data").any()
    chosen = cohort.load(corpus.many_sheets(30), name="thirty.xlsx", sheet="S7")
    assert chosen.source.sheets == ("S7",)


def test_more_than_fifty_sheets_is_refused():
    with pytest.raises(CohortError, match="51 sheets; the limit is 50"):
        cohort.load(corpus.many_sheets(51), name="many.xlsx")


def test_unknown_sheet_lists_the_sheets():
    with pytest.raises(CohortError, match=r"no sheet 'nope'; its sheets are \['S0', 'S1'\]"):
        cohort.load(corpus.many_sheets(2), name="two.xlsx", sheet="nope")


# ---- properties ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=400))
def test_random_bytes_only_raise_cohort_error(data):
    with contextlib.suppress(CohortError):
        cohort.load(data, name="random.csv")


_cells = st.one_of(st.none(), st.integers(-5, 200), st.floats(allow_nan=True),
                   # a bare CR is a line break to every CSV reader, and pandas does not quote it
                   st.text(st.characters(blacklist_characters="\r", blacklist_categories=("Cs",)),
                           max_size=6),  # lone surrogates cannot be written as UTF-8 at all
                   st.sampled_from(["positive", "Neg", "3+", "1:DECEASED"]))
_names = st.sampled_from(["patient_id", "ER_STATUS", "HER2_IHC", "OS_MONTHS", "OS_STATUS", "pCR",
                          "age", "RFS", "x", "ER%", ""])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_names, min_size=1, max_size=5),
       st.lists(st.lists(_cells, min_size=5, max_size=5), min_size=0, max_size=6),
       st.sampled_from([",", ";", "\t"]))
def test_random_small_tables_load_or_raise_cohort_error(names, rows, sep):
    frame = pd.DataFrame([r[: len(names)] for r in rows], columns=names[: len(names)])
    text = frame.to_csv(index=False, sep=sep)
    try:
        result = cohort.load(text.encode("utf-8"), name="random.csv")
    except CohortError:
        return
    if result.n != len(rows):  # never a silent drop: a line read as a footnote is reported
        skipped = [m for m in result.issues["message"] if "not patients, skipped" in m]
        assert skipped, result.issues


def test_bytes_and_file_like_give_the_same_cohort():
    data = (BAD / "utf16.csv").read_bytes()
    from_bytes = cohort.load(data, name="utf16.csv").data
    from_stream = cohort.load(io.BytesIO(data), name="utf16.csv").data
    pd.testing.assert_frame_equal(from_bytes, from_stream)
    assert np.isfinite(from_bytes.os_months).all()
