"""The shared sidebar (cohort picker, filters, time model), page chrome and the view spec."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import streamlit as st

from her2er_dash import schema
from her2er_dash.filters import CohortFilter

from .analysis import (
    Context,
    _cached_cutpoints,
    _cached_levels,
    _cached_range,
    _filtered,
    _unfiltered,
)
from .cohorts import BUNDLED_PREFIX, REGISTRY_PREFIX, ActiveCohort, active_cohort, cohort_options
from .registry import _registry_filtered, _registry_of, registry_note
from .render import NARROW_PREFIX, NARROW_SCREEN_PX, WIDE_PREFIX
from .view import (
    DEFAULT_COHORT,
    PATIENT_LEVEL_BUNDLES,
    _forget_lost_upload,
    _note_lost_upload,
    _view,
    ask_for_lost_upload,
    multiselect,
    number,
    one_of,
    plain,
    record,
    remember,
    selectbox,
    slider_range,
    sync_url,
    toggle,
    uploads,
)

log = logging.getLogger("her2er_explorer")

# --------------------------------------------------------------------------------------------
# The shared sidebar.
# --------------------------------------------------------------------------------------------


# Set while app.py's router runs the current page (one script run = one thread).
_ROUTER = threading.local()


@contextmanager
def routed() -> Iterator[None]:
    """Mark the pages run inside ``app.py``'s ``st.navigation`` (see :func:`ensure_router`)."""
    _ROUTER.active = True
    try:
        yield
    finally:
        _ROUTER.active = False


def ensure_router() -> None:
    """Send a page that was started without the router back through ``app.py``.

    A fresh server that finds a ``pages/`` folder beside the entry point routes its very first
    request the legacy way, running a page file directly (no page config, a different menu) until
    some run has called ``st.navigation``. A page knows it was reached through the router because
    ``app.run`` marks the run (:func:`routed`); otherwise the router runs here, inside this same
    script run (a rerun would drop a button click of this run), and this legacy run then stops.
    """
    if not getattr(_ROUTER, "active", False):
        import app

        app.run()
        st.stop()


@st.fragment(run_every="1h")
def _rerun_on_reconnect() -> None:
    """Draws nothing. A page with a timed fragment is rerun by the browser whenever its websocket
    reconnects (Streamlit's frontend does so only for such pages). After a server restart that
    rerun starts a new session from the URL and the widgets: a bundled cohort's view comes back,
    and an uploaded cohort (gone with the old process) is asked for again, instead of the page
    showing the dead session's output until the next click. The hourly fragment run itself
    costs nothing."""


def sidebar() -> Context:
    """Draw the cohort picker and filters (identical on every page) and return the context."""
    ensure_router()
    options = cohort_options()
    with st.sidebar:
        st.markdown("### Cohort")
        if "_pending_cohort" in st.session_state:
            st.session_state["cohort"] = st.session_state.pop("_pending_cohort")
        _view()
        _note_lost_upload()
        remember("cohort", DEFAULT_COHORT, one_of(list(options)))
        st.selectbox(
            "Cohort", list(options), format_func=options.get, key="cohort", label_visibility="collapsed",
            on_change=_forget_lost_upload,
        )
        record("cohort")
        reset_filters_on_cohort_change(st.session_state["cohort"])
        cohort = active_cohort()
        st.session_state["_synthetic_view"] = cohort.synthetic
        if cohort.synthetic:
            st.caption(":orange[**SYNTHETIC data** — not real patients]")
        flt = _filter_widgets(cohort)
        fallback = _time_model_widgets(cohort)
        classified = True
        try:
            filtered = (_registry_filtered(cohort.token, flt) if cohort.registry is not None
                        else _filtered(cohort.token, flt, cohort.data))
        except ValueError as exc:
            # e.g. a HER2 IHC score of 5: the pages still work on the data as loaded, and the
            # Cohort page (mapping, validation report) stays usable to fix it.
            st.error(f"Filters and ER/HER2 classification are off for this cohort: {plain(exc)}")
            flt, classified = CohortFilter(), False
            filtered = _unfiltered(cohort.data)
        st.info(plain(filtered.describe()))
        if cohort.registry is not None:
            st.caption(plain(registry_note(filtered)))
        presenter = toggle("Presenter mode (large fonts)", key="presenter")
        st.radio("Figure image format (camera button on each figure)", ["png", "svg"],
                 key="image_format", horizontal=True)
        _rerun_on_reconnect()
    page_style(presenter)
    return Context(cohort=cohort, flt=flt, filtered=filtered, presenter=presenter,
                   classified=classified, landmark_fallback=fallback)


FILTER_KEY_PREFIX = "f_"


def _cohort_identity(token: str) -> str:
    """The data behind a cohort choice: a bundle key, or an upload's content (a re-mapped upload
    keeps its identity, so its filters stay)."""
    item = uploads().get(token)
    return item.get("source_id", token) if item else token


def reset_filters_on_cohort_change(token: str) -> None:
    """Filters belong to a cohort: when another cohort is chosen, every sidebar filter (widget
    keys starting with ``f_``) goes back to "all", so a range chosen for one cohort never
    silently excludes patients of the next."""
    identity = _cohort_identity(token)
    previous = st.session_state.get("_filters_for")
    st.session_state["_filters_for"] = identity
    if previous is None or previous == identity:
        return
    view = _view()
    for store in (st.session_state, view, st.session_state.get("_url_raw", {})):
        for key in [k for k in list(store.keys()) if str(k).startswith(FILTER_KEY_PREFIX)]:
            del store[key]


@st.cache_data(max_entries=64, ttl=3600, show_spinner=False)
def _cached_unknown(token: str, column: str, _data: pd.DataFrame) -> int:
    if token.startswith(REGISTRY_PREFIX):
        return _registry_of(token).unknown(column)
    return int(_data[column].isna().sum())


def _filter_widgets(cohort: ActiveCohort) -> CohortFilter:
    data, token = cohort.data, cohort.token
    st.markdown("### ER")
    measures = schema.available_er_measures(data.columns)
    kwargs: dict[str, Any] = {}
    if measures:
        measure = selectbox(
            "ER measure",
            measures,
            key="f_er_measure",
            format_func=schema.ER_MEASURES.get,
            help="Which ER level the range and the ER categories use.",
        )
        span = _cached_range(token, measure, data)
        base = _cached_cutpoints(token, measure, data)
        kwargs["er_measure"] = measure
        if span is not None and span[0] < span[1]:
            low, high = span
            chosen = slider_range(f"{schema.ER_MEASURES[measure]} range", low, high, key="f_er_range")
            if chosen != (low, high):
                kwargs["er_range"] = chosen
        with st.expander("ER category cut-points", expanded=False):
            st.caption(f"Default: {base.describe()}. ER category, ER status (ER-low counts as "
                       "positive) and HR status all follow these cut-points; the statuses as "
                       "recorded in the file stay available as their own columns.")
            if base.low is not None:
                kwargs["er_low"] = number("ER-low from", key="f_er_low", default=base.low, min_value=0.0)
            kwargs["er_high"] = number("ER-positive above", key="f_er_high", default=base.high, min_value=0.0)
            if (kwargs.get("er_low", base.low), kwargs["er_high"]) != (base.low, base.high):
                st.caption(":orange[User-defined cut-points] (not the default above): every panel "
                           "and the methods text say so.")
    else:
        st.caption("This cohort has no quantitative ER measure; ER categories come from ER status.")
    kwargs["er_categories"] = tuple(
        multiselect("ER category", list(schema.ER_CATEGORIES), key="f_er_cat")
    )
    st.markdown("### HER2 and hormone receptors")
    kwargs.update(_categorical_filters(cohort))
    if "pcr" in data.columns:
        st.markdown("### pCR")
        kwargs["pcr_itt"] = toggle(
            "Intention to treat (no pCR result = non-pCR)", key="f_pcr_itt",
            help="Count patients without a pCR result (no surgery, or no pathology) as non-pCR, "
                 "the CTNeoBC/FDA convention; off: they are left out (complete cases).",
        )
    st.markdown("### Patients and treatment")
    span = _cached_range(token, "age", data) if "age" in data.columns else None
    if span is not None and span[0] < span[1]:
        chosen = slider_range("Age (years)", *span, key="f_age", step=1.0)
        if chosen != span:
            kwargs["age_range"] = chosen
        unknown = _cached_unknown(token, "age", data)
        if unknown and toggle(f"Exclude the {unknown:,} patients with unknown age",
                              key="f_age_known", help="Ranges keep patients whose value is "
                              "unknown; tick to exclude them (counted in the flow)."):
            kwargs["exclude_missing"] = ("age",)
    for field_name, column, label, key in (
        ("arms", "arm", "Arm / regimen", "f_arm"),
        ("studies", "study", "Study", "f_study"),
        ("t_stage", "t_stage", "T stage", "f_t"),
        ("n_stage", "n_stage", "N stage", "f_n"),
    ):
        levels = _cached_levels(token, None, column, data)
        if len(levels) > 1:
            kwargs[field_name] = tuple(multiselect(label, levels, key=key))
    return CohortFilter(**kwargs)


def _categorical_filters(cohort: ActiveCohort) -> dict[str, tuple[str, ...]]:
    out = {}
    for field_name, column, label, key in (
        ("her2_status", "her2_status", "HER2 status (ASCO/CAP 2018)", "f_her2"),
        ("her2_category", "her2_category", "HER2 category", "f_her2cat"),
        ("hr_status", "hr_status", "HR status (ER or PR)", "f_hr"),
        ("pr_status", "pr_status", "PR status", "f_pr"),
    ):
        levels = _cached_levels(cohort.token, None, column, cohort.data)
        if levels:
            out[field_name] = tuple(multiselect(label, levels, key=key))
        else:
            st.caption(f"{label}: not available in this cohort.")
    return out


def _time_model_widgets(cohort: ActiveCohort) -> float | None:
    """Where times start, and how pCR is landmarked when it is a time-to-event exposure.

    Returns the fixed landmark used as a fallback for patients without a surgery time (None:
    no fallback, those patients are left out, and a cohort without surgery times refuses pCR
    as a time-to-event exposure).
    """
    data = cohort.data
    if not schema.available_endpoints(data.columns):
        return None
    st.markdown("### Time")
    if cohort.time_origin_stated:
        st.caption(f"Times count from **{cohort.time_origin}**.")
    else:
        st.caption("Times count from an origin **the source does not state**; choose it in the "
                   "mapping for an upload.")
    if "pcr" not in data.columns:
        return None
    has_surgery = "surgery_months" in data.columns and bool(data["surgery_months"].notna().any())
    if cohort.time_origin == "surgery":
        st.caption("pCR as a survival exposure: times already start at surgery, when pCR is "
                   "known, so no landmark is needed.")
        return None
    if has_surgery:
        st.caption("pCR as a survival exposure: each patient is followed from her own surgery "
                   "(landmark at surgery).")
    elif cohort.landmark_months is not None:
        st.caption(f"pCR as a survival exposure: this cohort has no surgery dates, so patients are "
                   f"followed from a fixed landmark at {cohort.landmark_months:g} months: "
                   f"{cohort.landmark_reason}.")
    else:
        st.caption("pCR as a survival exposure needs a landmark, and this cohort has no surgery "
                   "times: such views are refused unless you set a fixed landmark below.")
    label = ("Fixed landmark for patients without a surgery time" if has_surgery
             else "Use a fixed landmark (stated fallback)")
    documented = cohort.landmark_months is not None and not has_surgery
    if not toggle(label, key="lm_fixed", default=documented):
        return None
    return number("Fixed landmark (months)", key="lm_fixed_at",
                  default=cohort.landmark_months if documented else 6.0, min_value=0.0)


def page_style(presenter: bool) -> None:
    """The page's CSS, in one place: a compact top (the first chart above the fold on a 1366 × 768
    laptop), the stacked figure layouts on phones only (see :func:`chart`), and presenter mode.

    Presenter mode scales the root font size by ``figures.PRESENTER_SCALE``: Streamlit sizes
    headings, body text, widgets and table text in rem, so they all grow by the one factor the
    figures use for their text, and keep their proportions (headings stay larger than body text).
    """
    from her2er_dash.figures import PRESENTER_SCALE

    rules = [
        '[data-testid="stMainBlockContainer"] {padding-top: 3rem; padding-bottom: 4rem;}',
        '[data-testid="stMainBlockContainer"] h1 {font-size: 2.1rem; padding-top: 0.25rem;}',
        f"@media (max-width: {NARROW_SCREEN_PX}px) {{[class*='st-key-{WIDE_PREFIX}'] {{display: none;}}}}",
        f"@media (min-width: {NARROW_SCREEN_PX + 1}px) {{[class*='st-key-{NARROW_PREFIX}'] {{display: none;}}}}",
    ]
    if presenter:
        rules.append(f"html {{font-size: {100 * PRESENTER_SCALE:.0f}%;}}")
    st.html("<style>" + "\n".join(rules) + "</style>")


def page_header(ctx: Context, title: str, intro: str) -> None:
    """Title, a one-paragraph intro, and — compactly, so the page's first chart stays in view —
    the synthetic-data warning and the cohort's limits (details in one expander)."""
    st.title(title)
    st.caption(intro)
    ask_for_lost_upload()
    cohort = ctx.cohort
    if cohort.synthetic:
        st.warning(
            f"**SYNTHETIC DATA** — {cohort.title}: generated by `her2er_dash.simulate`, not real "
            "patients. What it shows about pCR and ER it shows because the generator assumes it "
            "(see *About this cohort*).",
            icon="⚠️",
        )
    if cohort.cannot_show or cohort.assumptions:
        limits = f"{len(cohort.cannot_show)} limits" if cohort.cannot_show else "assumptions"
        with st.expander(f"About this cohort: what it can and cannot show ({limits})"):
            if cohort.assumptions:
                st.markdown("**What the generator assumes**\n\n"
                            + "\n".join(f"- {s}" for s in cohort.assumptions))  # fmt: skip
            if cohort.can_show:
                st.markdown("**Can show**\n\n" + "\n".join(f"- {s}" for s in cohort.can_show))
            if cohort.cannot_show:
                st.markdown("**Cannot show**\n\n" + "\n".join(f"- {s}" for s in cohort.cannot_show))
            if cohort.citation:
                st.caption(f"Cite: {cohort.citation} Licence: {cohort.licence}.")


def on_page(url_path: str) -> None:
    """Called by the router before a page runs: files prepared for download (see
    :func:`download`) belong to the page they were prepared on."""
    if st.session_state.get("_page") != url_path:
        st.session_state["_page"] = url_path
        st.session_state.pop("_prepared_downloads", None)


def finish() -> None:
    """End of every page run: keep the URL in step with the view."""
    sync_url()
    st.session_state["_last_view"] = json.dumps(
        {k: v for k, v in _view().items() if k != "cohort" or v in PATIENT_LEVEL_BUNDLES}, default=str
    )


def _upload_origin(cohort: ActiveCohort) -> dict:
    """How the reproducibility script reads an upload again: its real file names, content hash
    and chosen encoding (never the on-screen label), or the public study it was fetched from."""
    item = uploads().get(cohort.token)
    if item is None or cohort.cohort is None:
        return {}
    return {**item.get("origin", {}), "sha256": cohort.cohort.source.sha256}


def view_spec(ctx: Context) -> dict:
    """The whole view as plain data: for the methods paragraph and the reproducibility bundle."""
    analyses = [a for page in st.session_state.get("_analyses", {}).values() for a in page]
    is_bundle = ctx.cohort.token.startswith(BUNDLED_PREFIX)
    cutpoints = ctx.flt.cutpoints(ctx.cohort.data)
    default = _cached_cutpoints(ctx.cohort.token, cutpoints.measure, ctx.cohort.data) \
        if cutpoints.measure in ctx.cohort.data.columns else None
    user_defined = default is not None and (cutpoints.low, cutpoints.high) != (default.low, default.high)
    pcr = ctx.pcr_definitions() if "pcr" in ctx.data.columns else None
    return {
        "cohort": {
            "key": ctx.cohort.token.split(":", 1)[1] if is_bundle else None,
            "title": ctx.cohort.title,
            "synthetic": ctx.cohort.synthetic,
            "assumptions": list(ctx.cohort.assumptions),
            "source": ctx.cohort.source,
            "citation": ctx.cohort.citation,
            "licence": ctx.cohort.licence,
            "n_total": ctx.filtered.n_total,
            "preparation": list(ctx.cohort.preparation),
            "time_origin": ctx.cohort.time_origin,
            "time_origin_stated": ctx.cohort.time_origin_stated,
            "mapping": ctx.cohort.cohort.mapping.to_json() if ctx.cohort.cohort is not None else None,
            **_upload_origin(ctx.cohort),
        },
        "filters": ctx.flt.to_dict(),
        "filter_description": ctx.flt.describe(),
        "er_rule": cutpoints.describe(),
        "er_rule_source": "user-defined" if user_defined else (default.reference if default else None),
        "pcr_definitions": [] if pcr is None
        else [[r.study, r.pcr_definition] for r in pcr.drop_duplicates(["study", "pcr_definition"]).itertuples()],
        "pcr_itt": ctx.flt.pcr_itt,
        "n_analysed": ctx.filtered.n,
        "exclusions": [list(e) for e in ctx.flt.exclusion_sentences(ctx.filtered.flow)],
        "analyses": analyses,
    }
