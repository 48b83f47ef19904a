"""Tests of her2er_dash.survival against R's survival package, invariants and failure cases.

R references come from tests/r/survival_{km,logrank,cox}.R (live when Rscript is installed,
else from tests/golden/). Data: GBSG2 (time in days, cens) and the HER2+ patients of the
curatedBreastData table (rfs / os in months, events already 1 = event).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from her2er_dash import survival as sv
from her2er_dash.errors import AnalysisError
from tests.rref import r_reference

RTOL = 1e-6
CONF_TAGS = {"log": "log", "log-log": "loglog", "plain": "plain"}

# (name, dataset fixture, time, event, group, tau, milestone)
KM_CASES = [
    ("gbsg2_horth", "gbsg2", "time", "cens", "horTh", 2000.0, 1000.0),
    ("gbsg2_tgrade", "gbsg2", "time", "cens", "tgrade", 2000.0, 1000.0),
    ("her2_rfs_er", "curated_her2", "rfs_months", "rfs_event", "er_status", 60.0, 36.0),
    ("her2_os_er", "curated_her2", "os_months", "os_event", "er_status", 60.0, 36.0),
]


def close(ours, theirs, rtol: float = RTOL) -> None:
    """Equal to ``rtol`` relative (NaN where R gives NA)."""
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float),
        np.asarray(theirs, dtype=float),
        rtol=rtol,
        atol=1e-13,
        equal_nan=True,
    )


def _case_table(df: pd.DataFrame, time: str, event: str, group: str) -> pd.DataFrame:
    cols = df[[time, event, group]].dropna()
    return pd.DataFrame(
        {"time": cols[time], "event": cols[event].astype(int), "group": cols[group].astype(str)}
    )


@pytest.fixture(scope="module")
def datasets(request) -> dict[str, pd.DataFrame]:
    out = {"gbsg2": request.getfixturevalue("gbsg2")}
    with contextlib.suppress(pytest.skip.Exception):
        out["curated_her2"] = request.getfixturevalue("curated_her2")
    return out


@pytest.fixture(scope="module")
def km_cases(datasets) -> list[tuple]:
    return [case for case in KM_CASES if case[1] in datasets]


@pytest.fixture(scope="module")
def r_km(datasets, km_cases) -> dict[str, pd.DataFrame]:
    inputs = {name: _case_table(datasets[data], t, e, g) for name, data, t, e, g, _, _ in km_cases}
    inputs["params"] = pd.DataFrame(
        [(name, tau, at) for name, *_, tau, at in km_cases], columns=["table", "tau", "at"]
    )
    return r_reference("survival_km", inputs)


@pytest.fixture(scope="module")
def r_logrank(datasets, km_cases) -> dict[str, pd.DataFrame]:
    inputs = {name: _case_table(datasets[data], t, e, g) for name, data, t, e, g, _, _ in km_cases}
    return r_reference("survival_logrank", inputs)


# --------------------------------------------------------------------------------------------
# Kaplan-Meier vs R


@pytest.mark.r
@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain"])
def test_kaplan_meier_table_matches_survfit(datasets, km_cases, r_km, conf_type):
    """R: s <- summary(survfit(Surv(time, event) ~ group, conf.type = ct), censored = TRUE)."""
    for name, data, t, e, g, _, _ in km_cases:
        ours = sv.kaplan_meier(datasets[data], t, e, by=g, conf_type=conf_type).table
        ref = r_km[f"{name}__km_{CONF_TAGS[conf_type]}"]
        assert list(ours["group"]) == list(ref["group"].astype(str))
        for col in ["time", "n_at_risk", "n_event", "n_censor", "survival"]:
            close(ours[col], ref[col])
        for col in ["ci_low", "ci_high"]:
            defined = ref[col].notna().to_numpy()
            close(ours[col][defined], ref[col][defined])
            # R gives NA where the estimate is exactly 1 or 0; we collapse to the estimate.
            close(ours[col][~defined], ours["survival"][~defined])


@pytest.mark.r
@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain"])
def test_kaplan_meier_medians_match_print_survfit(datasets, km_cases, r_km, conf_type):
    """R: summary(fit)$table[, c("records", "events", "median", "0.95LCL", "0.95UCL")]."""
    for name, data, t, e, g, _, _ in km_cases:
        ours = sv.kaplan_meier(datasets[data], t, e, by=g, conf_type=conf_type).medians
        ref = r_km[f"{name}__median_{CONF_TAGS[conf_type]}"]
        assert list(ours["group"]) == list(ref["group"].astype(str))
        for col in ["n", "events", "median", "ci_low", "ci_high"]:
            close(ours[col], ref[col])


@pytest.mark.r
@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain"])
def test_milestone_matches_summary_times(datasets, km_cases, r_km, conf_type):
    """R: summary(survfit(..., conf.type = ct), times = at)[c("n.risk", "surv", "std.err", ...)]."""
    for name, data, t, e, g, _, at in km_cases:
        ours = sv.milestone(datasets[data], t, e, g, at=at, conf_type=conf_type)
        ref = r_km[f"{name}__milestone_{CONF_TAGS[conf_type]}"]
        for col in ["n_at_risk", "survival", "se", "ci_low", "ci_high"]:
            close(ours.table[col], ref[col])
        diff = ours.difference.iloc[0]
        close(diff["estimate"], ref["survival"].iloc[1] - ref["survival"].iloc[0])
        close(diff["se"], np.hypot(ref["se"].iloc[0], ref["se"].iloc[1]))


@pytest.mark.r
def test_rmst_matches_print_survfit_rmean(datasets, km_cases, r_km):
    """R: summary(survfit(Surv(time, event) ~ group), rmean = tau)$table[, c("rmean", "se(rmean)")]."""
    for name, data, t, e, g, tau, _ in km_cases:
        ours = sv.rmst(datasets[data], t, e, g, tau=tau)
        ref = r_km[f"{name}__rmean"]
        close(ours.table["rmst"], ref["rmst"])
        close(ours.table["se"], ref["se"])
        close(ours.difference["estimate"], ref["rmst"].iloc[1:] - ref["rmst"].iloc[0])


# --------------------------------------------------------------------------------------------
# log-rank vs R


@pytest.mark.r
def test_logrank_matches_survdiff(datasets, km_cases, r_logrank):
    """R: sd <- survdiff(Surv(time, event) ~ group); sd$chisq, sd$obs, sd$exp, sd$n."""
    for name, data, t, e, g, _, _ in km_cases:
        ours = sv.logrank(datasets[data], t, e, g)
        ref, chisq = r_logrank[f"{name}__survdiff"], r_logrank[f"{name}__chisq"]
        close(ours.statistic, chisq["statistic"].iloc[0])
        assert ours.dof == chisq["dof"].iloc[0]
        for col in ["n", "observed", "expected"]:
            close(ours.table[col], ref[col])


@pytest.mark.r
@pytest.mark.parametrize("adjust", ["holm", "bonferroni", "BH"])
def test_pairwise_logrank_matches_pairwise_survdiff(datasets, r_logrank, adjust):
    """R: survdiff on each pair of levels, then p.adjust(p, method = adjust)."""
    ours = sv.logrank(datasets["gbsg2"], "time", "cens", "tgrade", pairwise=True, adjust=adjust)
    ref = r_logrank["gbsg2_tgrade__pairwise"]
    assert list(ours.pairwise["group_a"]) == list(ref["group_a"])
    close(ours.pairwise["statistic"], ref["statistic"])
    close(ours.pairwise["p"], ref["p"])
    close(ours.pairwise["p_adjusted"], ref[adjust])


# --------------------------------------------------------------------------------------------
# Cox vs R

GBSG2_TERMS = ["horTh", "age", "tgrade", "pnodes", "progrec"]
COX_MODELS = [
    # id, table, R formula, ties, python terms, strata
    (
        "gbsg2_efron",
        "gbsg2",
        "Surv(time, cens) ~ horTh + age + tgrade + pnodes + progrec",
        "efron",
        GBSG2_TERMS,
        None,
    ),
    (
        "gbsg2_breslow",
        "gbsg2",
        "Surv(time, cens) ~ horTh + age + tgrade + pnodes + progrec",
        "breslow",
        GBSG2_TERMS,
        None,
    ),
    (
        "gbsg2_strata",
        "gbsg2",
        "Surv(time, cens) ~ age + tgrade + pnodes + progrec + strata(horTh)",
        "efron",
        ["age", "tgrade", "pnodes", "progrec"],
        "horTh",
    ),
    (  # months instead of days: many tied deaths, so the Efron correction matters
        "gbsg2_coarse_strata",
        "gbsg2",
        "Surv(month, cens) ~ horTh + age + tgrade + pnodes + strata(menostat)",
        "efron",
        ["horTh", "age", "tgrade", "pnodes"],
        "menostat",
    ),
    (  # categorical terms and months: identical rows collapse into frequency-weighted rows
        "gbsg2_coarse_cat",
        "gbsg2",
        "Surv(month, cens) ~ horTh + tgrade + menostat",
        "efron",
        ["horTh", "tgrade", "menostat"],
        None,
    ),
    (
        "gbsg2_coarse_cat_strata",
        "gbsg2",
        "Surv(month, cens) ~ horTh + tgrade + strata(menostat)",
        "efron",
        ["horTh", "tgrade"],
        "menostat",
    ),
    (
        "her2_rfs",
        "her2",
        "Surv(rfs_months, rfs_event) ~ er_status + age",
        "efron",
        ["er_status", "age"],
        None,
    ),
    (
        "her2_rfs_breslow",
        "her2",
        "Surv(rfs_months, rfs_event) ~ er_status + age",
        "breslow",
        ["er_status", "age"],
        None,
    ),
]


@pytest.fixture(scope="module")
def cox_models(datasets) -> list[tuple]:
    have = {"gbsg2": "gbsg2" in datasets, "her2": "curated_her2" in datasets}
    return [m for m in COX_MODELS if have[m[1]]]


@pytest.fixture(scope="module")
def r_cox(datasets, cox_models) -> dict[str, pd.DataFrame]:
    inputs = {"gbsg2": _with_months(datasets["gbsg2"])}
    if "curated_her2" in datasets:
        her2 = datasets["curated_her2"]
        inputs["her2"] = her2[["rfs_months", "rfs_event", "er_status", "age"]]
    inputs["models"] = pd.DataFrame(
        [m[:4] for m in cox_models], columns=["id", "table", "formula", "ties"]
    )
    return r_reference("survival_cox", inputs)


def _with_months(gbsg2: pd.DataFrame) -> pd.DataFrame:
    return gbsg2.assign(month=gbsg2["time"] // 30)


def _fit_python(datasets, model) -> sv.CoxResult:
    _, table, formula, ties, terms, strata = model
    if table == "gbsg2":
        data = _with_months(datasets["gbsg2"])
        time, event = ("month" if "Surv(month" in formula else "time"), "cens"
    else:
        data, time, event = datasets["curated_her2"], "rfs_months", "rfs_event"
    return sv.cox(data, time, event, terms, strata=strata, ties=ties)


@pytest.mark.r
def test_cox_matches_coxph(datasets, cox_models, r_cox):
    """R: fit <- coxph(formula, ties = ties); coef(fit), sqrt(diag(vcov(fit))), fit$loglik."""
    for model in cox_models:
        ours = _fit_python(datasets, model)
        coef, fit = r_cox[f"{model[0]}__coef"], r_cox[f"{model[0]}__fit"].iloc[0]
        close(ours.table["coef"], coef["coef"])
        close(ours.table["se"], coef["se"])
        close(ours.table["hr"], np.exp(coef["coef"]))
        close(ours.loglik, [fit["loglik0"], fit["loglik"]])
        close(ours.lr_statistic, fit["lr"])
        assert ours.lr_dof == fit["lr_df"]
        assert (ours.n, ours.events) == (fit["n"], fit["events"])


@pytest.mark.r
def test_cox_zph_matches_r(datasets, cox_models, r_cox):
    """R: cox.zph(fit)$table (transform = "km", terms = TRUE; factors are one row)."""
    for model in cox_models:
        ours = _fit_python(datasets, model).ph_test
        ref = r_cox[f"{model[0]}__zph"]
        assert list(ours["term"]) == list(ref["term"])
        close(ours["chisq"], ref["chisq"])
        close(ours["df"], ref["df"])
        close(ours["p"], ref["p"])


def test_cox_labels_dummies_against_reference(gbsg2):
    res = sv.cox(gbsg2, "time", "cens", ["tgrade", "age"], reference={"tgrade": "II"})
    assert list(res.table["term"]) == ["tgrade: I vs II", "tgrade: III vs II", "age"]
    default = sv.cox(gbsg2, "time", "cens", ["tgrade", "age"])
    # Changing the reference re-expresses the same model: I vs II = -(II vs I).
    close(res.table["coef"].iloc[0], -default.table["coef"].iloc[0])
    close(res.loglik, default.loglik)


def test_cox_fit_arrays_agrees_with_cox(gbsg2):
    res = sv.cox(gbsg2, "time", "cens", ["age", "pnodes"], ties="breslow")
    x = gbsg2[["age", "pnodes"]].to_numpy(dtype=float)
    beta, var, loglik, loglik0 = sv.cox_fit_arrays(
        gbsg2["time"].to_numpy(), gbsg2["cens"].to_numpy(), x, ties="breslow"
    )
    close(beta, res.table["coef"], rtol=1e-12)
    close(np.sqrt(np.diag(var)), res.table["se"], rtol=1e-12)
    close([loglik0, loglik], res.loglik, rtol=1e-12)


def _collapsed_gbsg2_months(gbsg2: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct (month, cens, menostat, design row) of GBSG2 with their counts, and the design
    (horTh yes, tgrade II, tgrade III, menostat Pre; R makes Post the reference) of the full data."""
    data = _with_months(gbsg2)
    design = pd.DataFrame(
        {
            "horTh": (data["horTh"] == "yes").astype(float),
            "tgradeII": (data["tgrade"].astype(str) == "II").astype(float),
            "tgradeIII": (data["tgrade"].astype(str) == "III").astype(float),
            "pre": (data["menostat"] == "Pre").astype(float),
        }
    )
    keys = design.assign(month=data["month"], cens=data["cens"])
    collapsed = keys.groupby(list(keys.columns)).size().reset_index(name="count")
    return collapsed, design.to_numpy()


@pytest.mark.r
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_frequency_weights_replicate_rows(gbsg2, r_cox, ties):
    """Collapsed weighted rows = the full data (Efron ties counted with their weights).

    R: coxph(Surv(month, cens) ~ horTh + tgrade + menostat, ties = "efron") on the full data
    (model gbsg2_coarse_cat in tests/r/survival_cox.R), compared with our weighted fit.
    """
    collapsed, x_full = _collapsed_gbsg2_months(gbsg2)
    assert len(collapsed) < 0.8 * len(gbsg2)  # months and categories: many identical rows
    assert collapsed["count"].max() > 2
    data = _with_months(gbsg2)
    x = collapsed[["horTh", "tgradeII", "tgradeIII", "pre"]].to_numpy()
    weighted = sv.cox_fit_arrays(
        collapsed["month"], collapsed["cens"], x, weights=collapsed["count"], ties=ties
    )
    full = sv.cox_fit_arrays(data["month"], data["cens"], x_full, ties=ties)
    for ours, theirs in zip(weighted, full, strict=True):
        close(ours, theirs, rtol=1e-10)
    if ties == "efron":
        coef, fit = r_cox["gbsg2_coarse_cat__coef"], r_cox["gbsg2_coarse_cat__fit"].iloc[0]
        close(weighted[0], coef["coef"])
        close(np.sqrt(np.diag(weighted[1])), coef["se"])
        close([weighted[3], weighted[2]], [fit["loglik0"], fit["loglik"]])


@pytest.mark.r
def test_cox_frequency_weights_with_strata_match_coxph(gbsg2, r_cox):
    """R: coxph(Surv(month, cens) ~ horTh + tgrade + strata(menostat), ties = "efron")."""
    collapsed, _ = _collapsed_gbsg2_months(gbsg2)
    x = collapsed[["horTh", "tgradeII", "tgradeIII"]].to_numpy()
    beta, var, loglik, loglik0 = sv.cox_fit_arrays(
        collapsed["month"], collapsed["cens"], x, strata=collapsed["pre"],
        weights=collapsed["count"],
    )  # fmt: skip
    coef = r_cox["gbsg2_coarse_cat_strata__coef"]
    fit = r_cox["gbsg2_coarse_cat_strata__fit"].iloc[0]
    close(beta, coef["coef"])
    close(np.sqrt(np.diag(var)), coef["se"])
    close([loglik0, loglik], [fit["loglik0"], fit["loglik"]])


@pytest.mark.r
@pytest.mark.parametrize("collapse", [False, True])
def test_cox_grouped_design_matches_coxph(gbsg2, r_cox, collapse):
    """Fitting on numbers at risk per distinct covariate row (groups=) gives coxph's numbers.

    R: coxph(Surv(month, cens) ~ horTh + tgrade + menostat, ties = "efron") and the same with
    strata(menostat) (models gbsg2_coarse_cat, gbsg2_coarse_cat_strata).
    """
    collapsed, x_full = _collapsed_gbsg2_months(gbsg2)
    data = _with_months(gbsg2)
    if collapse:
        time, event, count = collapsed["month"], collapsed["cens"], collapsed["count"]
        x = collapsed[["horTh", "tgradeII", "tgradeIII", "pre"]].to_numpy()
    else:
        time, event, count, x = data["month"], data["cens"], None, x_full
    groups = x @ [1, 2, 4, 8]
    fits = {
        "gbsg2_coarse_cat": sv.cox_fit_arrays(time, event, x, weights=count, groups=groups),
        "gbsg2_coarse_cat_strata": sv.cox_fit_arrays(
            time, event, x[:, :3], strata=x[:, 3], weights=count, groups=groups
        ),
    }
    for model, (beta, var, loglik, loglik0) in fits.items():
        coef, fit = r_cox[f"{model}__coef"], r_cox[f"{model}__fit"].iloc[0]
        close(beta, coef["coef"])
        close(np.sqrt(np.diag(var)), coef["se"])
        close([loglik0, loglik], [fit["loglik0"], fit["loglik"]])
    rows = sv.cox_fit_arrays(data["month"], data["cens"], x_full, ties="breslow")
    grouped = sv.cox_fit_arrays(time, event, x, weights=count, groups=groups, ties="breslow")
    for a, b in zip(rows, grouped, strict=True):
        close(b, a, rtol=1e-10)


def test_cox_groups_must_share_covariates(gbsg2):
    x = gbsg2[["age"]].to_numpy(dtype=float)
    with pytest.raises(AnalysisError, match="identical covariates"):
        sv.cox_fit_arrays(gbsg2["time"], gbsg2["cens"], x, groups=np.zeros(len(x)))


def test_cox_presorted_equals_unsorted_and_checks_the_promise(gbsg2):
    data = _with_months(gbsg2)
    x = data[["age", "pnodes"]].to_numpy(dtype=float)
    plain = sv.cox_fit_arrays(data["month"], data["cens"], x)
    order = np.argsort(-data["month"].to_numpy(), kind="stable")
    time, event = data["month"].to_numpy()[order], data["cens"].to_numpy()[order]
    presorted = sv.cox_fit_arrays(time, event, x[order], presorted=True)
    # A broken promise (ascending times) is detected and the rows are sorted anyway.
    broken = sv.cox_fit_arrays(time[::-1], event[::-1], x[order][::-1], presorted=True)
    for a, b, c in zip(plain, presorted, broken, strict=True):
        close(b, a, rtol=1e-10)
        close(c, a, rtol=1e-10)


@pytest.mark.parametrize("weights", [[0.5], [0.0], [np.nan], [-1.0]])
def test_cox_frequency_weights_must_be_whole_positive(gbsg2, weights):
    n = len(gbsg2)
    bad = np.ones(n)
    bad[0] = weights[0]
    with pytest.raises(AnalysisError, match="whole numbers >= 1"):
        sv.cox_fit_arrays(gbsg2["time"], gbsg2["cens"], gbsg2[["age"]], weights=bad)
    with pytest.raises(AnalysisError, match="one number per row"):
        sv.cox_fit_arrays(gbsg2["time"], gbsg2["cens"], gbsg2[["age"]], weights=np.ones(3))


# --------------------------------------------------------------------------------------------
# invariants


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain"])
def test_kaplan_meier_invariants(gbsg2, conf_type):
    km = sv.kaplan_meier(gbsg2, "time", "cens", by="tgrade", conf_type=conf_type)
    for _, part in km.table.groupby("group"):
        s = part["survival"].to_numpy()
        assert ((s >= 0) & (s <= 1)).all()
        assert (np.diff(s) <= 0).all()
        assert (np.diff(part["time"].to_numpy()) > 0).all()
        assert (np.diff(part["n_at_risk"].to_numpy()) < 0).all()
    assert (km.table["ci_low"] <= km.table["survival"] + 1e-12).all()
    assert (km.table["survival"] <= km.table["ci_high"] + 1e-12).all()
    assert km.table.groupby("group")["n_event"].sum().sum() == gbsg2["cens"].sum()
    med = km.medians
    reached = med["ci_low"].notna() & med["ci_high"].notna()
    assert (med.loc[reached, "ci_low"] <= med.loc[reached, "median"]).all()
    assert (med.loc[reached, "median"] <= med.loc[reached, "ci_high"]).all()


def test_at_risk_counts_patients_still_followed(gbsg2):
    km = sv.kaplan_meier(gbsg2, "time", "cens", by="horTh")
    tab = km.at_risk([0, 365, 730.5, 5000])
    for (group, t), row in tab.set_index(["group", "time"]).iterrows():
        rows = gbsg2[gbsg2["horTh"] == group]
        assert row["n_at_risk"] == (rows["time"] >= t).sum()
        assert row["n_events_cumulative"] == rows.loc[rows["time"] <= t, "cens"].sum()


def test_results_do_not_depend_on_row_order(gbsg2):
    shuffled = gbsg2.sample(frac=1, random_state=7)
    pd.testing.assert_frame_equal(
        sv.kaplan_meier(gbsg2, "time", "cens", by="tgrade").table,
        sv.kaplan_meier(shuffled, "time", "cens", by="tgrade").table,
    )
    close(
        sv.logrank(shuffled, "time", "cens", "tgrade").statistic,
        sv.logrank(gbsg2, "time", "cens", "tgrade").statistic,
        rtol=1e-12,
    )
    a = sv.cox(gbsg2, "time", "cens", GBSG2_TERMS)
    b = sv.cox(shuffled, "time", "cens", GBSG2_TERMS)
    close(a.table["coef"], b.table["coef"], rtol=1e-9)
    close(a.ph_test["chisq"], b.ph_test["chisq"], rtol=1e-9)
    close(
        sv.rmst(shuffled, "time", "cens", "horTh", tau=1500).table["se"],
        sv.rmst(gbsg2, "time", "cens", "horTh", tau=1500).table["se"],
        rtol=1e-12,
    )


def test_cox_intervals_and_tests_are_coherent(gbsg2):
    res = sv.cox(gbsg2, "time", "cens", GBSG2_TERMS)
    tab = res.table
    assert (tab["ci_low"] <= tab["hr"]).all()
    assert (tab["hr"] <= tab["ci_high"]).all()
    assert ((tab["p"] > 0) & (tab["p"] <= 1)).all()
    assert res.lr_statistic > 0
    assert 0 <= res.lr_p_value <= 1
    assert res.ph_test["df"].iloc[-1] == len(tab)


def test_milestone_and_rmst_intervals_contain_estimates(gbsg2):
    ms = sv.milestone(gbsg2, "time", "cens", "tgrade", at=1000)
    assert (ms.table["ci_low"] <= ms.table["survival"]).all()
    assert (ms.table["survival"] <= ms.table["ci_high"]).all()
    assert list(ms.difference["contrast"]) == ["II - I", "III - I"]
    rm = sv.rmst(gbsg2, "time", "cens", "horTh", tau=2000)
    assert (rm.table["rmst"] <= 2000).all()
    assert (rm.table["se"] > 0).all()
    d = rm.difference.iloc[0]
    assert d["ci_low"] <= d["estimate"] <= d["ci_high"]


def test_milestone_before_first_time_is_one(gbsg2):
    ms = sv.milestone(gbsg2, "time", "cens", "horTh", at=1)
    assert (ms.table["survival"] == 1).all()
    assert (ms.table["ci_low"] == 1).all()
    assert (ms.table["ci_high"] == 1).all()


def test_p_adjust_matches_known_values():
    """R: p.adjust(c(0.01, 0.04, 0.03, 0.2), "holm" / "BH")."""
    p = np.array([0.01, 0.04, 0.03, 0.2])
    close(sv.p_adjust(p, "holm"), [0.04, 0.09, 0.09, 0.2])
    close(sv.p_adjust(p, "BH"), [0.04, 0.16 / 3, 0.16 / 3, 0.2])
    close(sv.p_adjust(p, "bonferroni"), [0.04, 0.16, 0.12, 0.8])


# --------------------------------------------------------------------------------------------
# landmark


def test_landmark_keeps_patients_at_risk_and_shifts_time():
    df = pd.DataFrame({"t": [1.0, 2.0, 2.0, 3.0, 5.0, np.nan], "e": [1, 1, 0, 0, 1, 1]})
    out = sv.landmark(df, "t", "e", at=2)
    # event at 1 and event exactly at 2 are removed; censored at 2 is kept with 0 follow-up.
    assert out["t"].tolist() == [0.0, 1.0, 3.0]
    assert out.attrs["landmark"] == {
        "at": 2.0,
        "per_patient": False,
        "fallback": None,
        "n_input": 6,
        "excluded_event_before": 2,
        "excluded_censored_before": 0,
        "excluded_no_landmark": 0,
        "n_fallback": 0,
    }
    excl = out.attrs["exclusions"]
    assert (excl.n_input, excl.n_used) == (6, 3)
    assert dict(excl.reasons)["missing t"] == 1


def test_landmark_counts_censored_before():
    df = pd.DataFrame({"t": [1.0, 4.0, 6.0], "e": [0, 1, 0]})
    out = sv.landmark(df, "t", "e", at=3)
    assert out.attrs["landmark"]["excluded_censored_before"] == 1
    assert out["t"].tolist() == [1.0, 3.0]


# --------------------------------------------------------------------------------------------
# named failure cases


def test_empty_data_raises():
    empty = pd.DataFrame(
        {"t": pd.Series(dtype=float), "e": pd.Series(dtype=float), "g": pd.Series(dtype=object)}
    )
    with pytest.raises(AnalysisError, match="No patient"):
        sv.kaplan_meier(empty, "t", "e", by="g")


def test_one_group_logrank_raises(gbsg2):
    one = gbsg2[gbsg2["horTh"] == "no"]
    with pytest.raises(AnalysisError, match="Only one group"):
        sv.logrank(one, "time", "cens", "horTh")
    with pytest.raises(AnalysisError, match="single level"):
        sv.cox(one, "time", "cens", ["horTh"])


def test_zero_events_raise(gbsg2):
    no_events = gbsg2.assign(cens=0)
    with pytest.raises(AnalysisError, match="no events"):
        sv.kaplan_meier(no_events, "time", "cens")
    with pytest.raises(AnalysisError, match="no events"):
        sv.cox(no_events, "time", "cens", ["age"])


def test_nan_times_are_excluded_and_counted(gbsg2):
    holed = gbsg2.copy()
    holed.loc[holed.index[:5], "time"] = np.nan
    holed.loc[holed.index[5:8], "horTh"] = None
    km = sv.kaplan_meier(holed, "time", "cens", by="horTh")
    assert km.exclusions.n_used == len(gbsg2) - 8
    assert dict(km.exclusions.reasons) == {"missing time": 5, "missing horTh": 3}


def test_negative_times_raise(gbsg2):
    bad = gbsg2.assign(time=gbsg2["time"] - 100)
    with pytest.raises(AnalysisError, match="negative"):
        sv.kaplan_meier(bad, "time", "cens")


def test_separation_in_cox_names_the_term():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"t": rng.exponential(10, 200), "e": 1, "arm": ["A", "B"] * 100})
    df.loc[df["arm"] == "B", "e"] = 0  # arm B never has an event: HR = 0
    with pytest.raises(AnalysisError, match="arm: B vs A"):
        sv.cox(df, "t", "e", ["arm"])


def test_constant_and_collinear_terms_raise(gbsg2):
    with pytest.raises(AnalysisError, match="No variation in 'flat'"):
        sv.cox(gbsg2.assign(flat=1.0), "time", "cens", ["age", "flat"])
    with pytest.raises(AnalysisError, match="collinear"):
        sv.cox(gbsg2.assign(age2=2 * gbsg2["age"] + 1), "time", "cens", ["age", "age2"])


def test_bad_options_raise(gbsg2):
    with pytest.raises(AnalysisError, match="conf_type"):
        sv.kaplan_meier(gbsg2, "time", "cens", conf_type="logit")
    with pytest.raises(AnalysisError, match="ties"):
        sv.cox(gbsg2, "time", "cens", ["age"], ties="exact")
    with pytest.raises(AnalysisError, match="adjust"):
        sv.logrank(gbsg2, "time", "cens", "horTh", pairwise=True, adjust="fdr")
    with pytest.raises(AnalysisError, match="Reference level"):
        sv.cox(gbsg2, "time", "cens", ["tgrade"], reference={"tgrade": "IV"})
    with pytest.raises(AnalysisError, match="tau"):
        sv.rmst(gbsg2, "time", "cens", "horTh", tau=0)
    with pytest.raises(AnalysisError, match="followed up"):
        sv.milestone(gbsg2, "time", "cens", "horTh", at=10_000)
    with pytest.raises(AnalysisError, match="landmark"):
        sv.landmark(gbsg2, "time", "cens", at=10_000)


def test_category_order_sets_groups_and_reference(gbsg2):
    levels = ["III", "II", "I", "unused"]
    cat = gbsg2.assign(tgrade=pd.Categorical(gbsg2["tgrade"], categories=levels))
    km = sv.kaplan_meier(cat, "time", "cens", by="tgrade")
    assert list(km.medians["group"]) == ["III", "II", "I"]  # unused level dropped
    res = sv.cox(cat, "time", "cens", ["tgrade"])
    assert list(res.table["term"]) == ["tgrade: II vs III", "tgrade: I vs III"]
    flags = sv.cox(gbsg2.assign(hormone=gbsg2["horTh"] == "yes"), "time", "cens", ["hormone"])
    assert list(flags.table["term"]) == ["hormone: True vs False"]
    close(flags.table["coef"], sv.cox(gbsg2, "time", "cens", ["horTh"]).table["coef"], 1e-12)


small_frames = st.integers(0, 12).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "t": st.lists(
                st.sampled_from([0.0, 1.0, 2.0, 3.0, 5.0, np.nan]), min_size=n, max_size=n
            ),
            "e": st.lists(st.sampled_from([0.0, 1.0, np.nan]), min_size=n, max_size=n),
            "g": st.lists(st.sampled_from(["a", "b", "c", None]), min_size=n, max_size=n),
            "x": st.lists(st.sampled_from([0.0, 1.0, 2.0, np.nan]), min_size=n, max_size=n),
        }
    )
)


@settings(max_examples=60, deadline=None)
@given(small_frames)
def test_tiny_messy_data_only_ever_raises_analysis_error(data):
    df = pd.DataFrame(data)
    calls = [
        lambda: sv.kaplan_meier(df, "t", "e", by="g"),
        lambda: sv.logrank(df, "t", "e", "g", pairwise=True),
        lambda: sv.cox(df, "t", "e", ["x", "g"]),
        lambda: sv.cox(df, "t", "e", ["x"], strata="g", ties="breslow"),
        lambda: sv.rmst(df, "t", "e", "g", tau=2.5),
        lambda: sv.milestone(df, "t", "e", "g", at=2),
        lambda: sv.landmark(df, "t", "e", at=1),
    ]
    for call in calls:
        try:
            result = call()
        except AnalysisError:
            continue
        if isinstance(result, sv.KaplanMeierResult):
            tab = result.table
            assert tab["survival"].between(0, 1).all()
            assert (tab["ci_low"] <= tab["survival"] + 1e-12).all()


def test_logrank_without_information_is_refused():
    """Found by tests/test_properties.py: group B is never at risk when the one event happens."""
    df = pd.DataFrame({"t": [0.0, 0.0, 1.0, 0.0, 0.0], "e": [0, 0, 1, 0, 0],
                       "g": ["A", "A", "A", "A", "B"]})
    with pytest.raises(AnalysisError, match="no information"):
        sv.logrank(df, "t", "e", "g")


# --------------------------------------------------------------------------------------------
# Stratified and weighted (Fleming-Harrington) log-rank vs R

# case -> (table, group column, rho, gamma, stratified)
WEIGHTED_CASES = {
    "metabric_er_rho1": ("metabric", "er_status", 1.0, 0.0, False),
    "metabric_er_strata": ("metabric", "er_status", 0.0, 0.0, True),
    "metabric_er_strata_rho1": ("metabric", "er_status", 1.0, 0.0, True),
    "metabric_grade_strata_rho05": ("metabric", "grade", 0.5, 0.0, True),
    "metabric_er_gamma1": ("metabric", "er_status", 0.0, 1.0, False),
    "metabric_er_fh11_strata": ("metabric", "er_status", 1.0, 1.0, True),
    "gbsg2_tgrade_rho1": ("gbsg2", "tgrade", 1.0, 0.0, False),
    "gbsg2_tgrade_strata_meno": ("gbsg2", "tgrade", 0.0, 0.0, True),
}


@pytest.fixture(scope="module")
def weighted_tables(gbsg2, metabric) -> dict[str, pd.DataFrame]:
    os_known = metabric.dropna(subset=["os_event"])
    tables = {}
    for table, group, *_rest in WEIGHTED_CASES.values():
        if table == "gbsg2":
            frame = pd.DataFrame({"time": gbsg2["time"], "event": gbsg2["cens"],
                                  "group": gbsg2[group].astype(str), "strata": gbsg2["menostat"]})
        else:
            known = os_known.dropna(subset=[group, "study"])
            frame = pd.DataFrame({"time": known["os_months"], "event": known["os_event"].astype(int),
                                  "group": known[group], "strata": known["study"]})
        tables[f"{table}_{group}"] = frame
    return tables  # fmt: skip


@pytest.fixture(scope="module")
def r_weighted(weighted_tables) -> dict[str, pd.DataFrame]:
    inputs = dict(weighted_tables)
    inputs["params"] = pd.DataFrame(
        [(case, f"{table}_{group}", rho, gamma, strata)
         for case, (table, group, rho, gamma, strata) in WEIGHTED_CASES.items()],
        columns=["case", "table", "rho", "gamma", "strata"],
    )  # fmt: skip
    return r_reference("survival_logrank_weighted", inputs)


@pytest.mark.r
@pytest.mark.parametrize("case", list(WEIGHTED_CASES))
def test_weighted_and_stratified_logrank_match_survdiff(weighted_tables, r_weighted, case):
    """R: survdiff(Surv(time, event) ~ group [+ strata(s)], rho); gamma > 0 from the
    Fleming-Harrington definition coded in R (tests/r/survival_logrank_weighted.R)."""
    table, group, rho, gamma, stratified = WEIGHTED_CASES[case]
    data = weighted_tables[f"{table}_{group}"]
    ours = sv.logrank(data, "time", "event", "group", strata="strata" if stratified else None,
                      rho=rho, gamma=gamma)  # fmt: skip
    chisq, groups = r_weighted[f"{case}__chisq"], r_weighted[f"{case}__groups"]
    close(ours.statistic, chisq["statistic"].iloc[0])
    assert ours.dof == chisq["dof"].iloc[0]
    assert list(ours.table["group"]) == list(groups["group"].astype(str))
    close(ours.table["observed"], groups["observed"])
    close(ours.table["expected"], groups["expected"])


def test_one_stratum_is_the_unstratified_test(gbsg2):
    plain = sv.logrank(gbsg2, "time", "cens", "tgrade")
    one = sv.logrank(gbsg2.assign(s="all"), "time", "cens", "tgrade", strata="s")
    close(one.statistic, plain.statistic, rtol=1e-12)
    assert one.strata == ("s",)
    assert plain.weighting == "log-rank"


def test_stratified_logrank_excludes_missing_strata_and_refuses_bad_weights(gbsg2):
    holed = gbsg2.assign(s=gbsg2["menostat"].where(gbsg2.index % 10 != 0))
    res = sv.logrank(holed, "time", "cens", "horTh", strata="s")
    assert dict(res.exclusions.reasons) == {"missing s": int(holed["s"].isna().sum())}
    with pytest.raises(AnalysisError, match="rho and gamma"):
        sv.logrank(gbsg2, "time", "cens", "horTh", rho=-1)
    assert sv.logrank(gbsg2, "time", "cens", "horTh", rho=1).weighting.startswith("Peto")


def test_p_adjust_against_R():
    """R 4.2:
    > p <- c(0.01, 0.04, 0.03, 0.2, 0.04, 0.5)
    > p.adjust(p, "holm"); p.adjust(p, "BH"); p.adjust(p, "bonferroni")
    [1] 0.06 0.16 0.15 0.40 0.16 0.50
    [1] 0.06 0.06 0.06 0.24 0.06 0.50
    [1] 0.06 0.24 0.18 1.00 0.24 1.00
    """
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.04, 0.5])
    np.testing.assert_allclose(sv.p_adjust(p, "holm"), [0.06, 0.16, 0.15, 0.40, 0.16, 0.50])
    np.testing.assert_allclose(sv.p_adjust(p, "BH"), [0.06, 0.06, 0.06, 0.24, 0.06, 0.50])
    np.testing.assert_allclose(sv.p_adjust(p, "bonferroni"), [0.06, 0.24, 0.18, 1.0, 0.24, 1.0])
    np.testing.assert_array_equal(sv.p_adjust(p, "none"), p)


def test_p_adjust_equals_statsmodels_and_leaves_missing_values_out_as_R(monkeypatch):
    """Our R formulas against statsmodels' multipletests on random p-values (ties included);
    missing p-values are not tests (R: p.adjust(c(0.01, NA, 0.04), "holm") = 0.02 NA 0.04)."""
    import gc

    from statsmodels.stats.multitest import multipletests

    # multipletests' Holm branch collects garbage on every call (why p_adjust no longer uses
    # it): seconds per call in a test process holding the whole suite's objects
    monkeypatch.setattr(gc, "collect", lambda *args: 0)

    rng = np.random.default_rng(7)
    names = {"holm": "holm", "bonferroni": "bonferroni", "BH": "fdr_bh"}
    for n in (1, 2, 5, 40):
        for _ in range(20):
            p = np.round(rng.random(n) ** 3, 2)
            for ours, theirs in names.items():
                np.testing.assert_allclose(sv.p_adjust(p, ours),
                                           multipletests(p, method=theirs)[1], rtol=1e-14)
    np.testing.assert_allclose(sv.p_adjust(np.array([0.01, np.nan, 0.04]), "holm"),
                               [0.02, np.nan, 0.04])
    np.testing.assert_allclose(sv.p_adjust(np.array([0.01, np.nan, 0.04]), "BH"),
                               [0.02, np.nan, 0.04])
    assert np.isnan(sv.p_adjust(np.array([np.nan]), "bonferroni")).all()


@given(st.lists(st.sampled_from([0.0, -0.0, 0.5, 1.0, 1e-300, 2.5, 1e9, 7.25]), min_size=1,
                max_size=60),
       st.lists(st.integers(0, 5000), min_size=1, max_size=60))
def test_log_rank_block_codes_are_those_of_np_unique(times, keys):
    """The log-rank's hashed distinct times and table-marked block keys (faster at registry
    scale) are exactly np.unique's, including -0.0 == 0.0 and sparse keys beyond the table."""
    from her2er_dash.survival.logrank import _distinct, _distinct_keys

    values = np.array(times)
    uniq, inverse = _distinct(values)
    expected_uniq, expected_inverse = np.unique(values, return_inverse=True)
    assert np.array_equal(uniq, expected_uniq)
    assert np.array_equal(inverse, expected_inverse)
    for array in (np.array(keys, dtype=np.int64), np.array(keys, dtype=np.int64) * 10**6):
        blocks, positions = _distinct_keys(array)
        expected_blocks, expected_positions = np.unique(array, return_inverse=True)
        assert np.array_equal(blocks, expected_blocks)
        assert np.array_equal(positions, expected_positions)
