"""ER-driven subset page: which HER2+ tumours behave like ER-driven disease (issue 13, part 3)."""

import streamlit as st

import ui
from her2er_dash import figures, schema, subsets, wording

ctx = ui.sidebar()
ui.page_header(
    ctx,
    "ER-driven subset",
    "Within HER2-positive disease: pCR by BluePrint or PAM50 subtype and hormone-receptor status, "
    "along continuous signatures (luminal, ESR1/PGR, HER2), over two signatures at once, and by "
    "regimen group — to find the HER2+ tumours that behave like ER-driven (luminal) disease.",
)
with st.expander("What this page shows, and what it cannot show"):
    st.caption(
        "**What this page shows:** associations between tumour biology and pCR (or survival) within "
        "one cohort, with 95% confidence intervals. **What it does not show:** treatment benefit. A "
        "subtype with little pCR after chemotherapy is not thereby shown to do as well without it; "
        "only a randomised chemotherapy-free arm can show that. Groups with fewer than 10 patients or "
        "5 responders/non-responders get counts but no p-value, models with fewer than 10 of the rarer "
        "outcome per coefficient are flagged, and with many tests on one page some small p-values are "
        "expected by chance."
    )
data = ctx.data
ISPY2 = "ispy2"
st.session_state["_ers_offered"] = False
on_ispy2 = ctx.cohort.token == f"bundled:{ISPY2}"
available = ctx.run("subsets.availability").set_index("analysis")


def offer_ispy2(where: str) -> None:
    """One button per page run (at the first place that needs it) to switch to I-SPY 2."""
    if not on_ispy2 and not st.session_state.get("_ers_offered"):
        st.session_state["_ers_offered"] = True
        ui.open_bundled_button(ISPY2, "Open the I-SPY 2 cohort (BluePrint, PAM50 and signatures)",
                               widget_key=f"ers_open_ispy2_{where}")


def explain_missing(analysis: str, where: str) -> bool:
    """Say what the cohort lacks for ``analysis``; True when it can be shown."""
    row = available.loc[analysis]
    if row["available"]:
        return True
    st.info(f"Not available for this cohort: it needs {row['missing']}. "
            f"(This analysis uses {row['needs']}.)")
    if analysis == "Survival by subtype":
        st.caption("Among the bundled cohorts only the curated GEO studies have subtypes (PAM50) and "
                   "survival in the same patients (RFS and OS in GSE22226, the expression subset of "
                   "I-SPY 1: 43 HER2+ patients, 13 RFS events). I-SPY 2 has no survival data.")
        if ctx.cohort.token != "bundled:curated_neoadjuvant":
            ui.open_bundled_button("curated_neoadjuvant", "Open the curated GEO studies",
                                   widget_key=f"ers_open_curated_{where}")
    else:
        offer_ispy2(where)
    return False


if not available["available"].any():
    lines = "\n".join(f"- **{name}** needs {row['missing']}" for name, row in available.iterrows())
    st.info("This cohort has none of the columns the subset explorer needs:\n\n" + lines + "\n\n"
            "The bundled I-SPY 2 cohort has BluePrint and PAM50 subtypes, HR status, regimen "
            "classes and ten expression and protein signatures; an upload with such columns works "
            "too (map them on the Cohort page).")
    offer_ispy2("top")
    ui.finish()
    st.stop()

has_her2 = "her2_status" in data.columns and data["her2_status"].notna().any()
her2 = "positive" if has_her2 else None
n_her2 = int((data["her2_status"] == "positive").sum()) if has_her2 else len(data)
if has_her2 and n_her2 == 0:
    st.info("No HER2-positive patient is in the current selection, and this page analyses HER2+ "
            "disease: clear the HER2 filters in the sidebar.")
    ui.finish()
    st.stop()
if has_her2:
    st.markdown(f"**{n_her2:,} HER2-positive patients** in the current selection are analysed below "
                "(HER2-negative patients and those without a HER2 status are counted as excluded).")
else:
    st.warning("This cohort has no HER2 status, so every patient is analysed (as for a HER2+ trial). "
               "Map a HER2 status column on the Cohort page to restrict the analyses to HER2+ disease.")
analyses = []


def usable(analysis: str, among=None) -> list[str]:
    """The columns the cohort offers for ``analysis`` (optionally only those in ``among``)."""
    found = [c for c in available.loc[analysis, "columns"].split(", ") if c]
    return [c for c in found if among is None or c in among]


markers = usable("pCR along a signature")
defaults = subsets.default_markers(markers)

with ui.panel("pCR by molecular subtype and hormone-receptor status"):
    if explain_missing("pCR by subtype x HR status", "subtype"):
        c1, c2 = st.columns(2)
        subtype_cols = usable("pCR by subtype x HR status", subsets.SUBTYPE_COLUMNS)
        receptor_cols = usable("pCR by subtype x HR status", subsets.RECEPTOR_COLUMNS)
        with c1:
            subtype = ui.selectbox("Subtype", subtype_cols, key="ers_subtype",
                                   format_func=schema.column_label)
        with c2:
            receptor = ui.selectbox("Split by", receptor_cols, key="ers_receptor",
                                    format_func=schema.column_label)
        res = ctx.run("subsets.subtype_response", subtype=subtype, receptor=receptor, her2=her2)
        ui.chart("subset_subtype_rates", figures.subtype_rates_figure, res)
        ui.table(res.table, "subset_subtype_rates",
                 caption=f"pCR with 95% Wilson CI; 'all' rows pool the levels. "
                         f"{res.exclusions.describe()}. 'small': too few patients or responders "
                         "for a p-value.")
        ui.table(res.contrasts, "subset_subtype_contrasts",
                 caption=f"Each subtype against {res.reference} within each "
                         f"{schema.column_label(receptor)} stratum: "
                         "risk difference (Newcombe), odds ratio (Wald), Fisher's exact p "
                         "(withheld for small groups).")
        readable = {f"{subtype}, adjusted for {receptor}":
                    f"does {schema.column_label(subtype)} add to {schema.column_label(receptor)}?",
                    f"{receptor}, adjusted for {subtype}":
                    f"does {schema.column_label(receptor)} add to {schema.column_label(subtype)}?"}
        for row in res.tests.itertuples():
            result = ("not tested" if row.p_value != row.p_value else
                      f"χ² = {row.statistic:.2f} on {row.df} df, p = {ui.format_p(row.p_value)}")
            st.markdown(f"Likelihood-ratio test, **{ui.plain(readable.get(row.test, row.test))}** "
                        f"{result} (n = {row.n:,})" + (f" — {ui.plain(row.note)}" if row.note else ""))
        analyses.append({"kind": "subtype_response", "subtype": subtype, "receptor": receptor,
                         "her2": her2})

with ui.panel("pCR along a continuous signature"):
    if explain_missing("pCR along a signature", "signature"):
        c1, c2 = st.columns(2)
        with c1:
            signature = ui.selectbox("Signature", markers, key="ers_signature",
                                     default=defaults["luminal"], format_func=schema.column_label)
        with c2:
            df_spline = int(ui.selectbox("Spline degrees of freedom", [1, 2, 3, 4, 5],
                                         key="ers_df", default=3))
        dose = ctx.run("subsets.signature_response", signature=signature, df_spline=df_spline,
                       her2=her2)
        ui.chart("subset_signature", figures.dose_response_figure, dose)
        st.caption(f"Logistic regression on a natural cubic spline of {schema.column_label(signature)} ({dose.df_spline} "
                   f"df). Overall p = {ui.format_p(dose.p_overall)}; non-linearity p = "
                   f"{ui.format_p(dose.p_nonlinear)}. {dose.exclusions.describe()}. "
                   + ui.plain(dose.note))
        ui.table(dose.observed, "subset_signature_observed",
                 caption="Observed pCR in quintiles of the signature (Wilson 95% CI).")
        analyses.append({"kind": "signature_response", "signature": signature,
                         "df_spline": df_spline, "her2": her2})
        # one spline per signature: quick for trial-sized cohorts, seconds per signature at 1M
        if ui.toggle(f"Screen every signature ({len(markers)} spline models, Holm-adjusted)",
                     key="ers_scan", default=n_her2 <= 100_000):
            scan = ctx.run("subsets.signature_scan", signatures=markers, df_spline=df_spline,
                           her2=her2)
            ui.table(scan, "subset_signature_scan",
                     caption=f"{int(scan['p_overall'].notna().sum())} signatures screened: read "
                             "the Holm-adjusted p-values. Odds ratio per SD from a linear term "
                             "(below 1: less pCR at higher values).")
            analyses.append({"kind": "signature_scan", "signatures": markers,
                             "df_spline": df_spline, "her2": her2})

with ui.panel("Two signatures at once"):
    if explain_missing("Two-signature surface", "surface"):
        c1, c2, c3 = st.columns(3)
        with c1:
            x = ui.selectbox("Across (x)", markers, key="ers_x", default=defaults["luminal"],
                             format_func=schema.column_label)
        others = [m for m in markers if m != x]
        with c2:
            y = ui.selectbox("Up (y)", others, key="ers_y",
                             default=defaults["her2"] if defaults["her2"] in others else None,
                             format_func=schema.column_label)
        with c3:
            bins = int(ui.selectbox("Bins per axis", [2, 3, 4], key="ers_bins", default=3))
        surf = ctx.run("subsets.signature_surface", x=x, y=y, bins=bins, her2=her2)
        ui.chart("subset_surface", figures.surface_figure, surf)
        st.caption(
            f"Colour and contours: fitted P(pCR) from logit P = b0 + b1·x + b2·y + b3·x·y, drawn only "
            f"where at least 3 patients lie within half an SD (blank = extrapolation). Boxes: observed "
            f"rate and pCR/n per quantile bin (counts only below 10 patients). Product term "
            f"(does the effect of one signature depend on the other?): LR χ² = "
            f"{surf.lr_interaction:.2f}, p = {ui.format_p(surf.p_interaction)}; whole model p = "
            f"{ui.format_p(surf.p_overall)}; {surf.epv:.0f} of the rarer outcome per coefficient. "
            f"{surf.exclusions.describe()}."
        )
        for warning in surf.warnings:
            st.warning(ui.plain(warning))
        ui.table(surf.observed, "subset_surface_bins")
        ui.table(surf.coefficients, "subset_surface_model",
                 caption="Surface model coefficients (Wald 95% CI), per unit of each signature.")
        analyses.append({"kind": "signature_surface", "x": x, "y": y, "bins": bins, "her2": her2})

with ui.panel("Does the association depend on the regimen?"):
    if explain_missing("Marker x regimen interaction", "regimen"):
        regimen_cols = usable("Marker x regimen interaction", subsets.REGIMEN_COLUMNS)
        c1, c2, c3 = st.columns(3)
        with c1:
            regimen = ui.selectbox("Regimen column", regimen_cols, key="ers_regimen",
                                   format_func=schema.column_label)
        groupings = ["payload", "levels"] if regimen == "regimen_class" else ["levels"]
        with c2:
            grouping = ui.selectbox(
                "Groups", groupings, key="ers_grouping",
                format_func={"payload": "Chemotherapy-free / ADC / chemotherapy",
                             "levels": "Each level as recorded"}.get)
        with c3:
            model = ui.selectbox("Model", ["separate", "joint"], key="ers_model",
                                 format_func={"separate": "One model per marker",
                                              "joint": "All markers together"}.get)
        default_markers = list(dict.fromkeys(m for m in defaults.values() if m))
        chosen = ui.multiselect("Markers (ER level, luminal signature, HER2 level)", markers,
                                key="ers_markers", default=default_markers,
                                format_func=schema.column_label)
        groups = ctx.run("subsets.regimen_group_table", regimen=regimen, grouping=grouping, her2=her2)
        st.info(ui.plain(groups.attrs["contrast"]))
        if on_ispy2:
            st.caption("In I-SPY 2 every arm's 12-week block (the regimen class) was followed by "
                       "doxorubicin–cyclophosphamide before surgery, and arms were adaptively "
                       "randomised within subtypes against a shared control: the only block without "
                       "paclitaxel is T-DM1 + pertuzumab, an antibody–drug conjugate.")
        ui.table(groups, "subset_regimen_groups", caption=groups.attrs["exclusions"].describe())
        modelled = int((~groups["small"]).sum())
        if len(groups) < 2:
            st.info("Every analysed patient is in one regimen group, so an interaction by regimen "
                    "cannot be estimated here.")
        elif modelled < 2:
            st.info("Fewer than two regimen groups have at least 10 patients and 5 responders and "
                    "non-responders: no interaction model.")
        elif not chosen:
            st.info("Choose at least one marker.")
        else:
            inter = ctx.run("subsets.regimen_interaction", markers=chosen, regimen=regimen,
                            grouping=grouping, model=model, her2=her2)
            ui.chart("subset_regimen_slopes", figures.slopes_figure, inter)
            n_tests = int(inter.tests["p_value"].notna().sum())
            st.markdown(f"**{wording.count(n_tests, 'likelihood-ratio test')}** below — at α = 0.05 "
                        f"about {wording.expected_by_chance(n_tests)} would be 'significant' by "
                        "chance alone. "
                        f"n = {inter.n:,}, pCR = {inter.events:,}.")
            for warning in inter.warnings:
                st.warning(ui.plain(warning))
            ui.table(inter.tests, "subset_regimen_tests",
                     caption="'interaction': does the marker's odds ratio differ between regimen "
                             "groups? 'association': the marker adjusted for regimen group.")
            ui.table(inter.slopes, "subset_regimen_slopes",
                     caption="Odds ratio of pCR per SD of the marker within each regimen group "
                             "(Wald 95% CI, from the interaction model).")
            with st.expander("Model coefficients"):
                ui.table(inter.coefficients, "subset_regimen_coefficients")
            analyses.append({"kind": "regimen_interaction", "markers": chosen, "regimen": regimen,
                             "grouping": grouping, "model": model, "her2": her2})

with ui.panel("Survival by subtype within HER2+ disease"):
    if explain_missing("Survival by subtype", "survival"):
        endpoints = usable("Survival by subtype", schema.ENDPOINTS)
        subtype_cols = usable("Survival by subtype", subsets.SUBTYPE_COLUMNS)
        c1, c2 = st.columns(2)
        with c1:
            endpoint = ui.selectbox("Endpoint", endpoints, key="ers_endpoint",
                                    format_func=schema.ENDPOINT_LABELS.get)
        with c2:
            surv_subtype = ui.selectbox("Subtype", subtype_cols, key="ers_surv_subtype",
                                        format_func=schema.column_label)
        km = ctx.run("subsets.subtype_survival", time=schema.time_column(endpoint),
                     event=schema.event_column(endpoint), subtype=surv_subtype, her2=her2)
        label = schema.time_axis_label(ctx.cohort.time_origin, endpoint)
        ui.chart("subset_survival", figures.km_figure, km.km, time_label=label)
        if km.note:
            st.warning(ui.plain(km.note[0].upper() + km.note[1:]) + ": the curves are descriptive.")
        else:
            st.markdown(f"Log-rank χ² = {km.logrank_statistic:.2f} on {km.logrank_df} df, "
                        f"p = {ui.format_p(km.logrank_p)}")
        ui.table(km.groups, "subset_survival_groups", missing=ui.MEDIAN_MISSING,
                 caption=f"{km.exclusions.describe()}. Median survival (months) with 95% CI "
                         "('not reached' when the curve stays above 50%).")
        analyses.append({"kind": "subtype_survival", "endpoint": endpoint, "subtype": surv_subtype,
                         "her2": her2})

ui.register_analysis("subsets", analyses)
ui.finish()
