"""Smoke test of the benchmark (benchmarks/run.py) at n = 2,000 with one repeat.

Checks that every task of the issue runs and is timed, that the table and targets are built, and,
when R is installed, that our numbers agree with R's (the same check ``make bench`` does at scale).
No timing assertions: speed is measured by ``make bench``, not by unit tests.
"""

from __future__ import annotations

import math

import pytest

from benchmarks import run
from tests.rref import rscript

N = 2000

EXPECTED_TASKS = {
    "classify_er",
    "filter_her2",
    "pcr_rates",
    "logistic",
    "er_dose_response",
    "kaplan_meier",
    "logrank",
    "cox_ph",
    "km_figure",
    "forest_pcr",
    "forest_efs",
    "meta_by_study",
}


@pytest.fixture(scope="module")
def size_result() -> dict:
    return run.run_size(N, repeats=1, use_r=rscript() is not None, log=lambda message: None)


def test_every_task_of_the_issue_is_timed(size_result):
    tasks = {row["task"] for row in size_result["rows"]}
    assert tasks == EXPECTED_TASKS
    assert all(row["n"] == N for row in size_result["rows"])
    assert all(math.isfinite(row["ours_s"]) and row["ours_s"] >= 0 for row in size_result["rows"])


def test_page_totals_are_sums_of_their_tasks(size_result):
    for page in size_result["pages"]:
        tasks = [r["ours_s"] for r in size_result["rows"] if r["page"] == page["page"]]
        assert page["ours_s"] == pytest.approx(sum(tasks))
    assert [p["page"] for p in size_result["pages"]] == list(run.PAGES)


def test_every_page_figure_payload_is_measured(size_result):
    assert size_result["km_payload_bytes"] > 1000
    payloads = size_result["figure_payload_bytes"]
    assert set(payloads) == set(run.FIGURES)
    assert payloads["kaplan_meier"] == size_result["km_payload_bytes"]
    assert all(size > 1000 for size in payloads.values())


def test_table_and_targets_are_built(size_result):
    text = run.format_table([size_result])
    for task in EXPECTED_TASKS:
        assert task in text
    targets = run.evaluate_targets([size_result], peak_rss_mb=100.0, cold_start_s=None)
    assert {t["target"] for t in targets} >= {"KM figure payload KB", "peak RSS MB (largest n)"}


def test_every_compared_quantity_is_extracted(size_result):
    values = size_result["ours_values"]
    assert values["filter_her2"]["n"] > 0
    assert any(key.startswith("p_interaction[") for key in values["forest_pcr"])
    assert any(key.startswith("p_interaction[") for key in values["forest_efs"])
    assert any(key.startswith("zph_chisq[") for key in values["cox_ph"])
    assert math.isfinite(values["meta_by_study"]["tau2"])


@pytest.mark.r
def test_ours_and_r_agree(size_result):
    if rscript() is None:
        pytest.skip("Rscript with survival + metafor is not installed")
    agreement = size_result["agreement"]
    bad = run.failures(agreement)
    assert bad.empty, "ours and R disagree:\n" + bad.to_string(index=False)
    compared = agreement[agreement["status"] == "ok"]
    every_r_task = {t.name for t in run.TASKS if t.in_r}
    assert set(compared["task"]) == every_r_task
    r_tasks = {t.name for t in run.TASKS if t.in_r}
    assert all(math.isfinite(row["r_s"]) for row in size_result["rows"] if row["task"] in r_tasks)


def test_compare_flags_a_disagreement():
    ours = {"cox_ph": {"coef[age]": 0.0100001, "lr_statistic": 12.0, "p[age]": 1e-15}}
    theirs = {"cox_ph": {"coef[age]": 0.0100000, "lr_statistic": 12.0, "p[age]": 2e-15,
                         "se[age]": 0.1}}
    table = run.compare(ours, theirs).set_index("key")
    assert table.loc["coef[age]", "status"] == "MISMATCH"
    assert table.loc["lr_statistic", "status"] == "ok"
    assert table.loc["p[age]", "status"] == "ok"  # both below the 1e-12 absolute floor
    assert table.loc["se[age]", "status"] == "MISSING"
    assert len(run.failures(run.compare(ours, theirs))) == 2
