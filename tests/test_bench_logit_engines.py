"""Smoke test of benchmarks/logit_engines.py at n = 2,000: every engine it times fits the same
model to the same numbers (no timing assertions; the speed is measured by the benchmark)."""

from __future__ import annotations

import math

import pytest

from benchmarks import logit_engines


@pytest.fixture(scope="module")
def results() -> dict:
    return logit_engines.measure(2000, repeats=1)


def test_both_models_are_timed_for_every_engine(results):
    assert set(results["models"]) == {"continuous", "categorical"}
    for entry in results["models"].values():
        assert set(entry["engines"]) == set(logit_engines.engines())
        assert entry["rows"] > 500  # the HER2-positive patients with a pCR result
        for row in entry["engines"].values():
            assert math.isfinite(row["seconds"])
            assert row["seconds"] >= 0


def test_the_package_engine_agrees_with_statsmodels(results):
    for entry in results["models"].values():
        for engine, row in entry["engines"].items():
            assert row["coef_rel_diff"] < 1e-6, engine
            assert row["se_rel_diff"] < 1e-6, engine
