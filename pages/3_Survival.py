"""Survival page: Kaplan-Meier, log-rank, Cox with PH check, RMST/milestone, pCR -> outcome by ER."""

import pandas as pd
import streamlit as st

import ui
from her2er_dash import figures, schema
from her2er_dash.errors import AnalysisError

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


with ui.panel("Kaplan–Meier"):
    km, km_landmark = ctx.run_survival("survival.kaplan_meier", time=time, event=event, uses=[group],
                                       by=group, conf_type=conf_type)
    label = ctx.time_label(endpoint, landmarked=km_landmark is not None)
    ui.figure(figures.km_figure(km, time_label=label, presenter=ctx.presenter, watermark=ctx.watermark),
              f"km_{endpoint}")
    landmark_caption(km_landmark)
    st.caption(f"{km.exclusions.describe()}. Pointwise {conf_type} 95% CI (Greenwood variance).")
    ui.table(km.medians, f"km_medians_{endpoint}", caption="Median survival (months) with 95% CI; "
             "empty when the curve does not fall below 50%.")
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
        ui.figure(figures.forest_figure(result, measure="HR", presenter=ctx.presenter,
                                        watermark=ctx.watermark), f"pcr_by_er_{endpoint}")
        landmark_caption(result.attrs["landmark"])
        ui.table(result, f"pcr_by_er_{endpoint}",
                 caption=f"Interaction p: likelihood-ratio test of pCR × {schema.column_label(er_group)}. "
                         + ctx.pcr_caption())
        analyses.append({"kind": "pcr_by_er", "endpoint": endpoint, **options})
    if result is not None and result.attrs["landmark"]["method"] == "surgery":
        with st.expander("Sensitivity: a fixed 6-month landmark, and no landmark (biased)"):
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

ui.register_analysis("survival", analyses)
ui.finish()
