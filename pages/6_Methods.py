"""Methods & export page: an auto-written methods paragraph and a reproducibility bundle."""

import io
import json
import zipfile

import streamlit as st

import ui
from her2er_dash import export

ctx = ui.sidebar()
ui.page_header(
    ctx,
    "Methods & export",
    "A methods paragraph for what you have looked at, the references, and a bundle that recomputes "
    "every table with the her2er_dash package outside the app.",
)
view = ui.view_spec(ctx)

with ui.panel("Methods"):
    if not view["analyses"]:
        st.info("Visit the Response, Survival, Subgroups or Evidence pages first: the paragraph describes "
                "the analyses you looked at.")
    st.markdown(export.methods_text(view))

with ui.panel("References"):
    st.markdown("\n".join(f"{i}. {ref}" for i, ref in enumerate(export.references(), start=1)))

with ui.panel("Reproducibility bundle"):
    script_name = f"{ui.export_prefix()}{export.SCRIPT_NAME}"
    script = export.repro_script(view, filename=script_name)
    st.session_state["_repro_script"] = script
    c1, c2, c3 = st.columns(3)
    ui.download("View (JSON)", json.dumps(view, indent=2, default=str), where=c1,
                file_name=f"{ui.export_prefix()}her2er_view.json", mime="application/json", key="dl_view")
    ui.download("Python script", script, file_name=script_name,
                mime="text/x-python", key="dl_script", where=c2)
    tables = st.session_state.get("_tables", {})
    banner, prefix = ui.synthetic_banner(), ui.export_prefix()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if banner:
            archive.writestr("SYNTHETIC_DATA_README.txt", export.SYNTHETIC_CSV_BANNER.lstrip("# ") +
                             "\n\nEvery table in this bundle comes from a simulated cohort. What it shows "
                             "about pCR and ER it shows because the generator assumes it:\n- " +
                             "\n- ".join(ctx.cohort.assumptions) + "\n")
        for name, frame in tables.items():
            archive.writestr(f"{prefix}{name}.csv", export.safe_csv_bytes(frame, banner=banner))
        archive.writestr("her2er_view.json", json.dumps(view, indent=2, default=str))
        archive.writestr(script_name, script)
    st.session_state["_bundle_zip"] = buffer.getvalue()  # what the button serves (tests read it)
    ui.download(f"All tables shown so far ({len(tables)}, ZIP)", buffer.getvalue(), where=c3,
                file_name=f"{prefix}her2er_tables.zip", mime="application/zip", key="dl_zip")
    with st.expander("Script preview"):
        st.code(script, language="python")
    if view["cohort"]["key"] is None:
        st.caption("Uploaded data is not part of the bundle: the script loads your own file with the saved "
                   "mapping, so nothing private leaves your machine.")
ui.finish()
