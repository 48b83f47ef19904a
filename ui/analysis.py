"""Cached analysis: pure her2er_dash functions keyed on (cohort token, filter, options), the
page :class:`Context`, survival-method glue and analyses on subsets of the selection."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import import_module
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from her2er_dash import schema
from her2er_dash.filters import CohortFilter, FilterResult

from .cohorts import BUNDLED_PREFIX, REGISTRY_PREFIX, ActiveCohort, _bundled, _copies, _frames
from .keys import _options_memo, known_as
from .registry import _registry_analysis, _registry_counts, _registry_of, _thaw, counts_columns

log = logging.getLogger("her2er_explorer")

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


#: Options the app adds to a package call whose result it caches. They change what a result
#: keeps, never a number: the IPTW result without each patient's weight, propensity and
#: exposure, which no page reads (~45 MB per cached result at 1M patients).
CACHED_OPTIONS: dict[str, dict[str, Any]] = {"survival.iptw_kaplan_meier": {"per_patient": False}}


@_copies("analysis", "Computing…")
def _analysis(token: str, flt: CohortFilter, fn: str, kwargs: dict, _data: pd.DataFrame):
    module, name = fn.rsplit(".", 1)
    options = {**_thaw(kwargs), **CACHED_OPTIONS.get(fn, {})}
    return getattr(import_module(f"her2er_dash.{module}"), name)(_data, **options)


def _cached_analysis(token: str, key, fn: str, kwargs: dict, data: pd.DataFrame):
    """:func:`_analysis`, with the result known by its cache key from then on (see :func:`known_as`)."""
    return known_as(_analysis(token, key, fn, kwargs, data), ("analysis", token, key, fn, kwargs))


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


#: The app's modules that its first page imports in its script run, beyond ``import ui``: its
#: figures and downloads, the sidebar's upload widget (the text readers and their encodings),
#: Table 1 and the classification defaults. The app imports them where they are used, so that
#: ``import ui`` stays cheap for a test or a notebook; ``tests/test_packaging.py`` checks that
#: the list covers the default page.
FIRST_PAGE_MODULES = (
    "her2er_dash.classify",
    "her2er_dash.export",
    "her2er_dash.figures",
    "her2er_dash.ingest.readers",
    "her2er_dash.summary",
)


def import_first_page_modules() -> None:
    """Import :data:`FIRST_PAGE_MODULES`, as ``deploy.ahead`` does right after importing the app
    whether or not a visitor has come. On a fresh deployment (no bytecode yet) the first page's
    script run otherwise compiled and ran them itself (~0.1-0.15 s here) while Streamlit's file
    watcher walked every module on the event loop; and a run that imports a module makes that
    walk run again for the session once the run ends."""
    for name in FIRST_PAGE_MODULES:
        import_module(name)


def open_default_view() -> float:
    """Open the bundled default cohort under the default filter outside any session, in the
    caches a session uses, and build its filter flow's figure once; returns the seconds taken.

    What ``deploy.ahead`` does after importing the app, so that its first visitor finds the
    cohort read and classified, and plotly's figure classes set up for the first figure a page
    draws (the Cohort page charts the flow once a filter adds a step), instead of paying for
    them in a script run (AppTest, after ``import ui``: first run 0.74-1.05 s, a later session's
    0.25-0.35 s).
    """
    import time

    from her2er_dash import figures

    from .view import DEFAULT_COHORT

    import_first_page_modules()

    start = time.perf_counter()
    bundle = _bundled(DEFAULT_COHORT)
    selected = _filtered(f"{BUNDLED_PREFIX}{bundle.key}", CohortFilter(), bundle.data)
    figures.flow_figure(selected.flow)
    # Streamlit's own once-per-process costs of a first page, paid here instead of by a visitor:
    # its first element checks whether it runs in a REPL (inspect.stack(), which walks every
    # imported module: 0.07-0.15 s here), and its first alert with non-ASCII text (the sidebar's
    # line once a filter excludes anyone) compiles its emoji pattern (0.07-0.18 s). Outside a
    # session the element itself goes nowhere.
    st.info("HER2 status: positive → −1")
    return time.perf_counter() - start


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
