"""Meta-analysis diagnostic figures draw exactly the numbers of their result tables.

Input: the ER-positive vs ER-negative pCR odds ratios of 12 published-style study rows built
from the I-SPY 2 HER2-negative per-arm counts (GEO GSE194040; see tests/test_meta_glmm.py) plus
four HER2-positive arms, so that the funnel plot's 10-study guard is met with real counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import figures, meta

#: pCR among HR-positive (exposed) vs HR-negative patients, per I-SPY 2 arm and HER2 status.
ARMS = pd.DataFrame(
    {
        "study": [
            "AMG386 HER2-", "Ctr HER2-", "Ganetespib HER2-", "Ganitumab HER2-", "MK2206 HER2-",
            "N HER2-", "Pembro HER2-", "VC HER2-", "MK2206 HER2+", "N HER2+",
            "Pertuzumab HER2+", "TDM1/P HER2+",
        ],
        "events_exp": [10, 14, 6, 8, 5, 3, 12, 5, 5, 13, 14, 18],
        "n_exp": [62, 94, 48, 58, 28, 17, 40, 32, 16, 42, 29, 35],
        "events_ref": [23, 16, 19, 16, 13, 12, 19, 22, 12, 13, 12, 12],
        "n_ref": [53, 85, 45, 48, 32, 32, 29, 39, 18, 23, 15, 17],
    }
)


def _trace(fig, name):
    matches = [t for t in fig.data if t.name == name]
    assert len(matches) == 1, [t.name for t in fig.data]
    return matches[0]


def _column(fig, header):
    """Cells of a text column beside a forest plot, one per row ("" where none is drawn)."""
    assert any(a.name == f"column header: {header}" for a in fig.layout.annotations), header
    labels = next(a.name for a in fig.layout.annotations if a.name.startswith("column: "))
    by_row = {a.y: a.text for a in fig.layout.annotations if a.name == f"column: {header}"}
    return [by_row.get(a.y, "") for a in fig.layout.annotations if a.name == labels]


def _builders():
    loo = meta.leave_one_out(ARMS, method="DL")
    funnel = meta.funnel(ARMS, method="DL")
    egger = meta.egger(ARMS, method="DL")
    return {
        "leave_one_out": lambda **kw: figures.leave_one_out_figure(loo, **kw),
        "funnel": lambda **kw: figures.funnel_figure(funnel, egger=egger, **kw),
        "forest_influence": lambda **kw: figures.meta_forest_figure(
            meta.pool(ARMS, method="DL"), influence=loo, **kw
        ),
    }


def test_leave_one_out_figure_draws_the_table():
    result = meta.leave_one_out(ARMS, method="REML")
    frame = result.summary_frame()
    fig = figures.leave_one_out_figure(result)
    points = _trace(fig, "Pooled without the study")
    omitted = frame[frame["kind"] == "omitted"]
    np.testing.assert_allclose(points.x, omitted["estimate"], rtol=1e-12)
    np.testing.assert_allclose(points.x, np.exp(result.table["estimate"]), rtol=1e-12)
    diamond = _trace(fig, frame.loc[frame["kind"] == "pooled", "label"].iloc[0])
    assert min(diamond.x) == pytest.approx(np.exp(result.full.ci_low))
    assert max(diamond.x) == pytest.approx(np.exp(result.full.ci_high))
    assert _column(fig, "Study left out")[0] == "Omitting AMG386 HER2-"
    assert _column(fig, "I²") == [f"{v:.0f}%" for v in [*result.table["i2"], result.full.i2]]
    assert fig.layout.xaxis.type == "log"
    band = [s for s in fig.layout.shapes if s.type == "rect"][0]
    assert (band.x0, band.x1) == pytest.approx((np.exp(result.full.ci_low), np.exp(result.full.ci_high)))


def test_funnel_figure_draws_studies_and_region():
    result = meta.funnel(ARMS, method="REML")
    egger = meta.egger(ARMS)
    fig = figures.funnel_figure(result, egger=egger)
    studies = _trace(fig, "Study")
    np.testing.assert_allclose(studies.x, np.exp(result.table["estimate"]), rtol=1e-12)
    np.testing.assert_allclose(studies.y, result.table["se"], rtol=1e-12)
    region = _trace(fig, "Pseudo 95% region")
    np.testing.assert_allclose(region.x[1], np.exp(result.pooled.estimate), rtol=1e-12)
    np.testing.assert_allclose(
        [region.x[0], region.x[2]],
        np.exp([result.region["ci_low"].iloc[1], result.region["ci_high"].iloc[1]]),
        rtol=1e-12,
    )
    assert fig.layout.yaxis.autorange == "reversed"
    title = fig.layout.title
    assert "Egger's test (rma, sei): z = " in f"{title.text} {title.subtitle.text}".replace("<br>", " ")


def test_forest_shows_the_pooled_estimate_without_each_study():
    pooled = meta.pool(ARMS, method="DL")
    loo = meta.leave_one_out(ARMS, method="DL")
    fig = figures.meta_forest_figure(pooled, influence=loo)
    marks = _trace(fig, "Pooled without this study")
    by_study = dict(zip(loo.table["study"], np.exp(loo.table["estimate"]), strict=True))
    np.testing.assert_allclose(marks.x, [by_study[s] for s in marks.text], rtol=1e-12)
    cells = _column(fig, "Without study")
    assert cells[: len(ARMS)] == [f"{by_study[s]:.2f}" for s in ARMS["study"]]
    plain = figures.meta_forest_figure(pooled)
    assert not [t for t in plain.data if t.name == "Pooled without this study"]


@pytest.mark.parametrize("name", list(_builders()))
def test_axes_titled_presenter_and_watermark(name):
    build = _builders()[name]
    fig = build()
    assert fig.layout.xaxis.title.text
    assert build(presenter=True).layout.font.size > fig.layout.font.size
    marked = build(watermark="SYNTHETIC", title="A title")
    assert "SYNTHETIC" in [a.text for a in marked.layout.annotations]
    assert marked.layout.title.text.startswith("A title")
