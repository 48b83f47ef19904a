"""Panels, tables, downloads and figures: drawing results, with payloads cached by result key."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import streamlit as st

from .cohorts import FRAME_CACHE
from .keys import CSV_CACHE_ITEM_BYTES, fingerprint, known_key
from .view import plain, record, remember

log = logging.getLogger("her2er_explorer")

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


@contextmanager
def panel_on_request(title: str, *, key: str) -> Iterator[bool]:
    """A panel drawn in an expander whose analyses run only while it is open: yields whether it
    is open (the body computes nothing when it is not).

    For panels with their own choices that most views do not need on every rerun (e.g. the
    adjusted curves: a propensity model, weighted curves and two figures, ~0.25 s of every
    Survival render). Whether it is open is remembered like a widget's value (``key``), in the
    session and in the shareable URL, so a shared link opens it too. Errors show inside it, as
    in :func:`panel`.
    """
    remember(key, False, bool)
    with st.expander(title, key=key, on_change="rerun"):
        shown = bool(record(key))
        with panel():
            yield shown


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
    shown = FRAME_CACHE.get(("arrow", fingerprint((key, missing))),
                            lambda: _to_arrow(display_frame(df, missing)), largest=CSV_CACHE_ITEM_BYTES)
    return display_frame(df, missing) if shown is None else shown


def _to_arrow(shown: pd.DataFrame):
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(shown)
    except (pa.ArrowException, TypeError, ValueError):  # mixed types: Streamlit's own fixes
        return None




def csv_payload(df: pd.DataFrame, *, banner: str | None) -> bytes:
    """``export.safe_csv_bytes(df, banner=banner)``, reused across sessions for the tables of
    cached analyses (:func:`known_as`): every table on screen carries its download, so building
    each payload per render was about a seventh of a Survival render's CPU time. Other tables
    (built by the page) are written each time; keying them by content would cost as much."""
    from her2er_dash.export import safe_csv_bytes

    key = known_key(df)
    if key is None:
        return safe_csv_bytes(df, banner=banner)
    return FRAME_CACHE.get(("csv", fingerprint((key, banner))),
                           lambda: safe_csv_bytes(df, banner=banner), largest=CSV_CACHE_ITEM_BYTES)


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


#: Figures with fewer numbers than this in their traces' arrays are cached as built: encoding
#: them saves less per draw than the ~14 ms of rebuilding (a forest plot's 17 points).
WIRE_READY_MIN_VALUES = 2_000


def wire_ready(fig):
    """The same figure with its numeric arrays held as plotly's base64 typed arrays.

    ``st.plotly_chart`` calls ``Figure.to_dict()``, which encodes every numeric array of the
    figure to base64 on each call (~7 ms for a Kaplan–Meier figure, most of the figure's
    cost per render); a figure built from that dictionary holds them encoded already, so each
    later draw only copies them (~2 ms). Its JSON has the same content, so the chart on screen
    is the same.
    Built once per cached figure (~30 ms: the dictionary is validated again), and only for
    figures holding at least :data:`WIRE_READY_MIN_VALUES` numbers: a small figure (a forest
    plot: 14 ms to rebuild, 1 ms saved per draw) is returned as it is.
    """
    import plotly.graph_objects as go

    if _array_values(fig) < WIRE_READY_MIN_VALUES:
        return fig
    return go.Figure(fig.to_dict())


def _array_values(fig) -> int:
    """How many values the figure's traces hold in their x, y and z arrays."""
    total = 0
    for trace in fig.data:
        for name in ("x", "y", "z"):
            values = getattr(trace, name, None)
            if values is not None and not isinstance(values, (str, dict)):
                total += len(values)
    return total


def _cached_figure(build: Callable, args: tuple, kwargs: dict):
    key = fingerprint((build.__module__, build.__qualname__, args, kwargs))
    return _figure_cache(key, build, args, kwargs)


_PARAMETERS: dict[Callable, frozenset[str]] = {}


def _parameters(build: Callable) -> frozenset[str]:
    if build not in _PARAMETERS:
        import inspect

        _PARAMETERS[build] = frozenset(inspect.signature(build).parameters)
    return _PARAMETERS[build]


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
