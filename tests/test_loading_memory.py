"""The upload's loading steps that were changed to hold less memory give the cohort of the
straightforward code: same values, dtypes, issues and mapping (benchmarks/README.md, the memory
passes of issue 15). Each test compares the lean path with the row-by-row one it replaced."""

from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd
import pytest

from her2er_dash import cohort, simulate
from her2er_dash.ingest.values import parse_text
from tests.conftest import real_file_bytes


def _same(a: cohort.Cohort, b: cohort.Cohort) -> None:
    pd.testing.assert_frame_equal(a.data, b.data, check_exact=True)
    pd.testing.assert_frame_equal(a.issues, b.issues, check_exact=True)
    assert a.mapping.to_json() == b.mapping.to_json()
    assert a.levels == b.levels
    assert a.unmapped == b.unmapped


CATEGORICAL_CASES = {
    "texts": pd.Categorical(["A", "B", None, "A", "C"]),
    "padded": pd.Categorical([" A", "B ", "A", None, " A"]),
    "unused categories": pd.Categorical(["x", "y", "x"], categories=["x", "y", " z ", "7.0"]),
    "whole floats": pd.Categorical([7.0, 8.0, np.nan, 7.0]),
    "fractional floats": pd.Categorical([7.5, 8.0, 7.5]),
    "integers": pd.Categorical([3, 1, 3, 2]),
    "all missing": pd.Categorical([None, None], categories=["a"]),
    "empty": pd.Categorical([], categories=["a"]),
    "ordered": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True),
}


@pytest.mark.parametrize("case", list(CATEGORICAL_CASES))
def test_a_categorical_is_parsed_as_its_values_row_by_row(case):
    """parse_text reads a categorical through its categories: the values equal parsing the same
    column as plain objects (what it did before), missing stays NaN, and no row moves."""
    values = pd.Series(CATEGORICAL_CASES[case], index=pd.RangeIndex(10, 10 + len(
        CATEGORICAL_CASES[case])))
    lean = parse_text(values)
    rowwise = parse_text(values.astype(object))
    pd.testing.assert_series_equal(lean.values, rowwise.values, check_exact=True)
    assert lean.values.dtype == object
    assert np.array_equal(lean.failed, rowwise.failed)
    # one string object per category, not one per row
    texts = [v for v in lean.values if isinstance(v, str)]
    assert len({id(v) for v in texts}) == len(set(texts))


def _with_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every categorical column as plain objects (a CSV's or an old reader's)."""
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype(object)
    return out


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_dictionary_columns_of_a_synthetic_upload_give_the_same_cohort():
    """A 20k-patient synthetic Parquet upload (study, arm, grade ... dictionary-encoded, read as
    categoricals) gives the cohort of the same file with those columns as plain text."""
    trial = simulate.trial(20_000, seed=3, n_studies=8)
    assert isinstance(trial["study"].dtype, pd.CategoricalDtype)
    lean = cohort.build_cohort(cohort.read_source(_parquet(trial), name="t.parquet"), None)
    plain = cohort.build_cohort(
        cohort.read_source(_parquet(_with_text_columns(trial)), name="t.parquet"), None)
    assert lean.n == plain.n == 20_000
    _same(lean, plain)


def test_dictionary_columns_of_a_real_file_give_the_same_cohort():
    """The I-SPY 2 clinical file (GSE194040) with its text columns stored as categories (as a
    Parquet export with dictionary encoding has them) maps to the cohort of the file as read."""
    raw = cohort.read_source(real_file_bytes("ispy2/ispy2_clinical_GSE194040.csv"),
                             name="ispy2.csv")
    as_categories = raw.frame.copy()
    for name in as_categories.columns:
        if as_categories[name].dtype == object:
            as_categories[name] = as_categories[name].astype("category")
    categorical_raw = cohort.read_source(_parquet(as_categories), name="ispy2.csv")
    assert any(isinstance(t, pd.CategoricalDtype) for t in categorical_raw.frame.dtypes)
    plain = cohort.build_cohort(raw, None)
    lean = cohort.build_cohort(categorical_raw, None)
    pd.testing.assert_frame_equal(lean.data, plain.data, check_exact=True)
    assert lean.mapping.to_json() == plain.mapping.to_json()


# --------------------------------------------------------------------------------------------
# The memory settings a plain `streamlit run` applies itself (ui.process)
# --------------------------------------------------------------------------------------------


class _FakeGlibc:
    def __init__(self, accepts: bool = True):
        self.calls: list[tuple[int, int]] = []
        self.accepts = accepts

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append((parameter, value))
        return 1 if self.accepts else 0


@pytest.fixture
def arrow_pool():
    """pyarrow, its default pool set to mimalloc for the test and restored after it."""
    import pyarrow as pa

    import ui.process  # noqa: F401  first import of `ui` applies the settings: before the reset

    before = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())
    except NotImplementedError:
        pytest.skip("this pyarrow build has no mimalloc pool to start from")
    yield pa
    pa.set_memory_pool(before)


def test_a_plain_streamlit_run_gets_the_launchers_memory_settings(arrow_pool):
    from her2er_dash.cli import app_environment
    from ui import process

    libc = _FakeGlibc()
    done = process.apply_memory_settings({}, libc)
    assert libc.calls == [(process.M_MMAP_THRESHOLD, 1024**2), (process.M_TRIM_THRESHOLD, 32 * 1024**2)]
    assert arrow_pool.default_memory_pool().backend_name == "system"
    # the same values the launcher puts in the environment
    wanted = app_environment({})
    assert done == {k: wanted[k] for k in (process.THRESHOLD_ENV, process.TRIM_ENV, process.POOL_ENV)}


def test_settings_the_environment_makes_are_left_alone(arrow_pool):
    from ui import process

    libc = _FakeGlibc()
    launched = {process.THRESHOLD_ENV: "1048576", process.TRIM_ENV: "33554432",
                process.POOL_ENV: "mimalloc"}
    assert process.apply_memory_settings(launched, libc) == {}
    assert libc.calls == []
    assert arrow_pool.default_memory_pool().backend_name == "mimalloc"


def test_a_fixed_mmap_threshold_gets_the_trim_threshold_that_goes_with_it(arrow_pool):
    """An environment that fixes only the mmap threshold (an operator's own start script) leaves
    glibc's trim threshold at 128 KB, where every Newton step re-faults its arrays: it is set."""
    from ui import process

    libc = _FakeGlibc()
    done = process.apply_memory_settings({process.THRESHOLD_ENV: "1048576"}, libc)
    assert libc.calls == [(process.M_TRIM_THRESHOLD, 32 * 1024**2)]
    assert done[process.TRIM_ENV] == str(32 * 1024**2)


def test_an_operator_can_keep_the_libraries_defaults(arrow_pool):
    from ui import process

    libc = _FakeGlibc()
    assert process.apply_memory_settings({process.SETTINGS_ENV: "0"}, libc) == {}
    assert libc.calls == []
    assert arrow_pool.default_memory_pool().backend_name == "mimalloc"


@pytest.mark.parametrize("libc", [False, _FakeGlibc(accepts=False)], ids=["not glibc", "refused"])
def test_without_the_mmap_threshold_arrow_keeps_its_own_pool(arrow_pool, libc):
    """The system pool is worse than mimalloc when glibc's heap keeps freed columns, so it is
    only chosen together with the threshold (another C library: nothing is changed)."""
    from ui import process

    assert process.apply_memory_settings({}, libc) == {}
    assert arrow_pool.default_memory_pool().backend_name == "mimalloc"


# --------------------------------------------------------------------------------------------
# The freeze of the objects alive at the app's first import (ui.process.freeze_startup_objects)
# --------------------------------------------------------------------------------------------

_FREEZE_PROBE = """
import gc, json
import ui
from ui import process
at_import = gc.get_freeze_count()
again = process.freeze_startup_objects()
session_data = [[i] for i in range(10)]  # made after the import, as a session's data is


def collectable(obj):  # in one of the collector's generations (a frozen object is in none)
    return any(o is obj for g in (0, 1, 2) for o in gc.get_objects(generation=g))


print(json.dumps({"at_import": at_import, "again": again, "count_after": gc.get_freeze_count(),
                  "module_collectable": collectable(process.__dict__),
                  "session_collectable": collectable(session_data)}))
"""


def _freeze_probe(env: dict[str, str]) -> dict:
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", _FREEZE_PROBE], cwd=root, capture_output=True,
                          text=True, check=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root), **env})
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_first_import_freezes_what_is_alive_once_and_nothing_made_later():
    from ui import process

    probe = _freeze_probe({process.FREEZE_ENV: "1"})
    assert probe["at_import"] > 10_000  # the imported modules (pandas, plotly, Streamlit, ours)
    assert probe["again"] == 0  # once per process: a second call cannot freeze session data
    assert probe["count_after"] == probe["at_import"]
    assert not probe["module_collectable"]
    assert probe["session_collectable"]


def test_the_startup_freeze_can_be_turned_off():
    from ui import process

    probe = _freeze_probe({process.FREEZE_ENV: "0"})
    assert probe["at_import"] == 0
    assert probe["count_after"] == 0
    assert probe["module_collectable"]
    assert probe["session_collectable"]
