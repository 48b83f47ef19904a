"""Evidence page: published HER2+ neoadjuvant trials, and two-stage meta-analysis across studies."""

import streamlit as st

import ui
from her2er_dash import datasets, figures, meta, schema

ctx = ui.sidebar()
ui.page_header(
    ctx,
    "Evidence",
    "Published pCR by hormone-receptor status in HER2+ neoadjuvant trials (each number with its source "
    "and verification level), and a two-stage meta-analysis across the studies of the current cohort.",
)
analyses = []

with ui.panel("Published trials: pCR in HR+ vs HR− HER2+ disease"):
    trials = datasets.published_trials()
    classes = [c for c in datasets.REGIMEN_CLASS_NAMES if (trials["regimen_class"] == c).any()]
    chosen = ui.multiselect("Regimen class", classes, key="ev_regimen", default=classes,
                            help="ADC arms (T-DM1) carry a cytotoxic payload: they are not 'anti-HER2 only'.")
    shown = trials[trials["regimen_class"].isin(chosen)]
    definitions = sorted(shown["pcr_definition"].astype(str).unique())
    if len(definitions) > 1:
        st.warning(
            f"These rows use {len(definitions)} pCR definitions ({', '.join(definitions)}). Rates are not "
            "directly comparable and are shown descriptively, not pooled."
        )
    secondary = int((shown["verification"] != "primary").sum())
    if secondary:
        st.caption(f"{secondary} of {len(shown)} rows were read in a review or report quoting the trial, not in "
                   "the trial's own paper (column 'verification'; where each number is printed: 'source_hr_pos', "
                   "'source_hr_neg').")
    if shown.empty:
        st.info("No published arm in the chosen regimen classes. Pick at least one class.")
    else:
        ui.figure(figures.published_figure(shown, presenter=ctx.presenter), "published_trials")
    ui.table(shown, "published_trials", caption="Source: data/published_trials.csv (see data/README.md). "
             "Counts are given only where a source printed them; they are never reconstructed from percentages.")
    paired = shown.dropna(subset=["pcr_rate_hr_pos", "pcr_rate_hr_neg"])
    if len(paired):
        gap = (paired["pcr_rate_hr_neg"] - paired["pcr_rate_hr_pos"]) * 100
        st.markdown(
            f"In **{len(paired)}** arms reporting both groups, pCR was higher in HR− tumours in "
            f"**{int((gap > 0).sum())}**; median difference **{gap.median():+.1f} percentage points** "
            f"(range {gap.min():+.1f} to {gap.max():+.1f}). Descriptive only: most sources give "
            "percentages without counts."
        )
    counted = shown.dropna(subset=["pcr_events_hr_neg", "n_hr_neg", "pcr_events_hr_pos", "n_hr_pos"])
    if len(counted) >= 2:
        arms = counted.assign(study=counted["trial"].str.split(" (", regex=False).str[0] + " · " + counted["arm"])
        pooled = meta.pool(
            arms.rename(columns={"pcr_events_hr_neg": "events_exp", "n_hr_neg": "n_exp",
                                 "pcr_events_hr_pos": "events_ref", "n_hr_pos": "n_ref"}),
            method="REML",
        )
        ui.figure(figures.meta_forest_figure(pooled, presenter=ctx.presenter), "published_pooled_or")
        ui.table(pooled.summary_frame(exponentiate=True), "published_pooled_or",
                 caption=f"Pooled odds ratio of pCR, HR− vs HR+ (REML), from the {len(counted)} arms that print "
                 "both counts. Few small arms: read as a sketch, not an estimate.")
    else:
        st.info(
            f"Only {len(counted)} arm(s) in this selection print pCR counts for both HR groups, so a pooled "
            "HR− vs HR+ odds ratio cannot be computed from published figures without inventing counts. "
            "Pool patient-level studies below instead."
        )
    with st.expander("Published pCR → survival hazard ratios by HR status"):
        prognosis = datasets.published_prognosis()
        ui.table(prognosis, "published_prognosis",
                 caption="Hazard ratio of pCR vs no pCR (below 1: pCR patients fare better), as printed. Source: "
                 "data/published_prognosis.csv (see data/README.md); rows with hr_status 'all' are not split "
                 "by HR status.")

studies = ctx.levels("study")
with ui.panel("Two-stage meta-analysis across studies of this cohort"):
    if len(studies) < 2:
        st.info("The current selection holds fewer than two studies, so there is nothing to pool. "
                "Pick a multi-study cohort (e.g. upload a multi-study table) or widen the study filter.")
    else:
        c1, c2, c3, c4 = st.columns(4)
        binary = [c for c in ("er_status", "hr_status", "pr_status", "her2_status", "er_status_recorded",
                              "hr_status_recorded", "pcr")
                  if c in ctx.data.columns and len(ctx.levels(c)) == 2]
        if len(ctx.levels("er_category")) >= 2:
            binary.insert(0, "er_category")  # two of its levels at a time: ER-low stays its own level
        endpoints = schema.available_endpoints(ctx.data.columns)
        kinds = {"pcr_or": "pCR odds ratio by exposure", "pcr_rate": "pCR rate",
                 **({"hr": "Hazard ratio by exposure"} if endpoints else {})}
        with c1:
            analysis = ui.selectbox("Quantity", list(kinds), key="ev_kind", format_func=kinds.get)
        with c2:
            exposure = ui.selectbox("Exposure", [c for c in binary if c != "pcr"] or ["er_status"],
                                    key="ev_exposure", format_func=schema.column_label)
        with c3:
            method = ui.selectbox("τ² estimator", ["REML", "DL", "PM", "FE"], key="ev_method")
        with c4:
            hksj = ui.toggle("Hartung–Knapp CI", key="ev_hksj")
        kwargs = {"study": "study", "analysis": analysis, "method": method, "hksj": hksj}
        subset = None
        if analysis != "pcr_rate":
            kwargs["exposure"] = exposure
            if exposure == "er_category":
                er_levels = ctx.levels("er_category")
                e1, e2 = st.columns(2)
                with e1:
                    level = ui.selectbox("ER category", er_levels, key="ev_er_level", default=er_levels[-1])
                with e2:
                    ref = ui.selectbox("against", er_levels, key="ev_er_ref", default=er_levels[0])
                subset = ["er_category", [level, ref]]
                kwargs["reference"] = ref
        if analysis == "hr":
            endpoint = ui.selectbox("Endpoint", endpoints, key="ev_endpoint", format_func=schema.ENDPOINT_LABELS.get)
            kwargs.update(time=f"{endpoint}_months", event=f"{endpoint}_event")
        if "pcr" in analysis:
            definitions = ctx.pcr_definitions()
            st.caption(ui.plain(ctx.pcr_caption()))
            if definitions["pcr_definition"].nunique() > 1:
                st.warning("The studies define pCR differently, so the pooled estimate mixes definitions; "
                           "read it with the per-study definitions below.")
                ui.table(definitions, "pcr_definitions_by_study")
        if subset is not None:
            if subset[1][0] == subset[1][1]:
                st.info("Choose two different ER categories to compare.")
                ui.finish()
                st.stop()
            result = ctx.run_subset("meta.by_study", column=subset[0], levels=subset[1], **kwargs)
            st.caption(f"Patients in other ER categories are left out of this comparison "
                       f"({ui.plain(subset[1][0])} vs {ui.plain(subset[1][1])}).")
        else:
            result = ctx.run("meta.by_study", **kwargs)
        frame = result.summary_frame(exponentiate=True)
        ui.figure(figures.meta_forest_figure(result, presenter=ctx.presenter, watermark=ctx.watermark),
                  "meta_forest")
        st.markdown(
            f"k = {result.k} studies · τ² = {result.tau2:.4g} · I² = {result.i2:.1f}% · "
            f"Q = {result.q:.2f} (df {result.q_df}), p = {result.p_heterogeneity:.3g}"
        )
        for note in result.notes:
            st.caption(ui.plain(note))
        ui.table(frame, "meta_by_study")
        analyses.append({"kind": "meta", **kwargs, **({"subset": subset} if subset else {})})

ui.register_analysis("evidence", analyses)
ui.finish()
