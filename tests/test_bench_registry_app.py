"""Smoke test of ``benchmarks/registry.py --part app`` on a tiny registry (20,000 patients).

The benchmark drives the real app through AppTest along a user's path; this keeps that path
runnable (widget keys, page files, the registry picker, the query counters) so the benchmark
cannot rot. No timing assertions: speed is measured by the benchmark, not by unit tests.
"""

from __future__ import annotations

import pytest

from benchmarks import registry as bench
from her2er_dash import simulate

N = 20_000


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_registry")
    simulate.trial(N, seed=5, n_studies=3).to_parquet(root / "tiny.parquet", index=False)
    return bench.part_app(N, 1, root / "tiny.parquet", paths=("tour", "3_Survival.py"))


@pytest.mark.parametrize("path", ["tour", "3_Survival.py"])
def test_every_visit_of_the_path_runs_without_an_error(report, path):
    run = next(r for r in report["runs"] if r["path"] == path)
    labels = [(v["page"], v["visit"]) for v in run["visits"]]
    expected = [(page.split("_", 1)[1].removesuffix(".py"), visit)
                for page, visit, _ in bench.app_steps(path)]
    assert labels[2:] == expected
    assert labels[1][0].startswith("select registry")
    assert all(not v["problems"] for v in run["visits"]), [v["problems"] for v in run["visits"]]


def test_every_page_has_a_direct_path():
    for page in bench.DIRECT_PAGES:
        steps = bench.app_steps(page)
        opened = [(page, bench.OPENED, f"open:{key}") for key in bench.ON_REQUEST.get(page, ())]
        assert steps[len(steps) - len(opened) - 1] == (page, bench.AFTER, "filter")
        assert list(steps[len(steps) - len(opened):]) == opened
    with pytest.raises(ValueError, match="unknown app path"):
        bench.app_steps("9_Nothing.py")


@pytest.mark.parametrize("path", ["tour", "3_Survival.py"])
def test_the_filter_change_reaches_the_registry(report, path):
    run = next(r for r in report["runs"] if r["path"] == path)
    assert run["sidebar_after"].startswith("n = ")
    assert f"of {N:,} patients" in run["sidebar_after"]
    assert "HER2 status" in run["sidebar_after"]
    change = next(v for v in run["visits"]
                  if v["page"] == "Survival" and v["visit"] == "after filter change")
    assert change["selection_scans"] >= 1  # a new filter: a new selection


def test_queries_are_counted_per_visit(report):
    run = next(r for r in report["runs"] if r["path"] == "3_Survival.py")
    survival = next(v for v in run["visits"] if v["page"] == "Survival" and v["visit"] == "first")
    assert survival["count_queries"] >= 1
    assert all(s[:2] == ["efs_months", "efs_event"] for s in survival["count_sets"])
    assert survival["sql_queries"] >= survival["count_queries"]
    picked = run["visits"][1]
    assert picked["classify_s"] > 0
    assert picked["levels_queries"] >= 1
    assert run["peak_rss_mb"] > 0


def test_opening_a_panel_on_request_computes_it(report):
    run = next(r for r in report["runs"] if r["path"] == "3_Survival.py")
    opened = next(v for v in run["visits"] if v["visit"] == bench.OPENED)
    assert opened["page"] == "Survival"
    assert not opened["problems"]
    before = next(v for v in run["visits"] if v["visit"] == bench.AFTER)
    assert opened["charts"] == before["charts"] + 2  # the adjusted curves and their balance


def test_each_path_records_the_machine_speed_before_it(report):
    for run in report["runs"]:
        assert run["machine"]["python_loop_s"] > 0
        assert run["machine"]["duckdb_group_s"] > 0
    assert "DuckDB group" in bench.format_app(report)


def test_the_table_lists_every_visit(report):
    text = bench.format_app(report)
    assert len(text.splitlines()) == 1 + sum(len(r["visits"]) + 1 for r in report["runs"])
    for page in ("Response", "Survival", "Subgroups", "Cohort"):
        assert page in text


def test_the_app_runs_with_the_production_settings_by_default(report):
    """A data folder is served by make serve: no post-run garbage collection, no file watcher."""
    assert report["config"] == "production"
    assert all(run["config"] == "production" for run in report["runs"])
    assert all(run["post_script_gc"] is False for run in report["runs"])
    assert bench.APP_CONFIGS["default"] == {}


def test_a_registry_opened_ahead_leaves_its_classification_out_of_the_landing(tmp_path):
    simulate.trial(N, seed=5, n_studies=3).to_parquet(tmp_path / "tiny.parquet", index=False)
    report = bench.part_app(N, 1, tmp_path / "tiny.parquet", paths=("1_Cohort.py",), ahead=True)
    visits = {v["page"]: v for v in report["runs"][0]["visits"]}
    ahead = visits["registry opened ahead (no user)"]["classify_s"]
    # the landing only looks the classified table up (microseconds against the classification)
    assert visits["select registry + Cohort (landing)"]["classify_s"] < ahead / 20
    assert all(not v["problems"] for v in visits.values())
