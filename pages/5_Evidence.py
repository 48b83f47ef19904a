"""Evidence page: published HER2+ trials and their meta-analysis, published pCR → survival hazard
ratios, and the meta-analyses (two-stage pooling, CTNeoBC) across the studies of the current cohort."""

import numpy as np
import pandas as pd
import streamlit as st

import ui
from her2er_dash import datasets, evidence, figures, meta, schema, wording
from her2er_dash.errors import AnalysisError

ctx = ui.sidebar()
ui.page_header(
    ctx,
    "Evidence",
    "Published pCR by hormone-receptor status in HER2+ neoadjuvant trials (each number with where it "
    "is printed and how well it was verified) and what can honestly be pooled from them; published "
    "pCR → survival hazard ratios by HR status; and meta-analyses across the studies of the current "
    "cohort, including the CTNeoBC question: is pCR less prognostic in HR+ than in HR− disease?",
)
analyses = []
MODELS = ["REML", "DL", "PM", "FE"]
GROUP_NAMES = {"hr_status": ("HR+", "HR−"), "er_status": ("ER+", "ER−"),
               "hr_status_recorded": ("HR+ (recorded)", "HR− (recorded)"),
               "er_status_recorded": ("ER+ (recorded)", "ER− (recorded)")}


def moderator_section(table, moderators, *, method, hksj, key, name, input_spec, what, extra=None):
    """The moderator tests (QM, p) of a study table, and the subgroup forest of one tested moderator."""
    extra = extra or {}
    published = input_spec["source"] != "cohort"  # published arms are real data: no SYNTHETIC mark
    tests = evidence.moderator_tests(table, moderators, method=method, hksj=hksj)
    tested = tests[np.isfinite(tests["qm"])]
    for row in tested.to_dict("records"):
        st.markdown(f"**{ui.plain(row['moderator'])}**: {evidence.qm_text(row)} · residual heterogeneity "
                    f"Q_E = {row['qe']:.2f} · R² = {row['r2']:.0f}% · k = {row['k']}")
    shown = tests.assign(test=[evidence.qm_text(r) for r in tests.to_dict("records")])
    ui.table(shown[["moderator", "levels", "k", "test", "qm", "qm_df", "qm_p", "qe", "qe_p", "tau2", "r2",
                    "message"]], f"{name}_moderators",
             caption=f"Test of moderators (QM: Wald chi-square; F under Hartung–Knapp) of a meta-regression of "
             f"{what} on each study-level moderator, one at a time. A categorical moderator is tested only on "
             f"its levels with at least {evidence.MIN_STUDIES_PER_LEVEL} studies, and only when 2 such levels "
             "exist. With few studies a moderator test has little power, and among several moderators one "
             "'significant' result is expected by chance: hypotheses, not findings.")
    for row in tests.to_dict("records"):
        if not np.isfinite(row["qm"]):
            st.caption(ui.plain(row["message"]))
    for column in tested["column"]:
        analyses.append({"kind": "meta", "function": "regress", "moderators": [column], "method": method,
                         "hksj": hksj, **extra,
                         "input": {**input_spec, "args": {**input_spec["args"], "supported_for": column}}})
    categorical = [c for c in tested["column"] if not pd.api.types.is_numeric_dtype(table[c])]
    if not categorical:
        return
    label = evidence.MODERATOR_LABELS.get
    chosen = ui.selectbox("Moderator drawn", categorical, key=key, format_func=lambda c: label(c, c))
    used = evidence.restrict_to_supported(table, chosen)
    groups = meta.subgroup(used, chosen, method=method, hksj=hksj, tau2="common")
    fit = meta.regress(used, [chosen], method=method, hksj=hksj)
    test = evidence.qm_text(tested.set_index("column").loc[chosen])
    ui.chart(f"{name}_subgroups", figures.meta_forest_figure, groups.summary_frame(exponentiate=True),
             title=f"By {label(chosen, chosen).lower()}", heterogeneity=f"Test for subgroup differences: {test}",
             published=published)
    ui.table(fit.table, f"{name}_regression",
             caption="Meta-regression coefficients on the log scale (the intercept is the reference level). "
             + " ".join(ui.plain(n) for n in fit.notes))
    analyses.append({"kind": "meta", "function": "subgroup", "by": chosen, "method": method, "hksj": hksj,
                     "tau2": "common", **extra,
                     "input": {**input_spec, "args": {**input_spec["args"], "supported_for": chosen}}})


def influence_section(table, result, *, method, hksj, name, input_spec, extra=None):
    """Leave-one-out influence: on the forest (returned) and as its own figure; None below 3 studies."""
    if result.k < 3:
        st.caption(f"Leave-one-out influence needs at least 3 pooled studies; there are {result.k}.")
        return None
    influence = meta.leave_one_out(table, method=method, hksj=hksj)
    analyses.append({"kind": "meta", "function": "leave_one_out", "method": method, "hksj": hksj,
                     **(extra or {}), "input": input_spec})
    return influence


def bias_section(table, *, method, hksj, name, input_spec, extra=None):
    """Funnel plot and Egger's test, only with at least 10 studies."""
    published = input_spec["source"] != "cohort"
    k = int(table["excluded"].fillna("").eq("").sum()) if "excluded" in table.columns else len(table)
    if k < evidence.MIN_STUDIES_FOR_BIAS:
        st.info(f"Funnel plot and Egger's test are not shown: they need at least "
                f"{evidence.MIN_STUDIES_FOR_BIAS} studies, and this analysis has {k}. With fewer, funnel "
                "asymmetry cannot be told apart from chance (Sterne et al., BMJ 2011).")
        return
    funnel = meta.funnel(table, method=method, hksj=hksj)
    egger = meta.egger(table, method=method, hksj=hksj)
    ui.chart(f"{name}_funnel", figures.funnel_figure, funnel, egger=egger, published=published)
    ui.table(egger.table, f"{name}_egger", caption="Egger's regression test: the slope on the standard error "
             "tests funnel asymmetry. Asymmetry can come from publication bias, but also from true "
             "heterogeneity, chance or small studies differing in design; it does not prove bias.")
    for function in ("funnel", "egger"):
        analyses.append({"kind": "meta", "function": function, "method": method, "hksj": hksj, **(extra or {}),
                         "input": input_spec})


# --------------------------------------------------------------------------------------------------------------
# 1. Published trials
# --------------------------------------------------------------------------------------------------------------
trials = datasets.published_trials()
with ui.panel("Published trials: pCR in HR+ vs HR− HER2+ disease"):
    classes = [c for c in datasets.REGIMEN_CLASS_NAMES if (trials["regimen_class"] == c).any()]
    definitions_all = [d for d in schema.PCR_DEFINITIONS if (trials["pcr_definition"] == d).any()]
    levels_all = [v for v in datasets.VERIFICATION_LEVELS if (trials["verification"] == v).any()]
    f1, f2, f3 = st.columns(3)
    with f1:
        chosen = ui.multiselect("Regimen class", classes, key="ev_regimen", default=classes,
                                help="ADC arms (T-DM1) carry a cytotoxic payload: they are not 'anti-HER2 only'.")
    with f2:
        chosen_definitions = ui.multiselect("pCR definition", definitions_all, key="ev_pcr_def",
                                            default=definitions_all)
    with f3:
        chosen_levels = ui.multiselect("Verification", levels_all, key="ev_verification", default=levels_all,
                                       help="primary: read in the trial's own paper; secondary: in a review or "
                                       "report quoting it; tertiary: only as quoted by a third party.")
    published_filters = {"regimen_classes": chosen, "pcr_definitions": chosen_definitions,
                         "verification": chosen_levels}
    shown = evidence.select_published(trials, **published_filters)
    definitions = sorted(shown["pcr_definition"].astype(str).unique())
    if len(definitions) > 1:
        st.warning(
            f"These rows use {len(definitions)} pCR definitions ({', '.join(definitions)}). Rates are not "
            "directly comparable (breast-only pCR is higher than breast-and-nodes pCR): filter by definition "
            "for a like-for-like view."
        )
    secondary = int((shown["verification"] != "primary").sum())
    if secondary:
        st.caption(f"{secondary} of {len(shown)} rows were read in a review or report quoting the trial, not in "
                   "the trial's own paper (column 'verification'). Where each number is printed: columns "
                   "'source_hr_pos' and 'source_hr_neg', next to the number as printed.")
    if shown.empty:
        st.info("No published arm matches these filters. Pick at least one regimen class, pCR definition and "
                "verification level.")
    else:
        ui.chart("published_trials", figures.published_figure, shown, published=True)
    first = ["trial", "arm", "regimen_class", "chemo", "dual_blockade", "pcr_definition", "verification",
             "n_hr_pos", "pcr_events_hr_pos", "rate_printed_hr_pos", "source_hr_pos",
             "n_hr_neg", "pcr_events_hr_neg", "rate_printed_hr_neg", "source_hr_neg"]
    ui.table(shown[first + [c for c in shown.columns if c not in first]], "published_trials",
             caption="Source: data/published_trials.csv (see data/README.md). Each number sits next to where it is "
             "printed. Counts are given only where a source printed them; they are never reconstructed from "
             "percentages.")
    paired = shown.dropna(subset=["pcr_rate_hr_pos", "pcr_rate_hr_neg"])
    if len(paired):
        gap = (paired["pcr_rate_hr_neg"] - paired["pcr_rate_hr_pos"]) * 100
        st.markdown(
            f"In **{len(paired)}** arms reporting both groups, pCR was higher in HR− tumours in "
            f"**{int((gap > 0).sum())}**; median difference **{gap.median():+.1f} percentage points** "
            f"(range {gap.min():+.1f} to {gap.max():+.1f}). Descriptive only: most sources give "
            "percentages without counts."
        )

with ui.panel("Meta-analysis of the published arms that print counts"):
    q1, q2 = st.columns([3, 1])
    with q1:
        quantity = ui.selectbox("What to pool", list(evidence.PUBLISHED_QUANTITIES), key="ev_pub_quantity",
                                format_func=evidence.PUBLISHED_QUANTITIES.get)
    with q2:
        pub_method = ui.selectbox("τ² estimator", MODELS, key="ev_pub_method")
        pub_hksj = ui.toggle("Hartung–Knapp", key="ev_pub_hksj",
                             help="t-based intervals and F-tests allowing for the uncertainty in τ²; advisable "
                             "with this few arms.")
    arms = evidence.published_table(trials, quantity=quantity, **published_filters)
    left_out = evidence.published_not_pooled(trials, quantity=quantity, **published_filters)
    st.markdown(evidence.not_pooled_sentence(left_out, len(arms), quantity))
    if len(left_out):
        with st.expander(f"The {len(left_out)} arms not pooled, and why"):
            ui.table(left_out, "published_not_pooled")
    pub_input = {"function": "published_table", "source": "published_trials",
                 "args": {"quantity": quantity, **published_filters}}
    if len(arms) < 2:
        st.info(f"{'Only ' if len(arms) else ''}{wording.count(len(arms), 'chosen arm')} "
                f"{'prints' if len(arms) == 1 else 'print'} these counts: a meta-analysis needs at least 2. Widen the "
                "filters or pool another quantity (the HR+ pCR rate has the most counted arms).")
    else:
        guard = evidence.p_value_guard(arms)
        glmm = ui.run_on_table("meta.glmm", arms)
        pooled = meta.pool(arms, method=pub_method, hksj=pub_hksj)
        influence = influence_section(arms, pooled, method=pub_method, hksj=pub_hksj, name="published",
                                      input_spec=pub_input)
        ui.chart("published_pooled", figures.meta_forest_figure, pooled, influence=influence,
                 measure_label=evidence.PUBLISHED_MEASURE_LABELS[quantity], published=True)
        ui.table(evidence.model_rows(glmm, pooled, guard=guard), "published_pooled_models",
                 caption="GLMM: binomial-normal model fitted by maximum likelihood on the counts (metafor "
                 "rma.glmm; no continuity correction), the recommended model for sparse pCR counts. Inverse "
                 f"variance: {meta.METHOD_LABELS[pub_method]}{', Hartung–Knapp' if pub_hksj else ''}. "
                 + (f"p-values withheld: {guard}; read the estimates descriptively. " if guard else "")
                 + "Arms of different trials, regimens and pCR definitions: an average, not an effect.")
        ui.table(arms.drop(columns=["trial", "arm"]), "published_pooled_arms",
                 caption="The pooled arms with their counts, moderators and where each number is printed; "
                 "'small' says why an arm is too small to carry weight on its own.")
        for note in glmm.notes:
            st.caption(ui.plain(note))
        analyses += [
            {"kind": "meta", "function": "glmm", "input": pub_input},
            {"kind": "meta", "function": "pool", "method": pub_method, "hksj": pub_hksj, "input": pub_input},
        ]
        if influence is not None:
            ui.chart("published_leave_one_out", figures.leave_one_out_figure, influence, published=True)
            ui.table(influence.summary_frame(), "published_leave_one_out",
                     caption="Leave-one-out: the pooled estimate and heterogeneity without each arm in turn.")
        st.markdown("**Does the pooled quantity differ by study-level moderators?**")
        moderator_section(arms, list(evidence.PUBLISHED_MODERATORS), method=pub_method, hksj=pub_hksj,
                          key="ev_pub_moderator", name="published", input_spec=pub_input,
                          what="the pooled quantity")
        bias_section(arms, method=pub_method, hksj=pub_hksj, name="published", input_spec=pub_input)

# --------------------------------------------------------------------------------------------------------------
# 2. Published pCR -> survival hazard ratios
# --------------------------------------------------------------------------------------------------------------
with ui.panel("Published pCR → survival hazard ratios by HR status"):
    prognosis = datasets.published_prognosis()
    rows = evidence.prognosis_rows(prognosis)
    ui.chart("published_prognosis", figures.prognosis_figure, rows, published=True)
    first = ["study", "population", "hr_status", "endpoint", "printed", "hr", "ci_low", "ci_high", "n", "events",
             "verification", "source_location"]
    ui.table(rows[first + [c for c in rows.columns if c not in first]], "published_prognosis",
             caption="Hazard ratio of pCR vs residual disease as printed (below 1: patients with pCR fare better), "
             "with where it is printed and how it was verified. Rows with HR status 'all' are context, not split "
             "by HR status. Source: data/published_prognosis.csv (see data/README.md).")
    counts = rows["verification"].astype(str).value_counts()
    st.caption("Verification: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in datasets.VERIFICATION_LEVELS)
               + " (primary: the study's own paper; secondary: a report quoting it; tertiary: only as quoted "
               "by a third party).")
    contrasts = evidence.prognosis_contrasts(prognosis)
    if contrasts.empty:
        st.info("No study in the table prints the pCR hazard ratio for both HR+ and HR− patients, so no "
                "HR+ vs HR− contrast can be formed from published numbers.")
    else:
        ui.table(contrasts, "published_prognosis_contrasts",
                 caption="Where one study prints both groups: the ratio of hazard ratios HR+ / HR− (above 1: pCR "
                 "is less prognostic in HR+ disease), from the printed 95% CIs by fixed-effect meta-regression "
                 "on the group (meta.ctneobc_from_summary, as metafor rma(yi, sei, mods = ~ group, method = 'FE')).")
        for row in contrasts.itertuples():
            st.markdown(
                f"**{ui.plain(row.study)}, {row.endpoint}**: HR+ {row.hr_pos} vs HR− {row.hr_neg} → ratio "
                f"**{row.ratio:.2f}** (95% CI {row.ratio_ci_low:.2f}–{row.ratio_ci_high:.2f}), "
                f"p = {ui.format_p(row.p)} ({row.verification} source). The interval is wide: these numbers "
                "cannot tell whether pCR is equally prognostic in both groups."
            )
            analyses.append({"kind": "meta", "function": "ctneobc_from_summary", "group": "hr_status",
                             "reference": "negative",
                             "input": {"function": "prognosis_contrast_table", "source": "published_prognosis",
                                       "args": {"study": row.study, "endpoint": row.endpoint}}})
    missing = sorted(set(rows.loc[rows["hr_status"].astype(str) != "all", "study"].astype(str))
                     - {c for c in contrasts["study"]})
    if missing:
        st.caption("Printed for one HR group only (no contrast possible): " + "; ".join(ui.plain(m) for m in missing)
                   + ".")

# --------------------------------------------------------------------------------------------------------------
# 3. The current cohort: two-stage meta-analysis and the CTNeoBC analysis
# --------------------------------------------------------------------------------------------------------------
studies = ctx.levels("study")
by_definition: list = []  # the pCR-definition sensitivity view: every cohort analysis below
model = {"method": "REML", "hksj": False}  # chosen in the pooling panel, reused by the CTNeoBC panel


def cohort_options() -> tuple[dict, dict, list] | None:
    """The pooled quantity, exposure and model; None when the choice is incomplete (said why)."""
    c1, c2, c3, c4 = st.columns(4)
    binary = [c for c in ("er_status", "hr_status", "pr_status", "her2_status", "er_status_recorded",
                          "hr_status_recorded") if c in ctx.data.columns and len(ctx.levels(c)) == 2]
    if len(ctx.levels("er_category")) >= 2:
        binary.insert(0, "er_category")  # two of its levels at a time: ER-low stays its own level
    endpoints = schema.available_endpoints(ctx.data.columns)
    kinds = {"pcr_or": "pCR odds ratio by exposure", "pcr_rate": "pCR rate",
             **({"hr": "Hazard ratio by exposure"} if endpoints else {})}
    with c1:
        analysis = ui.selectbox("Quantity", list(kinds), key="ev_kind", format_func=kinds.get)
    with c2:
        exposure = ui.selectbox("Exposure", binary or ["er_status"], key="ev_exposure",
                                format_func=schema.column_label)
    with c3:
        method = ui.selectbox("τ² estimator", MODELS, key="ev_method",
                              help="REML (default, as metafor), DerSimonian–Laird, Paule–Mandel, or a fixed "
                              "effect (no between-study variance).")
    with c4:
        hksj = ui.toggle("Hartung–Knapp CI", key="ev_hksj",
                         help="t-based intervals and tests that allow for the uncertainty in τ² (HKSJ).")
    model.update(method=method, hksj=hksj)
    kwargs = {"study": "study", "analysis": analysis, "method": method, "hksj": hksj}
    compared: list = []  # two ER categories compared: this section only
    table_args: dict = {"analysis": analysis}
    if analysis != "pcr_rate":
        kwargs["exposure"] = table_args["exposure"] = exposure
    if analysis != "pcr_rate" and exposure == "er_category":
        er_levels = ctx.levels("er_category")
        level, ref = ui.level_pair(er_levels, keys=("ev_er_level", "ev_er_ref"),
                                   labels=("ER category", "against"),
                                   defaults=(er_levels[-1], er_levels[0]), columns=tuple(st.columns(2)))
        compared.append(["er_category", [level, ref]])
        kwargs["reference"] = table_args["reference"] = ref
        st.caption(f"Patients in other ER categories are left out of this comparison "
                   f"({ui.plain(level)} vs {ui.plain(ref)}).")
    if analysis == "hr":
        endpoint = ui.selectbox("Endpoint", endpoints, key="ev_endpoint", format_func=schema.ENDPOINT_LABELS.get)
        kwargs.update(time=f"{endpoint}_months", event=f"{endpoint}_event")
        table_args.update(time=f"{endpoint}_months", event=f"{endpoint}_event")
    share_source = next((c for c in ("regimen_class", "arm") if c in ctx.data.columns
                         and len(ctx.levels(c)) > 1), None)
    if share_source is not None:
        share_levels = ctx.levels(share_source)
        share_level = ui.selectbox(
            f"Study-level moderator: share of patients in a {schema.column_label(share_source).lower()}",
            share_levels, key="ev_share",
            default="chemotherapy + anti-HER2" if "chemotherapy + anti-HER2" in share_levels else None)
        table_args["share"] = [share_source, share_level]
    return kwargs, table_args, compared


def definition_view() -> None:
    """Warn when studies define pCR differently, and offer the one-definition sensitivity view."""
    definitions = ctx.pcr_definitions() if "pcr" in ctx.data.columns else None
    if definitions is None:
        return
    st.caption(ui.plain(ctx.pcr_caption()))
    if definitions["pcr_definition"].nunique() < 2:
        return
    st.warning("The studies define pCR differently, so pooled pCR estimates (and the CTNeoBC analysis "
               "below) mix definitions. Sensitivity view: restrict every analysis here to the studies "
               "of one definition.")
    ui.table(definitions, "pcr_definitions_by_study")
    if "pcr_definition" in ctx.data.columns:
        options = ["all studies", *definitions["pcr_definition"].astype(str).drop_duplicates()]
        only = ui.selectbox("pCR definition (sensitivity view)", options, key="ev_definition")
        if only != "all studies":
            by_definition.append(["pcr_definition", [only]])
            st.caption(f"Sensitivity view: only the studies defining pCR as {ui.plain(only)}.")


def pool_cohort() -> None:
    """Two-stage meta-analysis across the studies of the selection, with its diagnostics."""
    if len(studies) < 2:
        st.info(f"The current selection holds {len(studies)} stud{'y' if len(studies) == 1 else 'ies'}, so there "
                "is nothing to pool across studies. Pick a multi-study cohort (the curated GEO studies, or the "
                "synthetic trial's 6 studies), upload a table with a study column, or widen the study filter.")
        return
    chosen = cohort_options()
    definition_view()
    if chosen is None:
        return
    kwargs, table_args, compared = chosen
    subsets = by_definition + compared
    extra = {"subset": subsets} if subsets else {}
    result, _ = ui.run_within(ctx, "meta.by_study", subsets=subsets, **kwargs)
    table, _ = ui.run_within(ctx, "evidence.study_table", subsets=subsets, **table_args)
    cohort_input = {"function": "study_table", "source": "cohort", "args": table_args}
    analyses.append({"kind": "meta", **kwargs, **extra})
    method, hksj = model["method"], model["hksj"]
    influence = influence_section(table, result, method=method, hksj=hksj, name="meta", input_spec=cohort_input,
                                  extra=extra)
    cohort_forest(result, table, influence)
    if kwargs["analysis"] == "hr":
        st.caption("GLMM: not available for hazard ratios (it pools counts: pCR odds ratios or rates).")
    elif ui.toggle("Also fit the GLMM (binomial-normal, metafor rma.glmm)", key="ev_glmm"):
        glmm = ui.run_on_table("meta.glmm", table)
        ui.table(evidence.model_rows(glmm, result, guard=evidence.p_value_guard(table)), "meta_glmm",
                 caption="The GLMM uses the exact binomial likelihood of each study's counts (no continuity "
                 "correction), recommended for sparse counts; inverse variance beside it for comparison. "
                 + " ".join(ui.plain(n) for n in glmm.notes))
        analyses.append({"kind": "meta", "function": "glmm", **extra, "input": cohort_input})
    st.markdown("**Does the effect differ with study-level moderators computed from the cohort?**")
    moderators = ["pcr_definition"] + ([evidence.share_name(table_args["share"][1])] if "share" in table_args else [])
    moderator_section(table, moderators, method=method, hksj=hksj, key="ev_moderator", name="meta",
                      input_spec=cohort_input, what="each study's estimate", extra=extra)
    bias_section(table, method=method, hksj=hksj, name="meta", input_spec=cohort_input, extra=extra)


def cohort_forest(result, table, influence) -> None:
    """The forest (with leave-one-out), heterogeneity, the per-study table with small studies flagged."""
    ui.chart("meta_forest", figures.meta_forest_figure, result, influence=influence)
    st.markdown(
        f"k = {result.k} studies · τ² = {result.tau2:.4g} · I² = {result.i2:.1f}% · "
        f"Q = {result.q:.2f} (df {result.q_df}), p = {ui.format_p(result.p_heterogeneity)}"
    )
    st.caption("Each square is one study (area: its weight); the diamond pools them; the bar is where a new "
               "study's effect would be expected to fall (prediction interval). Open diamonds: the pooled "
               "estimate without that study — a study whose removal moves it far is influential.")
    for note in result.notes:
        st.caption(ui.plain(note))
    frame = result.summary_frame(exponentiate=True)
    small = dict(zip(table["study"].astype(str), table["small"], strict=True))
    frame["small"] = frame["label"].astype(str).map(small).fillna("")
    frame["pcr_definition"] = frame["label"].astype(str).map(
        dict(zip(table["study"].astype(str), table["pcr_definition"], strict=True)))
    guard = evidence.p_value_guard(table)
    ui.table(evidence.model_rows(result, guard=guard), "meta_by_study_pooled",
             caption=f"p-values withheld: {guard}." if guard else None)
    ui.table(frame, "meta_by_study",
             caption="Per-study estimates; 'small' flags studies too small to carry weight on their own.")
    flagged = [s for s, why in small.items() if why]
    if flagged:
        st.caption(f"Small studies ({len(flagged)}): {', '.join(ui.plain(s) for s in flagged)}.")
    if influence is not None:
        ui.chart("meta_leave_one_out", figures.leave_one_out_figure, influence)
        ui.table(influence.summary_frame(), "meta_leave_one_out",
                 caption="Leave-one-out: the pooled estimate and heterogeneity without each study in turn.")


with ui.panel("Pooling the studies of this cohort"):
    pool_cohort()

with ui.panel("CTNeoBC: is pCR equally prognostic in HR+ and HR− disease? (this cohort)"):
    endpoints = schema.available_endpoints(ctx.data.columns)
    groups = [c for c in ("hr_status", "er_status", "hr_status_recorded", "er_status_recorded")
              if c in ctx.data.columns and len(ctx.levels(c)) == 2]
    if len(studies) < 2:
        st.info("The CTNeoBC analysis pools studies: it needs a cohort with at least 2 studies in the selection.")
    elif "pcr" not in ctx.data.columns or not endpoints or not groups:
        st.info("The CTNeoBC analysis needs pCR, a survival endpoint and a two-level HR or ER status; this cohort "
                "lacks " + ", ".join(w for w, ok in (("pCR", "pcr" in ctx.data.columns), ("survival", bool(endpoints)),
                                                      ("HR/ER status", bool(groups))) if not ok) + ".")
    else:
        g1, g2 = st.columns(2)
        with g1:
            ct_endpoint = ui.selectbox("Endpoint", endpoints, key="ev_ct_endpoint", format_func=schema.ENDPOINT_LABELS.get,
                                       default="efs" if "efs" in endpoints else endpoints[0])
        with g2:
            group = ui.selectbox("Compare pCR's prognostic value between", groups, key="ev_ct_group",
                                 format_func=schema.column_label)
        positive, negative = GROUP_NAMES.get(group, ("positive", "negative"))
        if "her2_status" in ctx.data.columns:
            her2_negative = int((ctx.data["her2_status"].astype(str) == "negative").sum())
            if her2_negative:
                st.warning(f"The selection includes {her2_negative:,} HER2-negative patients. CTNeoBC's question is "
                           "about HER2+ disease: set 'HER2 status' to positive in the sidebar.")
        st.caption(f"Per study, the hazard ratio of {schema.ENDPOINT_LABELS.get(ct_endpoint, ct_endpoint)} for pCR vs "
                   f"residual disease is estimated separately in {positive} and {negative} patients, counted from the "
                   "landmark at which pCR is known (surgery). Pooled per group across studies (two-stage), the two "
                   "groups are compared three ways; below 1, patients with pCR fare better.")
        time, event = f"{ct_endpoint}_months", f"{ct_endpoint}_event"
        try:
            ct, landmark = ui.run_within(ctx, "meta.ctneobc", subsets=by_definition, time=time, event=event,
                                         uses=["pcr", group], group=group, landmark=None, **model,
                                         study="study")
        except AnalysisError as refusal:
            st.warning(f"Not computed: {ui.plain(refusal)}")
        else:
            st.caption(ui.plain(landmark["note"]))
            if landmark.get("warning"):
                st.warning(ui.plain(landmark["warning"]))
            flags, withheld = evidence.ctneobc_guard(ct)
            names = {"positive": positive, "negative": negative}
            ui.chart("ctneobc_forest", figures.meta_forest_figure, evidence.ctneobc_forest_frame(ct, names),
                     measure_label="Hazard ratio of pCR", title=f"pCR → {ct_endpoint.upper()} by study and "
                     f"{positive}/{negative}",
                     heterogeneity=f"Pooled within each group ({ct.method}); test of the difference below")
            per_study = ct.per_study.assign(small=flags)
            ui.table(per_study, "ctneobc_per_study",
                     caption="Per study and group: patients, events, pCR patients and their events after the "
                     "landmark, and the log hazard ratio (hr = exp). 'small' flags cells whose estimate rests on few "
                     "patients or events; 'excluded' says why a cell has no estimate.")
            pooled = ct.pooled.copy()
            contrast = ct.contrast.copy()
            if withheld:
                pooled["p"] = np.nan
                contrast[["p", "p_lr"]] = np.nan
                st.info(f"p-values withheld: too few events ({withheld}). The estimates are shown descriptively.")
            ui.table(pooled, "ctneobc_pooled", caption=f"pCR hazard ratio pooled across studies within each group "
                     f"({ct.method}{', Hartung–Knapp' if ct.hksj else ''}).")
            ui.table(contrast, "ctneobc_contrast",
                     caption=f"The difference between groups as a ratio of hazard ratios ({positive} / {negative}; "
                     f"above 1: pCR is less prognostic in {positive} disease). Two-stage: the two pooled estimates "
                     "compared; within-study: each study's own difference, pooled (free of between-study "
                     "confounding); one-stage: Cox model stratified by study with a pCR × group interaction "
                     "(Wald p, and p_lr from the likelihood-ratio test).")
            st.markdown(evidence.ctneobc_sentence(ct, names))
            for row in contrast.itertuples():
                if np.isfinite(row.ratio):
                    p_text = "" if withheld else f", p = {ui.format_p(row.p)}"
                    st.markdown(f"**{row.approach}**: ratio of hazard ratios {positive}/{negative} = "
                                f"**{row.ratio:.2f}** (95% CI {row.ratio_ci_low:.2f}–{row.ratio_ci_high:.2f}){p_text}")
            if ct.one_stage is not None:
                ui.table(ct.one_stage, "ctneobc_one_stage",
                         caption="One-stage Cox model (strata: study): pCR, group and their interaction.")
            for note in ct.notes:
                st.caption(ui.plain(note))
            analyses.append({"kind": "meta", "function": "ctneobc", "endpoint": ct_endpoint, "group": group,
                             "landmark": ctx.landmark_spec, **model, "study": "study",
                             **({"subset": by_definition} if by_definition else {})})

ui.register_analysis("evidence", analyses)
ui.finish()
