"""Competing risks against R's cmprsk (cuminc, timepoints, Gray's test, crr), with invariants.

Data: the real METABRIC cohort (tests/data/real: death from breast cancer vs other causes, five
recruitment cohorts) and a seeded cohort with three causes and heavily tied whole-month times, so
the tie corrections of cmprsk's variance formulas are exercised. R scripts:
tests/r/competing_cuminc.R and tests/r/competing_crr.R (live with Rscript + cmprsk, else golden).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from her2er_dash import survival as sv
from her2er_dash.errors import AnalysisError, CohortError
from her2er_dash.events import competing_event, vital_status_event
from tests.rref import r_reference

RTOL = 1e-6
PACKAGES = ("cmprsk",)


def close(ours, theirs, rtol: float = RTOL, atol: float = 1e-13) -> None:
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float), rtol=rtol, atol=atol,
        equal_nan=True,
    )  # fmt: skip


def tied_cohort(n: int = 400, seed: int = 14) -> pd.DataFrame:
    """Three causes, whole-month times (many ties), three groups, two strata, covariates."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n, p=[0.4, 0.35, 0.25])
    x1 = rng.normal(size=n)
    x2 = rng.integers(0, 2, n)
    hazard = 0.02 * np.exp(0.4 * x1 + 0.5 * (group == "b") - 0.3 * x2)
    t1 = rng.exponential(1 / hazard)
    t2 = rng.exponential(1 / 0.015, n)
    t3 = rng.exponential(1 / (0.01 * np.exp(0.5 * x2)))
    cens = rng.uniform(5, 60, n)
    times = np.stack([cens, t1, t2, t3], axis=1)
    status = times.argmin(axis=1)
    return pd.DataFrame(
        {
            "time": np.ceil(times.min(axis=1)),
            "status": status,
            "group": group,
            "strata": rng.choice(["s1", "s2"], n),
            "x1": x1.round(6),
            "x2": x2,
        }
    )


# case -> (table, rho, strata, group column in our call)
CUMINC_CASES = {
    "metabric_er": ("metabric", 0.0, False),
    "metabric_er_strata": ("metabric", 0.0, True),
    "metabric_er_rho1": ("metabric", 1.0, False),
    "metabric_grade": ("metabric_grade", 0.0, False),
    "tied_three_causes": ("tied", 0.0, False),
    "tied_strata_rho": ("tied", 0.5, True),
}
TIMES = [0.0, 12.0, 60.0, 120.0, 240.0, 355.2, 400.0]


@pytest.fixture(scope="module")
def tables(metabric) -> dict[str, pd.DataFrame]:
    er = metabric.dropna(subset=["er_status"])
    grade = metabric.dropna(subset=["grade"])
    return {
        "metabric": pd.DataFrame({"time": er["bcss_months"], "status": er["bcss_event"].astype(int),
                                  "group": er["er_status"], "strata": er["study"]}),
        "metabric_grade": pd.DataFrame({"time": grade["bcss_months"],
                                        "status": grade["bcss_event"].astype(int),
                                        "group": grade["grade"]}),
        "tied": tied_cohort(),
    }  # fmt: skip


@pytest.fixture(scope="module")
def r_cuminc(tables) -> dict[str, pd.DataFrame]:
    inputs = dict(tables)
    inputs["params"] = pd.DataFrame(
        [(case, table, rho, strata, "|".join(f"{t:g}" for t in TIMES))
         for case, (table, rho, strata) in CUMINC_CASES.items()],
        columns=["case", "table", "rho", "strata", "times"],
    )  # fmt: skip
    return r_reference("competing_cuminc", inputs, packages=PACKAGES)


def _ours(tables, case) -> sv.CumulativeIncidenceResult:
    table, rho, strata = CUMINC_CASES[case]
    return sv.cumulative_incidence(
        tables[table], "time", "status", by="group", rho=rho, strata="strata" if strata else None
    )


@pytest.mark.r
@pytest.mark.parametrize("case", list(CUMINC_CASES))
def test_cumulative_incidence_matches_cuminc(tables, r_cuminc, case):
    """R: fit <- cuminc(time, status, group[, strata], rho); every jump of fit[[g c]]$est, $var."""
    keys = ["group", "cause", "time"]
    ours = _ours(tables, case).table
    jumps = ours[ours["n_event"] > 0].astype({"group": str})
    jumps = jumps.sort_values(keys, kind="stable").reset_index(drop=True)
    ref = r_cuminc[f"{case}__cif"].astype({"group": str})  # R: cause by cause, then groups
    ref = ref.sort_values(keys, kind="stable").reset_index(drop=True)
    assert len(jumps) == len(ref)
    assert list(jumps["group"]) == list(ref["group"])
    assert list(jumps["cause"]) == list(ref["cause"])
    close(jumps["time"], ref["time"])
    close(jumps["cif"], ref["est"])
    close(jumps["se"] ** 2, ref["var"])


@pytest.mark.r
@pytest.mark.parametrize("case", list(CUMINC_CASES))
def test_gray_test_matches_cuminc_tests(tables, r_cuminc, case):
    """R: cuminc(...)$Tests (stat, pv, df): Gray's test per cause, stratified and weighted."""
    ours = _ours(tables, case).gray_test
    ref = r_cuminc[f"{case}__tests"]
    assert list(ours["cause"]) == list(ref["cause"])
    close(ours["statistic"], ref["stat"])
    close(ours["dof"], ref["df"])
    close(ours["p"], ref["pv"], atol=1e-12)  # R's 1 - pchisq() loses digits below 1e-12


@pytest.mark.r
@pytest.mark.parametrize("case", list(CUMINC_CASES))
def test_at_matches_timepoints(tables, r_cuminc, case):
    """R: timepoints(fit, times): estimates and variances; NA beyond a group's follow-up."""
    keys = ["group", "cause", "time"]
    ours = _ours(tables, case).at(TIMES).astype({"group": str}).sort_values(keys, kind="stable")
    ref = r_cuminc[f"{case}__timepoints"].astype({"group": str}).sort_values(keys, kind="stable")
    assert len(ours) == len(ref)
    assert list(ours["group"]) == list(ref["group"])
    close(ours["cif"], ref["est"])
    close(ours["se"] ** 2, ref["var"])


# --------------------------------------------------------------------------------------------
# Fine-Gray

CRR_MODELS = [
    # id, table, R right-hand side, failcode, python terms, reference levels
    ("metabric_multi", "metabric_cc",
     "age + er_status + her2_status + factor(grade) + tumour_size", 1,
     ["age", "er_status", "her2_status", "grade", "tumour_size"],
     {"er_status": "negative", "her2_status": "negative"}),
    ("metabric_other_causes", "metabric_cc", "age + er_status", 2, ["age", "er_status"],
     {"er_status": "negative"}),
    ("tied_three_causes", "tied", "x1 + x2 + group", 1, ["x1", "x2", "group"], {}),
    ("tied_cause3", "tied", "x1 + x2", 3, ["x1", "x2"], {}),
]  # fmt: skip


@pytest.fixture(scope="module")
def crr_tables(metabric) -> dict[str, pd.DataFrame]:
    cc = metabric.dropna(subset=["age", "er_status", "her2_status", "grade", "tumour_size"])
    metabric_cc = pd.DataFrame(
        {"time": cc["bcss_months"], "status": cc["bcss_event"].astype(int), "age": cc["age"],
         "er_status": pd.Categorical(cc["er_status"], ["negative", "positive"]),
         "her2_status": pd.Categorical(cc["her2_status"], ["negative", "positive"]),
         "grade": cc["grade"], "tumour_size": cc["tumour_size"]}
    )  # fmt: skip
    return {"metabric_cc": metabric_cc, "tied": tied_cohort()}


@pytest.fixture(scope="module")
def r_crr(crr_tables) -> dict[str, pd.DataFrame]:
    inputs = dict(crr_tables)
    inputs["models"] = pd.DataFrame(
        [m[:4] for m in CRR_MODELS], columns=["id", "table", "formula", "failcode"]
    )
    return r_reference("competing_crr", inputs, packages=PACKAGES)


@pytest.mark.r
@pytest.mark.parametrize("model", CRR_MODELS, ids=[m[0] for m in CRR_MODELS])
def test_fine_gray_matches_crr(crr_tables, r_crr, model):
    """R: fit <- crr(time, status, model.matrix(~ terms)[, -1], failcode); summary(fit)."""
    model_id, table, _, failcode, terms, reference = model
    ours = sv.fine_gray(crr_tables[table], "time", "status", terms, cause=failcode,
                        reference=reference)  # fmt: skip
    coef, fit = r_crr[f"{model_id}__coef"], r_crr[f"{model_id}__fit"].iloc[0]
    assert len(ours.table) == len(coef)
    close(ours.table["coef"], coef["coef"])
    close(ours.table["se"], coef["se"])
    close(ours.table["z"], coef["z"])
    close(ours.table["p"], coef["p"], atol=1e-15)
    close(ours.table["ci_low"], coef["ci_low"])
    close(ours.table["ci_high"], coef["ci_high"])
    close(ours.loglik, [fit["loglik_null"], fit["loglik"]])
    assert ours.converged == bool(fit["converged"])
    assert ours.n == fit["n"]


def test_fine_gray_without_competing_events_is_cox_breslow(gbsg2):
    """With no competing event the subdistribution hazard is the hazard: the estimates are the
    Cox model's with Breslow ties (the variance is a sandwich, not the model-based one)."""
    fg = sv.fine_gray(gbsg2, "time", "cens", ["age", "pnodes", "horTh"], gtol=1e-12, max_iter=50)
    cox = sv.cox(gbsg2, "time", "cens", ["age", "pnodes", "horTh"], ties="breslow")
    close(fg.table["coef"], cox.table["coef"], rtol=1e-8)
    close(fg.loglik[1] - fg.loglik[0], cox.loglik[1] - cox.loglik[0], rtol=1e-8)


# --------------------------------------------------------------------------------------------
# Invariants


def _sum_of_curves(result: sv.CumulativeIncidenceResult) -> pd.DataFrame:
    """At every distinct time of each group: the sum of every cause's CIF and overall KM."""
    out = []
    for group, risk in result.risk.groupby("group", sort=False):
        times = risk["time"].to_numpy()
        total = risk["survival"].to_numpy().copy()
        for _, part in result.table[result.table["group"] == group].groupby("cause"):
            idx = np.searchsorted(part["time"].to_numpy(), times, side="right") - 1
            total += part["cif"].to_numpy()[idx]
        out.append(pd.DataFrame({"group": group, "time": times, "total": total}))
    return pd.concat(out)


def test_cifs_and_overall_survival_sum_to_one_on_real_data(tables):
    for case in CUMINC_CASES:
        totals = _sum_of_curves(_ours(tables, case))
        close(totals["total"], 1.0, rtol=1e-12, atol=1e-12)


competing_frames = st.integers(1, 40).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "time": st.lists(st.sampled_from([0.0, 1.0, 2.0, 2.5, 4.0, 7.0]), min_size=n,
                             max_size=n),
            "status": st.lists(st.sampled_from([0, 1, 2, 3]), min_size=n, max_size=n),
            "group": st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n),
        }
    )
)  # fmt: skip


# A numpy warning is an error here: a CIF of 1 up to rounding (0.9999999999999999) with a
# standard error of 0.64 overflowed exp() in the log-log limits (they are 0 and 1 then).
@pytest.mark.filterwarnings("error::RuntimeWarning")
@settings(max_examples=80, deadline=None)
@given(competing_frames)
@example({  # found by hypothesis: group b's last CIF
    "time": [0, 0, 0, 0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
    "status": [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0],
    "group": list("aaaabbaabbaaaaaabbb"),
})
def test_cifs_plus_survival_sum_to_one_and_stay_in_bounds(data):
    df = pd.DataFrame(data)
    try:
        result = sv.cumulative_incidence(df, "time", "status", by="group")
    except AnalysisError:
        return  # no event of cause 1: refused with a message
    close(_sum_of_curves(result)["total"], 1.0, rtol=1e-12, atol=1e-12)
    tab = result.table
    assert tab["cif"].between(0, 1).all()
    assert (tab["ci_low"] <= tab["cif"] + 1e-12).all()
    assert (tab["cif"] <= tab["ci_high"] + 1e-12).all()
    for _, part in tab.groupby(["group", "cause"]):
        assert (np.diff(part["cif"].to_numpy()) >= -1e-15).all()
    gray = result.gray_test
    assert gray.empty or ((gray["p"].isna()) | gray["p"].between(0, 1)).all()


def test_single_cause_cif_is_one_minus_kaplan_meier(gbsg2):
    """Without competing causes the Aalen-Johansen estimate is 1 - KM."""
    cif = sv.cumulative_incidence(gbsg2, "time", "cens", by="horTh").table
    km = sv.kaplan_meier(gbsg2, "time", "cens", by="horTh").table
    km = km[km["n_event"] > 0]
    close(cif.loc[cif["time"] > 0, "cif"].to_numpy(), 1 - km["survival"].to_numpy(), rtol=1e-12)


def test_one_minus_km_overstates_the_cumulative_incidence(metabric):
    """The reason the page shows CIFs: censoring competing deaths inflates 1 - KM."""
    cs = sv.cause_specific(metabric, "bcss_event")
    assert cs.attrs["cause_specific"]["competing_censored"] == 496
    km = sv.kaplan_meier(cs, "bcss_months", "bcss_event").table
    cif = sv.cumulative_incidence(metabric, "bcss_months", "bcss_event")
    at = cif.at([120.0, 240.0]).query("cause == 1")["cif"].to_numpy()
    one_minus_km = 1 - km["survival"].to_numpy()[np.searchsorted(km["time"], [120, 240], "right") - 1]
    assert (one_minus_km > at + 0.01).all()


# --------------------------------------------------------------------------------------------
# Event coding and failure cases


def test_vital_status_event_codes_metabric(metabric_raw):
    event = vital_status_event(metabric_raw["VITAL_STATUS"], metabric_raw["OS_MONTHS"])
    assert event.attrs["counts"] == {0: 837, 1: 646, 2: 496, "missing": 1}
    assert event.isna().sum() == 530


def test_competing_event_refuses_unlisted_and_ambiguous_values():
    status = pd.Series(["alive", "Dead - cancer", "dead (other)", "lost", None], name="vs")
    time = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(CohortError, match="'lost' \\(1 patients\\)"):
        competing_event(status, time, event_values=["dead - cancer"],
                        competing_values=["Dead (other)"], censored_values=["Alive"])  # fmt: skip
    with pytest.raises(CohortError, match="listed twice"):
        competing_event(status, time, event_values=["alive"], competing_values=["alive"],
                        censored_values=[])  # fmt: skip
    codes = competing_event(status, time, event_values=["dead cancer"],
                            competing_values=[["dead other"], ["lost"]], censored_values=["alive"])
    assert codes.tolist()[:4] == [0.0, 1.0, 2.0, 3.0]
    assert np.isnan(codes.iloc[4])
    with pytest.raises(CohortError, match="same patients"):
        competing_event(status, time[:2], event_values=[], competing_values=[],
                        censored_values=[])  # fmt: skip


def test_bad_event_codes_and_missing_cause_raise():
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [0, 1, 2]})
    with pytest.raises(AnalysisError, match="competing"):
        sv.cumulative_incidence(df.assign(e=[0, 1.5, 2]), "t", "e")
    with pytest.raises(AnalysisError, match="competing"):
        sv.cumulative_incidence(df.assign(e=[0, -1, 2]), "t", "e")
    with pytest.raises(AnalysisError, match="event of interest"):
        sv.cumulative_incidence(df, "t", "e", cause=3)
    with pytest.raises(AnalysisError, match="negative"):
        sv.cumulative_incidence(df.assign(t=[-1.0, 2, 3]), "t", "e")
    with pytest.raises(AnalysisError, match="No variation"):
        sv.fine_gray(df.assign(x=1.0), "t", "e", ["x"])


def test_missing_values_are_excluded_and_counted(metabric):
    result = sv.cumulative_incidence(metabric, "bcss_months", "bcss_event", by="grade")
    assert result.exclusions.n_used == metabric["grade"].notna().sum()
    assert dict(result.exclusions.reasons) == {"missing Grade": int(metabric["grade"].isna().sum())}


small = st.integers(0, 10).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "t": st.lists(st.sampled_from([0.0, 1.0, 3.0, np.nan]), min_size=n, max_size=n),
            "e": st.lists(st.sampled_from([0, 1, 2, np.nan]), min_size=n, max_size=n),
            "g": st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n),
            "x": st.lists(st.sampled_from([0.0, 1.0, 2.0]), min_size=n, max_size=n),
        }
    )
)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_fine_gray_fit_running_off_to_infinity_is_refused_without_overflow_warnings():
    """Hypothesis found these four patients: Newton's first step overflows exp() (the trial is
    halved, silently), and the fit stops with coefficients near 190 still growing, which crr
    would return with converged = FALSE and p = 0. Refused instead: as running off to infinity,
    naming the terms, or (with the oldest supported numpy, whose rounding leaves the information
    at such coefficients computationally singular) as terms that cannot be separated."""
    df = pd.DataFrame({"t": [3.0, 1.0, 0.0, 1.0], "e": [1, 0, 1, 1], "g": ["a", "b", "b", "b"],
                       "x": [2.0, 1.0, 1.0, 1.0]})
    with pytest.raises(AnalysisError, match=r"subdistribution hazard ratio for 'x', 'g: b vs a' "
                                            r"is infinite or zero|cannot separate the effects"):
        sv.fine_gray(df, "t", "e", ["x", "g"])


@pytest.mark.filterwarnings("error::RuntimeWarning")
@settings(max_examples=60, deadline=None)
@given(small)
def test_tiny_messy_data_only_ever_raises_analysis_error(data):
    """Refusals are AnalysisErrors, and a result is never built on a NaN standard error
    (numpy's invalid-value warning from a negative sandwich variance is an error here)."""
    df = pd.DataFrame(data)
    for call in (
        lambda: sv.cumulative_incidence(df, "t", "e", by="g"),
        lambda: sv.cumulative_incidence(df, "t", "e", by="g", strata="x"),
        lambda: sv.fine_gray(df, "t", "e", ["x"]),
        lambda: sv.fine_gray(df, "t", "e", ["x", "g"]),
    ):
        with contextlib.suppress(AnalysisError):
            call()
