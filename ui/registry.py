"""Registries: the operator's server-side data folder, queried in place by DuckDB."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from importlib import import_module

import pandas as pd
import streamlit as st

from her2er_dash import schema
from her2er_dash.filters import CohortFilter, FilterResult

from .cohorts import REGISTRY_PREFIX, ActiveCohort, _copies, _frames
from .view import plain

log = logging.getLogger("her2er_explorer")

# --------------------------------------------------------------------------------------------
# Registries: the operator's server-side data folder, queried in place by DuckDB.
# --------------------------------------------------------------------------------------------

#: Environment variable naming the operator's data folder (else ``data_dir`` in the
#: ``[her2er]`` section of ``.streamlit/secrets.toml``); unset: no registry is offered.
DATA_DIR_ENV = "HER2ER_DATA_DIR"
#: Memory DuckDB may use for one registry's queries (beyond it, sorting the classified table
#: spills into the registry's private temporary folder, deleted with it).
DUCKDB_MEMORY_ENV = "HER2ER_DUCKDB_MEMORY"
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


#: Registries of the data folder each server process of the app opens and classifies as soon as
#: it runs (comma-separated names, or ``all``; deploy/ahead.py), so the first user to pick one does
#: not wait for it (~30 s for 10M patients here, benchmarks/README.md). Unset: none.
PREWARM_ENV = "HER2ER_PREWARM"


def prewarm_names(value: str) -> list[str]:
    """The registries ``value`` (:data:`PREWARM_ENV`'s text) names that the data folder offers;
    names it does not offer are logged and left out."""
    offered = registry_names()
    asked = [n.strip() for n in value.split(",") if n.strip()]
    if [n.lower() for n in asked] == ["all"]:
        return offered
    missing = [n for n in asked if n not in offered]
    if missing:
        log.warning("%s names %s, which the data folder does not offer (it has: %s)",
                    PREWARM_ENV, ", ".join(missing), ", ".join(offered) or "nothing")
    return [n for n in asked if n in offered]


def prewarm(names: Sequence[str]) -> dict[str, float]:
    """Open each registry and select its patients under the default filter outside any session,
    filling the same caches a user's first pick fills (the registry, its classified table and
    its sample). Returns the seconds each took; one that cannot be opened is logged and left
    out, and the others still go ahead."""
    took = {}
    for name in names:
        start = time.perf_counter()
        try:
            _registry_filtered(_registry_token(name, _open_registry(name)), CohortFilter())
        except Exception as exc:  # noqa: BLE001 - one broken registry must not stop the others
            log.warning("registry %s was not opened ahead: %s", name, exc)
            continue
        took[name] = time.perf_counter() - start
    return took


@st.cache_resource(max_entries=8, ttl=6 * 3600, show_spinner="Opening the registry…")
def _registry(path: str, name: str, stamp: str):
    return _data_folder(path).open(name, memory_limit=os.environ.get(DUCKDB_MEMORY_ENV))


def _open_registry(name: str):
    path = data_folder_path()
    if not path:
        raise ValueError("No data folder is configured on this server.")
    return _registry(path, name, _files_stamp(path, name))


#: How long a registry's files, once checked, are taken as unchanged (seconds). A page names
#: its registry in every cached call (19 times in a 10M Survival render); walking, resolving and
#: stating its files each time cost 0.086 s of that render. A file replaced in the data folder
#: is still seen within this time.
FILES_CHECK_S = 2.0
_stamps: dict[tuple[str, str], tuple[float, str]] = {}


def _files_stamp(path: str, name: str) -> str:
    """A digest of registry ``name``'s files (paths, sizes, modification times), checked at most
    every :data:`FILES_CHECK_S` (a failed check is not remembered: it raises again)."""
    now = time.monotonic()
    known = _stamps.get((path, name))
    if known is not None and now - known[0] < FILES_CHECK_S:
        return known[1]
    files = _data_folder(path).resolve(name)
    listed = repr([(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files])
    stamp = hashlib.sha256(listed.encode()).hexdigest()[:16]
    _stamps[(path, name)] = (now, stamp)
    return stamp


def _registry_token(name: str, registry) -> str:
    """The cohort token of registry ``name`` as opened now (its fingerprint changes with its files)."""
    return f"{REGISTRY_PREFIX}{name}@{registry.fingerprint}"


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
    token = _registry_token(name, registry)
    return ActiveCohort(
        token=token,
        title=name,
        data=_registry_sample(token, CohortFilter()),
        source=f"{name} (server data folder, {registry.n:,} patients, queried in place by DuckDB)",
        time_origin=schema.UNSTATED_TIME_ORIGIN,
        registry=registry,
    )


# The registry's samples, selections and count tables are held in the frame cache, under its one
# byte budget with the app's other frames: a 100,000-patient sample is ~13 MB and a
# study-stratified survival count table up to ~12 MB at 10M patients, so bounds on entries
# (st.cache_resource's) would have allowed ~330 MB for these alone.
@_frames("registry_sample", "Sampling the registry…")
def _registry_sample(token: str, flt: CohortFilter) -> pd.DataFrame:
    return _registry_of(token).sample(flt, size=REGISTRY_SAMPLE)


def _registry_filtered(token: str, flt: CohortFilter) -> FilterResult:
    """The selection ``flt`` of a registry: its counts, and a sample of its rows."""
    return _registry_selection(token, flt, _registry_sample(token, CohortFilter()))


# The registry's sample is the frame a selection is counted against: a selection keeping every
# sampled patient (the default filter's) shares its columns, so the budget counts them once.
@_frames("registry_filtered", "Querying the registry…")
def _registry_selection(token: str, flt: CohortFilter, _everyone: pd.DataFrame) -> FilterResult:
    registry = _registry_of(token)
    selection = registry.select(flt)
    if not selection.n:
        return FilterResult(data=_everyone.iloc[:0], flow=selection.flow,
                            n_total=selection.n_total, notes=selection.notes, n_selected=0)
    # A filter that keeps at least half of the registry's sample takes its rows from it (the same
    # random draw, restricted: 0.04 s at 10M patients instead of a new sample's 0.11-0.17 s).
    sample = _everyone if flt == CohortFilter() else registry.subsample(
        flt, _everyone, base_flt=CohortFilter(), minimum=REGISTRY_SAMPLE // 2,
        size=REGISTRY_SAMPLE, selection=selection)
    if sample is None:
        sample = registry.sample(flt, size=REGISTRY_SAMPLE, selection=selection)
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


@_copies("registry_analysis", "Counting in the registry…")
def _registry_analysis(token: str, flt: CohortFilter, fn: str, kwargs: dict, columns: list[str]):
    # the count table is shared: KM, log-rank, RMST and milestone of one grouping cost one scan
    cells = _registry_counts(token, flt, tuple(columns))
    module, name = fn.rsplit(".", 1)
    return getattr(import_module(f"her2er_dash.{module}"), name)(cells, **_thaw(kwargs))


@_frames("registry_counts", "Counting in the registry…")
def _registry_counts(token: str, flt: CohortFilter, columns: tuple[str, ...]):
    registry = _registry_of(token)
    if _per_study_first(registry, flt, columns):
        return _registry_counts(token, flt, (*columns, "study")).summed(columns)
    return registry.counts(flt, list(columns))


#: Time columns of the survival endpoints (``<endpoint>_months``).
_TIMES = frozenset(schema.time_column(endpoint) for endpoint in schema.ENDPOINTS)


def _per_study_first(registry, flt: CohortFilter, columns: tuple[str, ...]) -> bool:
    """Whether the survival curves' cells (time, event, one grouping) of a selection that pools
    studies are counted per study and summed. The Survival page tests the same curves
    stratified by study (its default for pooled selections), so the two tables then cost one
    registry scan: the curves' own count was 0.09-0.15 s at 10M patients, summing the
    study-stratified cells 0.04-0.05 s (the same cells)."""
    return (len(columns) <= 3 and columns[0] in _TIMES and "study" not in columns
            and "study" in registry.columns and len(registry.levels("study", flt)) > 1)


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


def _thaw(kwargs: dict) -> dict:
    # Lists arrive from widgets; tuples mean (time, event) pairs for the analysis functions.
    return {k: tuple(v) if k == "outcome" and isinstance(v, list) else v for k, v in kwargs.items()}
