"""benchmarks/soak.py: the summary of a memory time series (levels and slopes) and the table of
comparisons it runs. The soak itself takes an hour or two and is run by hand."""

from __future__ import annotations

import json

import pytest

from benchmarks import soak


def _series(rss_at: dict[float, float], name: str = "server") -> list[dict]:
    return [{"t_s": t, name: {"rss_mb": rss, "renders": 0, "errors": 0, "failed_sessions": 0}}
            for t, rss in sorted(rss_at.items())]


def test_a_line_has_its_slope_in_both_windows():
    # 30 MB per hour over two hours, sampled every 10 minutes
    series = _series({600.0 * i: 300.0 + 5.0 * i for i in range(13)})
    summary = soak.summarise(series, "server")
    assert summary["slope_mb_per_hour_second_half"] == pytest.approx(30.0)
    assert summary["slope_mb_per_hour_last_quarter"] == pytest.approx(30.0)
    assert summary["rss_mb_end"] == 360.0
    assert summary["rss_mb_peak"] == 360.0
    assert summary["rss_mb_after_warmup"] == 305.0  # the first sample from minute 5 on


def test_a_level_reached_in_the_last_quarter_shows_only_there():
    # growth for 90 minutes, then flat: the second half still slopes, the last quarter does not
    rss = {600.0 * i: 300.0 + 10.0 * min(i, 9) for i in range(13)}
    summary = soak.summarise(_series(rss), "server")
    assert summary["slope_mb_per_hour_second_half"] > 20
    assert summary["slope_mb_per_hour_last_quarter"] == 0.0
    assert summary["rss_mb_second_half_min"] == 360.0
    assert summary["rss_mb_second_half_max"] == 390.0


def test_too_few_samples_give_no_slope():
    summary = soak.summarise(_series({0.0: 100.0, 10.0: 101.0}), "server")
    assert summary["slope_mb_per_hour_second_half"] is None
    assert soak.summarise([], "server") == {}


@pytest.mark.parametrize("compare", sorted(soak.COMPARISONS))
def test_every_comparison_names_its_output_and_its_servers_settings(compare):
    servers = soak.COMPARISONS[compare]
    assert soak.OUTPUTS[compare].startswith("soak")
    assert soak.OUTPUTS[compare].endswith(".json")
    assert len(servers) >= 2
    for flags, env in servers.values():
        assert flags[:1] == ["--runner.postScriptGC"]  # each server states the setting it runs with
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    if compare != "gc":  # only the gc comparison varies the post-run GC itself
        assert {tuple(flags) for flags, _ in servers.values()} == {("--runner.postScriptGC", "false")}


def test_the_bounds_comparison_differs_from_the_hour_in_one_setting_each():
    servers = soak.COMPARISONS["bounds"]
    assert servers["idle_1h"][1] == {"HER2ER_CACHE_IDLE_S": "3600"}
    assert servers["idle_10min"][1] == {"HER2ER_CACHE_IDLE_S": "600"}
    assert servers["cache_32mb"][1] == {"HER2ER_CACHE_IDLE_S": "3600", "HER2ER_CACHE_MB": "32"}


def test_the_defaults_comparison_runs_the_shipped_defaults_beside_the_previous_hour():
    from ui import cohorts

    servers = soak.COMPARISONS["defaults"]
    assert servers["defaults"][1] == {}  # nothing set: what a plain deployment runs
    assert cohorts.DEFAULT_CACHE_IDLE_S == 600
    assert float(servers["idle_1h"][1][cohorts.CACHE_IDLE_ENV]) == 3600
    assert soak.IDLE == cohorts.CACHE_IDLE_ENV
    assert soak.BUDGET == cohorts.CACHE_BUDGET_ENV


def test_the_report_keeps_one_line_per_sample():
    report = {"compare": "bounds", "summary": {}, "series": _series({0.0: 1.0, 10.0: 2.0})}
    text = soak.to_json(report)
    assert json.loads(text) == report
    assert sum(line.strip().startswith('{"t_s"') for line in text.splitlines()) == 2
