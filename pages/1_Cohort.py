"""Cohort page: pick or upload a cohort, confirm the mapping, read the validation report and Table 1."""

import streamlit as st

import ui
from her2er_dash import figures

ctx = ui.sidebar()
ui.page_header(
    ctx,
    "HER2/ER Explorer — cohort",
    "How does estrogen-receptor signalling change HER2-positive breast cancer? Pick a bundled cohort in "
    "the sidebar or upload your own here, then explore pCR, survival, subgroups and published evidence.",
)

# Side by side on wide screens (stacked on phones): the way in, and the selection at a glance.
bring, flow = st.columns([3, 2], gap="large")
with bring, ui.panel("Bring your own data"):
    st.markdown(
        "CSV/TSV/semicolon text, Excel (.xlsx/.xls; sheets joined on the patient ID, data-dictionary "
        "sheets read as descriptions), Parquet, cBioPortal clinical files and study-view downloads, GDC "
        "biotab files, GEO series matrices (.txt or .gz) and SEER*Stat listings. Columns are matched to "
        "the canonical names automatically from their names, descriptions and values; every guess is "
        "shown below and can be changed. **Your file stays in this browser session's memory only** — "
        "nothing is written to disk or shared with other users."
    )
    if "_upload_done" in st.session_state:
        st.success(ui.plain(st.session_state.pop("_upload_done")))
    files = st.file_uploader(
        "Upload a cohort", type=["csv", "tsv", "txt", "xlsx", "xls", "parquet", "gz", "soft"],
        accept_multiple_files=True, key=ui.upload_widget_key(),
    )
    left, right = st.columns(2)
    mapping_file = left.file_uploader("Optional: a saved mapping (JSON)", type=["json"], key="upload_mapping")
    encoding = right.selectbox(
        "Text encoding", ["detect automatically", *ui.text_encodings()], key="upload_encoding",
        help="Text files that are not UTF-8 are decoded with the encoding detected from their content "
             "(shown in the validation report). If the text looks wrong, choose the encoding here and "
             "upload the file again.",
    )
    if files:
        ui.load_uploads(files, mapping_file, None if encoding == "detect automatically" else encoding)
    with st.expander("Live public source: cBioPortal"):
        study = st.text_input("cBioPortal study id", value="brca_metabric", key="cbio_study")
        if st.button("Load study", key="cbio_load"):
            with st.spinner(f"Fetching {study} from cBioPortal…"):
                ui.load_cbioportal(study)
if ui.upload_lost():
    st.stop()  # the bundled cohort in the sidebar is not the one the user's link was about
with flow, ui.panel("Flow of patients through the filters"):
    if len(ctx.filtered.flow) > 1:
        ui.chart("filter_flow", figures.flow_figure, ctx.filtered.flow)
    else:  # one bar would only repeat the total (and load the charting library for nothing)
        st.caption(f"No filter applied: all {ctx.filtered.n_total:,} patients are analysed. Each "
                   "filter chosen in the sidebar adds a step here, with the patients it excludes.")
    ui.table(ctx.filtered.flow, "filter_flow")

if ctx.cohort.cohort is not None:
    with ui.panel("Column mapping"):
        ui.mapping_editor(ctx.cohort)
    with ui.panel("Validation report"):
        issues = ctx.cohort.cohort.issues
        if issues.empty:
            st.success("No problems found.")
        else:
            st.caption("Rows are never dropped at load: each analysis says how many rows it excluded and why.")
            ui.table(issues, "validation_report")

with ui.panel("Cohort summary (Table 1) by ER category × HER2 status"):
    by = [c for c in ("er_category", "her2_status") if ctx.levels(c)]
    summary = ctx.run("summary.table_one", by=tuple(by))
    ui.table(summary, "table_one")

with ui.panel("ER definitions: the cut-off each study's recorded status implies"):
    cutoffs = ctx.run("classify.recorded_er_cutoffs", cutpoints=ctx.flt.cutpoints(ctx.cohort.data))
    if cutoffs.empty:
        st.caption("No patient has both an ER level and a recorded ER status, so there is nothing to "
                   "compare: ER status follows the ER cut-points in the sidebar.")
    else:
        differ = cutoffs["implied_rule"].nunique() > 1 or not cutoffs["consistent_with_current"].all()
        if differ:
            st.warning("The studies recorded ER status with different cut-offs, or with one other than the "
                       "current rule. Every panel uses the current rule for ER category, ER status and HR "
                       "status; the recorded statuses stay available as 'ER status (as recorded)' and "
                       "'HR status (as recorded)'.")
        ui.table(cutoffs, "er_cutoffs_by_study",
                 caption="Highest ER level recorded negative and lowest recorded positive per study; "
                         "n_changed counts recorded statuses the current rule changes.")

with ui.panel("What is in this cohort"):
    filled = ui.values_per_column(ctx.cohort)
    st.caption(f"{len(ctx.cohort.data):,} patients · source: {ui.plain(ctx.cohort.source)}")
    ui.table(filled.rename("patients with a value").rename_axis("column").reset_index(), "cohort_columns")

ui.finish()
