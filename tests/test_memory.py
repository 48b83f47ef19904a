"""Memory footprint of uploads: estimates from headers, the budget's refusal, compaction."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from her2er_dash import memory, simulate
from her2er_dash.errors import CohortError


@pytest.fixture(scope="module")
def trial():
    return simulate.trial(3000, seed=2)


def test_estimates_read_the_shape_of_parquet_and_csv(trial):
    buffer = io.BytesIO()
    trial.to_parquet(buffer, index=False)
    parquet = memory.estimate_upload(buffer.getvalue(), "t.parquet")
    text = memory.estimate_upload(trial.to_csv(index=False).encode(), "t.csv")
    for estimate in (parquet, text):
        assert (estimate.rows, estimate.columns) == trial.shape
        assert estimate.bytes >= estimate.file_bytes + trial.size * memory.BYTES_PER_VALUE


def test_a_csv_without_final_newline_counts_every_row():
    data = b"id,er_percent\n1,5\n2,90"
    assert memory.estimate_upload(data, "x.csv").rows == 2


def test_an_upload_over_budget_is_refused_naming_file_size_budget_and_fix(trial):
    estimate = memory.estimate_upload(trial.to_csv(index=False).encode(), "big.csv")
    memory.check_budget([estimate], None)  # no budget configured: no limit
    memory.check_budget([estimate], estimate.bytes)
    with pytest.raises(CohortError) as info:
        memory.check_budget([estimate], estimate.bytes // 2)
    message = str(info.value)
    assert "big.csv" in message
    assert "3,000 rows" in message
    assert memory.mb_text(estimate.bytes) in message
    assert f"{memory.mb_text(estimate.bytes // 2)} per upload" in message
    assert "data folder" in message
    assert "Fix:" in message


def test_compaction_keeps_values_and_shrinks_repeated_texts():
    rng = np.random.default_rng(0)
    n = 20_000
    frame = pd.DataFrame({
        "patient_id": [f"P{i}" if i != 7 else None for i in range(n)],
        "study": rng.choice(["B", "A", "C"], n).astype(object),
        "grade": pd.Series(rng.choice(["G1", "G2", None], n), dtype=object),
        "age": rng.normal(50, 10, n),
    })
    frame.attrs["note"] = "kept"
    small = memory.compact_frame(frame)
    assert str(small["patient_id"].dtype) == "string[pyarrow]"  # identifiers: one text buffer
    assert small["patient_id"].memory_usage(deep=True) < 0.5 * frame["patient_id"].memory_usage(deep=True)
    assert list(small["study"].cat.categories) == ["A", "B", "C"]
    for column in frame.columns:
        assert small[column].astype(object).where(small[column].notna(), None).tolist() == \
            frame[column].where(frame[column].notna(), None).tolist()
    assert small.attrs == {"note": "kept"}
    assert small.memory_usage(deep=True).sum() < 0.7 * frame.memory_usage(deep=True).sum()


def _counted_copies(frame: pd.DataFrame):
    """``make(i)``: a fresh copy of ``frame``, with ``i`` appended to ``calls`` (what was computed)."""
    calls: list[int] = []

    def make(i: int) -> pd.DataFrame:
        calls.append(i)
        return frame.copy()

    return calls, make


def test_the_apps_frame_cache_is_bounded_by_bytes_not_entries():
    import ui

    frame = pd.DataFrame({"x": np.zeros(1000)})  # 8,000 bytes of values
    size = ui.cohorts._frame_bytes(frame)
    cache = ui.FrameCache(budget=int(2.5 * size))
    calls, make = _counted_copies(frame)
    for i in range(3):
        cache.get(("k", i), lambda i=i: make(i))
    assert cache.nbytes <= cache.budget
    cache.get(("k", 2), lambda: make(99))  # most recent: still cached
    cache.get(("k", 0), lambda: make(0))  # least recent: evicted, computed again
    assert calls == [0, 1, 2, 0]
    big = pd.DataFrame({"x": np.zeros(10_000)})
    assert cache.get(("big",), lambda: big) is big  # larger than the budget: not kept
    assert cache.nbytes <= cache.budget


def test_the_frame_cache_counts_only_the_memory_an_entry_adds_to_its_base():
    import ui
    from her2er_dash.filters import CohortFilter

    overhead = ui.cohorts.COLUMN_OVERHEAD
    cohort = memory.compact_frame(simulate.trial(4000, seed=3))
    classified = CohortFilter().classify(cohort)  # shares every loaded column with the cohort
    added = [c for c in classified.columns
             if c not in cohort.columns or not ui.cohorts._shares_buffer(classified[c], cohort[c])]
    assert 0 < len(added) < len(cohort.columns) // 2
    assert isinstance(cohort["patient_id"].dtype, pd.ArrowDtype)
    assert "patient_id" not in added  # the Arrow buffers of the IDs are shared too
    sizes = classified.memory_usage(index=True, deep=False)
    around = overhead * classified.shape[1]  # the pandas objects of every column
    assert ui.cohorts._frame_bytes(classified, cohort) == int(sizes[["Index", *added]].sum()) + around
    assert ui.cohorts._frame_bytes(classified) == int(sizes.sum()) + around  # no base: all count
    selected = CohortFilter(her2_status=("positive",)).select(classified)  # a copy of its rows
    assert ui.cohorts._frame_bytes(selected, cohort) == ui.cohorts._frame_bytes(selected)
    cache = ui.FrameCache(budget=ui.cohorts._frame_bytes(classified, cohort) + 1)
    assert cache.get(("classified",), lambda: classified, cohort) is classified
    assert cache.get(("classified",), lambda: None, cohort) is classified  # kept: it fits
    assert cache.nbytes == ui.cohorts._frame_bytes(classified, cohort)


def test_the_frame_cache_overhead_is_what_a_small_frame_really_allocates():
    """The per-column allowance is measured, not guessed: a small selection's allocation
    (tracemalloc) is within 40 % of what the cache counts for it, and more than its values."""
    import tracemalloc

    import ui
    from her2er_dash.filters import CohortFilter

    cohort = memory.compact_frame(simulate.trial(2000, seed=5))
    classified = CohortFilter().classify(cohort)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        selected = CohortFilter(her2_status=("positive",), t_stage=("T1",)).select(classified).data
        allocated = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    counted = ui.cohorts._frame_bytes(selected, cohort)
    values = counted - ui.cohorts.COLUMN_OVERHEAD * selected.shape[1]
    assert values < allocated
    assert 0.6 * allocated <= counted <= 1.4 * allocated, (allocated, counted)


def test_the_frame_cache_drops_what_no_session_asked_for_within_its_idle_time():
    import ui

    now = [0.0]
    released = []
    frame = pd.DataFrame({"x": np.zeros(1000)})
    size = ui.cohorts._frame_bytes(frame)
    cache = ui.FrameCache(budget=10 * size, idle_seconds=60, clock=lambda: now[0],
                          release=lambda: released.append(now[0]), release_bytes=2 * size)
    calls, make = _counted_copies(frame)
    for i in range(3):
        cache.get(("k", i), lambda i=i: make(i))
    now[0] = 50.0
    cache.get(("k", 2), lambda: make(99))  # asked for again: its idle time starts over
    now[0] = 100.0  # k0 and k1 idle for 100 s, k2 for 50 s
    cache.get(("other",), lambda: make(3))
    assert [key for key, _ in cache.entries()] == [("k", 2), ("other",)]
    assert cache.nbytes == 2 * size
    assert released == [100.0]  # two entries' worth freed: memory handed back once
    now[0] = 150.0  # k2 (last asked for at 50) expires alone: not yet enough to hand back
    cache.get(("other",), lambda: make(99))
    assert released == [100.0]
    assert calls == [0, 1, 2, 3]
    now[0] = 250.0  # "other" expires too: two entries since the last hand-back
    assert cache.get(("k", 2), lambda: make(4)) is not None  # expired: computed again
    assert calls == [0, 1, 2, 3, 4]
    assert released == [100.0, 250.0]
    assert len(cache) == 1


def test_sessions_asking_for_the_same_missing_frame_at_once_share_one_computation():
    import threading

    import ui

    cache = ui.FrameCache(budget=10**8)
    started, release = threading.Event(), threading.Event()
    calls, got = [], []

    def slow():
        calls.append(1)
        started.set()
        assert release.wait(10)
        return pd.DataFrame({"x": np.zeros(10)})

    first = threading.Thread(target=lambda: got.append(cache.get(("k",), slow)))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=lambda: got.append(cache.get(("k",), slow)))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waiting for the first session's result, not computing its own
    release.set()
    first.join(10)
    second.join(10)
    assert calls == [1]
    assert got[0] is got[1]
    assert cache._key_locks == {}  # nothing left behind once both are served
    with pytest.raises(ZeroDivisionError):  # a failure reaches the session and frees the key
        cache.get(("bad",), lambda: 1 / 0)
    assert cache._key_locks == {}


def test_cached_results_are_copies_counted_by_their_pickled_bytes(monkeypatch):
    """The analyses' cache returns each session its own copy (as st.cache_data) and counts each
    entry by its pickled length under the frame cache's budget."""
    import pickle

    import ui

    cache = ui.FrameCache(budget=10**8)
    monkeypatch.setattr(ui.cohorts, "FRAME_CACHE", cache)
    calls = []

    @ui.cohorts._copies("test")
    def analysis(token, options, _data):
        calls.append(token)
        return {"table": _data.assign(y=_data["x"] * 2), "options": options}

    data = pd.DataFrame({"x": np.arange(5.0)})
    first = analysis("t", {"by": ["a"]}, data)
    second = analysis("t", {"by": ["a"]}, data.iloc[:0])  # `_data` is not part of the key
    assert calls == ["t"]
    assert first is not second
    assert first["table"] is not second["table"]
    pd.testing.assert_frame_equal(first["table"], second["table"])
    first["table"].loc[0, "y"] = -1.0  # a session changing its copy changes nobody else's
    assert analysis("t", {"by": ["a"]}, data)["table"].loc[0, "y"] == 0.0
    analysis("t", {"by": ["b"]}, data)  # other options: another entry
    assert calls == ["t", "t"]
    blobs = [value for _, value in cache.entries()]
    assert cache.nbytes == sum(len(b) for b in blobs)
    assert pickle.loads(blobs[0])["options"] == {"by": ["a"]}


def test_arrow_tables_and_csv_payloads_of_results_share_the_budget_and_skip_large_ones(monkeypatch):
    """The tables drawn from cached results (their Arrow form and CSV download) are entries of
    the one frame cache, counted by their buffers and bytes; one larger than
    ``CSV_CACHE_ITEM_BYTES`` is returned but not kept."""
    import pyarrow as pa

    import ui

    cache = ui.FrameCache(budget=10**8)
    monkeypatch.setattr(ui.render, "FRAME_CACHE", cache)
    table = ui.known_as(pd.DataFrame({"group": ["a", "b"], "n": [3, 4]}), ("result", 1))
    shown = ui.shown_table(table)
    payload = ui.csv_payload(table, banner=None)
    assert isinstance(shown, pa.Table)
    assert ui.shown_table(table) is shown  # from the cache
    assert ui.csv_payload(table, banner=None) is payload
    assert len(cache) == 2
    assert cache.nbytes == shown.nbytes + ui.cohorts.COLUMN_OVERHEAD * 2 + len(payload)
    monkeypatch.setattr(ui.render, "CSV_CACHE_ITEM_BYTES", len(payload) - 1)
    wide = ui.known_as(pd.DataFrame({"group": ["a", "b"], "n": [3, 4]}), ("result", 2))
    assert ui.csv_payload(wide, banner=None) == payload  # the same text, not kept
    assert len(cache) == 2  # larger than the largest kept


def test_freed_memory_goes_back_only_through_glibc():
    from ui import process

    class Trimmed:
        calls = 0

        def malloc_trim(self, pad):
            Trimmed.calls += 1
            return 1

    assert process.return_free_memory(Trimmed()) is True
    assert Trimmed.calls == 1
    assert process.return_free_memory(False) is False  # another C library: nothing to call


def test_the_app_benchmark_reports_each_stage_peak_and_the_largest_overall():
    import numpy as np

    from benchmarks.app_pages import Peaks, _status_mb

    peaks = Peaks()
    peaks.stage()
    block = np.ones(40 * 1024**2 // 8)  # 40 MB touched
    del block
    first = peaks.stage()
    second = peaks.stage()
    assert first >= second  # a stage's peak includes what it allocated and freed
    assert peaks.overall >= first
    assert peaks.overall >= _status_mb("VmRSS")


@pytest.mark.parametrize("truncate", [None, (0.01, 0.99)])
def test_an_iptw_result_without_per_patient_values_keeps_every_table_and_the_weight_range(
        trial, truncate):
    """The app caches the IPTW result without each patient's weight, propensity and exposure
    (``per_patient=False``); every table is the same to the bit, and the weight range the page
    states (the summary's min and max) is the range of the per-patient weights."""
    from her2er_dash import survival as sv

    args = (trial, "efs_months", "efs_event", "her2_status", ["age", "grade", "t_stage"])
    full = sv.iptw_kaplan_meier(*args, truncate=truncate)
    lean = sv.iptw_kaplan_meier(*args, truncate=truncate, per_patient=False)
    assert len(full.weights.weights) > 2000
    assert lean.weights.weights is None
    assert lean.weights.propensity is None
    assert lean.weights.exposed is None
    for name in ("table", "rmst", "rmst_difference"):
        pd.testing.assert_frame_equal(getattr(full, name), getattr(lean, name), check_exact=True)
    for name in ("model", "balance", "summary"):
        pd.testing.assert_frame_equal(getattr(full.weights, name), getattr(lean.weights, name),
                                      check_exact=True)
    assert (full.tau, full.weights.truncation) == (lean.tau, lean.weights.truncation)
    summary = lean.weights.summary
    assert summary["min"].min() == full.weights.weights.min()
    assert summary["max"].max() == full.weights.weights.max()
    alone = sv.propensity_weights(trial.dropna(subset=["efs_months", "efs_event"]), "her2_status",
                                  ["age", "grade", "t_stage"], per_patient=False)
    assert alone.weights is None


def _texts_per_row(values: pd.Series) -> pd.Series:
    return values.astype(str)  # one string per row: the reference the codes must reproduce


@pytest.mark.parametrize("kind", ["categorical", "object", "float", "Int64", "arrow"])
def test_per_study_summaries_through_codes_equal_those_of_one_text_per_row(kind):
    """evidence.study_table's patients, pCR definitions and shares read each patient's study and
    level as text through codes (no string per patient); the numbers equal those from
    ``astype(str)`` row by row, missing values included."""
    from her2er_dash import evidence
    from her2er_dash._data import text_codes

    rng = np.random.default_rng(4)
    n = 3000
    study = rng.choice([1.0, 2.0, 3.0, np.nan], n)
    arm = pd.Series(rng.choice(["A", "B", None], n), dtype=object)
    definition = pd.Series(rng.choice(["ypT0/is ypN0", "ypT0 ypN0", None], n), dtype=object)
    definition[study == 3.0] = "ypT0/is ypN0"
    study = {"categorical": pd.Series(pd.Categorical(study, categories=[3.0, 1.0, 2.0, 9.0])),
             "object": pd.Series([None if np.isnan(s) else f"S{s:g}" for s in study], dtype=object),
             "float": pd.Series(study),
             "Int64": pd.Series(study).astype("Int64"),
             "arrow": pd.Series([None if np.isnan(s) else f"S{s:g}" for s in study],
                                dtype="string[pyarrow]")}[kind]
    df = pd.DataFrame({"study": study, "arm": arm, "pcr_definition": definition})

    texts = _texts_per_row(df["study"])
    hit = _texts_per_row(df["arm"]).eq("A") & df["arm"].notna()
    sums = pd.DataFrame({"study": texts, "hit": hit, "known": df["arm"].notna()}).groupby(
        "study")[["hit", "known"]].sum()
    share = (sums["hit"] / sums["known"].where(sums["known"] > 0)).astype(float)
    new_share = evidence._share_by_study(df, "study", "arm", "A")
    pd.testing.assert_series_equal(new_share.loc[share.index], share, check_names=False,
                                   check_exact=True)
    assert new_share.drop(share.index).isna().all()  # only categories no patient has

    frame = pd.DataFrame({"study": texts, "d": df["pcr_definition"]}).dropna()
    frame["d"] = frame["d"].astype(str)
    definitions = frame.groupby("study")["d"].agg(lambda v: v.iloc[0] if v.nunique() == 1 else "mixed")
    pd.testing.assert_series_equal(evidence._definitions_by_study(df, "study"), definitions,
                                   check_names=False)

    counts = texts.value_counts()
    patients = evidence._rows_per_text(*text_codes(df["study"]))
    pd.testing.assert_series_equal(patients.loc[counts.index], counts, check_names=False)
    assert (patients.drop(counts.index) == 0).all()


def test_table_one_reads_only_its_columns():
    """table_one copies each group with the summarised columns alone: the same table as from
    the cohort cut to those columns."""
    from her2er_dash import summary
    from her2er_dash.filters import CohortFilter

    cohort = CohortFilter().classify(simulate.trial(4000, seed=3))
    used = [c for c in cohort.columns if c in summary._SUMMARISED
            or c.endswith(("_months", "_event")) or c in ("er_category", "her2_status")]
    pd.testing.assert_frame_equal(summary.table_one(cohort), summary.table_one(cohort[used]),
                                  check_exact=True)


def test_pcr_definitions_reads_only_its_columns():
    """response.pcr_definitions (run on every page, for the sidebar) copies the rows with a pCR
    result of the columns it reads only: the same table as from a cohort of those columns."""
    from her2er_dash import response

    trial = simulate.trial(3000, seed=6, n_studies=4)
    trial.loc[trial.index[::7], "pcr"] = np.nan
    trial["pcr_definition"] = np.where(trial["study"] == trial["study"].iloc[0], "ypT0 ypN0", None)
    narrow = trial[["study", "pcr_definition", "pcr"]]
    for default in (None, "ypT0/is ypN0"):
        pd.testing.assert_frame_equal(response.pcr_definitions(trial, default=default),
                                      response.pcr_definitions(narrow, default=default),
                                      check_exact=True)
    assert response.pcr_definitions(trial)["n"].sum() == trial["pcr"].notna().sum()


def _regimen_table_from_strings(frame, regimen, grouping, y):
    """subsets.regimen's group table as it was computed before: a string per patient."""
    from her2er_dash.subsets.regimen import REGIMEN_GROUPS

    group = frame["_regimen_group"].astype(str)
    order = list(REGIMEN_GROUPS) if grouping == "payload" else None
    counts = group.value_counts()
    present = [g for g in order if g in counts.index] if order else list(counts.index)
    raw = frame[regimen].astype(str)
    rows = []
    for name in present:
        mask = (group == name).to_numpy()
        rows.append({"group": name, "regimens": "; ".join(sorted(set(raw[mask]))),
                     "n": int(mask.sum()), "pcr": int(y[mask].sum())})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("grouping", ["levels", "payload"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regimen_groups_through_codes_equal_those_of_one_string_per_patient(grouping, seed):
    """The Subsets page's regimen table reads groups and regimens through codes; its groups,
    their order (ties included), regimens and counts equal those from ``astype(str)``."""
    from her2er_dash.subsets import regimen as R

    rng = np.random.default_rng(seed)
    n = 600
    classes = ["anthracycline-taxane", "taxane", "anti-HER2 ADC", "endocrine", "other"]
    levels = rng.choice(classes if grouping == "payload" else ["A", "B", "C", "D"], n)
    values = pd.Series(pd.Categorical(levels)) if seed % 2 else pd.Series(levels, dtype=object)
    groups = R.regimen_groups(values, grouping=grouping)
    keep = groups.notna().to_numpy()
    frame = pd.DataFrame({"regimen": values[keep].reset_index(drop=True),
                          "_regimen_group": groups[keep].reset_index(drop=True)})
    if grouping == "levels":  # equal group sizes: their order is the order of first appearance
        frame = frame.iloc[: 4 * (len(frame) // 8)]
        frame["_regimen_group"] = np.tile(["B", "A", "D", "C"], len(frame) // 4)
    y = rng.integers(0, 2, len(frame)).astype(float)
    new = R._group_table(frame, "regimen", grouping, y, 0.05, 10, 5)
    old = _regimen_table_from_strings(frame, "regimen", grouping, y)
    pd.testing.assert_frame_equal(new[list(old.columns)], old, check_exact=True)
