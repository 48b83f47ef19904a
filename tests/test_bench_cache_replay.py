"""benchmarks/cache_replay.py: the in-process replay that attributes a server's memory to its
caches runs, and emptying the caches gives back what the sessions added."""

from __future__ import annotations

import json
import sys

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from benchmarks import cache_replay

    out = tmp_path_factory.mktemp("replay") / "replay.json"
    assert cache_replay.main(["--sessions", "6", "--every", "3", "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_every_step_is_measured(report):
    steps = [s["step"] for s in report["steps"]]
    assert steps[:3] == ["after 1 session", "after 6 sessions", "frame cache emptied"]
    assert "Streamlit's caches emptied" in steps
    assert all(s["rss_mb"] > 0 and s["python_blocks"] > 0 for s in report["steps"])
    assert report["frame_cache_before_emptying"]["entries"] > 0


def test_every_n_sessions_is_measured_with_the_frame_cache(report):
    assert [s["step"] for s in report["during"]] == ["after 3 sessions"]
    middle, last = report["during"][0], report["steps"][1]
    assert 0 < middle["frame_cache_entries"] <= last["frame_cache_entries"]
    assert last["frame_cache_counted_mb"] <= report["frame_cache_budget_mb"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallinfo2 is glibc's")
def test_emptying_the_caches_frees_what_the_sessions_added(report):
    by_step = {s["step"]: s for s in report["steps"]}
    grown = by_step["after 6 sessions"]["python_blocks"] - by_step["after 1 session"]["python_blocks"]
    left = by_step["Streamlit's caches emptied"]["python_blocks"] - by_step["after 1 session"]["python_blocks"]
    assert grown > 0
    assert left < 0.5 * grown  # the sessions' growth was in the caches
    if "malloc_in_use_mb" in by_step["after 1 session"]:
        assert (by_step["Streamlit's caches emptied"]["malloc_in_use_mb"]
                <= by_step["after 6 sessions"]["malloc_in_use_mb"])
