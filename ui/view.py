"""The view: widgets whose values are remembered in the session and the shareable URL."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import streamlit as st

from her2er_dash.datasets import DEFAULT_BUNDLE, REAL_PATIENT_LEVEL

log = logging.getLogger("her2er_explorer")

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


class OptionLabels:
    """A widget's ``format_func`` as the labels of its options, computed when it is drawn.

    Streamlit keeps every widget's ``format_func`` in the session (its widget metadata is never
    pruned, and AppTest saves it too) after the page that drew it is left. A function defined in
    a page script (a lambda) holds that page's whole namespace, and with it the page's last
    filtered copy of the cohort: at 1M patients the Survival and Subgroups pages' lambdas kept
    ~210 MB alive outside the byte-bounded frame cache for the rest of the session. The labels
    hold only their texts. A value that is not an option raises KeyError, which Streamlit
    answers with ``str(value)``, as for any ``format_func`` that fails.
    """

    __slots__ = ("_labels",)

    def __init__(self, options, format_func: Callable[[Any], Any]):
        self._labels = {option: format_func(option) for option in options}

    def __call__(self, option: Any) -> Any:
        return self._labels[option]


def _labelled(options, kwargs: dict) -> dict:
    """``kwargs`` with a ``format_func`` given as :class:`OptionLabels` (none: unchanged)."""
    format_func = kwargs.get("format_func")
    if format_func is None or isinstance(format_func, OptionLabels):
        return kwargs
    try:
        return {**kwargs, "format_func": OptionLabels(options, format_func)}
    except TypeError:  # options that cannot be dictionary keys: Streamlit's own handling
        return kwargs


def selectbox(label: str, options: list, *, key: str, default=None, **kwargs):
    default = options[0] if default is None else default
    remember(key, default, one_of(options, default))
    st.selectbox(label, options, key=key, **_labelled(options, kwargs))
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
    st.multiselect(label, options, key=key, **_labelled(options, kwargs))
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


#: The cohort a fresh session opens on (I-SPY 1; why: data/README.md).
DEFAULT_COHORT = DEFAULT_BUNDLE


#: Bundled patient-level cohorts in picker order: the real ones first, the synthetic trial last.
PATIENT_LEVEL_BUNDLES = (*REAL_PATIENT_LEVEL, "gbsg2", "synthetic")


def uploads() -> dict[str, dict]:
    """This session's uploaded cohorts: token -> {"cohort": Cohort, "name": str}."""
    return st.session_state.setdefault("_uploads", {})


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def plain(text: object) -> str:
    """Text from data or files, escaped so that Markdown shows it literally (no links, images,
    emphasis or HTML from a cell value or a file name)."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", str(text))
