"""Subgroups page: forest plot of one exposure across subgroups, with interaction tests."""

import streamlit as st

import ui
from her2er_dash import contrasts, figures, schema, wording

ctx = ui.sidebar()
ui.page_header(
    ctx,
    "Subgroups",
    "Effect of one exposure within subgroup levels: odds ratio for pCR or hazard ratio for a survival "
    "endpoint, with the likelihood-ratio test of exposure × subgroup interaction. Read the interaction "
    "p-values, not the per-level p-values, and remember how many tests are on screen.",
)
data = ctx.data
categorical = [c for c in ("arm", "regimen_class", "er_category", "er_status", "her2_status", "her2_category",
                           "hr_status", "pr_status", "blueprint_subtype", "pam50_subtype", "pcr", "rcb_class",
                           "grade", "t_stage", "n_stage", "study", "er_status_recorded", "hr_status_recorded")
               if c in data.columns and len(ctx.levels(c)) >= 2]
outcomes = (["pcr"] if "pcr" in data.columns and data["pcr"].notna().any() else []) + [
    e for e in schema.available_endpoints(data.columns) if data[f"{e}_event"].notna().any()
]
# pCR (or its RCB class) as the exposure of pCR itself has an infinite odds ratio: it is an
# exposure only where a survival outcome exists.
PCR_FAMILY = ("pcr", "rcb_class")
if outcomes == ["pcr"]:
    categorical = [c for c in categorical if c not in PCR_FAMILY]
if not categorical or not outcomes:
    st.info("This selection has no exposure with two levels or no outcome to analyse.")
    ui.finish()
    st.stop()

c1, c2, c3, c4 = st.columns(4)
with c1:
    exposure = ui.selectbox("Exposure", categorical, key="sub_exposure",
                            default=next((c for c in ("er_category", "hr_status") if c in categorical), None),
                            format_func=schema.column_label,
                            help="ER category keeps ER-low as its own level: pick the two levels to compare.")
levels = ctx.levels(exposure)
level, reference = ui.level_pair(levels, keys=("sub_level", "sub_reference"), labels=("Level", "Reference"),
                                 defaults=(levels[-1], levels[0]), columns=(c2, c3))
if exposure in PCR_FAMILY:
    outcomes = [o for o in outcomes if o != "pcr"]
with c4:
    outcome_key = ui.selectbox(
        "Outcome", outcomes, key="sub_outcome",
        format_func=lambda o: "pCR (odds ratio)" if o == "pcr" else f"{schema.ENDPOINT_LABELS[o]} (hazard ratio)",
    )
choices = [c for c in categorical if c != exposure and c != outcome_key]
# Variables derived from the same receptor as the exposure have one exposure level per subgroup.
er_family = {"er_status", "er_category", "hr_status", "er_status_recorded", "hr_status_recorded"}
related = er_family if exposure in er_family else set()
default_subgroups = [c for c in ("er_category", "hr_status", "her2_status", "arm", "grade", "t_stage",
                                  "n_stage")
                     if c in choices and c not in related][:6]
chosen = ui.multiselect("Subgroups", choices, key="sub_vars", default=default_subgroups,
                        format_func=schema.column_label)
outcome = "pcr" if outcome_key == "pcr" else (f"{outcome_key}_months", f"{outcome_key}_event")
measure = "OR" if outcome_key == "pcr" else "HR"

with ui.panel():
    if not chosen:
        st.info("Choose at least one subgroup variable.")
    else:
        landmark = None
        if outcome_key != "pcr":
            # pCR (or RCB) as exposure or subgroup of a survival outcome: from the landmark at surgery,
            # or refused with the reason (shown in this panel).
            data, landmark = ctx.survival_data(*outcome, uses=[exposure, *chosen])
        if landmark is None:  # a registry's counts when the forest can use them
            data = ctx.input_for("contrasts.two_level_forest", outcome=outcome, exposure=exposure,
                                 subgroups_=chosen)
        spec = tuple(ctx.landmark_spec.items()) if landmark else None
        bar = st.progress(0.0, text="Fitting subgroup models…")
        try:
            memo_key = (ctx.cohort.token, ctx.flt, exposure, level, reference, tuple(chosen), outcome_key,
                        spec)  # fmt: skip
            table = ui.session_memo(
                "forest",
                memo_key,
                lambda: contrasts.two_level_forest(
                    data, exposure=exposure, level=level, reference=reference, subgroups_=chosen,
                    outcome=outcome, progress=lambda f, msg: bar.progress(min(max(f, 0.0), 1.0), text=msg),
                ),
            )
        finally:  # a refused fit shows its reason in the panel, never a bar left at "Fitting…"
            bar.empty()
        # the key decides the forest (as for cached analyses): its figure and exports are reused
        table = ui.known_as(table, ("two_level_forest", *memo_key))
        if landmark is not None:
            st.caption(ui.plain(landmark["note"]))
            if landmark.get("warning"):
                st.warning(ui.plain(landmark["warning"]))
        n_tests = figures.interaction_test_count(table)
        st.markdown(
            f"**{wording.count(n_tests, 'interaction test')} on screen** — at α = 0.05, about "
            f"{wording.expected_by_chance(n_tests)} would be 'significant' by chance alone even if the "
            "effect were the same in every subgroup."
        )
        ui.chart("subgroup_forest", figures.forest_figure, table, measure=measure)
        notes = [table.attrs["contrast"], table.attrs["contrast_exclusions"].describe()]
        if "exclusions" in table.attrs:
            notes.append(table.attrs["exclusions"].describe())
        if outcome_key == "pcr":
            notes.append(ctx.pcr_caption())
        # the contrast's and the fit's counts are the same line when neither excluded anyone
        ui.table(table, "subgroup_forest", caption=ui.plain(" · ".join(dict.fromkeys(notes))))
        ui.register_analysis("subgroups", [{"kind": "two_level_forest", "exposure": exposure,
                                            "level": level, "reference": reference,
                                            "subgroups_": chosen, "outcome": outcome,
                                            "measure": measure,
                                            **({"landmark": ctx.landmark_spec} if landmark else {})}])
ui.finish()
