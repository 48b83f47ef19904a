"""Streamlit glue for HER2/ER Explorer: session state, the URL, caching and the shared sidebar.

This package is the one place that knows about both Streamlit and ``her2er_dash`` (with
``ui_mapping``, the mapping editor drawn on the Cohort page). Pages call :func:`sidebar` first,
then the cached analysis wrappers, then the drawing helpers, all as ``ui.<name>``. By concept:

- :mod:`.view` - widgets whose values are remembered in the session and the shareable URL;
- :mod:`.cohorts` - bundled, uploaded and live cohorts, the upload budget, and the frame cache:
  the one byte-bounded cache of what sessions share (frames, a registry's tables, results, and
  the Arrow tables and CSV payloads drawn from results);
- :mod:`.registry` - the operator's data folder, queried in place by DuckDB;
- :mod:`.analysis` - cached analyses and the page :class:`Context`;
- :mod:`.keys` - result keys and content fingerprints, and the memo of widget options;
- :mod:`.render` - panels, tables, downloads and figures;
- :mod:`.sidebar` - the shared sidebar, page chrome and the view spec.
- :mod:`.process` - the launcher's memory settings, applied on import under a plain ``streamlit run``,
  the freeze of the objects alive at that import (out of the cycle collector's walks), and
  handing freed memory back to the system.

Privacy: uploaded files are parsed from memory into ``st.session_state`` (one browser session)
and never written to disk or logged. The uploaded bytes are not kept after loading: the session
keeps the parsed table (compacted) to re-map it (only its first rows when it is large: re-mapping
then needs the file again), and the uploader is cleared. Shared caches are keyed on a content
hash, so another session can only hit a cached result for data it uploaded itself.
"""

from .analysis import (
    WITHIN_ANALYSES,
    Context,
    analysis_columns,
    cause_specific,
    has_competing_causes,
    run_on_table,
    run_within,
    session_memo,
    studies,
    values_per_column,
)
from .cohorts import (
    CACHE_BUDGET_ENV,
    CBIOPORTAL_CACHE,
    DEFAULT_CACHE_MB,
    FRAME_CACHE,
    REGISTRY_PREFIX,
    REMAP_NEEDS_FILE,
    UPLOAD_BUDGET_ENV,
    ActiveCohort,
    FrameCache,
    active_cohort,
    add_upload,
    bundled_catalogue,
    cohort_options,
    load_cbioportal,
    load_uploads,
    mapping_editor,
    open_bundled_button,
    remap_upload,
    text_encodings,
    upload_budget,
    upload_widget_key,
)
from .keys import (
    CSV_CACHE_ITEM_BYTES,
    fingerprint,
    followed_up,
    known_as,
    known_key,
)
from .process import apply_memory_settings, freeze_startup_objects
from .registry import (
    COUNTS_ANALYSES,
    DATA_DIR_ENV,
    DUCKDB_MEMORY_ENV,
    REGISTRY_SAMPLE,
    counts_columns,
    data_folder_path,
    registry_cohort,
    registry_names,
    registry_note,
)
from .render import (
    LARGE_DOWNLOAD_BYTES,
    MEDIAN_MISSING,
    NARROW_PREFIX,
    NARROW_SCREEN_PX,
    TABLE_ROW_PX,
    WIDE_PREFIX,
    chart,
    csv_payload,
    display_frame,
    download,
    export_prefix,
    figure,
    format_p,
    panel,
    panel_on_request,
    presenter_on,
    register_analysis,
    shown_table,
    small_group_note,
    synthetic_banner,
    table,
    wire_ready,
)
from .sidebar import (
    FILTER_KEY_PREFIX,
    ensure_router,
    finish,
    on_page,
    page_header,
    page_style,
    reset_filters_on_cohort_change,
    routed,
    sidebar,
    view_spec,
)
from .view import (
    DEFAULT_COHORT,
    LIST_SEP,
    PATIENT_LEVEL_BUNDLES,
    UPLOAD_MARKER,
    ask_for_lost_upload,
    level_pair,
    multiselect,
    number,
    one_of,
    plain,
    record,
    remember,
    selectbox,
    slider_range,
    subset_of,
    sync_url,
    toggle,
    upload_lost,
    uploads,
    within,
)

# Before any cohort is read: under a plain `streamlit run` (Community Cloud) the launcher's memory
# settings are missing, and those that can still be set in a running process are set here.
apply_memory_settings()
# Everything imported by now lives as long as the process: out of the cycle collector's walks.
freeze_startup_objects()

__all__ = [
    "ActiveCohort",
    "CACHE_BUDGET_ENV",
    "CBIOPORTAL_CACHE",
    "COUNTS_ANALYSES",
    "CSV_CACHE_ITEM_BYTES",
    "Context",
    "DATA_DIR_ENV",
    "DEFAULT_CACHE_MB",
    "DEFAULT_COHORT",
    "DUCKDB_MEMORY_ENV",
    "FILTER_KEY_PREFIX",
    "FRAME_CACHE",
    "FrameCache",
    "LARGE_DOWNLOAD_BYTES",
    "LIST_SEP",
    "MEDIAN_MISSING",
    "NARROW_PREFIX",
    "NARROW_SCREEN_PX",
    "PATIENT_LEVEL_BUNDLES",
    "REGISTRY_PREFIX",
    "REGISTRY_SAMPLE",
    "REMAP_NEEDS_FILE",
    "TABLE_ROW_PX",
    "UPLOAD_BUDGET_ENV",
    "UPLOAD_MARKER",
    "WIDE_PREFIX",
    "WITHIN_ANALYSES",
    "active_cohort",
    "add_upload",
    "analysis_columns",
    "ask_for_lost_upload",
    "bundled_catalogue",
    "cause_specific",
    "chart",
    "cohort_options",
    "counts_columns",
    "csv_payload",
    "data_folder_path",
    "display_frame",
    "download",
    "ensure_router",
    "export_prefix",
    "figure",
    "fingerprint",
    "finish",
    "followed_up",
    "format_p",
    "has_competing_causes",
    "known_as",
    "known_key",
    "level_pair",
    "load_cbioportal",
    "load_uploads",
    "mapping_editor",
    "multiselect",
    "number",
    "on_page",
    "one_of",
    "open_bundled_button",
    "page_header",
    "page_style",
    "panel",
    "panel_on_request",
    "plain",
    "presenter_on",
    "record",
    "register_analysis",
    "registry_cohort",
    "registry_names",
    "registry_note",
    "remap_upload",
    "remember",
    "reset_filters_on_cohort_change",
    "routed",
    "run_on_table",
    "run_within",
    "selectbox",
    "session_memo",
    "shown_table",
    "sidebar",
    "slider_range",
    "small_group_note",
    "studies",
    "subset_of",
    "sync_url",
    "synthetic_banner",
    "table",
    "text_encodings",
    "toggle",
    "upload_budget",
    "upload_lost",
    "upload_widget_key",
    "uploads",
    "values_per_column",
    "view_spec",
    "wire_ready",
    "within",
]
