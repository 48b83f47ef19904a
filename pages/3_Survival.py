"""Survival page: Kaplan-Meier, log-rank, Cox with PH check, RMST/milestone, pCR -> outcome by ER;
competing risks, stratified and weighted log-rank, IPTW-adjusted curves, multiple imputation."""

import pandas as pd
import streamlit as st

import ui
from her2er_dash import figures, schema
from her2er_dash.errors import AnalysisError

#: Fleming-Harrington weights offered for the log-rank test: label -> (rho, gamma).
FH_WEIGHTS = {
    "equal weights (log-rank)": (0.0, 0.0),
    "early differences — G(1, 0), Peto–Prentice": (1.0, 0.0),
    "late differences — G(0, 1)": (0.0, 1.0),
    "middle differences — G(1, 1)": (1.0, 1.0),
}
TRUNCATION = {"none": None, "1st / 99th percentiles": (0.01, 0.99),
              "5th / 95th percentiles": (0.05, 0.95)}
#: pCR is known only at surgery: as an exposure from time zero it would bias (immortal time).
IPTW_EXPOSURES = ("her2_status", "er_status", "hr_status", "pr_status", "arm", "her2_category")
CONFOUNDERS = ("age", "er_status", "pr_status", "her2_status", "hr_status", "er_percent", "grade",
               "t_stage", "n_stage", "study")


def with_cause_labels(table: pd.DataFrame, endpoint: str) -> pd.DataFrame:
    """A copy with each cause code named (e.g. 2 -> "death from other causes")."""
    out = table.copy()
    out.insert(out.columns.get_loc("cause") + 1, "cause_label",
               [schema.cause_label(endpoint, c) for c in out["cause"]])
    return out


def competing_risks_panel(full, endpoint, time, event, group, horizon, label, conf_type, log):
    """CIF curves and Gray's test on the data with its competing causes, and why 1 - KM misleads."""
    from her2er_dash.survival import needs_landmark

    if group is not None and needs_landmark([group]):
        st.info(f"{schema.column_label(group)} is known only at surgery, so comparing cumulative "
                "incidence by it from the time origin would credit it with time before it was known "
                "(immortal-time bias); the curves below are for all patients together.")
        group = None
    pooled = len(ui.studies(full)) > 1 and group != "study"
    c1, c2 = st.columns(2)
    with c1:
        mode = ui.selectbox("Display", ["side by side", "stacked"], key="surv_cif_mode",
                            help="Side by side: one panel per cause. Stacked: causes and "
                                 "event-free survival add up to 100% in each group.")
    with c2:
        stratify = pooled and ui.toggle("Gray's test stratified by study", key="surv_cif_strata",
                                        default=True)
    cif = full.run("survival.cumulative_incidence", time=time, event=event, by=group,
                   strata="study" if stratify else None)
    ui.chart(f"cif_{endpoint}", figures.cif_figure, cif, mode=mode,
             cause_labels=schema.CAUSE_LABELS.get(endpoint), time_label=label)
    st.caption(f"{cif.exclusions.describe()}. Aalen–Johansen cumulative incidence with 95% "
               "pointwise log(−log) CIs (as R cmprsk::cuminc).")
    cause = schema.cause_label(endpoint, 1)
    km = ui.cause_specific(full, endpoint).run("survival.kaplan_meier", time=time, event=event,
                                                by=group, conf_type=conf_type)
    rows = []
    for g, part in km.table.groupby("group", sort=False):
        at = cif.at([horizon])
        value = at[(at["group"] == g) & (at["cause"] == 1)]["cif"]
        shown = part[part["time"] <= horizon]["survival"]
        rows.append({"group": g, "time": horizon, f"cumulative incidence of {cause}":
                     float(value.iloc[0]) if len(value) else float("nan"),
                     "1 − Kaplan–Meier (competing deaths censored)":
                     1 - (float(shown.iloc[-1]) if len(shown) else 1.0)})
    compare = pd.DataFrame(rows)
    st.markdown(
        f"**Why not 1 − Kaplan–Meier?** Once a patient has had a competing event "
        f"({schema.cause_label(endpoint, 2)}), {cause} can no longer happen to her. Kaplan–Meier "
        "censors her as if it still could, so 1 − KM estimates the risk in a world without "
        "competing causes and overstates the risk that patients actually face; the cumulative "
        "incidence does not (all causes plus event-free survival add up to 100%). At "
        f"{horizon:g} months:"
    )
    ui.table(compare, f"cif_vs_km_{endpoint}")
    if not cif.gray_test.empty:
        sizes = cif.risk.groupby("group", sort=False)["n_at_risk"].first()
        events = cif.table[cif.table["cause"] == 1].groupby("group", sort=False)["n_event"].sum()
        small = [note for g in sizes.index
                 if (note := ui.small_group_note(int(sizes[g]), int(events.get(g, 0))))]
        gray = with_cause_labels(cif.gray_test, endpoint)
        if small:
            st.warning("Some groups are too small for a valid test: " + " ".join(sorted(set(small))))
        else:
            ui.table(gray, f"gray_test_{endpoint}",
                     caption="Gray's test comparing the cumulative incidence of each cause between "
                             "groups" + (", stratified by study." if stratify else "."))
    ui.table(with_cause_labels(cif.at(sorted({12.0, 60.0, 120.0, float(horizon)})), endpoint),
             f"cif_at_{endpoint}", caption="Cumulative incidence with standard errors at chosen "
                                           "times (as cmprsk::timepoints).")
    log.append({"kind": "cumulative_incidence", "endpoint": endpoint, "by": group,
                "strata": "study" if stratify else None})
    fine_gray_block(full, endpoint, time, event, group, log)


def fine_gray_block(full, endpoint, time, event, group, log):
    data = full.data
    options = [c for c in ("er_status", "er_category", "her2_status", "hr_status", "pr_status", "grade",
                           "t_stage", "n_stage", "arm", "regimen_class", "age") if c in data.columns
               and (c == "age" or len(full.levels(c)) >= 2)]
    default = [c for c in (group, "age") if c in options][:2] or options[:1]
    terms = ui.multiselect("Fine–Gray model terms", options, key="surv_fg_terms", default=default,
                           format_func=schema.column_label)
    if not terms:
        return
    model = full.run("survival.fine_gray", time=time, event=event, terms=terms)
    ui.table(model.table, f"fine_gray_{endpoint}",
             caption=f"Subdistribution hazard ratios for {schema.cause_label(endpoint, 1)} "
                     f"(Fine–Gray, as R cmprsk::crr; robust SEs). n = {model.n:,}, events = "
                     f"{model.events:,}, competing events = {model.competing:,}"
                     + ("" if model.converged else "; did not converge — interpret with care") + ".")
    log.append({"kind": "fine_gray", "endpoint": endpoint, "terms": terms})


def weighted_logrank_panel(ctx, endpoint, time, event, group, log):
    """Log-rank stratified by study (default for pooled cohorts) and Fleming-Harrington weights."""
    pooled = len(ui.studies(ctx)) > 1 and group != "study"
    c1, c2 = st.columns(2)
    with c1:
        stratify = ui.toggle("Stratify by study", key="surv_lr_strata", default=pooled,
                             disabled=not pooled,
                             help="Each study keeps its own risk sets (R survdiff + strata(study)), "
                                  "so differences in baseline risk between studies cannot pass as "
                                  "a group effect. On by default when the selection pools studies.")
    with c2:
        weighting = ui.selectbox("Weights", list(FH_WEIGHTS), key="surv_lr_weights",
                                 help="Fleming–Harrington G(ρ, γ): weight S(t−)^ρ (1 − S(t−))^γ at "
                                      "each event time (R survdiff(rho=) for γ = 0).")
    stratify = stratify and pooled
    rho, gamma = FH_WEIGHTS[weighting]
    if not stratify and rho == 0 and gamma == 0:
        st.caption("Same as the log-rank test above" + ("" if pooled else " (one study only)")
                   + ": choose weights to emphasise early or late differences.")
        return
    test, landmark = ctx.run_survival("survival.logrank", time=time, event=event, uses=[group],
                                      by=group, strata="study" if stratify else None, rho=rho,
                                      gamma=gamma)  # fmt: skip
    landmark_caption(landmark)
    how = test.weighting + (f", stratified by study ({len(ui.studies(ctx))} studies)" if stratify
                            else "")
    small = [s for s in (ui.small_group_note(int(r.n)) for r in test.table.itertuples()) if s]
    if small:
        st.warning("At least one group is too small for a valid test: " + " ".join(small))
    else:
        st.markdown(f"**{how}**: χ² = {test.statistic:.2f} on {test.dof} df, "
                    f"**p = {test.p_value:.3g}**")
    ui.table(test.table, f"logrank_weighted_{endpoint}",
             caption="Observed and expected events" + (" (weighted)" if rho or gamma else "")
                     + (", summed over studies." if stratify else "."))
    log.append({"kind": "logrank", "endpoint": endpoint, "by": group, "strata":
                "study" if stratify else None, "rho": rho, "gamma": gamma,
                **({"landmark": ctx.landmark_spec} if landmark else {})})


def landmark_sensitivity(ctx, result, options, time, event, endpoint):
    """pCR by ER with the landmark at surgery (``result``), fixed at 6 months, and none."""
    variants = (("at each patient's surgery", None),
                ("fixed at 6 months", {**options, "landmark": "fixed", "at": 6.0}),
                ("none (guarantee-time bias)", {**options, "landmark": "none"}))
    rows = []
    for name, variant in variants:
        table = result if variant is None else ctx.run("prognosis.pcr_by_er", time=time, event=event,
                                                       **variant)
        rows.append(table.assign(landmark=name)[["landmark", "level", "n", "events", "estimate",
                                                 "ci_low", "ci_high"]])
        if variant is not None and table.attrs.get("warning"):
            st.caption(f"{name}: " + ui.plain(table.attrs["warning"]))
    ui.table(pd.concat(rows, ignore_index=True), f"pcr_by_er_landmarks_{endpoint}",
             caption="Only the landmark at each patient's surgery follows patients from the moment their "
                     "pCR is known; the other rows show how much the choice matters here.")


def iptw_panel(ctx, endpoint, time, event, log):
    data = ctx.data
    summary = ui.followed_up(ctx, time, event, (*IPTW_EXPOSURES, *CONFOUNDERS))
    coverage = {c: share for c, (share, _) in summary.items()}
    exposures = [c for c in IPTW_EXPOSURES if coverage.get(c, 0) > 0 and summary[c][1] == 2]
    if not exposures:
        st.info("No two-level exposure (e.g. HER2 or ER status) is recorded for the patients with "
                "follow-up in this selection.")
        return
    c1, c2, c3 = st.columns(3)
    with c1:
        exposure = ui.selectbox("Exposure", exposures, key="surv_iptw_exposure",
                                format_func=schema.column_label)
    levels = ctx.levels(exposure)
    with c2:
        reference = ui.selectbox("Reference (unexposed)", levels, key="surv_iptw_reference")
    with c3:
        truncation = ui.selectbox("Weight truncation", list(TRUNCATION), key="surv_iptw_trunc")
    related = {"er_status", "hr_status", "er_percent", "pr_status"} if exposure in (
        "er_status", "hr_status", "pr_status") else set()
    candidates = [c for c in CONFOUNDERS if coverage.get(c, 0) > 0 and c != exposure
                  and (c in ("age", "er_percent") or len(ctx.levels(c)) >= 2)]
    # Default: the usual prognostic factors that are recorded for most patients followed up.
    default = [c for c in ("age", "grade", "t_stage", "n_stage", "er_status") if c in candidates
               and c not in related and coverage[c] >= 0.8]
    confounders = ui.multiselect("Confounders (propensity model)", candidates, key="surv_iptw_conf",
                                 default=default, format_func=schema.column_label)
    st.caption("pCR is not offered as an exposure: it is known only at surgery (immortal-time bias).")
    if not confounders:
        st.info("Choose at least one confounder.")
        return
    complete = int(data[[time, event, exposure, *confounders]].notna().all(axis=1).sum())
    if complete < 20:
        st.info(f"Only {complete} patients have follow-up, {schema.column_label(exposure)} and every "
                "chosen confounder: too few to estimate weights. Choose confounders recorded for "
                "more patients, or see the multiple-imputation panel.")
        return
    label = ctx.time_label(endpoint)
    trunc = TRUNCATION[truncation]
    result = ctx.run("survival.iptw_kaplan_meier", time=time, event=event, exposure=exposure,
                     confounders=confounders, reference=reference, truncate=trunc)
    ui.chart(f"iptw_{endpoint}", figures.adjusted_figure, result, unadjusted=result.unadjusted,
             time_label=label)
    w = result.weights
    info = w.truncation
    trunc_text = ("no truncation" if info["quantiles"] is None else
                  f"{info['n_truncated']:,} weights truncated to [{info['lower']:.3g}, "
                  f"{info['upper']:.3g}]")
    st.caption(f"{result.exclusions.describe()}. Stabilised weights from a logistic propensity "
               f"model; {trunc_text}; weights range {w.summary['min'].min():.3g}–"
               f"{w.summary['max'].max():.3g}. "
               "Solid: weighted Kaplan–Meier with robust 95% CIs (as R survfit(weights=)); dashed: "
               "unadjusted Kaplan–Meier of the same patients.")
    worst = float(w.balance["smd_after"].abs().max())
    if worst > figures.BALANCE_THRESHOLD:
        st.warning(f"Balance is incomplete after weighting (largest |SMD| = {worst:.2f} > 0.1): "
                   "residual confounding is likely; add the unbalanced covariate or restrict the "
                   "cohort.")
    ui.chart(f"iptw_balance_{endpoint}", figures.balance_figure, w.balance)
    ui.table(w.balance, f"iptw_balance_{endpoint}", caption="Standardised mean differences before "
             "and after weighting (denominator: pooled SD before weighting).")
    ui.table(w.summary, f"iptw_weights_{endpoint}", caption="Weights per group (ESS: Kish effective "
             "sample size).")
    ui.table(result.rmst, f"iptw_rmst_{endpoint}",
             caption=f"Adjusted restricted mean survival time to τ = {result.tau:.1f} months.")
    ui.table(result.rmst_difference, f"iptw_rmst_diff_{endpoint}",
             caption="Difference with robust 95% CI (weights treated as known).")
    log.append({"kind": "iptw_km", "endpoint": endpoint, "exposure": exposure,
                "confounders": confounders, "reference": reference, "truncate": trunc,
                "tau": result.tau})


def imputation_panel(ctx, endpoint, time, event, log):
    data = ctx.data
    options = [c for c in ("er_category", "er_status", "her2_status", "hr_status", "pr_status", "arm",
                           "grade", "t_stage", "n_stage", "study", "age", "er_percent")
               if c in data.columns  # two levels or more, or any value of a continuous one
               and (len(ctx.levels(c)) >= 2 if c not in ("age", "er_percent") else data[c].notna().any())]
    default = [t for t in (st.session_state.get("surv_terms") or []) if t in options] or options[:2]
    terms = ui.multiselect("Cox model terms", options, key="surv_mi_terms", default=default,
                           format_func=schema.column_label)
    if not terms:
        return
    usable = data.loc[data[[time, event]].notna().all(axis=1).to_numpy(), terms]  # those followed up
    missing = usable.isna().sum()
    incomplete = int(usable.isna().any(axis=1).sum())
    st.markdown(f"{incomplete:,} of {len(usable):,} patients with follow-up miss at least one term ("
                + ", ".join(f"{schema.column_label(c)}: {int(n):,}" for c, n in missing.items())
                + "). A complete-case analysis drops them.")
    if incomplete == 0:
        st.info("No missing values in these terms: imputation would change nothing.")
        return
    m = int(ui.selectbox("Number of imputations", [5, 10, 20, 40], key="surv_mi_m", default=10))
    request = (ctx.cohort.token, ctx.flt, endpoint, tuple(terms), m)
    if st.button("Run multiple imputation", key="surv_mi_run"):
        st.session_state["_mi_request"] = request
    if st.session_state.get("_mi_request") != request:
        st.caption("Imputation fits a model per incomplete variable and cycle; it runs on request.")
        return
    result = ctx.run("imputation.compare_cox", time=time, event=event, terms=terms, n_imputations=m)
    ui.table(result.table, f"mi_cox_{endpoint}",
             caption=f"Hazard ratios: complete case (n = {result.n_complete:,}) and pooled over "
                     f"{result.n_imputations} imputations (n = {result.n_imputed:,}); "
                     "t-based CIs with Barnard–Rubin df.")
    ui.table(result.missing, f"mi_missing_{endpoint}")
    st.caption(ui.plain(result.description))
    log.append({"kind": "imputation_cox", "endpoint": endpoint, "terms": terms,
                "n_imputations": m, "description": result.description})

ctx = ui.sidebar()
ui.page_header(
    ctx,
    "Survival",
    "Kaplan–Meier curves with pointwise confidence bands and numbers at risk, log-rank tests, Cox "
    "models (Efron ties, as R) with a proportional-hazards check, and the landmark analysis of pCR.",
)
data = ctx.data
endpoints = [e for e in schema.available_endpoints(data.columns) if data[f"{e}_event"].notna().any()]
if not endpoints:
    st.info("This cohort has no survival endpoint (time and event columns), so survival views are "
            "not available for it.")
    ui.finish()
    st.stop()

top = st.columns(4)
with top[0]:
    endpoint = ui.selectbox("Endpoint", endpoints, key="surv_ep", format_func=schema.ENDPOINT_LABELS.get)
groupings = [c for c in ("er_category", "er_status", "her2_status", "her2_category", "hr_status", "arm",
                         "regimen_class", "pcr", "rcb_class", "study", "grade", "t_stage", "n_stage",
                         "er_status_recorded", "hr_status_recorded") if c in data.columns
             and len(ctx.levels(c)) >= 2]
with top[1]:
    by = ui.selectbox("Compare", ["(none)", *groupings], key="surv_by",
                      default="er_category" if "er_category" in groupings else "(none)",
                      format_func=lambda c: c if c == "(none)" else schema.column_label(c))
with top[2]:
    conf_type = ui.selectbox("CI type", ["log-log", "log", "plain"], key="surv_ci",
                             help="R survfit's default is 'log'; 'log-log' keeps bands inside [0, 1].")
with top[3]:
    horizon = ui.number("Milestone (months)", key="surv_at", default=60.0, min_value=1.0)
time, event = f"{endpoint}_months", f"{endpoint}_event"
group = None if by == "(none)" else by
analyses = []
km = km_landmark = model = None  # a panel that fails (e.g. a refused pCR exposure) leaves them None


def landmark_caption(info: dict | None) -> None:
    """Say how a view with pCR as exposure was landmarked (and warn when it is only a fallback)."""
    if info is None:
        return
    st.caption(ui.plain(info["note"]))
    if info.get("warning"):
        st.warning(ui.plain(info["warning"]))


competing_log = []  # analyses of the data with their competing causes
competing = ui.has_competing_causes(ctx, endpoint)
if competing:
    full_ctx, ctx = ctx, ui.cause_specific(ctx, endpoint)  # panels below: competing deaths censored
    with ui.panel("Cumulative incidence (competing risks)"):
        competing_risks_panel(full_ctx, endpoint, time, event, group, horizon,
                              full_ctx.time_label(endpoint), conf_type, competing_log)
    st.info(f"Below, {schema.cause_label(endpoint, 2)} is censored: Kaplan–Meier, log-rank and "
            f"Cox describe the cause-specific hazard of {schema.cause_label(endpoint, 1)}.")

with ui.panel("Kaplan–Meier"):
    km, km_landmark = ctx.run_survival("survival.kaplan_meier", time=time, event=event, uses=[group],
                                       by=group, conf_type=conf_type)
    label = ctx.time_label(endpoint, landmarked=km_landmark is not None)
    ui.chart(f"km_{endpoint}", figures.km_figure, km, time_label=label)
    landmark_caption(km_landmark)
    st.caption(f"{km.exclusions.describe()}. Pointwise {conf_type} 95% CI (Greenwood variance).")
    ui.table(km.medians, f"km_medians_{endpoint}", missing=ui.MEDIAN_MISSING,
             caption="Median survival (months) with 95% CI: 'not reached' when the curve does not "
             "fall below 50% ('—': a confidence limit not reached).")
    analyses.append({"kind": "kaplan_meier", "endpoint": endpoint, "by": group, "conf_type": conf_type,
                     **({"landmark": ctx.landmark_spec} if km_landmark else {})})

if group is not None:
    with ui.panel("Log-rank test"):
        test, _ = ctx.run_survival("survival.logrank", time=time, event=event, uses=[group], by=group,
                                   pairwise=True)
        small = [ui.small_group_note(int(r.n), int(r.observed)) for r in test.table.itertuples()]
        small = [s for s in small if s]
        if small:
            st.warning("At least one group is too small for a valid test: " + " ".join(small))
        else:
            st.markdown(f"χ² = {test.statistic:.2f} on {test.dof} df, **p = {test.p_value:.3g}**")
        ui.table(test.table, f"logrank_{endpoint}")
        if test.pairwise is not None and len(test.pairwise) > 1 and not small:
            ui.table(test.pairwise, f"logrank_pairwise_{endpoint}", caption="Pairwise log-rank, Holm-adjusted.")
        analyses.append({"kind": "logrank", "endpoint": endpoint, "by": group, "pairwise": True,
                         "adjust": "holm", **({"landmark": ctx.landmark_spec} if km_landmark else {})})
    with ui.panel("Log-rank test stratified by study / weighted"):
        weighted_logrank_panel(ctx, endpoint, time, event, group, analyses)

with ui.panel("Cox proportional hazards"):
    options = list(dict.fromkeys([*groupings, *[c for c in ("age", "er_percent") if c in data.columns]]))
    default_terms = [t for t in ("er_category", "arm", "age") if t in options] or options[:1]
    terms = ui.multiselect("Terms", options, key="surv_terms", default=default_terms,
                           format_func=schema.column_label)
    if terms:
        model, cox_landmark = ctx.run_survival("survival.cox", time=time, event=event, uses=terms,
                                               terms=terms)
        landmark_caption(cox_landmark)
        st.markdown(f"n = {model.n:,}, events = {model.events:,}; likelihood-ratio test "
                    f"χ² = {model.lr_statistic:.2f} on {model.lr_dof} df, p = {model.lr_p_value:.3g}")
        for caution in model.warnings:
            st.warning(caution)
        ui.table(model.table, f"cox_{endpoint}", caption="Hazard ratios with Wald 95% CIs (Efron ties).")
        ui.table(model.ph_test, f"cox_zph_{endpoint}",
                 caption="Proportional-hazards check: scaled Schoenfeld residuals vs KM-transformed time "
                         "(as R cox.zph).")
        analyses.append({"kind": "cox", "endpoint": endpoint, "terms": terms, "ties": "efron",
                         "epv": round(model.epv, 2),
                         **({"landmark": ctx.landmark_spec} if cox_landmark else {})})
        doubtful = [t for t in terms if t != group and model.ph_p_value(t) < 0.05]
        if doubtful:
            st.caption("Proportional hazards doubtful (p < 0.05) for: " + ", ".join(
                f"{schema.column_label(t)} (p = {model.ph_p_value(t):.3g})" for t in doubtful))

if group is not None:
    with ui.panel(f"Proportional hazards for {schema.column_label(group)}"):
        # The fallback is decided by the PH test of the variable compared, not by the global test
        # of a model that may hold other terms: from the Cox model above when it includes it,
        # else from a Cox model of that variable alone.
        if model is not None and group in terms:
            ph_p, where = model.ph_p_value(group), "its term in the Cox model above"
        else:
            alone, _ = ctx.run_survival("survival.cox", time=time, event=event, uses=[group], terms=[group])
            ph_p, where = alone.ph_p_value(group), f"a Cox model of {schema.column_label(group)} alone"
        if not ph_p < 0.05:
            st.caption(f"No evidence against proportional hazards for {schema.column_label(group)} "
                       f"(cox.zph p = {ph_p:.3g}, from {where}): its hazard ratio summarises the curves.")
        else:
            st.warning(f"Proportional hazards is doubtful for {schema.column_label(group)} (cox.zph "
                       f"p = {ph_p:.3g}, from {where}): a single hazard ratio misdescribes its effect. "
                       "Restricted mean survival and milestone survival follow.")
            if km is None:
                km, _ = ctx.run_survival("survival.kaplan_meier", time=time, event=event, uses=[group],
                                         by=group, conf_type=conf_type)
            tau = float(km.table.groupby("group")["time"].max().min())
            rmst, _ = ctx.run_survival("survival.rmst", time=time, event=event, uses=[group], by=group, tau=tau)
            ui.table(rmst.table, f"rmst_{endpoint}", caption=f"Restricted mean survival time to τ = {tau:.1f} months.")
            ui.table(rmst.difference, f"rmst_diff_{endpoint}")
            stone, _ = ctx.run_survival("survival.milestone", time=time, event=event, uses=[group], by=group,
                                        at=horizon)
            ui.table(stone.table, f"milestone_{endpoint}", caption=f"Survival at {horizon:g} months.")
            ui.table(stone.difference, f"milestone_diff_{endpoint}")
            extra = {"landmark": ctx.landmark_spec} if group in ("pcr", "rcb_class") else {}
            analyses += [{"kind": "rmst", "endpoint": endpoint, "by": group, "tau": tau, **extra},
                         {"kind": "milestone", "endpoint": endpoint, "by": group, "at": horizon, **extra}]

with ui.panel("Is pCR equally prognostic across ER groups? (landmark at surgery)"):
    er_groups = [c for c in ("er_category", "er_status", "hr_status", "er_status_recorded") if c in groupings]
    result = None
    if "pcr" not in data.columns or not er_groups or data["pcr"].notna().sum() == 0:
        st.info("Needs pCR and an ER grouping; this selection lacks one of them.")
    else:
        er_group = ui.selectbox("ER grouping", er_groups, key="surv_pcr_er", format_func=schema.column_label,
                                help="ER category keeps ER-low as its own level.")
        options = {"landmark": "surgery", "at": ctx.landmark_fallback, "time_origin": ctx.cohort.time_origin,
                   "er": er_group}
        try:
            result = ctx.run("prognosis.pcr_by_er", time=time, event=event, **options)
        except AnalysisError as refused:  # e.g. no surgery times and no fallback: say why
            st.warning(ui.plain(refused))
    if result is not None:
        ui.chart(f"pcr_by_er_{endpoint}", figures.forest_figure, result, measure="HR")
        landmark_caption(result.attrs["landmark"])
        ui.table(result, f"pcr_by_er_{endpoint}",
                 caption=f"Interaction p: likelihood-ratio test of pCR × {schema.column_label(er_group)}. "
                         + ctx.pcr_caption())
        analyses.append({"kind": "pcr_by_er", "endpoint": endpoint, **options})
    if result is not None and result.attrs["landmark"]["method"] == "surgery" and ui.toggle(
            "Sensitivity: a fixed 6-month landmark, and no landmark (biased)", key="surv_pcr_sensitivity",
            help="Refits the same model with everyone's clock started at 6 months, and with no landmark "
                 "at all, to show how much the choice of landmark matters here (computed when switched on)."):
        landmark_sensitivity(ctx, result, options, time, event, endpoint)

with ui.panel_on_request("Adjusted survival curves (inverse probability of treatment weighting)",
                         key="surv_iptw_open") as shown:
    if shown:
        iptw_panel(ctx, endpoint, time, event, analyses)

with ui.panel("Missing covariates: complete-case vs multiple imputation"):
    imputation_panel(ctx, endpoint, time, event, analyses)

if competing:
    analyses = [{**a, "cause_specific": True} for a in analyses]
ui.register_analysis("survival", competing_log + analyses)
ui.finish()
