"""Cumulative incidence, adjusted-curve and balance figures draw exactly their result tables."""

from __future__ import annotations

import numpy as np
import pytest

from her2er_dash import figures, schema
from her2er_dash import survival as sv


@pytest.fixture(scope="module")
def cif(metabric):
    return sv.cumulative_incidence(metabric, "bcss_months", "bcss_event", by="er_status")


def _traces(fig, name):
    return [t for t in fig.data if t.name == name]


def test_side_by_side_curves_are_the_table(cif):
    fig = figures.cif_figure(cif, cause_labels=schema.CAUSE_LABELS["bcss"])
    curves = _traces(fig, "positive")
    assert len(curves) == 2  # one panel per cause
    for trace, cause in zip(curves, (1, 2), strict=True):
        part = cif.table[(cif.table["group"] == "positive") & (cif.table["cause"] == cause)]
        x, y = np.asarray(trace.x, float), np.asarray(trace.y, float)
        drawn = y[np.searchsorted(x, part["time"].to_numpy(), side="right") - 1]
        # The drawn step function is the table's, to within the thinning tolerance.
        np.testing.assert_allclose(drawn, part["cif"], atol=figures.STEP_TOLERANCE + 1e-12)
    titles = [a.text for a in fig.layout.annotations]
    assert "Death from breast cancer" in titles
    assert "Death from other causes" in titles


def test_at_risk_numbers_come_from_the_risk_table(cif):
    ticks = [0.0, 60.0, 120.0]
    fig = figures.cif_figure(cif, at_risk_times=ticks)
    row = _traces(fig, "negative at risk")[0]
    expected = cif.at_risk(ticks).query("group == 'negative'")["n_at_risk"]
    assert list(row.text) == [f"{int(v):,}" for v in expected]


def test_stacked_areas_sum_to_one_with_event_free_survival(cif):
    fig = figures.cif_figure(cif, mode="stacked")
    tops = [np.asarray(t.y) for t in fig.data if t.name == "Cause 2"]
    assert len(tops) == 2  # one panel per group
    for top in tops:
        assert (top <= 1 + 1e-12).all()
    free = [t for t in fig.data if t.name == "Event-free"]
    for trace, top in zip(free, tops, strict=True):
        np.testing.assert_allclose(np.asarray(trace.customdata), 1 - top, atol=1e-12)
    with pytest.raises(ValueError, match="mode"):
        figures.cif_figure(cif, mode="pie")


def test_adjusted_and_balance_figures_follow_their_tables(metabric):
    data = metabric.dropna(subset=["os_event"])
    result = sv.iptw_kaplan_meier(data, "os_months", "os_event", "chemotherapy",
                                  ["age", "er_status"], reference="no")  # fmt: skip
    unadjusted = sv.kaplan_meier(data, "os_months", "os_event", by="chemotherapy")
    fig = figures.adjusted_figure(result, unadjusted=unadjusted)
    assert {t.name for t in fig.data} >= {"no", "yes", "no (unadjusted)", "yes (unadjusted)"}
    solid = _traces(fig, "yes")[0]
    assert np.asarray(solid.y)[1:].min() == pytest.approx(
        result.table.query("group == 'yes'")["survival"].min(), abs=1e-3
    )
    balance = figures.balance_figure(result.weights.balance)
    after = _traces(balance, "After weighting")[0]
    np.testing.assert_allclose(np.asarray(after.x), result.weights.balance["smd_after"])
