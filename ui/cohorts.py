"""Cohorts: bundled (cached, shared), uploaded and live (session memory only), and the
byte-bounded frame cache."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from her2er_dash import memory, schema

from .process import return_free_memory
from .view import DEFAULT_COHORT, PATIENT_LEVEL_BUNDLES, _forget_lost_upload, plain, uploads

log = logging.getLogger("her2er_explorer")

#: Public cBioPortal responses only (never uploads) are cached here between sessions.
CBIOPORTAL_CACHE = Path.home() / ".cache" / "her2er_explorer" / "cbioportal"

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
#: Environment variable: the memory (MB) the shared cache may hold (whole-cohort frames, a
#: registry's samples and count tables, analysis results).
CACHE_BUDGET_ENV = "HER2ER_CACHE_MB"
DEFAULT_CACHE_MB = 256
#: Environment variable: seconds a cached frame no session asked for is kept. Ten minutes, not
#: the hour of the app's other (entry-bounded, small) caches: in a two-hour soak a server with
#: ten minutes reached its level within 30 minutes and held ~65 MB less than one with the hour,
#: which grew for 90 minutes; render medians were 0.22 and 0.20 s (benchmarks/README.md, "Why
#: the idle time is ten minutes"). A session coming back later recomputes its frames.
CACHE_IDLE_ENV = "HER2ER_CACHE_IDLE_S"
DEFAULT_CACHE_IDLE_S = 600.0


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
    """Whole-cohort frames shared between sessions, bounded by bytes (least recently used out)
    and by idle time: an entry no session asked for in ``idle_seconds`` is dropped at the
    cache's next use (as Streamlit's ``ttl`` expires its caches' entries). The app's one
    instance also holds a registry's samples and count tables (:func:`_frames`), the
    analyses' pickled results (:func:`_copies`), and the Arrow tables and CSV payloads drawn
    from those results (:mod:`ui.render`), so one budget bounds all that sessions share.

    ``st.cache_resource`` bounds entries only, while one entry here (a classified, filtered,
    subset or landmarked copy of a cohort) ranges from kilobytes to hundreds of MB: a bound on
    entries either wastes the small ones or overflows memory with the large ones. Sizes are the
    memory an entry adds: ``DataFrame.memory_usage`` (shallow) of its columns, leaving out those
    that share their buffer with the frame it was derived from (``base``), plus the pandas
    objects around each column (:data:`COLUMN_OVERHEAD`); the classified cohort shares every
    loaded column with the cohort and adds its new categories only. An entry larger than the
    whole budget is computed and returned but not kept.

    Without the idle bound a server that many filter states passed through kept them all up to
    the budget: in a one-hour soak of small cohorts it grew ~70 MB an hour, each new filter
    state adding its frames (benchmarks/README.md). Each time dropped entries (idle or evicted)
    add up to ``release_bytes``, ``release`` is called (the app passes
    :func:`ui.process.return_free_memory`: the C library keeps freed small blocks otherwise).
    """

    def __init__(self, budget: int, *, idle_seconds: float = DEFAULT_CACHE_IDLE_S,
                 clock: Callable[[], float] = time.monotonic,
                 release: Callable[[], object] | None = None, release_bytes: int = 16 * 1024**2):
        self.budget = budget
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._release = release
        self._release_bytes = release_bytes
        # key -> (value, size, last use); ordered from least to most recently used
        self._items: OrderedDict[tuple, tuple[Any, int, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, list] = {}  # key being computed -> [lock, sessions using it]
        self._freed = 0  # bytes dropped since memory was last handed back

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def entries(self) -> list[tuple[tuple, Any]]:
        """(key, value) of every entry, least recently used first."""
        with self._lock:
            return [(key, value) for key, (value, _, _) in self._items.items()]

    def get(self, key: tuple, compute: Callable[[], Any], base: pd.DataFrame | None = None, *,
            largest: int | None = None) -> Any:
        """The entry under ``key``; else ``compute()``, kept if it fits (and is no larger than
        ``largest`` bytes, when given). Sessions asking for the same missing entry at once wait
        for one computation (as ``st.cache_resource`` does), so a room opening one registry
        draws its sample once, not once per user."""
        found = self._lookup(key)
        if found is not _MISSING:
            return found
        with self._computing(key):
            found = self._lookup(key)  # computed by the session this one waited for
            if found is not _MISSING:
                return found
            value = compute()
            size = _frame_bytes(value, base)
            if largest is None or size <= largest:
                self._store(key, value, size)
        return value

    def _lookup(self, key: tuple) -> Any:
        with self._lock:
            dropped = self._drop_idle(self._clock())
            item = self._items.get(key)
            if item is not None:
                self._items[key] = (item[0], item[1], self._clock())
                self._items.move_to_end(key)
        self._released(dropped)
        return _MISSING if item is None else item[0]

    def _store(self, key: tuple, value: Any, size: int) -> None:
        dropped = []
        with self._lock:
            if key not in self._items and size <= self.budget:
                self._items[key] = (value, size, self._clock())
                self._bytes += size
                while self._bytes > self.budget:
                    dropped.append(self._pop_oldest())
        self._released(dropped)

    @contextlib.contextmanager
    def _computing(self, key: tuple) -> Iterator[None]:
        with self._lock:
            entry = self._key_locks.setdefault(key, [threading.RLock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._key_locks[key]

    def _drop_idle(self, now: float) -> list:
        dropped = []
        while self._items:
            _, _, used = next(iter(self._items.values()))
            if now - used <= self.idle_seconds:
                break
            dropped.append(self._pop_oldest())
        return dropped

    def _pop_oldest(self) -> tuple[Any, int]:
        _, (value, size, _) = self._items.popitem(last=False)
        self._bytes -= size
        return value, size

    def _released(self, dropped: list) -> None:
        """Let the dropped entries go (outside the lock); once ``release_bytes`` have gone since
        the last time, hand freed memory back."""
        if not dropped:
            return
        freed = sum(size for _, size in dropped)
        dropped.clear()  # the last reference, unless a session still shows the frame
        with self._lock:
            self._freed += freed
            due = self._release is not None and self._freed >= self._release_bytes
            if due:
                self._freed = 0
        if due:
            self._release()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


_MISSING = object()

#: Bytes of pandas objects around one column of a cached frame (its block, placement, index
#: reference; the categories' index of a categorical): measured with tracemalloc on the
#: synthetic cohort's frames, 0.8-1.4 KB per column (a 220-row, 30-column selection: 54 KB
#: allocated, 30 KB of column values).
COLUMN_OVERHEAD = 1024


def _frame_bytes(value: Any, base: pd.DataFrame | None = None) -> int:
    """Shallow bytes of ``value``'s frame, less the columns whose buffer it shares with
    ``base`` (the same column of the frame it was derived from), plus :data:`COLUMN_OVERHEAD`
    per column; the length of a pickled result or payload; an Arrow table's buffers."""
    if isinstance(value, bytes):
        return len(value)
    if type(value).__module__.startswith("pyarrow"):
        return int(value.nbytes) + COLUMN_OVERHEAD * value.num_columns
    frame = getattr(value, "data", None)  # a FilterResult holds its rows in .data
    if not isinstance(frame, pd.DataFrame):
        frame = getattr(value, "table", value)  # a Counts its cells in .table
    if not isinstance(frame, pd.DataFrame):
        return 0
    sizes = frame.memory_usage(index=True, deep=False)
    overhead = COLUMN_OVERHEAD * frame.shape[1]
    if base is None or not frame.columns.is_unique or not base.columns.is_unique:
        return int(sizes.sum()) + overhead
    shared = [c for c in frame.columns if c in base.columns
              and _shares_buffer(frame[c], base[c])]
    return int(sizes.drop(shared).sum()) + overhead


def _shares_buffer(a: pd.Series, b: pd.Series) -> bool:
    def buffer(values: pd.Series):
        if isinstance(values.dtype, pd.CategoricalDtype):
            return values.array.codes
        return values.to_numpy(copy=False) if isinstance(values.dtype, np.dtype) else None

    if isinstance(a.dtype, pd.ArrowDtype) and isinstance(b.dtype, pd.ArrowDtype):
        return bool(_arrow_buffers(a) & _arrow_buffers(b))  # e.g. an upload's patient IDs
    left, right = buffer(a), buffer(b)
    return left is not None and right is not None and np.may_share_memory(left, right)


def _arrow_buffers(values: pd.Series) -> set[int]:
    """Addresses of the Arrow buffers holding ``values`` (through the Arrow array protocol)."""
    chunks = values.array.__arrow_array__().chunks
    return {b.address for chunk in chunks for b in chunk.buffers() if b is not None and b.size}


def _seconds(variable: str, default: float) -> float:
    text = os.environ.get(variable)
    try:
        return float(text) if text else default
    except ValueError:
        log.warning("%s=%r is not a number of seconds; using %s", variable, text, default)
        return default


#: The one byte-bounded cache of whole-cohort frames (:data:`CACHE_BUDGET_ENV`,
#: :data:`CACHE_IDLE_ENV`).
FRAME_CACHE = FrameCache(_megabytes(CACHE_BUDGET_ENV, DEFAULT_CACHE_MB),
                         idle_seconds=_seconds(CACHE_IDLE_ENV, DEFAULT_CACHE_IDLE_S),
                         release=return_free_memory)


def _frames(kind: str, spinner: str | None = None):
    """Cache a function of ``(token, ..., _data)`` in :data:`FRAME_CACHE`, the value itself
    shared by every session (as ``st.cache_resource``); arguments whose name starts with ``_``
    are not part of the key, and a DataFrame among them is the frame an entry is counted
    against (see :class:`FrameCache`)."""
    return _in_frame_cache(kind, spinner, pickled=False)


def _copies(kind: str, spinner: str | None = None):
    """Cache a function's results in :data:`FRAME_CACHE` as pickled bytes, each call getting
    its own copy (what ``st.cache_data`` does, but under the cache's byte budget: a Kaplan–Meier
    result of 1M patients pickles to ~2 MB, and ``st.cache_data`` bounds only the number of
    entries). The key is a content digest of the arguments whose name does not start with ``_``.
    """
    return _in_frame_cache(kind, spinner, pickled=True)


def _in_frame_cache(kind: str, spinner: str | None, *, pickled: bool):
    import functools
    import inspect
    import pickle

    from .keys import fingerprint

    def decorate(fn):
        names = list(inspect.signature(fn).parameters)

        @functools.wraps(fn)
        def wrapper(*args):
            public = [a for n, a in zip(names, args, strict=True) if not n.startswith("_")]
            base = None if pickled else next(
                (a for n, a in zip(names, args, strict=True)
                 if n.startswith("_") and isinstance(a, pd.DataFrame)), None)

            def compute():
                with st.spinner(spinner) if spinner else contextlib.nullcontext():
                    value = fn(*args)
                return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL) if pickled else value

            if not pickled:
                return FRAME_CACHE.get((kind, *public), compute, base)
            # bytes this process pickled itself: safe to unpickle
            return pickle.loads(FRAME_CACHE.get((kind, fingerprint(public)), compute))

        return wrapper

    return decorate


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
            whole = memory.keeps_table_for_remapping(*raw.frame.shape)
            # A large table's first rows are all the session keeps of it: taken now, so that
            # building the cohort can let the parsed rows go once they are mapped.
            kept = None if whole else _first_rows(raw)
            loaded = cohort_io.build_cohort(raw, mapping, release=not whole)
    except ValueError as exc:
        st.session_state["_last_upload"] = None
        st.error(plain(exc))
        return
    st.session_state["_last_upload_token"] = add_upload(
        loaded, name, cohort_io.compact(raw if whole else kept),
        origin={"files": [f.name for f in files], "encoding": encoding}, remap_needs_file=not whole)
    del raw, kept, source, files  # our last references to the uploaded bytes go with this run
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

    from .render import download  # drawing builds on this module

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
    from .registry import registry_names  # the registry module builds on this one

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
    from .registry import registry_cohort  # the registry module builds on this one

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
        token=f"{BUNDLED_PREFIX}{bundle.key}",
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


def _synthetic_assumptions() -> tuple[str, ...]:
    from her2er_dash import simulate

    return simulate.ASSUMPTIONS


REGISTRY_PREFIX = "registry:"
#: Token prefix of a bundled cohort (``bundled:<key>``).
BUNDLED_PREFIX = "bundled:"
