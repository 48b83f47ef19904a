"""Streamlit glue for HER2/ER Explorer: session state, the URL, caching and the shared sidebar.

This is the module that knows about both Streamlit and ``her2er_dash`` (with ``ui_mapping``, the
mapping editor it draws on the Cohort page). Pages call :func:`sidebar` first, then the cached
analysis wrappers here, then the figure builders.

Privacy: uploaded files are parsed from memory into ``st.session_state`` (one browser session)
and never written to disk or logged. The uploaded bytes are not kept after loading: the session
keeps the parsed table (compacted) to re-map it (only its first rows when it is large: re-mapping
then needs the file again), and the uploader is cleared. Shared caches are
keyed on a content hash, so another session can only hit a cached result for data it uploaded
itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from her2er_dash import memory, schema
from her2er_dash.datasets import DEFAULT_BUNDLE, REAL_PATIENT_LEVEL
from her2er_dash.filters import CohortFilter, FilterResult

log = logging.getLogger("her2er_explorer")

#: The cohort a fresh session opens on (I-SPY 1; why: data/README.md).
DEFAULT_COHORT = DEFAULT_BUNDLE
#: Public cBioPortal responses only (never uploads) are cached here between sessions.
CBIOPORTAL_CACHE = Path.home() / ".cache" / "her2er_explorer" / "cbioportal"
#: Bundled patient-level cohorts in picker order: the real ones first, the synthetic trial last.
PATIENT_LEVEL_BUNDLES = (*REAL_PATIENT_LEVEL, "gbsg2", "synthetic")
LIST_SEP = "|"

# --------------------------------------------------------------------------------------------
# The view: every widget whose value belongs in the shareable URL is "remembered" here.
# Not Streamlit's widget ``bind="query-params"`` (1.67): a bound widget always writes its value to
# the URL, while an upload's filter values (arm, study names) are the user's data and must never
# go there; a bound parameter cannot be set through st.query_params (the cohort=uploaded marker,
# the filter reset on a cohort switch); and an untouched widget here follows the next cohort's
# default (e.g. its age range) instead of keeping the previous cohort's as a silent filter.
# --------------------------------------------------------------------------------------------


def _view() -> dict[str, Any]:
    """Values of URL-synced widgets for this session (survive page switches)."""
    if "_view" not in st.session_state:
        st.session_state["_view"] = {}
        st.session_state["_view_defaults"] = {}
        st.session_state["_url_raw"] = {k: st.query_params.get(k) for k in st.query_params}
    return st.session_state["_view"]


def _decode(raw: str, default: Any) -> Any:
    """Turn a URL string back into a value shaped like ``default``."""
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, (list, tuple)):
        items = [] if raw == "" else raw.split(LIST_SEP)
        if isinstance(default, tuple) and len(default) == 2 and all(
            isinstance(v, (int, float)) for v in default
        ):
            low, high = (float(v) for v in items[:2])
            return (low, high)
        return items
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, int):
        return int(float(raw))
    return raw


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return LIST_SEP.join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def remember(key: str, default: Any, valid: Callable[[Any], Any] | None = None) -> None:
    """Seed widget ``key`` before it is drawn: from this session's view, else the URL, else default.

    ``valid`` maps a candidate value to an allowed one (e.g. drops options the cohort lacks), so a
    stale URL or a cohort switch never makes a widget raise.
    """
    view = _view()
    defaults = st.session_state["_view_defaults"]
    previous_default = defaults.get(key, default)
    defaults[key] = default
    raw = st.session_state["_url_raw"].pop(key, None)
    if key in st.session_state:
        value = st.session_state[key]
    elif raw is not None:
        try:
            value = _decode(raw, default)
        except (TypeError, ValueError):
            value = default
    else:
        value = view.get(key, default)
    if raw is None and _same(value, previous_default) and not _same(default, previous_default):
        # Left at the old default (e.g. the previous cohort's full age range): follow the new one,
        # so a cohort switch never turns an untouched widget into a filter.
        value = default
    if valid is not None:
        try:
            value = valid(value)
        except (TypeError, ValueError):
            value = valid(default)
    st.session_state[key] = value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def record(key: str) -> Any:
    """Store the drawn widget's value in the view and return it."""
    value = st.session_state[key]
    _view()[key] = value
    return value


def sync_url() -> None:
    """Write every non-default view value into the URL (uploaded data never goes there)."""
    view = _view()
    defaults = st.session_state["_view_defaults"]
    wanted = {k: _encode(v) for k, v in view.items() if k in defaults and v != defaults[k]}
    if view.get("cohort", DEFAULT_COHORT) not in PATIENT_LEVEL_BUNDLES or upload_lost():
        # With an upload, filter values are the user's data (arm, study names...): the URL says
        # only that the cohort was the user's own (so that a reload or a restarted server asks
        # for the file again instead of showing another cohort), and the view is shared through
        # the Methods page's bundle instead.
        wanted = {"cohort": UPLOAD_MARKER}
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)


#: The URL's ``cohort`` while the user's own (uploaded or live) cohort is active: no name, no hash.
UPLOAD_MARKER = "uploaded"


def upload_lost() -> bool:
    """True while the URL names an uploaded cohort that this session does not hold (a reload, an
    expired session or a restarted server: uploads live in session memory only)."""
    return bool(st.session_state.get("_upload_lost"))


def _note_lost_upload() -> None:
    raw = st.session_state["_url_raw"]
    if raw.get("cohort") == UPLOAD_MARKER:
        raw.pop("cohort")
        if not uploads():
            st.session_state["_upload_lost"] = True


def _forget_lost_upload() -> None:
    st.session_state.pop("_upload_lost", None)


def ask_for_lost_upload() -> None:
    """Say that the uploaded cohort is gone and must be uploaded again; on every page but the
    Cohort page (where the uploader is), stop there, so that no other cohort's numbers are shown
    in its place."""
    if not upload_lost():
        return
    st.warning(
        "**Your uploaded cohort is no longer in memory** (the page was reloaded, the session "
        "expired or the server restarted: uploaded data lives only in the session that uploaded "
        "it, never on disk). Upload the file again on the Cohort page, or pick a bundled cohort "
        "in the sidebar.", icon=":material/upload_file:")
    if st.session_state.get("_page") != "Cohort":
        st.page_link("pages/1_Cohort.py",
                     label="Upload it again on the Cohort page", icon=":material/table_view:")
        st.stop()


def one_of(options: list, fallback: Any = None) -> Callable[[Any], Any]:
    """Keep a value that is still an option; else the fallback (if an option), else the first."""
    def check(value):
        if value in options:
            return value
        return fallback if fallback in options else options[0]

    return check


def subset_of(options: list) -> Callable[[Any], list]:
    def check(value):
        return [v for v in (value or []) if v in options]

    return check


def within(low: float, high: float) -> Callable[[Any], tuple[float, float]]:
    def check(value):
        a, b = (float(v) for v in value)
        a, b = max(low, min(a, b)), min(high, max(a, b))
        return (a, b) if a <= b else (low, high)

    return check


def selectbox(label: str, options: list, *, key: str, default=None, **kwargs):
    default = options[0] if default is None else default
    remember(key, default, one_of(options, default))
    st.selectbox(label, options, key=key, **kwargs)
    return record(key)


def level_pair(levels: list, *, keys: tuple[str, str], labels: tuple[str, str],
               defaults: tuple = (None, None), columns: tuple = (None, None),
               **kwargs) -> tuple[Any, Any]:
    """Two pickers for a contrast (e.g. a level and its reference) that can never hold the same
    value: the second offers every level but the one chosen in the first. When the user picks in
    the first the level the second held, the second moves to its default (or the first other
    level). ``levels`` needs at least two values; ``columns``: containers to draw each in."""
    if len(levels) < 2:
        raise ValueError(f"A contrast needs two levels; there are {len(levels)}.")
    with columns[0] or nullcontext():
        first = selectbox(labels[0], levels, key=keys[0], default=defaults[0], **kwargs)
    others = [v for v in levels if v != first]
    with columns[1] or nullcontext():
        second = selectbox(labels[1], others, key=keys[1],
                           default=defaults[1] if defaults[1] in others else None, **kwargs)
    return first, second


def multiselect(label: str, options: list, *, key: str, default=(), **kwargs) -> list:
    remember(key, list(default), subset_of(options))
    st.multiselect(label, options, key=key, **kwargs)
    return record(key)


def slider_range(label: str, low: float, high: float, *, key: str, step=None, **kwargs):
    remember(key, (low, high), within(low, high))
    st.slider(label, min_value=low, max_value=high, key=key, step=step, **kwargs)
    return record(key)


def number(label: str, *, key: str, default: float, **kwargs) -> float:
    remember(key, float(default), float)
    st.number_input(label, key=key, **kwargs)
    return record(key)


def toggle(label: str, *, key: str, default: bool = False, **kwargs) -> bool:
    remember(key, default, bool)
    st.toggle(label, key=key, **kwargs)
    return record(key)


# --------------------------------------------------------------------------------------------
# Cohorts: bundled (cached, shared), uploaded and live (session memory only).
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveCohort:
    """The cohort the user is looking at, whatever its origin."""

    token: str  # cache key: bundled key, or a content hash for uploads
    title: str
    data: pd.DataFrame = field(repr=False)
    synthetic: bool = False
    label: str = ""
    source: str = ""
    cannot_show: tuple[str, ...] = ()
    cohort: Any = None  # her2er_dash.cohort.Cohort for uploads (mapping, issues)
    time_origin: str = schema.DEFAULT_TIME_ORIGIN  # a schema.TIME_ORIGINS key
    pcr_definition: str | None = None  # cohort-wide pCR definition (mapping or bundle)
    assumptions: tuple[str, ...] = ()  # what a synthetic cohort assumes rather than shows
    preparation: tuple[str, ...] = ()  # how a bundled cohort became canonical (methods text)
    can_show: tuple[str, ...] = ()
    citation: str = ""
    licence: str = ""
    landmark_months: float | None = None  # documented surgery time when there are no dates
    landmark_reason: str = ""
    registry: Any = field(default=None, repr=False)  # her2er_dash.engine.Registry (data folder)

    @property
    def time_origin_stated(self) -> bool:
        """False when the source does not say where its times start."""
        return self.time_origin != schema.UNSTATED_TIME_ORIGIN


@st.cache_resource(max_entries=4, ttl=6 * 3600, show_spinner="Loading the bundled cohort…")
def _bundled(key: str):
    from her2er_dash import datasets

    return datasets.bundled(key)


@st.cache_data(max_entries=1, show_spinner=False)
def bundled_catalogue() -> pd.DataFrame:
    from her2er_dash import datasets

    return datasets.list_bundled()


#: Environment variable: the memory (MB) one upload may need once loaded; unset, no limit.
UPLOAD_BUDGET_ENV = "HER2ER_UPLOAD_BUDGET_MB"
#: Environment variable: the memory (MB) the shared caches of whole cohorts may hold.
CACHE_BUDGET_ENV = "HER2ER_CACHE_MB"
DEFAULT_CACHE_MB = 256


def _megabytes(variable: str, default: float | None) -> int | None:
    text = os.environ.get(variable)
    try:
        value = float(text) if text else default
    except ValueError:
        log.warning("%s=%r is not a number of MB; using %s", variable, text, default)
        value = default
    return None if value is None else int(value * 1024**2)


def upload_budget() -> int | None:
    """Bytes one upload may need once loaded (:data:`UPLOAD_BUDGET_ENV`), None without limit."""
    return _megabytes(UPLOAD_BUDGET_ENV, None)


class FrameCache:
    """Whole-cohort frames shared between sessions, bounded by bytes (least recently used out).

    ``st.cache_resource`` bounds entries only, while one entry here (a classified, filtered,
    subset or landmarked copy of a cohort) ranges from kilobytes to hundreds of MB: a bound on
    entries either wastes the small ones or overflows memory with the large ones. Sizes are the
    memory an entry adds: ``DataFrame.memory_usage`` (shallow) of its columns, leaving out those
    that share their buffer with the frame it was derived from (``base``): the classified
    cohort shares every loaded column with the cohort and adds its new categories only. An
    entry larger than the whole budget is computed and returned but not kept.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self._items: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: tuple, compute: Callable[[], Any], base: pd.DataFrame | None = None) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = compute()
        size = _frame_bytes(value, base)
        with self._lock:
            if key not in self._items and size <= self.budget:
                self._items[key] = (value, size)
                self._bytes += size
                while self._bytes > self.budget:
                    _, (_, freed) = self._items.popitem(last=False)
                    self._bytes -= freed
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def _frame_bytes(value: Any, base: pd.DataFrame | None = None) -> int:
    """Shallow bytes of ``value``'s frame, less the columns whose buffer it shares with
    ``base`` (the same column of the frame it was derived from)."""
    frame = getattr(value, "data", value)  # a FilterResult holds its rows in .data
    if not isinstance(frame, pd.DataFrame):
        return 0
    sizes = frame.memory_usage(index=True, deep=False)
    if base is None or not frame.columns.is_unique or not base.columns.is_unique:
        return int(sizes.sum())
    shared = [c for c in frame.columns if c in base.columns
              and _shares_buffer(frame[c], base[c])]
    return int(sizes.drop(shared).sum())


def _shares_buffer(a: pd.Series, b: pd.Series) -> bool:
    def buffer(values: pd.Series):
        if isinstance(values.dtype, pd.CategoricalDtype):
            return values.array.codes
        return values.to_numpy(copy=False) if isinstance(values.dtype, np.dtype) else None

    left, right = buffer(a), buffer(b)
    return left is not None and right is not None and np.may_share_memory(left, right)


#: The one byte-bounded cache of whole-cohort frames (:data:`CACHE_BUDGET_ENV`).
FRAME_CACHE = FrameCache(_megabytes(CACHE_BUDGET_ENV, DEFAULT_CACHE_MB))


def _frames(kind: str, spinner: str | None = None):
    """Cache a function of ``(token, ..., _data)`` in :data:`FRAME_CACHE`; arguments whose name
    starts with ``_`` are not part of the key (as with ``st.cache_resource``)."""
    import functools
    import inspect

    def decorate(fn):
        names = list(inspect.signature(fn).parameters)

        @functools.wraps(fn)
        def wrapper(*args):
            key = (kind, *(a for n, a in zip(names, args, strict=True) if not n.startswith("_")))

            def compute():
                if spinner is None:
                    return fn(*args)
                with st.spinner(spinner):
                    return fn(*args)

            base = next((a for n, a in zip(names, args, strict=True)
                         if n.startswith("_") and isinstance(a, pd.DataFrame)), None)
            return FRAME_CACHE.get(key, compute, base)

        return wrapper

    return decorate


def uploads() -> dict[str, dict]:
    """This session's uploaded cohorts: token -> {"cohort": Cohort, "name": str}."""
    return st.session_state.setdefault("_uploads", {})


def text_encodings() -> list[str]:
    """Encodings the user can choose for a text upload."""
    from her2er_dash.ingest.readers import ENCODINGS

    return list(ENCODINGS)


def upload_widget_key() -> str:
    """Key of the file uploader: a new one after each load, so that the loaded files leave the
    session's widget state (the uploader is drawn empty again)."""
    rounds = st.session_state.get("_upload_round", 0)
    return "upload_files" if rounds == 0 else f"upload_files_{rounds}"


def add_upload(cohort, name: str, source=None, kind: str = "upload", origin: dict | None = None,
               remap_needs_file: bool = False) -> str:
    """Keep a loaded Cohort (and its compacted raw table, to re-map) in session memory; make it
    active. ``origin`` says how to read it again outside the app (the reproducibility script):
    ``{"files": [names], "encoding": chosen or None}`` or ``{"cbioportal_study": id}``.
    ``remap_needs_file``: ``source`` holds only the table's first rows (a large upload), which
    guide the mapping editor; applying a mapping then needs the file again."""
    # The token keys shared caches: content hash AND mapping, so a re-mapped file never reuses
    # results computed under its previous mapping.
    digest = hashlib.sha256((cohort.source.sha256 + cohort.mapping.to_json()).encode()).hexdigest()
    cohort = replace(cohort, data=memory.compact_frame(cohort.data))
    token = f"{kind}:{digest[:16]}"
    uploads()[token] = {"cohort": cohort, "name": name, "source": source,
                        "source_id": f"{kind}:{cohort.source.sha256}", "origin": origin or {},
                        "remap_needs_file": remap_needs_file}
    # The picker is already drawn in this run: switch to the new cohort on the next run.
    st.session_state["_pending_cohort"] = token
    _forget_lost_upload()
    return token


def load_uploads(files, mapping_file=None, encoding: str | None = None) -> None:
    """Parse newly uploaded files (joined on patient ID when several) into the session.

    Only the parsed table is kept (compacted, for re-mapping); the uploaded bytes are dropped and
    the uploader is replaced by an empty one.
    """
    from her2er_dash import cohort as cohort_io

    digests = [hashlib.sha256(f.getvalue()).hexdigest() for f in files]
    mapping_text = mapping_file.getvalue() if mapping_file is not None else b""
    signature = "".join(digests) + hashlib.sha256(mapping_text).hexdigest() + str(encoding)
    if st.session_state.get("_last_upload") == signature:
        # The same files dropped again after they were loaded (the uploader is emptied after each
        # load): nothing new to parse, but the user asked for that cohort, so it becomes active.
        token = st.session_state.get("_last_upload_token")
        if token in uploads():
            st.session_state["_upload_round"] = st.session_state.get("_upload_round", 0) + 1
            st.session_state["_pending_cohort"] = token
            _forget_lost_upload()
            st.session_state["_upload_done"] = (f"{' + '.join(f.name for f in files)} was already "
                                                "loaded in this session: it is the active cohort again.")
            st.rerun()
        return
    st.session_state["_last_upload"] = signature
    name = " + ".join(f.name for f in files)
    try:
        memory.check_budget([memory.estimate_upload(f.getvalue(), f.name) for f in files],
                            upload_budget())
        mapping = cohort_io.Mapping.from_json(mapping_text) if mapping_text else None
        with st.spinner(f"Reading {name}…"):
            source = list(files) if len(files) > 1 else files[0]
            raw = cohort_io.read_source(source, mapping=mapping, name=name, encoding=encoding)
            loaded = cohort_io.build_cohort(raw, mapping)
    except ValueError as exc:
        st.session_state["_last_upload"] = None
        st.error(plain(exc))
        return
    whole = memory.keeps_table_for_remapping(*raw.frame.shape)
    st.session_state["_last_upload_token"] = add_upload(
        loaded, name, cohort_io.compact(raw if whole else _first_rows(raw)),
        origin={"files": [f.name for f in files], "encoding": encoding}, remap_needs_file=not whole)
    del raw, source, files  # our last references to the uploaded bytes go with this run
    # A new uploader key replaces the widget with an empty one: its files leave the session's
    # widget state. (Streamlit's upload store frees their bytes when the session ends; it has
    # no public call to free them earlier.)
    st.session_state["_upload_round"] = st.session_state.get("_upload_round", 0) + 1
    st.session_state["_upload_done"] = (
        f"Loaded {name}: {loaded.n:,} patients ({loaded.source.format}"
        + (f", {loaded.source.encoding}" if loaded.source.encoding else "") + "). The file "
        "itself is not kept: "
        + ("its table stays in this session's memory to re-map it." if whole else
           f"at this size only its first {memory.REMAP_SAMPLE_ROWS:,} rows stay in memory (to guide "
           "the mapping editor), so changing the mapping means uploading the file again with the "
           "edited mapping.")
    )
    st.rerun()


def _first_rows(raw):
    """``raw`` cut to its first rows (own copies: no view keeps the whole table alive)."""
    frame = raw.sample if raw.sample is not None else raw.frame.iloc[:memory.REMAP_SAMPLE_ROWS]
    return replace(raw, frame=frame.copy(deep=True), sample=None)


#: Why a large upload cannot be re-mapped in memory, and what to do instead.
REMAP_NEEDS_FILE = (
    "{name} is large, so only its first {rows:,} rows were kept in this session's memory (they "
    "guide this editor) and a new mapping cannot be applied to them. To apply it, download the "
    "edited mapping and upload the file again together with it (Optional: a saved mapping)."
)


def remap_upload(token: str, mapping) -> None:
    """Rebuild an uploaded cohort from its in-memory table with an edited mapping."""
    from her2er_dash import cohort as cohort_io

    item = uploads()[token]
    if item.get("source") is None:
        st.error("This cohort cannot be re-mapped here: load it again to change its mapping.")
        return
    if item.get("remap_needs_file"):
        st.warning(REMAP_NEEDS_FILE.format(name=plain(item["name"]), rows=memory.REMAP_SAMPLE_ROWS))
        download("Download the edited mapping (JSON)", mapping.to_json(),
                 file_name="her2er_mapping.json", mime="application/json",
                 key=f"map_dl_needs_file_{token}")
        return
    try:
        loaded = cohort_io.build_cohort(cohort_io.expand(item["source"]), mapping)
    except ValueError as exc:
        st.error(plain(exc))
        download("Download the edited mapping (JSON)", mapping.to_json(),
                 file_name="her2er_mapping.json", mime="application/json",
                 key=f"map_dl_failed_{token}")
        st.caption("To use columns that are not in memory, upload the file again together "
                   "with this mapping (Optional: a saved mapping).")
        return
    del uploads()[token]
    st.session_state.pop(f"_map_edits_{token}", None)
    add_upload(loaded, item["name"], item["source"], kind=token.split(":", 1)[0],
               origin=item.get("origin"))
    st.rerun()


def load_cbioportal(study_id: str) -> None:
    """Fetch a public cBioPortal study (public data may be cached on disk by the loader)."""
    from her2er_dash import cbioportal
    from her2er_dash import cohort as cohort_io

    try:
        raw = cbioportal.read_study(study_id.strip(), cache_dir=CBIOPORTAL_CACHE)
        loaded = cohort_io.build_cohort(raw, None)
    except ValueError as exc:
        st.error(plain(exc))
        return
    add_upload(loaded, f"cBioPortal {study_id}", cohort_io.compact(raw), kind="cbio",
               origin={"cbioportal_study": study_id.strip()})
    st.rerun()


def mapping_editor(active: ActiveCohort) -> None:
    """Every source column with its guess, confidence and reason; edits; recoding; rules."""
    import ui_mapping
    from her2er_dash import cohort as cohort_io

    item = uploads().get(active.token)
    source = item.get("source") if item else None

    def raw_frame():
        if source is None:
            return None
        table = cohort_io.expand(source)
        return table.sample if table.sample is not None else table.frame

    if item and item.get("remap_needs_file"):
        st.info(REMAP_NEEDS_FILE.format(name=plain(item["name"]), rows=memory.REMAP_SAMPLE_ROWS))
    ui_mapping.draw(active.token, active.cohort, raw_frame,
                    lambda mapping: remap_upload(active.token, mapping))


def open_bundled_button(key: str, label: str, *, widget_key: str) -> None:
    """A button that switches this session to the bundled cohort ``key`` (e.g. from a page whose
    analyses need columns the current cohort lacks)."""
    if st.button(label, key=widget_key, type="primary"):
        st.session_state["_pending_cohort"] = key  # the picker is drawn: switch on the next run
        st.rerun()


def cohort_options() -> dict[str, str]:
    """Cohort picker options: token -> label."""
    options = {}
    for key in PATIENT_LEVEL_BUNDLES:
        title = _bundled_title(key)
        options[key] = title
    for name in registry_names():
        options[REGISTRY_PREFIX + name] = f"Registry: {name}"
    for token, item in uploads().items():
        prefix = "Live" if token.startswith("cbio:") else "Uploaded"
        options[token] = f"{prefix}: {item['name']}"
    return options


def _bundled_title(key: str) -> str:
    table = bundled_catalogue().set_index("key")
    return str(table.loc[key, "title"]) if key in table.index else key


def active_cohort() -> ActiveCohort:
    token = st.session_state.get("cohort", DEFAULT_COHORT)
    if token.startswith(REGISTRY_PREFIX):
        cohort = registry_cohort(token[len(REGISTRY_PREFIX):])
        if cohort is not None:
            return cohort
        token = DEFAULT_COHORT
    if token in uploads():
        item = uploads()[token]
        cohort = item["cohort"]
        mapping = cohort.mapping
        return ActiveCohort(
            token=token,
            title=item["name"],
            data=cohort.data,
            source=f"{item['name']} ({cohort.source.format}, sha256 {cohort.source.sha256[:12]}…)",
            cohort=cohort,
            time_origin=mapping.time_origin or schema.DEFAULT_TIME_ORIGIN,
            pcr_definition=mapping.pcr_definition,
        )
    from her2er_dash import datasets

    bundle = _bundled(token if token in PATIENT_LEVEL_BUNDLES else DEFAULT_COHORT)
    return ActiveCohort(
        token=f"bundled:{bundle.key}",
        title=bundle.title,
        data=bundle.data,
        synthetic=bundle.synthetic,
        label=bundle.label,
        source=bundle.source,
        cannot_show=tuple(bundle.cannot_show),
        time_origin=bundle.time_origin,
        pcr_definition=bundle.data.attrs.get("pcr_definition"),
        assumptions=_synthetic_assumptions() if bundle.synthetic else (),
        preparation=tuple(datasets.BUNDLE_PREPARATION.get(bundle.key, ())),
        can_show=tuple(bundle.can_show),
        citation=bundle.citation,
        licence=bundle.licence,
        landmark_months=bundle.landmark_months,
        landmark_reason=bundle.landmark_reason,
    )


# --------------------------------------------------------------------------------------------
# Registries: the operator's server-side data folder, queried in place by DuckDB.
# --------------------------------------------------------------------------------------------

#: Environment variable naming the operator's data folder (else ``data_dir`` in the
#: ``[her2er]`` section of ``.streamlit/secrets.toml``); unset: no registry is offered.
DATA_DIR_ENV = "HER2ER_DATA_DIR"
#: Memory DuckDB may use for one registry's queries (it never spills to disk).
DUCKDB_MEMORY_ENV = "HER2ER_DUCKDB_MEMORY"
REGISTRY_PREFIX = "registry:"
#: Patients of a registry's selection materialised (a fixed random sample) for the views that
#: need individual rows.
REGISTRY_SAMPLE = 100_000
#: Analyses that accept grouped counts, and the keyword arguments naming the columns they use
#: (``outcome`` defaults to pCR).
COUNTS_ANALYSES = {
    "survival.kaplan_meier": ("time", "event", "by"),
    "survival.logrank": ("time", "event", "by", "strata"),
    "survival.rmst": ("time", "event", "by"),
    "survival.milestone": ("time", "event", "by"),
    "survival.cox": ("time", "event", "terms", "strata"),
    "response.pcr_rates": ("outcome", "by"),
    "response.compare": ("outcome", "group"),
    "subgroups.forest": ("outcome", "exposure", "subgroups", "strata"),
    "contrasts.two_level_forest": ("outcome", "exposure", "subgroups_"),
}
#: Continuous columns: as a grouping or a Cox term they need rows (one cell per value).
_CONTINUOUS = frozenset(schema.NUMERIC_COLUMNS) - {"her2_ihc"}


def data_folder_path() -> str | None:
    """The operator's data folder (see :data:`DATA_DIR_ENV`), or None when none is set."""
    path = os.environ.get(DATA_DIR_ENV)
    if path:
        return path
    try:
        section = st.secrets.get("her2er", {})
        return section.get("data_dir") or None
    except Exception:  # noqa: BLE001 - no secrets file (the usual case): no folder
        return None


@st.cache_resource(ttl=600, show_spinner=False)
def _data_folder(path: str):
    from her2er_dash.engine import DataFolder

    return DataFolder(path)


@st.cache_data(ttl=60, show_spinner=False)
def _registry_entries(path: str) -> list[str]:
    return _data_folder(path).entries()


def registry_names() -> list[str]:
    """Names of the registries the data folder offers ([] when no folder is configured)."""
    path = data_folder_path()
    if not path:
        return []
    try:
        return _registry_entries(path)
    except ValueError as exc:
        log.warning("data folder not usable: %s", exc)
        return []


@st.cache_resource(max_entries=8, ttl=6 * 3600, show_spinner="Opening the registry…")
def _registry(path: str, name: str, stamp: str):
    return _data_folder(path).open(name, memory_limit=os.environ.get(DUCKDB_MEMORY_ENV))


def _open_registry(name: str):
    path = data_folder_path()
    if not path:
        raise ValueError("No data folder is configured on this server.")
    files = _data_folder(path).resolve(name)
    stamp = repr([(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files])
    return _registry(path, name, hashlib.sha256(stamp.encode()).hexdigest()[:16])


def _registry_of(token: str):
    """The Registry behind a registry cohort's token (``registry:<name>@<fingerprint>``)."""
    return _open_registry(token[len(REGISTRY_PREFIX):].rsplit("@", 1)[0])


def registry_cohort(name: str) -> ActiveCohort | None:
    """The ActiveCohort of registry ``name`` (its ``data``: a fixed sample of all patients, for
    column checks and the views that need rows), or None with an error shown."""
    try:
        registry = _open_registry(name)
    except ValueError as exc:
        st.error(f"The registry {plain(name)} cannot be opened: {plain(exc)}")
        return None
    token = f"{REGISTRY_PREFIX}{name}@{registry.fingerprint}"
    return ActiveCohort(
        token=token,
        title=name,
        data=_registry_sample(token, CohortFilter()),
        source=f"{name} (server data folder, {registry.n:,} patients, queried in place by DuckDB)",
        time_origin=schema.UNSTATED_TIME_ORIGIN,
        registry=registry,
    )


@st.cache_resource(max_entries=4, ttl=3600, show_spinner="Sampling the registry…")
def _registry_sample(token: str, flt: CohortFilter) -> pd.DataFrame:
    return _registry_of(token).sample(flt, size=REGISTRY_SAMPLE)


@st.cache_resource(max_entries=8, ttl=3600, show_spinner="Querying the registry…")
def _registry_filtered(token: str, flt: CohortFilter) -> FilterResult:
    registry = _registry_of(token)
    selection = registry.select(flt)
    sample = registry.sample(flt, size=REGISTRY_SAMPLE, selection=selection) if selection.n \
        else _registry_sample(token, CohortFilter()).iloc[:0]
    return FilterResult(data=sample, flow=selection.flow, n_total=selection.n_total,
                        notes=selection.notes, n_selected=selection.n)


def counts_columns(fn: str, kwargs: dict) -> list[str] | None:
    """The columns ``fn`` needs as grouped counts, or None when it needs patient rows."""
    names = COUNTS_ANALYSES.get(fn)
    if names is None:
        return None
    columns: list[str] = []
    for name in names:
        value = kwargs.get(name, "pcr" if name == "outcome" else None)
        if value is None:
            continue
        values = [value] if isinstance(value, str) else list(value)
        if name not in ("time", "event", "outcome") and _CONTINUOUS.intersection(values):
            return None
        columns.extend(values)
    return list(dict.fromkeys(columns))


@st.cache_data(max_entries=256, ttl=3600, show_spinner="Counting in the registry…")
def _registry_analysis(token: str, flt: CohortFilter, fn: str, kwargs: dict, columns: list[str]):
    # the count table is shared: KM, log-rank, RMST and milestone of one grouping cost one scan
    cells = _registry_counts(token, flt, tuple(columns))
    module, name = fn.rsplit(".", 1)
    return getattr(import_module(f"her2er_dash.{module}"), name)(cells, **_thaw(kwargs))


@st.cache_resource(max_entries=8, ttl=3600, show_spinner="Counting in the registry…")
def _registry_counts(token: str, flt: CohortFilter, columns: tuple[str, ...]):
    return _registry_of(token).counts(flt, list(columns))


def registry_note(filtered: FilterResult) -> str:
    """What a registry's analyses are computed on (said on every page)."""
    text = ("Registry queried in place (DuckDB): Kaplan–Meier, log-rank, RMST, milestone, Cox "
            "models of categorical terms with their PH test, pCR rates and comparisons, and "
            f"subgroup forests use all {filtered.n:,} selected patients.")
    if filtered.sampled:
        text += (f" Views that need individual values (continuous covariates, splines, the "
                 f"landmark at surgery, Table 1 quantiles) use a fixed random sample of "
                 f"{len(filtered.data):,} of them, and say so.")
    return text


def _synthetic_assumptions() -> tuple[str, ...]:
    from her2er_dash import simulate

    return simulate.ASSUMPTIONS


# --------------------------------------------------------------------------------------------
# Cached analysis: pure her2er_dash functions keyed on (cohort token, filter, options).
# --------------------------------------------------------------------------------------------


@_frames("classified", "Classifying ER and HER2…")
def _classified(token: str, cutpoints, _data: pd.DataFrame) -> pd.DataFrame:
    # Depends only on the cut-points, so other filter changes reuse it.
    return CohortFilter(er_measure=cutpoints.measure, er_low=cutpoints.low,
                        er_high=cutpoints.high).classify(_data)


# Each entry is a copy of the selected rows (about 90 MB for 850k of 1M patients): re-selecting
# an evicted filter costs ~0.08 s at 1M.
@_frames("filtered")
def _filtered(token: str, flt: CohortFilter, _data: pd.DataFrame) -> FilterResult:
    # Shared read-only object: analyses never mutate their input.
    return flt.select(_classified(token, flt.cutpoints(_data), _data))


@st.cache_data(max_entries=256, ttl=3600, show_spinner="Computing…")
def _analysis(token: str, flt: CohortFilter, fn: str, kwargs: dict, _data: pd.DataFrame):
    module, name = fn.rsplit(".", 1)
    return getattr(import_module(f"her2er_dash.{module}"), name)(_data, **_thaw(kwargs))


def _cached_analysis(token: str, key, fn: str, kwargs: dict, data: pd.DataFrame):
    """:func:`_analysis`, with the result known by its cache key from then on (see :func:`known_as`)."""
    return known_as(_analysis(token, key, fn, kwargs, data), ("analysis", token, key, fn, kwargs))


def _thaw(kwargs: dict) -> dict:
    # Lists arrive from widgets; tuples mean (time, event) pairs for the analysis functions.
    return {k: tuple(v) if k == "outcome" and isinstance(v, list) else v for k, v in kwargs.items()}


# Widget options come from scans of every row (distinct levels, ranges): at 1M patients they cost
# ~0.5 s per rerun, so they are computed once per cohort (and filter) like the analyses.
@st.cache_data(max_entries=512, ttl=3600, show_spinner=False)
def _cached_levels(token: str, flt: CohortFilter | None, column: str, _data: pd.DataFrame) -> list[str]:
    if token.startswith(REGISTRY_PREFIX):
        return _registry_of(token).levels(column, flt)
    return _levels(_data, column)


@st.cache_data(max_entries=64, ttl=3600, show_spinner=False)
def _cached_range(token: str, column: str, _data: pd.DataFrame) -> tuple[float, float] | None:
    if token.startswith(REGISTRY_PREFIX):
        return _registry_of(token).range(column)
    values = pd.to_numeric(_data[column], errors="coerce").dropna()
    return None if values.empty else (float(values.min()), float(values.max()))


@st.cache_data(max_entries=64, ttl=3600, show_spinner=False)
def _cached_cutpoints(token: str, measure: str, _data: pd.DataFrame):
    from her2er_dash.classify import default_cutpoints

    if token.startswith(REGISTRY_PREFIX):
        return _registry_of(token).default_cutpoints(measure)
    return default_cutpoints(measure, values=pd.to_numeric(_data[measure], errors="coerce").dropna())


def values_per_column(cohort: ActiveCohort) -> pd.Series:
    """Patients with a value in each canonical column of the cohort as loaded."""
    return _values_per_column(cohort.token, cohort.data)


@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def _values_per_column(token: str, _data: pd.DataFrame) -> pd.Series:
    if token.startswith(REGISTRY_PREFIX):
        return _registry_of(token).values_per_column()
    present = [c for c in schema.CANONICAL_COLUMNS if c in _data.columns]
    return pd.Series({c: int(_data[c].notna().sum()) for c in present}, dtype="int64")


def _unfiltered(data: pd.DataFrame) -> FilterResult:
    flow = pd.DataFrame([("All patients", "", len(data), 0)],
                        columns=["criterion", "note", "n_remaining", "n_excluded"])
    return FilterResult(data=data, flow=flow, n_total=len(data))


@dataclass(frozen=True)
class Context:
    """What every page needs: the cohort, the filter, the filtered data, presenter mode, and how
    pCR is landmarked when it is a time-to-event exposure."""

    cohort: ActiveCohort
    flt: CohortFilter
    filtered: FilterResult
    presenter: bool
    classified: bool = True  # False when classification failed and pages see the data as loaded
    landmark_fallback: float | None = None  # fixed landmark for patients without a surgery time

    @property
    def data(self) -> pd.DataFrame:
        return self.filtered.data

    def levels(self, column: str) -> list[str]:
        """The values of ``column`` present in the filtered data, as text, in natural order."""
        key = (self.cohort.token, self.flt if self.classified else None, column)
        # A page asks for the levels of dozens of columns per run: a dictionary look-up first, as
        # st.cache_data's hashing of the filter costs ~0.4 ms a call.
        try:
            hash(key)
        except TypeError:  # a filter holding a list: Streamlit's cache only
            return _cached_levels(*key, self.data)
        return list(_options_memo().get(key, lambda: _cached_levels(*key, self.data)))

    def run(self, fn: str, **kwargs):
        """Run ``her2er_dash.<fn>`` on the filtered data, cached on cohort + filter + options.

        On a registry of the data folder, analyses that accept grouped counts run on all the
        selected patients (one DuckDB ``GROUP BY``); the others on the sample in :attr:`data`.
        """
        if self.cohort.registry is not None and self.classified:
            columns = counts_columns(fn, kwargs)
            if columns is not None:
                return known_as(_registry_analysis(self.cohort.token, self.flt, fn, kwargs, columns),
                                ("registry", self.cohort.token, self.flt, fn, kwargs))
        return _cached_analysis(self.cohort.token, self.flt, fn, kwargs, self.filtered.data)

    def input_for(self, fn: str, **kwargs):
        """What ``her2er_dash.<fn>`` should be given for these options: a registry's grouped
        counts of all selected patients when ``fn`` accepts them, else the filtered rows."""
        if self.cohort.registry is not None and self.classified:
            columns = counts_columns(fn, kwargs)
            if columns is not None:
                return _registry_counts(self.cohort.token, self.flt, tuple(columns))
        return self.data

    @property
    def watermark(self) -> str | None:
        return "SYNTHETIC DATA" if self.cohort.synthetic else None

    def run_subset(self, fn: str, *, column: str, levels, **kwargs):
        """:meth:`run` on the patients whose ``column`` is one of ``levels`` (e.g. two ER
        categories compared, the third left out)."""
        levels = tuple(str(v) for v in levels)
        data = _subset(self.cohort.token, self.flt, column, levels, None, self.data)
        return _cached_analysis(self.cohort.token, (self.flt, "subset", column, levels), fn, kwargs, data)

    # -- the time model ------------------------------------------------------------------
    def time_label(self, endpoint: str | None = None, *, landmarked: bool = False) -> str:
        """Axis title in the cohort's own time origin (or from surgery, for a landmark)."""
        if landmarked:
            return schema.time_axis_label("surgery", endpoint) + " (landmark)"
        return schema.time_axis_label(self.cohort.time_origin, endpoint)

    @property
    def landmark_spec(self) -> dict:
        """How a pCR exposure is landmarked here (``survival.pcr_landmark`` options)."""
        return {"method": "surgery", "at": self.landmark_fallback,
                "time_origin": self.cohort.time_origin}  # fmt: skip

    def survival_data(self, time: str, event: str, uses) -> tuple[pd.DataFrame, dict | None]:
        """The data for a time-to-event view using the columns ``uses``.

        When one of them is known only at surgery (pCR, RCB), the patients are followed from
        their landmark at surgery (see ``survival.pcr_landmark``); when no landmark is possible
        this raises AnalysisError saying why, which the page's panel shows. Returns the data and
        the landmark information (None when no landmark was needed).
        """
        from her2er_dash import survival

        if not survival.needs_landmark(uses):
            return self.data, None
        data = _landmarked(self.cohort.token, self.flt, time, event,
                           tuple(self.landmark_spec.items()), None, self.data)  # fmt: skip
        return data, data.attrs["landmark"]

    def run_survival(self, fn: str, *, time: str, event: str, uses, **kwargs):
        """:meth:`run` for a time-to-event analysis: landmarked at surgery when it uses pCR.

        Returns ``(result, landmark)``; ``landmark`` is None when no landmark was needed.
        """
        data, info = self.survival_data(time, event, uses)
        if info is None:
            return self.run(fn, time=time, event=event, **kwargs), None
        key = (self.flt, "landmark", tuple(self.landmark_spec.items()), time, event)
        kwargs = {"time": time, "event": event, **kwargs}
        return _cached_analysis(self.cohort.token, key, fn, kwargs, data), info

    def pcr_definitions(self) -> pd.DataFrame:
        """pCR definition per study (``study, pcr_definition, n``) of the filtered data."""
        return _cached_pcr_definitions(self.cohort.token, self.flt, self.cohort.pcr_definition,
                                       self.data)  # fmt: skip

    def pcr_caption(self) -> str:
        """A sentence for pCR tables: the definition(s) and how missing results are counted."""
        table = self.pcr_definitions()
        definitions = table["pcr_definition"].drop_duplicates().tolist()
        if len(definitions) == 1:
            text = f"pCR definition: {definitions[0]}."
        else:
            listed = "; ".join(f"{r.study}: {r.pcr_definition}" for r in table.itertuples())
            text = f"pCR definitions differ between studies ({listed}): pooled rates mix them."
        if self.flt.pcr_itt:
            text += " Intention to treat: patients without a pCR result count as non-pCR."
        else:
            text += " Patients without a pCR result are left out (complete cases)."
        return text


# ``columns``: the columns the cached copy keeps (None: every column). A copy made for one
# analysis (``run_within``) needs only that analysis's columns: ~6 of a cohort's ~30.
@_frames("subset")
def _subset(token: str, flt: CohortFilter, column: str, levels: tuple, columns: tuple | None,
            _data: pd.DataFrame):
    from her2er_dash.contrasts import level_subset

    return level_subset(_only(_data, columns), column, levels)


@_frames("landmarked")
def _landmarked(token: str, flt: CohortFilter, time: str, event: str, spec: tuple,
                columns: tuple | None, _data: pd.DataFrame) -> pd.DataFrame:
    from her2er_dash import survival

    return survival.pcr_landmark(_only(_data, columns), time, event, **dict(spec))


def _only(data: pd.DataFrame, columns: tuple | None) -> pd.DataFrame:
    if columns is None or list(data.columns) == list(columns):
        return data
    return data[list(columns)]


@st.cache_data(max_entries=64, ttl=3600, show_spinner=False)
def _cached_pcr_definitions(token: str, flt: CohortFilter, default: str | None,
                            _data: pd.DataFrame) -> pd.DataFrame:
    from her2er_dash import response

    return response.pcr_definitions(_data, default=default)


# --------------------------------------------------------------------------------------------
# Survival-method glue: competing risks, pooled cohorts.
# --------------------------------------------------------------------------------------------


@_frames("cause_specific")
def _cause_specific(token: str, flt: CohortFilter | None, event: str, _data: pd.DataFrame):
    from her2er_dash.survival import cause_specific

    return cause_specific(_data, event)


def has_competing_causes(ctx: Context, endpoint: str) -> bool:
    """Whether the endpoint codes competing causes and some patient has one (code >= 2)."""
    event = schema.event_column(endpoint)
    if not schema.is_competing(endpoint) or event not in ctx.data.columns:
        return False
    return bool((pd.to_numeric(ctx.data[event], errors="coerce") >= 2).any())


def cause_specific(ctx: Context, endpoint: str) -> Context:
    """The same view with the endpoint's competing events censored (cause-specific analyses).

    The recoded data get their own cache token, so cached results of the two never mix.
    """
    event = schema.event_column(endpoint)
    data = _cause_specific(ctx.cohort.token, ctx.flt if ctx.classified else None, event, ctx.data)
    cohort = replace(ctx.cohort, token=f"{ctx.cohort.token}|cause-specific:{event}")
    return replace(ctx, cohort=cohort, filtered=replace(ctx.filtered, data=data))


def studies(ctx: Context) -> list[str]:
    """The studies present in the current selection (a pooled cohort has more than one)."""
    return ctx.levels("study") if "study" in ctx.data.columns else []


def session_memo(name: str, key: tuple, compute: Callable[[], Any], size: int = 8):
    """A small per-session cache for work that reports progress (cannot go through st.cache_data)."""
    memo: OrderedDict = st.session_state.setdefault(f"_memo_{name}", OrderedDict())
    if key in memo:
        memo.move_to_end(key)
        return memo[key]
    value = compute()
    memo[key] = value
    while len(memo) > size:
        memo.popitem(last=False)
    return value


# --------------------------------------------------------------------------------------------
# Panels, tables, figures.
# --------------------------------------------------------------------------------------------


@contextmanager
def panel(title: str | None = None) -> Iterator[None]:
    """Show errors of one panel inside that panel; the rest of the page keeps working."""
    if title:
        st.subheader(title)
    try:
        yield
    except ValueError as exc:  # AnalysisError and CohortError are ValueErrors with a user message
        st.error(plain(exc))
    except Exception as exc:  # a bug in one panel must not take the whole page down
        # Log the type only: messages of unexpected errors may quote cell values.
        log.error("panel %r failed with %s", title, type(exc).__name__)
        st.error(
            f"This panel could not be computed ({type(exc).__name__}). The rest of the app still "
            "works; please report the steps that led here."
        )


#: Streamlit's default height of a table row (px); presenter mode scales it with the text.
TABLE_ROW_PX = 35
#: Missing medians are not reached (the curve stays above 50%): say so instead of "None".
MEDIAN_MISSING = {"median": "not reached", "ci_low": "—", "ci_high": "—"}


def table(df: pd.DataFrame, name: str, *, caption: str | None = None,
          missing: dict[str, str] | None = None, **kwargs) -> None:  # fmt: skip
    """A dataframe with a CSV download (cells escaped against formula injection).

    On screen, p-values read as in papers (:func:`format_p`) and the columns in ``missing`` show
    their text (e.g. "not reached") where the value is missing, instead of Streamlit's "None";
    the download keeps the numbers. In presenter mode the rows are taller, as the text is.
    Tables of cached analyses (:func:`known_as`) reuse their Arrow form and CSV payload.
    """
    shown = shown_table(df, missing)
    if presenter_on():
        from her2er_dash.figures import PRESENTER_SCALE

        kwargs.setdefault("row_height", round(TABLE_ROW_PX * PRESENTER_SCALE))
    st.dataframe(shown, hide_index=True, width="stretch", **kwargs)
    if caption:
        st.caption(caption)
    tables = st.session_state.setdefault("_tables", {})
    tables[name] = df
    download("Download CSV", csv_payload(df, banner=synthetic_banner()),
             file_name=f"{export_prefix()}{name}.csv", mime="text/csv", key=f"dl_{name}")


def shown_table(df: pd.DataFrame, missing: dict[str, str] | None = None):
    """What ``st.dataframe`` is given for ``df``: :func:`display_frame`, or for a table of a
    cached analysis the Arrow table of it made once (``pyarrow.Table.from_pandas``, exactly
    what Streamlit would do with the frame on each draw, ~1 ms a table)."""
    key = known_key(df)
    if key is None:
        return display_frame(df, missing)
    shown = _arrow_tables().get(fingerprint((key, missing)), lambda: _to_arrow(display_frame(df, missing)))
    return display_frame(df, missing) if shown is None else shown


def _to_arrow(shown: pd.DataFrame):
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(shown)
    except (pa.ArrowException, TypeError, ValueError):  # mixed types: Streamlit's own fixes
        return None


#: Bytes of CSV payloads kept for reuse (:func:`csv_payload`), and the largest one kept.
CSV_CACHE_BYTES, CSV_CACHE_ITEM_BYTES = 32 * 1024 * 1024, 2 * 1024 * 1024


def csv_payload(df: pd.DataFrame, *, banner: str | None) -> bytes:
    """``export.safe_csv_bytes(df, banner=banner)``, reused across sessions for the tables of
    cached analyses (:func:`known_as`): every table on screen carries its download, so building
    each payload per render was about a seventh of a Survival render's CPU time. Other tables
    (built by the page) are written each time; keying them by content would cost as much."""
    from her2er_dash.export import safe_csv_bytes

    key = known_key(df)
    if key is None:
        return safe_csv_bytes(df, banner=banner)
    return _payloads().get(fingerprint((key, banner)), lambda: safe_csv_bytes(df, banner=banner))


class _Lru:
    """A thread-safe memo, least recently used out beyond ``budget`` (in units of ``size``,
    e.g. bytes); a value larger than ``largest`` is returned but not kept."""

    def __init__(self, budget: int, size: Callable[[Any], int] = lambda _: 1,
                 largest: int | None = None):  # fmt: skip
        self.budget, self.size, self.largest = budget, size, budget if largest is None else largest
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = compute()
        size = self.size(value)
        with self._lock:
            if key not in self._items and size <= self.largest:
                self._items[key] = (value, size)
                self._used += size
                while self._used > self.budget:
                    self._used -= self._items.popitem(last=False)[1][1]
        return value


# One store each per process, emptied with Streamlit's caches (and after an hour, as the cached
# results they stand for are).
@st.cache_resource(ttl=3600, show_spinner=False)
def _payloads() -> _Lru:
    return _Lru(CSV_CACHE_BYTES, len, CSV_CACHE_ITEM_BYTES)


@st.cache_resource(ttl=3600, show_spinner=False)
def _arrow_tables() -> _Lru:
    return _Lru(CSV_CACHE_BYTES, lambda t: 0 if t is None else t.nbytes, CSV_CACHE_ITEM_BYTES)


@st.cache_resource(ttl=3600, show_spinner=False)
def _options_memo() -> _Lru:
    # Keyed like the cached analyses (cohort token, filter, ...): small values that widgets
    # are built from on every run.
    return _Lru(4096)


def followed_up(ctx: Context, time: str, event: str, columns) -> dict[str, tuple[float, int]]:
    """For each of ``columns`` in the data: (share of the patients with ``time`` and ``event``
    recorded who have a value, number of distinct values among them), computed once per cohort
    and filter (scans of every row, which pages offering covariates would repeat each run)."""
    present = tuple(c for c in dict.fromkeys(columns) if c in ctx.data.columns)
    key = ("followed_up", ctx.cohort.token, ctx.flt if ctx.classified else None, time, event,
           present)  # fmt: skip
    return dict(_options_memo().get(key, lambda: _followed_up(ctx.data, time, event, present)))


def _followed_up(data: pd.DataFrame, time: str, event: str, columns: tuple[str, ...]) -> dict:
    followed = data[[time, event]].notna().all(axis=1).to_numpy()
    rows = data.loc[followed, list(columns)]
    if not followed.any():
        return {c: (0.0, 0) for c in columns}
    return {c: (float(rows[c].notna().mean()), int(rows[c].dropna().nunique())) for c in columns}


#: Payloads larger than this are built only after a "Prepare" click (see :func:`download`).
LARGE_DOWNLOAD_BYTES = 2 * 1024 * 1024


def download(label: str, data: bytes | str | Callable[[], bytes | str], *, file_name: str,
             mime: str, key: str, large: bool = False, where: Any = None,
             help: str | None = None) -> None:
    """The one download button of the app: a plain file link that can never be left pending.

    The payload is built in this script run and served as an ordinary file, and the click does
    not rerun the app (``on_click="ignore"``). Streamlit's deferred downloads
    (``data=callable``) are not used: their bytes travel back over the websocket as a reply that
    Streamlit drops when a script run starts before it is sent (the browser queue is cleared at
    each run start, keeping only lifecycle messages), and the click itself starts such a run, so
    about one click in ten left the button spinning and disabled with no file (issue 16).

    ``large=True`` (e.g. a figure with plotly.js inlined, ~5 MB): the page shows a "Prepare"
    button first; its click marks the file as wanted (a callback, before the run it starts),
    so that run builds the file and draws its download button in the button's place, until the
    user leaves the page. So large files cost memory and CPU only when asked for.
    ``where``: the container to draw in (a column, st.sidebar...; default: the current one).
    """
    where = st if where is None else where
    if large and key not in st.session_state.get("_prepared_downloads", ()):
        where.button(f"Prepare {label[0].lower()}{label[1:]}", key=f"prepare_{key}",
                     help="Builds the file; its download button appears here.",
                     on_click=_mark_prepared, args=(key,))
        return
    payload = data() if callable(data) else data
    where.download_button(label, payload, file_name=file_name, mime=mime, key=key,
                          on_click="ignore", help=help)


def _mark_prepared(key: str) -> None:
    st.session_state.setdefault("_prepared_downloads", set()).add(key)


def display_frame(df: pd.DataFrame, missing: dict[str, str] | None = None) -> pd.DataFrame:
    """The table as shown: p-values formatted, missing values of ``missing``'s columns as text."""
    shown = df.copy()
    shown.attrs = {}  # result metadata (exclusions) is shown in the caption, not serialised
    for column in shown.columns:
        if _is_p_column(str(column)) and pd.api.types.is_numeric_dtype(shown[column]):
            shown[column] = shown[column].map(format_p)
    for column, text in (missing or {}).items():
        if column in shown.columns and shown[column].isna().any():
            shown[column] = [text if pd.isna(v) else (f"{v:.4g}" if isinstance(v, float) else str(v))
                             for v in shown[column]]  # fmt: skip
    return shown


def synthetic_banner() -> str | None:
    """The first line of every exported table when the cohort on screen is synthetic."""
    from her2er_dash.export import SYNTHETIC_CSV_BANNER

    return SYNTHETIC_CSV_BANNER if st.session_state.get("_synthetic_view") else None


def export_prefix() -> str:
    """File-name prefix of every download from a synthetic cohort."""
    return "SYNTHETIC_" if st.session_state.get("_synthetic_view") else ""


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def plain(text: object) -> str:
    """Text from data or files, escaped so that Markdown shows it literally (no links, images,
    emphasis or HTML from a cell value or a file name)."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


def _is_p_column(name: str) -> bool:
    return name in ("p", "p_value") or name.startswith("p_") or name.endswith("_p")


def format_p(p: float) -> str:
    """p-values as read in papers: three decimals, scientific below 0.001, '—' when absent."""
    if p is None or pd.isna(p):
        return "—"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def presenter_on() -> bool:
    """Whether this session shows the page in presenter mode (the sidebar toggle)."""
    return bool(st.session_state.get("presenter", False))


def chart(name: str, build: Callable, *args, published: bool = False, **kwargs) -> None:
    """Draw ``build(*args, **kwargs)``, a ``her2er_dash.figures`` builder, as figure ``name``.

    The one place where figures get the session's presenter mode and, when the cohort on screen
    is synthetic, the SYNTHETIC watermark; ``published=True`` marks figures of published (real)
    data, which never get it. Built figures are cached across sessions on the content of their
    inputs (see :func:`fingerprint`), so a figure costs its serialisation only, not its
    construction, when the same result is drawn again. Builders that offer a ``narrow`` layout
    (forest plots) are drawn twice, and CSS shows the stacked one on phone screens only.
    """
    options = {**kwargs, "presenter": presenter_on()}
    synthetic = bool(st.session_state.get("_synthetic_view")) and not published
    if "watermark" in _parameters(build):
        options["watermark"] = "SYNTHETIC DATA" if synthetic else None
    if "narrow" not in _parameters(build):
        figure(_cached_figure(build, args, options), name, synthetic=synthetic)
        return
    with st.container(key=f"{WIDE_PREFIX}{name}"):
        figure(_cached_figure(build, args, options), name, synthetic=synthetic)
    with st.container(key=f"{NARROW_PREFIX}{name}"):
        figure(_cached_figure(build, args, {**options, "narrow": True}), f"{name}_narrow",
               synthetic=synthetic, filename=name)


#: Container keys of the two layouts of a figure (see :func:`page_style`).
WIDE_PREFIX, NARROW_PREFIX = "figwide_", "fignarrow_"
#: Below this width (px) the stacked layouts are shown (Streamlit stacks columns there too).
NARROW_SCREEN_PX = 640


def figure(fig, name: str, *, synthetic: bool | None = None, filename: str | None = None) -> None:
    """Draw a built plotly figure with the camera button for PNG/SVG and an HTML download.

    Both exports have the figure's content (watermark, at-risk table, titles) at publication
    size (``export.image_options``: 7 × 5 in at 300 dpi for PNG). The figure is drawn with its
    own template (``theme=None``), so the screen, the PNG/SVG and the HTML file look the same.
    ``synthetic`` names the files SYNTHETIC_… (default: whether the cohort on screen is
    synthetic); the figure itself is never changed here (it may be shared through the cache).
    """
    from her2er_dash.export import figure_html, plotly_config

    synthetic = bool(st.session_state.get("_synthetic_view")) if synthetic is None else synthetic
    stem = f"{'SYNTHETIC_' if synthetic else ''}{filename or name}"
    config = plotly_config(fig, filename=stem, image_format=st.session_state.get("image_format", "png"))
    st.plotly_chart(fig, config=config, key=f"fig_{name}", width="stretch", theme=None)
    download("Download figure (HTML)", lambda: figure_html(fig, config=config),  # ~5 MB: plotly.js
             file_name=f"{stem}.html", mime="text/html", key=f"dlfig_{name}", large=True)


@st.cache_resource(max_entries=128, ttl=3600, show_spinner=False)
def _figure_cache(key: str, _build: Callable, _args: tuple, _kwargs: dict):
    # Shared by every session: the figure must never be modified after this (nothing does:
    # st.plotly_chart and figure_html only read it).
    return wire_ready(_build(*_args, **_kwargs))


def wire_ready(fig):
    """The same figure with its numeric arrays held as plotly's base64 typed arrays.

    ``st.plotly_chart`` calls ``Figure.to_dict()``, which encodes every numeric array of the
    figure to base64 on each call (~7 ms for a Kaplan–Meier figure, most of the figure's
    cost per render); a figure built from that dictionary holds them encoded already, so each
    later draw only copies them (~2 ms). Its JSON has the same content, so the chart on screen
    is the same.
    Built once per cached figure (~30 ms: the dictionary is validated again).
    """
    import plotly.graph_objects as go

    return go.Figure(fig.to_dict())


def _cached_figure(build: Callable, args: tuple, kwargs: dict):
    key = fingerprint((build.__module__, build.__qualname__, args, kwargs))
    return _figure_cache(key, build, args, kwargs)


_PARAMETERS: dict[Callable, frozenset[str]] = {}


def _parameters(build: Callable) -> frozenset[str]:
    if build not in _PARAMETERS:
        import inspect

        _PARAMETERS[build] = frozenset(inspect.signature(build).parameters)
    return _PARAMETERS[build]


#: id -> (weak reference, key) of the objects whose content a cache key determines (:func:`known_as`).
_KNOWN: dict[int, tuple[weakref.ref, tuple]] = {}


def known_as(value: Any, key: tuple) -> Any:
    """Note that ``value``'s content is determined by ``key`` (e.g. the cached analysis that
    returned it: cohort token, filter, function, options); returns ``value``.

    :func:`fingerprint` then digests the key instead of the content, so drawing a result, or
    exporting one of its tables, costs no hashing of its rows (a per-patient table of weights,
    at 1M patients, would take longer to hash than to draw). The tables and nested results in
    its fields are known too, as ``(key, field name)``. Identity is checked through a weak
    reference, so an object that died and whose id was reused is never mistaken for it; an
    object that cannot be weakly referenced is simply not known (its content is hashed).
    """
    import dataclasses
    import functools

    def note(item: Any, item_key: tuple, depth: int) -> None:
        try:
            ref = weakref.ref(item, functools.partial(_forget, id(item)))
        except TypeError:
            return
        _KNOWN[id(item)] = (ref, item_key)
        if depth and dataclasses.is_dataclass(item) and not isinstance(item, type):
            for f in dataclasses.fields(item):
                part = getattr(item, f.name, None)
                if isinstance(part, (pd.DataFrame, pd.Series)) or (
                        dataclasses.is_dataclass(part) and not isinstance(part, type)):
                    note(part, (*item_key, f.name), depth - 1)

    note(value, key, 2)
    return value


def _forget(ident: int, dead: weakref.ref) -> None:
    entry = _KNOWN.get(ident)
    if entry is not None and entry[0] is dead:  # not a newer object that got the same id
        _KNOWN.pop(ident, None)


def known_key(value: Any) -> tuple | None:
    """The key ``value`` was noted under by :func:`known_as` (None: not known)."""
    entry = _KNOWN.get(id(value))
    return entry[1] if entry is not None and entry[0]() is value else None


def fingerprint(value: Any) -> str:
    """A digest of ``value``'s content: equal for equal tables, results and options.

    Tables are hashed row by row (``pandas.util.hash_pandas_object``, with their columns, dtypes
    and scalar ``attrs``), arrays by their bytes, dataclasses and plain objects field by field;
    so analysis results, which are new objects each time they leave Streamlit's cache, map to
    the same key when their numbers are the same. Objects noted by :func:`known_as` (analysis
    results and their tables) are digested by their key instead.
    """
    digest = hashlib.blake2b(digest_size=20)
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest, value: Any) -> None:
    if (key := known_key(value)) is not None:
        digest.update(b"known:")
        value = key
    _feed_value(digest, value)


def _feed_value(digest, value: Any) -> None:
    import dataclasses

    update = digest.update
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, (pd.DataFrame, pd.Series, np.ndarray)):
        _feed_array(digest, value)
    elif isinstance(value, (list, tuple)):
        update(b"[")
        for item in value:
            _feed(digest, item)
        update(b"]")
    elif isinstance(value, dict):
        update(b"{")
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
        update(b"}")
    elif isinstance(value, (set, frozenset)):
        _feed(digest, sorted(value, key=repr))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        update(f"dc:{type(value).__qualname__};".encode())
        for item in dataclasses.fields(value):
            _feed(digest, item.name)
            _feed(digest, getattr(value, item.name))
    elif callable(value) and hasattr(value, "__qualname__"):
        update(f"fn:{getattr(value, '__module__', '')}.{value.__qualname__};".encode())
    elif hasattr(value, "__dict__"):
        update(f"obj:{type(value).__qualname__};".encode())
        _feed(digest, vars(value))
    else:
        update(f"{type(value).__qualname__}:{value!r};".encode())


def _feed_array(digest, value: pd.DataFrame | pd.Series | np.ndarray) -> None:
    import pickle

    if isinstance(value, np.ndarray):
        digest.update(f"nd:{value.dtype}:{value.shape};".encode())
        digest.update(pickle.dumps(value, protocol=5) if value.dtype == object
                      else np.ascontiguousarray(value).tobytes())  # fmt: skip
        return
    frame = value.to_frame() if isinstance(value, pd.Series) else value
    digest.update(repr((type(value).__name__, [str(c) for c in frame.columns],
                        [str(d) for d in frame.dtypes], frame.shape)).encode())  # fmt: skip
    try:
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists): the pickled table instead
        digest.update(pickle.dumps(frame, protocol=5))
    _feed(digest, {k: v for k, v in value.attrs.items() if isinstance(v, (str, int, float, bool))})


def register_analysis(page: str, analyses: list[dict]) -> None:
    """Record what a page computed, for the methods paragraph and reproducibility bundle."""
    st.session_state.setdefault("_analyses", {})[page] = analyses


def small_group_note(n: int, events: int | None = None) -> str | None:
    """The guard-rail sentence for groups too small for a p-value, else None."""
    if n < 10:
        return f"Only {n} patients: too few for a test; shown descriptively without a p-value."
    if events is not None and events < 5:
        return f"Only {events} events: too few for a test; shown descriptively without a p-value."
    return None


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


def _levels(data: pd.DataFrame, column: str) -> list[str]:
    """Values present in ``column`` as text: category order for categoricals, sorted otherwise.

    Distinct values are found first and only they are turned into text (converting a million
    values to strings first took ~0.2 s per column)."""
    if column not in data.columns:
        return []
    values = data[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        present = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)) > 0
        return [str(c) for c, here in zip(values.cat.categories, present, strict=True) if here]
    return sorted({str(v) for v in values.unique() if not pd.isna(v)})


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
    is_bundle = ctx.cohort.token.startswith("bundled:")
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


# --------------------------------------------------------------------------------------------
# Analyses on subsets of the selection (Evidence page), landmarked when they use pCR.
# --------------------------------------------------------------------------------------------


def run_within(ctx: Context, fn: str, *, subsets=(), time: str | None = None,
               event: str | None = None, uses=(), **kwargs):
    """:meth:`Context.run` on the patients in each ``(column, levels)`` of ``subsets`` (applied in
    order, as ``contrasts.level_subset``; the reproducibility script's ``subset`` list), then —
    when ``uses`` holds a column known only at surgery (pCR) — landmarked exactly as
    :meth:`Context.run_survival` does, or refused with the reason (AnalysisError).

    Returns ``(result, landmark)``; ``landmark`` is None when no landmark was needed.
    """
    from her2er_dash import survival

    token, key, data = ctx.cohort.token, ctx.flt, ctx.data
    if time is not None:
        kwargs = {"time": time, "event": event, **kwargs}
    # The cached subset and landmarked copies keep only the columns the analysis reads.
    columns = analysis_columns(fn, kwargs, [*(c for c, _ in subsets), *uses, *_LANDMARK_READS],
                               data.columns)
    for column, levels in subsets:
        levels = tuple(str(v) for v in levels)
        data = _subset(token, key, column, levels, columns, data)
        key = (key, "subset", column, levels)
    info = None
    if time is not None and survival.needs_landmark(uses):
        spec = tuple(ctx.landmark_spec.items())
        data = _landmarked(token, key, time, event, spec, columns, data)
        info = data.attrs["landmark"]
        key = (key, "landmark", spec, time, event)
    return _cached_analysis(token, key, fn, kwargs, data), info


#: Analyses run by :func:`run_within`, with the columns each reads beyond those its options name
#: (keyword values and defaults). Others get every column.
WITHIN_ANALYSES: dict[str, tuple[str, ...]] = {
    "meta.by_study": (),
    "evidence.study_table": ("pcr_definition",),  # each study's own pCR definition
    "meta.ctneobc": ("surgery_months",),  # its own landmark at surgery, when asked for one
}
#: What ``survival.pcr_landmark`` reads besides the time and event (each patient's surgery).
_LANDMARK_READS = ("surgery_months",)


def analysis_columns(fn: str, kwargs: dict, extra, columns) -> tuple[str, ...] | None:
    """The columns of ``columns`` (in their order) that ``her2er_dash.<fn>(data, **kwargs)``
    reads: the column names among its keyword values and defaults (and in lists of them), its
    :data:`WITHIN_ANALYSES` entry and ``extra``. None (every column) for an analysis not listed
    there. A name that is not a column (e.g. a level) is harmless: only columns are kept."""
    if fn not in WITHIN_ANALYSES:
        return None
    import inspect

    module, name = fn.rsplit(".", 1)
    signature = inspect.signature(getattr(import_module(f"her2er_dash.{module}"), name))
    defaults = {k: p.default for k, p in signature.parameters.items()
                if p.default is not inspect.Parameter.empty}
    named: set[str] = set(WITHIN_ANALYSES[fn]) | {str(c) for c in extra}
    for value in (*defaults.values(), *kwargs.values()):
        values = value if isinstance(value, list | tuple) else [value]
        named |= {v for v in values if isinstance(v, str)}
    return tuple(c for c in columns if c in named)


@st.cache_data(max_entries=64, ttl=3600, show_spinner="Fitting…")
def _on_table(fn: str, table: pd.DataFrame, kwargs: dict):
    module, name = fn.rsplit(".", 1)
    return getattr(import_module(f"her2er_dash.{module}"), name)(table, **kwargs)


def run_on_table(fn: str, table: pd.DataFrame, **kwargs):
    """``her2er_dash.<fn>(table, **kwargs)`` on a study-level table (published arms, or a cohort's
    per-study counts), cached on the table's content: for the slower fits such as the GLMM."""
    return _on_table(fn, table, kwargs)
