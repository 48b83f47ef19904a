"""Survival page: Kaplan-Meier, log-rank, Cox with PH check, RMST/milestone, pCR -> outcome by ER."""

import streamlit as st

import ui
from her2er_dash import figures, schema

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
                         "regimen_class", "pcr", "study", "grade", "t_stage", "n_stage") if c in data.columns
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
label = schema.time_axis_label(ctx.cohort.time_origin, endpoint)
analyses = []

with ui.panel("Kaplan–Meier"):
    km = ctx.run("survival.kaplan_meier", time=time, event=event, by=group, conf_type=conf_type)
    ui.figure(figures.km_figure(km, time_label=label, presenter=ctx.presenter, watermark=ctx.watermark),
              f"km_{endpoint}")
    st.caption(f"{km.exclusions.describe()}. Pointwise {conf_type} 95% CI (Greenwood variance).")
    ui.table(km.medians, f"km_medians_{endpoint}", caption="Median survival (months) with 95% CI; "
             "empty when the curve does not fall below 50%.")
    analyses.append({"kind": "kaplan_meier", "endpoint": endpoint, "by": group, "conf_type": conf_type})

if group is not None:
    with ui.panel("Log-rank test"):
        test = ctx.run("survival.logrank", time=time, event=event, by=group, pairwise=True)
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
                         "adjust": "holm"})

with ui.panel("Cox proportional hazards"):
    options = list(dict.fromkeys([*groupings, *[c for c in ("age", "er_percent") if c in data.columns]]))
    default_terms = [t for t in ("er_category", "arm", "age") if t in options] or options[:1]
    terms = ui.multiselect("Terms", options, key="surv_terms", default=default_terms,
                           format_func=schema.column_label)
    if terms:
        model = ctx.run("survival.cox", time=time, event=event, terms=terms)
        st.markdown(f"n = {model.n:,}, events = {model.events:,}; likelihood-ratio test "
                    f"χ² = {model.lr_statistic:.2f} on {model.lr_dof} df, p = {model.lr_p_value:.3g}")
        ui.table(model.table, f"cox_{endpoint}", caption="Hazard ratios with Wald 95% CIs (Efron ties).")
        ui.table(model.ph_test, f"cox_zph_{endpoint}",
                 caption="Proportional-hazards check: scaled Schoenfeld residuals vs KM-transformed time "
                         "(as R cox.zph).")
        analyses.append({"kind": "cox", "endpoint": endpoint, "terms": terms, "ties": "efron"})
        global_p = float(model.ph_test.loc[model.ph_test["term"] == "GLOBAL", "p"].iloc[0])
        if global_p < 0.05 and group is not None:
            st.warning(f"Proportional hazards is doubtful (global p = {global_p:.3g}): a single hazard ratio "
                       "misdescribes the effect. Restricted mean survival and milestone survival follow.")
            tau = float(km.table.groupby("group")["time"].max().min())
            rmst = ctx.run("survival.rmst", time=time, event=event, by=group, tau=tau)
            ui.table(rmst.table, f"rmst_{endpoint}", caption=f"Restricted mean survival time to τ = {tau:.1f} months.")
            ui.table(rmst.difference, f"rmst_diff_{endpoint}")
            stone = ctx.run("survival.milestone", time=time, event=event, by=group, at=horizon)
            ui.table(stone.table, f"milestone_{endpoint}", caption=f"Survival at {horizon:g} months.")
            ui.table(stone.difference, f"milestone_diff_{endpoint}")
            analyses += [{"kind": "rmst", "endpoint": endpoint, "by": group, "tau": tau},
                         {"kind": "milestone", "endpoint": endpoint, "by": group, "at": horizon}]

with ui.panel("Is pCR equally prognostic in ER+ and ER− disease? (landmark at surgery)"):
    if "pcr" not in data.columns or "er_status" not in data.columns or data["pcr"].notna().sum() == 0:
        st.info("Needs pCR and ER status; this selection lacks one of them.")
    else:
        at = ui.number(f"Landmark at surgery ({schema.time_axis_label(ctx.cohort.time_origin).lower()})",
                       key="surv_landmark", default=6.0, min_value=0.0)
        st.caption("Patients with an event or censored before the landmark are excluded, so that pCR "
                   "(known only at surgery) is not credited with time before it was known.")
        result = ctx.run("prognosis.pcr_by_er", time=time, event=event, at=at)
        ui.figure(figures.forest_figure(result, measure="HR", presenter=ctx.presenter,
                                        watermark=ctx.watermark), f"pcr_by_er_{endpoint}")
        ui.table(result, f"pcr_by_er_{endpoint}",
                 caption=f"{result.attrs.get('landmark_note', '')} Interaction p: likelihood-ratio test "
                         "of pCR × ER status.")
        analyses.append({"kind": "pcr_by_er", "endpoint": endpoint, "at": at})

ui.register_analysis("survival", analyses)
ui.finish()
