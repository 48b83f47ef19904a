"""Property-based tests: every analysis on generated messy cohorts.

Only AnalysisError may escape (never an IndexError, ZeroDivisionError, LinAlgError...), and when a
result comes back its invariants hold: rates and intervals inside [0, 1] with
ci_low <= rate <= ci_high, Kaplan-Meier curves non-increasing in [0, 1], and every input row
either analysed or counted as excluded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from her2er_dash import AnalysisError, contrasts, meta, prognosis, response, subgroups, survival

STATUS = st.sampled_from(["positive", "negative", None])
ARM = st.sampled_from(["A", "B", "C", None])
BINARY = st.sampled_from([0, 1, 1, 0, None])
TIME = st.one_of(st.floats(0, 120, allow_nan=False), st.none(), st.just(float("nan")))


@st.composite
def cohorts(draw, min_size=0, max_size=40):
    n = draw(st.integers(min_size, max_size))
    rows = {
        "er_status": draw(st.lists(STATUS, min_size=n, max_size=n)),
        "arm": draw(st.lists(ARM, min_size=n, max_size=n)),
        "study": draw(st.lists(st.sampled_from(["S1", "S2", "S3"]), min_size=n, max_size=n)),
        "pcr": draw(st.lists(BINARY, min_size=n, max_size=n)),
        "er_percent": draw(
            st.lists(st.one_of(st.floats(0, 100, allow_nan=False), st.none()), min_size=n, max_size=n)
        ),
        "age": draw(st.lists(st.integers(25, 85), min_size=n, max_size=n)),
        "efs_months": draw(st.lists(TIME, min_size=n, max_size=n)),
        "efs_event": draw(st.lists(BINARY, min_size=n, max_size=n)),
    }
    df = pd.DataFrame(rows)
    df["er_percent"] = pd.to_numeric(df["er_percent"])
    df["efs_months"] = pd.to_numeric(df["efs_months"])
    df["pcr"] = pd.to_numeric(df["pcr"])
    df["efs_event"] = pd.to_numeric(df["efs_event"])
    return df


FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def attempt(call):
    """The result of ``call``, or None when it refused the data with an AnalysisError."""
    try:
        return call()
    except AnalysisError as exc:
        message = str(exc)
    assert len(message) > 20, f"an AnalysisError must explain itself: {message!r}"
    return None


def assert_interval_table(table: pd.DataFrame, estimate: str) -> None:
    ok = table[estimate].notna()
    assert (table.loc[ok, "ci_low"] <= table.loc[ok, estimate] + 1e-12).all()
    assert (table.loc[ok, estimate] <= table.loc[ok, "ci_high"] + 1e-12).all()


def assert_accounted(exclusions, n_input: int) -> None:
    assert exclusions.n_input == n_input
    assert exclusions.n_used + sum(n for _, n in exclusions.reasons) == n_input


@FAST
@given(df=cohorts(), method=st.sampled_from(response.INTERVAL_METHODS))
def test_pcr_rates(df, method):
    rates = attempt(lambda: response.pcr_rates(df, ["er_status"], method=method))
    if rates is None:
        return
    assert ((rates[["rate", "ci_low", "ci_high"]] >= 0) & (rates[["rate", "ci_low", "ci_high"]] <= 1)).all().all()
    assert_interval_table(rates, "rate")
    assert_accounted(rates.attrs["exclusions"], len(df))
    assert rates["n"].sum() == rates.attrs["exclusions"].n_used


@FAST
@given(df=cohorts())
def test_compare(df):
    table = attempt(lambda: response.compare(df, "arm"))
    if table is None:
        return
    for est, low, high in (("odds_ratio", "or_ci_low", "or_ci_high"),
                           ("risk_ratio", "rr_ci_low", "rr_ci_high"),
                           ("risk_difference", "rd_ci_low", "rd_ci_high")):
        ok = table[est].notna()
        assert (table.loc[ok, low] <= table.loc[ok, est] + 1e-9).all()
        assert (table.loc[ok, est] <= table.loc[ok, high] + 1e-9).all()
    assert table[["chi2_p", "fisher_p"]].stack().between(0, 1).all()


@FAST
@given(df=cohorts())
def test_logistic(df):
    model = attempt(lambda: response.logistic(df, ["er_status", "age"]))
    if model is None:
        return
    assert_interval_table(model.table, "odds_ratio")
    assert model.table["p"].between(0, 1).all()
    assert_accounted(model.exclusions, len(df))
    assert model.n == model.exclusions.n_used


@FAST
@given(df=cohorts(max_size=60))
def test_dose_response_and_cutpoints(df):
    dose = attempt(lambda: response.er_dose_response(df, df_spline=2))
    if dose is not None:
        curve = dose.curve
        assert curve[["probability", "ci_low", "ci_high"]].stack().between(0, 1).all()
        assert_interval_table(curve, "probability")
    cut = attempt(lambda: response.cutpoint_search(df, min_group=3, n_perm=50))
    if cut is not None:
        assert 0 <= cut.p_naive <= 1
        assert 0 <= cut.p_permutation <= 1


@FAST
@given(df=cohorts(), conf_type=st.sampled_from(["log-log", "log", "plain"]))
def test_kaplan_meier(df, conf_type):
    km = attempt(lambda: survival.kaplan_meier(df, "efs_months", "efs_event", by="arm",
                                               conf_type=conf_type))
    if km is None:
        return
    for _, part in km.table.groupby("group"):
        surv = part["survival"].to_numpy()
        assert ((surv >= 0) & (surv <= 1)).all()
        assert (np.diff(surv) <= 1e-15).all()
        assert_interval_table(part, "survival")
    assert_accounted(km.exclusions, len(df))


@FAST
@given(df=cohorts())
def test_logrank_cox_rmst_milestone(df):
    test = attempt(lambda: survival.logrank(df, "efs_months", "efs_event", "arm", pairwise=True))
    if test is not None:
        assert 0 <= test.p_value <= 1
        assert_accounted(test.exclusions, len(df))
    model = attempt(lambda: survival.cox(df, "efs_months", "efs_event", ["er_status", "age"]))
    if model is not None:
        assert_interval_table(model.table, "hr")
        assert_accounted(model.exclusions, len(df))
    rm = attempt(lambda: survival.rmst(df, "efs_months", "efs_event", "arm", tau=12.0))
    if rm is not None:
        assert_interval_table(rm.table, "rmst")
    stone = attempt(lambda: survival.milestone(df, "efs_months", "efs_event", "arm", at=6.0))
    if stone is not None:
        assert_interval_table(stone.table, "survival")


@FAST
@given(df=cohorts(max_size=60))
def test_forests(df):
    for outcome in ("pcr", ("efs_months", "efs_event")):
        table = attempt(lambda outcome=outcome: subgroups.forest(
            df, exposure="er_status", subgroups=["arm", "study"], outcome=outcome))
        if table is not None:
            assert_interval_table(table, "estimate")
            assert table["p_interaction"].dropna().between(0, 1).all()
            assert_accounted(table.attrs["exclusions"], len(df))
    attempt(lambda: contrasts.two_level_forest(df, exposure="arm", level="B", reference="A",
                                               subgroups_=["study"], outcome="pcr"))
    attempt(lambda: prognosis.pcr_by_er(df, time="efs_months", event="efs_event", at=3.0))


@FAST
@given(df=cohorts(max_size=60), analysis=st.sampled_from(["pcr_or", "pcr_rate", "hr"]))
def test_two_stage_meta(df, analysis):
    kwargs = {"analysis": analysis}
    if analysis != "pcr_rate":
        kwargs["exposure"] = "er_status"
    if analysis == "hr":
        kwargs.update(time="efs_months", event="efs_event")
    result = attempt(lambda: meta.by_study(df, "study", **kwargs))
    if result is None:
        return
    assert result.tau2 >= 0
    assert 0 <= result.i2 <= 100
    assert result.ci_low <= result.estimate <= result.ci_high


def test_generated_cohorts_reach_both_outcomes():
    """The strategy must produce analysable data, or the properties above would hold vacuously."""
    seen = {"rates": 0, "km": 0, "cox": 0}

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(df=cohorts(min_size=25))
    def probe(df):
        if attempt(lambda: response.pcr_rates(df, "arm")) is not None:
            seen["rates"] += 1
        if attempt(lambda: survival.kaplan_meier(df, "efs_months", "efs_event")) is not None:
            seen["km"] += 1
        if attempt(lambda: survival.cox(df, "efs_months", "efs_event", ["age"])) is not None:
            seen["cox"] += 1

    probe()
    assert min(seen.values()) > 10, seen


@pytest.mark.parametrize("bad", [float("inf"), -1.0])
def test_infinite_or_negative_time_is_excluded_or_refused_never_crashes(bad):
    df = pd.DataFrame({"efs_months": [1.0, 2.0, bad, 4.0] * 5, "efs_event": [1, 0, 1, 1] * 5,
                       "arm": ["A", "B"] * 10})
    km = attempt(lambda: survival.kaplan_meier(df, "efs_months", "efs_event", by="arm"))
    if km is not None:
        assert km.exclusions.n_used == 15
        assert_accounted(km.exclusions, 20)
