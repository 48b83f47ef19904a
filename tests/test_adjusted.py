"""IPTW-adjusted survival curves against R (glm propensity + survfit(weights=), robust SE).

R: tests/r/adjusted_iptw.R (the method of R adjustedCurves "iptw_km": survfit with IPT weights,
robust infinitesimal-jackknife standard errors; RMST robust SE from survfit's influence values).
Data: the real METABRIC cohort (chemotherapy or hormone therapy as exposure, overall survival).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from her2er_dash import survival as sv
from her2er_dash.errors import AnalysisError
from tests.rref import r_reference

RTOL = 1e-6
CONFOUNDERS = ["age", "er_status", "her2_status", "grade", "tumour_size"]
R_FORMULA = "age + er_status + her2_status + factor(grade) + tumour_size"

# case -> (exposure, stabilized, truncate, tau, conf_type)
CASES = {
    "chemo_stabilized": ("chemotherapy", True, None, 200.0, "log"),
    "chemo_unstabilized_loglog": ("chemotherapy", False, None, 120.0, "log-log"),
    "hormone_truncated": ("hormone_therapy", True, (0.01, 0.99), 240.0, "log"),
}


def close(ours, theirs, rtol: float = RTOL, atol: float = 1e-13) -> None:
    np.testing.assert_allclose(np.asarray(ours, float), np.asarray(theirs, float), rtol=rtol,
                               atol=atol, equal_nan=True)  # fmt: skip


@pytest.fixture(scope="module")
def cohort(metabric) -> pd.DataFrame:
    known = metabric.dropna(subset=["os_event", *CONFOUNDERS, "chemotherapy", "hormone_therapy"])
    return known.reset_index(drop=True)


def _table(cohort: pd.DataFrame, exposure: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"time": cohort["os_months"], "event": cohort["os_event"].astype(int),
         "exposed": (cohort[exposure] == "yes").astype(int),
         **{c: cohort[c] for c in CONFOUNDERS}}
    )  # fmt: skip


@pytest.fixture(scope="module")
def r_iptw(cohort) -> dict[str, pd.DataFrame]:
    inputs = {exp: _table(cohort, exp) for exp in ("chemotherapy", "hormone_therapy")}
    inputs["cases"] = pd.DataFrame(
        [(case, exp, R_FORMULA, stab, *(trunc or (np.nan, np.nan)), tau, conf)
         for case, (exp, stab, trunc, tau, conf) in CASES.items()],
        columns=["case", "table", "formula", "stabilized", "trunc_low", "trunc_high", "tau",
                 "conf_type"],
    )  # fmt: skip
    return r_reference("adjusted_iptw", inputs)


def _ours(cohort, case) -> sv.AdjustedSurvivalResult:
    exposure, stabilized, truncate, tau, conf = CASES[case]
    return sv.iptw_kaplan_meier(
        cohort, "os_months", "os_event", exposure, CONFOUNDERS, reference="no",
        stabilized=stabilized, truncate=truncate, tau=tau, conf_type=conf,
    )  # fmt: skip


@pytest.mark.r
@pytest.mark.parametrize("case", list(CASES))
def test_iptw_weights_match_glm(cohort, r_iptw, case):
    """R: glm(exposed ~ confounders, binomial); w = P(A=a) / P(A=a|X), truncated at quantiles."""
    ours = _ours(cohort, case).weights
    ref = r_iptw[f"{case}__weights"]
    close(ours.propensity, ref["ps"])
    close(ours.weights, ref["weight"])
    expected_truncated = 0 if CASES[case][2] is None else int(np.ceil(0.02 * len(cohort)) - 1)
    assert abs(ours.truncation["n_truncated"] - expected_truncated) <= 2


@pytest.mark.r
@pytest.mark.parametrize("case", list(CASES))
def test_iptw_curves_match_weighted_survfit_with_robust_se(cohort, r_iptw, case):
    """R: survfit(Surv(time, event) ~ exposed, weights = w) (= with id =): surv, robust std.err
    (of S), lower, upper for conf.type "log" and "log-log"."""
    ours = _ours(cohort, case).table
    ref = r_iptw[f"{case}__km"]
    assert len(ours) == len(ref)
    close(ours["time"], ref["time"])
    close(ours["n_risk_weighted"], ref["n_risk"])
    close(ours["n_event_weighted"], ref["n_event"])
    close(ours["survival"], ref["surv"])
    close(ours["se"], ref["std_err"])
    defined = ref["lower"].notna().to_numpy()
    close(ours["ci_low"][defined], ref["lower"][defined])
    close(ours["ci_high"][defined], ref["upper"][defined])


@pytest.mark.r
@pytest.mark.parametrize("case", list(CASES))
def test_weighted_rmst_and_its_robust_se_match_r(cohort, r_iptw, case):
    """R: summary(fit, rmean = tau) for the RMST; its robust SE from survfit's influence.surv
    integrated over [0, tau]; the difference's SE combines the two independent groups."""
    result = _ours(cohort, case)
    ref = r_iptw[f"{case}__rmst"]
    close(result.rmst["rmst"], ref["rmst"])
    close(result.rmst["se"], ref["se"])
    diff = result.rmst_difference.iloc[0]
    close(diff["estimate"], ref["rmst"].iloc[1] - ref["rmst"].iloc[0])
    close(diff["se"], np.hypot(*ref["se"]))


# --------------------------------------------------------------------------------------------
# Invariants and meaning


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 30).flatmap(
        lambda n: st.tuples(
            st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0]), min_size=n, max_size=n),
            st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n),
            st.floats(0.01, 100),
        )
    )
)
def test_all_equal_weights_reproduce_plain_kaplan_meier(data):
    times, events, weight = data
    df = pd.DataFrame({"t": times, "e": events, "w": weight})
    if df["e"].sum() == 0:
        return
    weighted = sv.weighted_kaplan_meier(df, "t", "e", weights="w").table
    plain = sv.kaplan_meier(df, "t", "e").table
    close(weighted["survival"], plain["survival"], rtol=1e-12)
    assert list(weighted["n_at_risk"]) == list(plain["n_at_risk"])


def test_equal_weights_give_the_unweighted_robust_variance(gbsg2):
    """Weights are relative: scaling them all leaves the curves and their robust SEs unchanged."""
    one = sv.weighted_kaplan_meier(gbsg2.assign(w=1.0), "time", "cens", weights="w", by="horTh")
    many = sv.weighted_kaplan_meier(gbsg2.assign(w=7.5), "time", "cens", weights="w", by="horTh")
    close(one.table["se"], many.table["se"], rtol=1e-10)
    close(one.table["survival"], many.table["survival"], rtol=1e-12)


def confounded_cohort(n: int = 4000, seed: int = 3) -> pd.DataFrame:
    """Older, high-grade patients get chemotherapy more often and die sooner; chemotherapy itself
    has no effect, so any difference between the unadjusted curves is confounding."""
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n)
    grade = rng.choice(["1", "2", "3"], n, p=[0.2, 0.4, 0.4])
    high = (grade == "3").astype(float)
    logit = -0.5 + 0.06 * (age - 60) + 1.2 * high
    treated = rng.random(n) < 1 / (1 + np.exp(-logit))
    hazard = 0.01 * np.exp(0.05 * (age - 60) + 0.8 * high)
    death = rng.exponential(1 / hazard)
    follow = rng.uniform(24, 120, n)
    return pd.DataFrame(
        {"time": np.minimum(death, follow), "event": (death <= follow).astype(int),
         "chemo": np.where(treated, "yes", "no"), "age": age, "grade": grade}
    )  # fmt: skip


def test_weighting_balances_confounders_and_removes_confounding():
    df = confounded_cohort()
    result = sv.iptw_kaplan_meier(df, "time", "event", "chemo", ["age", "grade"], reference="no",
                                  tau=60.0)  # fmt: skip
    balance = result.weights.balance
    assert (balance["smd_before"].abs() > 0.1).sum() >= 2
    assert (balance["smd_after"].abs() < balance["smd_before"].abs()).all()
    assert (balance["smd_after"].abs() < 0.05).all()
    naive = sv.rmst(df, "time", "event", "chemo", tau=60.0).difference.iloc[0]
    adjusted = result.rmst_difference.iloc[0]
    assert naive["ci_high"] < 0  # confounding makes chemotherapy look harmful
    assert adjusted["ci_low"] < 0 < adjusted["ci_high"]  # weighting removes it
    summary = result.weights.summary
    assert (summary["ess"] <= summary["n"]).all()


def test_truncation_is_reported_and_bounds_the_weights():
    df = confounded_cohort()
    result = sv.propensity_weights(df, "chemo", ["age", "grade"], truncate=(0.05, 0.95))
    info = result.truncation
    assert info["n_truncated"] >= 0.09 * len(df)
    assert result.weights.min() == pytest.approx(info["lower"])
    assert result.weights.max() == pytest.approx(info["upper"])


def test_iptw_failure_cases():
    df = confounded_cohort(400)
    with pytest.raises(AnalysisError, match="exactly two levels"):
        sv.iptw_kaplan_meier(df, "time", "event", "grade", ["age"])
    with pytest.raises(AnalysisError, match="cannot also be a confounder"):
        sv.propensity_weights(df, "chemo", ["chemo", "age"])
    with pytest.raises(AnalysisError, match="quantiles"):
        sv.propensity_weights(df, "chemo", ["age"], truncate=(0.9, 0.1))
    separated = df.assign(marker=np.where(df["chemo"] == "yes", "a", "b"))
    with pytest.raises(AnalysisError, match="propensity|Separation"):
        sv.propensity_weights(separated, "chemo", ["age", "marker"])
    with pytest.raises(AnalysisError, match="positive"):
        sv.weighted_kaplan_meier(df.assign(w=-1.0), "time", "event", weights="w")


def test_missing_confounders_are_excluded_and_counted(metabric):
    result = sv.iptw_kaplan_meier(metabric.dropna(subset=["os_event"]), "os_months", "os_event",
                                  "chemotherapy", ["age", "grade"], reference="no")  # fmt: skip
    assert dict(result.exclusions.reasons) == {
        "missing Grade": int(metabric.dropna(subset=["os_event"])["grade"].isna().sum())
    }


def test_unadjusted_curves_are_the_plain_kaplan_meier_of_the_same_patients(metabric):
    """The dashed comparison curve: patients missing a confounder are not in the weighted curves,
    so they must not be in the crude ones either (else the two differ by more than the weights)."""
    data = metabric.dropna(subset=["os_event"])
    result = sv.iptw_kaplan_meier(data, "os_months", "os_event", "chemotherapy", ["age", "grade"],
                                  reference="no")  # fmt: skip
    same = data.dropna(subset=["os_months", "age", "grade", "chemotherapy"])
    assert len(same) < len(data)  # the check means something: some patients miss a confounder
    plain = sv.kaplan_meier(same, "os_months", "os_event", by="chemotherapy").table
    mine = result.unadjusted
    assert list(mine["group"].unique()) == ["no", "yes"]
    for group in ("no", "yes"):
        a = mine[mine["group"] == group].reset_index(drop=True)
        b = plain[plain["group"] == group].reset_index(drop=True)
        close(a["time"], b["time"], rtol=0)
        close(a["survival"], b["survival"], rtol=1e-12)
        assert list(a["n_at_risk"]) == list(b["n_at_risk"])
        assert list(a["n_event"]) == list(b["n_event"])
