"""Caches by result key: results known by their analysis's cache key, payloads and Arrow tables
built once per result, memoised widget options, and content fingerprints for the rest."""
from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import streamlit as st

if TYPE_CHECKING:
    from .analysis import Context

log = logging.getLogger("her2er_explorer")


#: The largest CSV payload or Arrow table kept for reuse (:func:`ui.render.csv_payload`,
#: :func:`ui.render.shown_table`); they are kept in the frame cache, under its byte budget.
CSV_CACHE_ITEM_BYTES = 2 * 1024 * 1024


class _Lru:
    """A thread-safe memo of small values, least recently used out beyond ``budget`` entries."""

    def __init__(self, budget: int):
        self.budget = budget
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items.setdefault(key, value)
            while len(self._items) > self.budget:
                self._items.popitem(last=False)
        return value


# One store per process, emptied with Streamlit's caches (and after an hour, as the cached
# results it stands for are).
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


#: id -> (weak reference, key) of the objects whose content a cache key determines (:func:`known_as`).
_KNOWN: dict[int, tuple[weakref.ref, tuple]] = {}
