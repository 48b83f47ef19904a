"""Response page: pCR rates, comparisons, ER dose-response, adjusted odds ratios, cut-points."""

import streamlit as st

import ui
from her2er_dash import figures, schema, wording

ctx = ui.sidebar()
ui.page_header(
    ctx,
    "Neoadjuvant response (pCR)",
    "Pathologic complete response by ER level and HER2 status, with score (Wilson) intervals by "
    "default. Groups with fewer than 10 patients are shown without tests.",
)
data = ctx.data
if "pcr" not in data.columns or data["pcr"].notna().sum() == 0:
    st.info("This cohort has no pCR data, so the response views are not available for it.")
    ui.finish()
    st.stop()

candidates = [
    c
    for c in ("er_category", "her2_status", "her2_category", "hr_status", "pr_status", "arm",
              "regimen_class", "blueprint_subtype", "pam50_subtype", "study", "grade", "t_stage",
              "n_stage", "er_status", "er_status_recorded", "hr_status_recorded")
    if c in data.columns and len(ctx.levels(c)) >= 2
]
analyses = []

with ui.panel("pCR rate by group"):
    left, right = st.columns([3, 1])
    with right:
        # ER category where the cohort has ER, else HR status (e.g. I-SPY 2 reports HR only)
        receptor = next((c for c in ("er_category", "hr_status") if c in candidates), None)
        default_by = [c for c in (receptor, "her2_status") if c in candidates]
        by = ui.multiselect("Group by", candidates, key="resp_by", default=default_by, max_selections=2,
                            format_func=schema.column_label)
        method = ui.selectbox(
            "Interval", ["wilson", "clopper-pearson", "jeffreys", "agresti-coull"], key="resp_ci"
        )
        level = ui.selectbox("Confidence level", ["95%", "90%", "99%"], key="resp_level")
    alpha = {"90%": 0.10, "95%": 0.05, "99%": 0.01}[level]
    rates = ctx.run("response.pcr_rates", by=by or None, method=method, alpha=alpha)
    with left:
        ui.chart("pcr_rates", figures.rates_figure, rates, x=by[0] if by else None,
                 color=by[1] if len(by) > 1 else None)
    ui.table(rates, "pcr_rates", caption=f"{rates.attrs['exclusions'].describe()}. {ctx.pcr_caption()}")
    analyses.append({"kind": "pcr_rates", "by": by or None, "method": method, "alpha": alpha})

with ui.panel("Compare two groups"):
    cols = st.columns(3)
    with cols[0]:
        group = ui.selectbox("Compare by", candidates, key="resp_cmp_by",
                             default="er_category" if "er_category" in candidates else None,
                             format_func=schema.column_label)
    levels = ctx.levels(group)
    with cols[1]:
        reference = ui.selectbox("Reference level", levels, key="resp_cmp_ref") if levels else None
    comparison = ctx.run("response.compare", group=group, reference=reference)
    small = comparison["small_group"] != ""
    if small.any():
        comparison = comparison.copy()
        comparison.loc[small, ["chi2", "chi2_p", "fisher_p"]] = float("nan")
        reasons = "; ".join(f"{r.level} vs {r.reference} ({r.small_group})"
                            for r in comparison[small].itertuples())
        st.warning(f"{wording.count(int(small.sum()), 'comparison')} "
                   f"{'involves' if small.sum() == 1 else 'involve'} a group with fewer than 10 patients, 5 "
                   f"responders or 5 non-responders: shown descriptively, without p-values. "
                   f"{ui.plain(reasons)}")
    ui.table(comparison, "pcr_compare",
             caption="Risk difference (Newcombe), risk and odds ratios (Wald, log scale), "
                     "Pearson chi-square without continuity correction, Fisher's exact test. "
                     + ctx.pcr_caption())
    analyses.append({"kind": "compare", "group": group, "reference": reference})

measures = [m for m in schema.available_er_measures(data.columns) if data[m].notna().sum() >= 20]
with ui.panel("pCR probability across ER level"):
    if not measures:
        st.info("No ER level measure with at least 20 patients in the current selection.")
    else:
        c1, c2 = st.columns(2)
        with c1:
            er = ui.selectbox("ER measure", measures, key="resp_dr_er", format_func=schema.ER_MEASURES.get)
        with c2:
            df_spline = int(ui.selectbox("Spline degrees of freedom", [1, 2, 3, 4, 5], key="resp_dr_df",
                                         default=3))
        dose = ctx.run("response.er_dose_response", er=er, df_spline=df_spline)
        ui.chart("er_dose_response", figures.dose_response_figure, dose)
        st.caption(
            f"Logistic regression on a natural cubic spline of {schema.ER_MEASURES.get(er, er)} "
            f"({df_spline} df). "
            f"Overall p = {dose.p_overall:.3g}; non-linearity p = {dose.p_nonlinear:.3g}. "
            + dose.exclusions.describe()
        )
        ui.table(dose.observed, "er_dose_response_observed")
        analyses.append({"kind": "dose_response", "er": er, "df_spline": df_spline})

with ui.panel("Adjusted odds ratios (logistic regression)"):
    term_options = [c for c in candidates + ["age", *measures] if c in data.columns]
    term_options = list(dict.fromkeys(term_options))
    # Several studies: adjust for study (arms are then many small, study-specific levels).
    adjust = "study" if "study" in candidates else "arm"
    default_terms = [t for t in (receptor, adjust, "age") if t in term_options]
    terms = ui.multiselect("Terms", term_options, key="resp_terms", default=default_terms,
                           format_func=schema.column_label)
    if terms:
        model = ctx.run("response.logistic", terms=terms)
        for caution in model.warnings:
            st.warning(caution)
        ui.table(model.table, "logistic",
                 caption=f"n = {model.n:,}, pCR events = {model.events:,}; LR test p = "
                         f"{model.lr_p_value:.3g}. {model.exclusions.describe()}. Wald 95% CIs. "
                         + ctx.pcr_caption())
        analyses.append({"kind": "logistic", "terms": terms, "epv": round(model.epv, 2)})
    else:
        st.info("Choose at least one term.")

with ui.panel("ER cut-point explorer"):
    if measures:
        er_cut = ui.selectbox("ER measure to dichotomise", measures, key="resp_cut_er",
                              format_func=schema.ER_MEASURES.get)
        cut = ctx.run("response.cutpoint_search", er=er_cut)
        st.markdown(
            f"Best cut-point **{schema.ER_MEASURES.get(cut.er, cut.er)} ≥ {cut.best_cut:g}** "
            f"(χ² = {cut.statistic:.2f}); naive p = "
            f"{cut.p_naive:.3g}, **p corrected for the search = {cut.p_lausen:.3g}** "
            f"(Lausen–Schumacher), permutation p = {cut.p_permutation:.3g} ({cut.n_perm:,} permutations)."
        )
        st.caption("The naive p-value ignores that the best of many cut-points was chosen; "
                   "only the corrected p-values are valid.")
        ui.table(cut.table, "er_cutpoints")
        analyses.append({"kind": "cutpoint", "er": er_cut})

ui.register_analysis("response", analyses)
ui.finish()
