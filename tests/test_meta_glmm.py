"""meta.glmm against metafor rma.glmm (lme4 glmer) on real pCR counts.

Reference inputs (all real counts):

- ``studies``: pCR events/n per study of the curated HER2+ table (7 studies; homogeneous, so the
  ML tau² is on its boundary at 0);
- ``study_er``: the same per study x ER group (12 groups; tau² ~ 0.53);
- ``er_or``: ER-positive vs ER-negative pCR 2x2 counts per study (5 studies);
- ``pr_or``: PR-positive vs PR-negative (6 studies; GSE22358 has 0/8 PR-positive responders and
  GSE25065 1 patient per group: the saturated model is separated, which checks that the Wald
  heterogeneity test replays R's glm.fit iterations);
- ``ispy2_hr``: HR-positive vs HR-negative pCR among HER2-negative patients per arm of I-SPY 2
  (8 arms; tau² ~ 0.037), counted from the GEO GSE194040 clinical table (Wolf et al., Cancer
  Cell 2022;40:609-623; column ``HR`` and ``pCR``, ``HER2 == 0``, by ``Arm..short.name.``).

R code: tests/r/meta_glmm.R (``rma.glmm(measure = "PLO" / "OR", method = "ML" / "FE",
test = "z" / "t", nAGQ = 7 / 1)``) with lme4's optimiser tolerances tightened (its defaults stop
~1e-6 away from the maximum).

Tolerance 1e-6 relative. p-values are compared on the log scale: a p-value of 1e-9 carries the
relative error of its z-statistic multiplied by z² (~40 here), and the z-statistics agree to ~1e-7.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from her2er_dash import meta
from her2er_dash.errors import AnalysisError
from tests.rref import r_reference

RTOL = 1e-6
ATOL = {"tau2": 1e-9, "i2": 1e-6, "h2": 1e-8}
FIELDS = (
    "estimate", "se", "statistic", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2",
    "h2", "qe_wald", "qe_wald_p", "qe_lrt", "qe_lrt_p", "loglik",
)
#: HER2-negative patients of I-SPY 2 per arm: pCR among HR-positive (exposed) and HR-negative.
ISPY2_HER2_NEGATIVE_BY_HR = pd.DataFrame(
    {
        "study": ["AMG386", "Ctr", "Ganetespib", "Ganitumab", "MK2206", "N", "Pembro", "VC"],
        "events_exp": [10, 14, 6, 8, 5, 3, 12, 5],
        "n_exp": [62, 94, 48, 58, 28, 17, 40, 32],
        "events_ref": [23, 16, 19, 16, 13, 12, 19, 22],
        "n_ref": [53, 85, 45, 48, 32, 32, 29, 39],
    }
)
CASES = [
    (method, n_agq, test)
    for method, n_agq in (("ML", 7), ("ML", 1), ("FE", 7))
    for test in ("z", "t")
]


@pytest.fixture(scope="module")
def tables(curated_her2) -> dict[str, pd.DataFrame]:
    rows = curated_her2.dropna(subset=["study", "pcr"])
    studies = rows.groupby("study")["pcr"].agg(events="sum", n="size").reset_index()
    with_er = rows.dropna(subset=["er_status"])
    study_er = with_er.groupby(["study", "er_status"])["pcr"].agg(events="sum", n="size")
    study_er = study_er.reset_index()
    study_er["study"] = study_er["study"] + " / ER " + study_er.pop("er_status")

    def two_by_two(status: str) -> pd.DataFrame:
        known = rows.dropna(subset=[status])
        pos = known[known[status] == "positive"].groupby("study")["pcr"]
        neg = known[known[status] == "negative"].groupby("study")["pcr"]
        out = pd.DataFrame(
            {"events_exp": pos.sum(), "n_exp": pos.size(), "events_ref": neg.sum(),
             "n_ref": neg.size()}
        ).dropna()
        return out.reset_index().rename(columns={"index": "study"})

    return {
        "studies": studies,
        "study_er": study_er,
        "er_or": two_by_two("er_status"),
        "pr_or": two_by_two("pr_status"),
        "ispy2_hr": ISPY2_HER2_NEGATIVE_BY_HR,
    }


def _r_input(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(
        columns={"events_exp": "ai", "n_exp": "n1i", "events_ref": "ci", "n_ref": "n2i"}
    )


@pytest.fixture(scope="module")
def r_glmm(tables):
    inputs = {name: _r_input(frame) for name, frame in tables.items()}
    inputs["datasets"] = pd.DataFrame({"dataset": list(tables)})
    return r_reference("meta_glmm", inputs, packages=("metafor", "lme4"))["glmm"]


@pytest.mark.r
@pytest.mark.parametrize(("method", "n_agq", "test"), CASES)
@pytest.mark.parametrize("dataset", ["studies", "study_er", "er_or", "pr_or", "ispy2_hr"])
def test_glmm_matches_rma_glmm(tables, r_glmm, dataset, method, n_agq, test):
    row = r_glmm[
        (r_glmm["dataset"] == dataset)
        & (r_glmm["method"] == method)
        & (r_glmm["n_agq"] == n_agq)
        & (r_glmm["test"] == test)
    ].iloc[0]
    result = meta.glmm(tables[dataset], method=method, test=test, n_agq=n_agq)
    assert result.k == row["k"]
    assert result.measure == ("PLO" if "events" in tables[dataset] else "OR")
    for name in FIELDS:
        if pd.isna(row[name]):  # metafor reports no prediction interval for FE models
            continue
        np.testing.assert_allclose(
            getattr(result, name), row[name], rtol=RTOL, atol=ATOL.get(name, 1e-10), err_msg=name
        )
    np.testing.assert_allclose(math.log(result.p), math.log(row["p"]), rtol=RTOL, err_msg="p")


def test_homogeneous_proportions_pool_to_the_overall_rate(tables):
    """tau² = 0 at the ML optimum: the GLMM estimate is then the logit of all events / all n."""
    result = meta.glmm(tables["studies"])
    total = tables["studies"][["events", "n"]].sum()
    assert result.tau2 == 0
    assert result.estimate == pytest.approx(math.log(total["events"] / (total["n"] - total["events"])), rel=1e-9)
    assert result.se == pytest.approx(math.sqrt(1 / total["events"] + 1 / (total["n"] - total["events"])), rel=1e-7)


@pytest.mark.parametrize("dataset", ["study_er", "ispy2_hr", "pr_or"])
def test_glmm_invariants(tables, dataset):
    result = meta.glmm(tables[dataset])
    assert result.tau2 >= 0
    assert result.ci_low < result.estimate < result.ci_high
    assert result.pi_low <= result.ci_low
    assert result.ci_high <= result.pi_high
    assert 0 <= result.i2 < 100
    assert 0 <= result.p <= 1
    reordered = meta.glmm(tables[dataset].iloc[::-1])
    assert reordered.estimate == pytest.approx(result.estimate, rel=1e-7)
    assert reordered.tau2 == pytest.approx(result.tau2, rel=1e-5, abs=1e-10)
    frame = result.summary_frame()
    assert list(frame["kind"])[-2:] == ["pooled", "prediction"]
    assert frame.attrs["scale"] == ("proportion" if result.measure == "PLO" else "OR")


def test_double_zero_studies_are_dropped_and_listed():
    table = pd.DataFrame(
        {
            "study": ["A", "B", "C", "D"],
            "events_exp": [3, 0, 5, 4],
            "n_exp": [10, 12, 10, 20],
            "events_ref": [5, 0, 8, 9],
            "n_ref": [11, 9, 12, 21],
        }
    )
    result = meta.glmm(table)
    assert result.k == 3
    assert result.table.set_index("study").loc["B", "excluded"] == "no events in either group"


@pytest.mark.parametrize(
    ("table", "options", "message"),
    [
        (pd.DataFrame({"estimate": [0.1, 0.2], "se": [0.1, 0.2]}), {}, "needs counts"),
        (pd.DataFrame({"events": [3], "n": [10]}), {}, "at least 2 studies"),
        (pd.DataFrame({"events": [3, 4], "n": [10, 9]}), {"method": "REML"}, "method must be"),
        (pd.DataFrame({"events": [3, 4], "n": [10, 9]}), {"test": "knha"}, "test must be"),
        (pd.DataFrame({"events": [3, 4], "n": [10, 9]}), {"n_agq": 0}, "n_agq must be"),
        (pd.DataFrame({"events": [12, 4], "n": [10, 9]}), {}, "more events than patients"),
    ],
)
def test_glmm_refuses_with_a_clear_message(table, options, message):
    with pytest.raises(AnalysisError, match=message):
        meta.glmm(table, **options)
