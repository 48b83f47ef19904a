"""A registry of the operator's data folder as a cohort: offered in the picker, its counts-first
analyses computed by DuckDB on all selected patients and equal to the same cohort in memory."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from apptest_helpers import goto, run_app, sidebar_count

from her2er_dash import simulate, survival
from her2er_dash.classify import classify_cohort

N = 6000


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("datafolder")
    frame = simulate.trial(N, seed=11, n_studies=3)
    frame.to_parquet(root / "trial.parquet", index=False)
    (root / "split").mkdir()
    frame.iloc[: N // 2].to_parquet(root / "split" / "a.parquet", index=False)
    frame.iloc[N // 2:].to_parquet(root / "split" / "b.parquet", index=False)
    return root, frame


def _registry_app(monkeypatch, root, name="trial.parquet"):
    monkeypatch.setenv("HER2ER_DATA_DIR", str(root))
    at = run_app()
    options = at.sidebar.selectbox[0].options
    assert f"Registry: {name}" in options, options
    at.sidebar.selectbox[0].select(f"registry:{name}").run()
    return at


def test_data_folder_entries_appear_in_the_picker_and_say_what_uses_rows(monkeypatch, folder):
    root, _ = folder
    at = _registry_app(monkeypatch, root, "split")
    assert not at.exception
    assert sidebar_count(at).startswith(f"n = {N:,} of {N:,} patients")
    notes = " ".join(c.value for c in at.sidebar.caption)
    assert "Registry queried in place" in notes
    assert "all 6,000 selected" in notes


def test_no_folder_offers_no_registry(monkeypatch):
    monkeypatch.delenv("HER2ER_DATA_DIR", raising=False)
    at = run_app()
    assert not any(o.startswith("registry:") for o in at.sidebar.selectbox[0].options)


@pytest.mark.parametrize("page", ["2_Response.py", "3_Survival.py", "4_Subgroups.py"])
def test_registry_pages_run_and_match_the_in_memory_cohort(monkeypatch, folder, page, tmp_path):
    root, frame = folder
    at = goto(_registry_app(monkeypatch, root), page)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    ours = [t.value for t in at.dataframe]
    assert ours, "the page shows tables"
    if page == "3_Survival.py":  # the in-memory engine on the same patients
        km = survival.kaplan_meier(classify_cohort(frame), "efs_months", "efs_event",
                                   by="er_category")
        medians = km.medians
        shown = next(t for t in ours if list(t.columns) == list(medians.columns))
        numeric = medians.select_dtypes("number").columns
        num = medians[numeric].to_numpy(dtype=float)
        # the page prints a missing median as "not reached" / "—": those compare as NaN
        got = shown[numeric].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        assert np.allclose(num, got, rtol=1e-9, equal_nan=True)
        # the registry's sample and count tables are held under the frame cache's byte budget
        cache = sys.modules["ui"].FRAME_CACHE
        entries = dict(cache.entries())
        kinds = {key[0] for key in entries}
        assert {"registry_sample", "registry_filtered", "registry_counts"} <= kinds, kinds
        # the default filter's selection is the sample itself, and is counted once
        sample = next(v for k, v in entries.items() if k[0] == "registry_sample")
        selected = next(v for k, v in entries.items() if k[0] == "registry_filtered")
        # the default filter keeps every sampled patient: its selection shares the sample's
        # columns, and the budget counts them once
        assert all(np.shares_memory(selected.data[c].to_numpy(), sample[c].to_numpy())
                   for c in sample.select_dtypes("number").columns)
        frame_bytes = sys.modules["ui.cohorts"]._frame_bytes
        each_alone = sum(frame_bytes(v) for v in entries.values())
        assert cache.nbytes <= each_alone - frame_bytes(sample) + 1024 * sample.shape[1]


@pytest.mark.parametrize("page", ["1_Cohort.py", "5_Evidence.py", "6_Methods.py", "7_Subsets.py"])
def test_other_pages_work_on_a_registry(monkeypatch, folder, page):
    root, _ = folder
    at = goto(_registry_app(monkeypatch, root), page)
    assert not at.exception, at.exception


def test_a_registry_opened_ahead_is_not_classified_again_when_its_first_user_picks_it(
        monkeypatch, folder, tmp_path):
    from her2er_dash.engine.registry import Registry
    from ui import registry as app_registry

    root = tmp_path  # a folder of its own: the app keeps a folder's listing for a minute
    (root / "ahead.parquet").write_bytes((folder[0] / "trial.parquet").read_bytes())
    monkeypatch.setenv("HER2ER_DATA_DIR", str(root))
    created = []
    execute = Registry._execute

    def counting(self, sql):
        if sql.startswith("CREATE OR REPLACE TABLE") and "_head" not in sql.split(" AS ")[0]:
            created.append(sql)
        return execute(self, sql)

    monkeypatch.setattr(Registry, "_execute", counting)
    assert app_registry.prewarm_names("ahead.parquet, nowhere.parquet") == ["ahead.parquet"]
    assert "ahead.parquet" in app_registry.prewarm_names("all")
    took = app_registry.prewarm(["ahead.parquet"])
    assert list(took) == ["ahead.parquet"]
    assert len(created) == 1  # classified once, ahead of any session
    at = _registry_app(monkeypatch, root, "ahead.parquet")
    assert not at.exception
    assert sidebar_count(at).startswith(f"n = {N:,} of {N:,} patients")
    assert len(created) == 1, "the first user's pick reused the table classified ahead"


def test_opening_ahead_skips_a_registry_that_cannot_be_opened(monkeypatch, folder, tmp_path):
    from ui import registry as app_registry

    root = tmp_path
    (root / "broken.parquet").write_bytes(b"not parquet")
    (root / "good.parquet").write_bytes((folder[0] / "trial.parquet").read_bytes())
    monkeypatch.setenv("HER2ER_DATA_DIR", str(root))
    assert list(app_registry.prewarm(["broken.parquet", "good.parquet"])) == ["good.parquet"]


def test_the_opening_thread_names_the_same_variable_as_the_app():
    from deploy import ahead
    from ui import registry as app_registry

    assert ahead.PREWARM_ENV == app_registry.PREWARM_ENV


def test_a_registrys_files_are_checked_once_per_interval_and_a_change_is_seen(
        monkeypatch, folder, tmp_path):
    # A render names its registry in every cached call: its files are walked and stated once
    # per FILES_CHECK_S, and a file replaced in the folder gives a new registry after that.
    from her2er_dash.engine import DataFolder
    from ui import registry as app_registry

    root = tmp_path
    (root / "changing.parquet").write_bytes((folder[0] / "trial.parquet").read_bytes())
    monkeypatch.setenv("HER2ER_DATA_DIR", str(root))
    resolved = []
    resolve = DataFolder.resolve
    monkeypatch.setattr(DataFolder, "resolve",
                        lambda self, name: resolved.append(name) or resolve(self, name))
    clock = [1000.0]
    monkeypatch.setattr(app_registry.time, "monotonic", lambda: clock[0])
    first = app_registry._open_registry("changing.parquet")  # checked, then opened
    checks = len(resolved)
    assert all(app_registry._open_registry("changing.parquet") is first for _ in range(10))
    assert len(resolved) == checks
    folder[1].iloc[: N // 3].to_parquet(root / "changing.parquet", index=False)
    assert app_registry._open_registry("changing.parquet") is first  # within the interval
    clock[0] += app_registry.FILES_CHECK_S
    changed = app_registry._open_registry("changing.parquet")
    assert changed is not first
    assert changed.n == N // 3
    assert app_registry._open_registry("changing.parquet") is changed
    (root / "changing.parquet").unlink()
    clock[0] += app_registry.FILES_CHECK_S
    before = len(resolved)
    for _ in range(2):  # a failed check is not remembered
        with pytest.raises(ValueError, match="not a registry of the data folder"):
            app_registry._open_registry("changing.parquet")
    assert len(resolved) == before + 2
