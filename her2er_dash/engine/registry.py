"""A cohort queried where it lies: Parquet files (or an in-memory table) through DuckDB.

A :class:`Registry` never loads the patients into pandas. Each question the app asks is one SQL
query over the columns it needs: the flow of patients through the sidebar's filters, grouped
counts (:class:`~her2er_dash.counts.Counts`) for the counts-first analyses, the levels, ranges and
missing values the widgets offer, and — only for views that need individual values (continuous
covariates, quantiles, splines) — a random sample of the selected patients' rows.

The registry must use the canonical column names and codings of :mod:`her2er_dash.schema`
(statuses "positive"/"negative", events 0/1, times in months); other columns are ignored. Such a
file is what ``her2er_dash.cohort.load(...).data.to_parquet(...)`` writes. Opening checks the
column types and codings and refuses with a message naming the column and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..classify import IHC_SCORES, ERCutpoints, default_cutpoints
from ..counts import COUNT, Counts
from ..errors import AnalysisError, CohortError
from ..filters import ITT_COMPLETE, CohortFilter, itt_note, missing_note, note_column
from ..schema import (
    BINARY_COLUMNS,
    CANONICAL_COLUMNS,
    DERIVED_COLUMNS,
    ENDPOINT_COLUMNS,
    ENDPOINTS,
    NUMERIC_COLUMNS,
    time_column,
)
from .sql import CODED_LEVELS, classified_sql, criterion_sql, ident, in_list, literal

#: Columns a registry may hold: the canonical ones and those a classified file adds (its
#: recorded statuses feed the classification, as in ``classify_cohort``).
KNOWN_COLUMNS = (*CANONICAL_COLUMNS, *DERIVED_COLUMNS)
#: Patients drawn for the views that need individual rows (see :meth:`Registry.sample`).
DEFAULT_SAMPLE = 100_000
#: Text columns with more distinct values than this are identifiers, not levels.
MAX_LEVELS = 1000
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL", "BOOLEAN")


def is_numeric_column(column: str) -> bool:
    """Whether a canonical column holds numbers (else text)."""
    return column in NUMERIC_COLUMNS or column in BINARY_COLUMNS or column in ENDPOINT_COLUMNS


@dataclass(frozen=True)
class Selection:
    """The patients a filter selects in a registry: the flow of counts (as
    :meth:`CohortFilter.select` reports it), how many remain, and notes on how pCR is counted."""

    flow: pd.DataFrame
    n: int
    n_total: int
    notes: tuple[str, ...]
    where: str  # the SQL condition (internal: reused by counts and samples)
    itt_studies: tuple[str, ...] | None  # studies whose missing pCR counts as 0 (ITT), else None


class Registry:
    """A cohort in Parquet (one file or a folder of files) or in memory, queried with DuckDB.

    Build with :meth:`open` (a path) or :meth:`from_frame` (a pandas or Arrow table kept in memory,
    e.g. an uploaded file: it is never written to disk). ``threads`` and ``memory_limit`` bound
    what DuckDB may use. An in-memory registry never spills to disk; a file registry spills only
    into its private temporary folder, beside its classified table (see :meth:`_materialise`).
    """

    def __init__(self, relation: str, *, name: str, fingerprint: str, connection,
                 categories: dict[str, list[str]], files: tuple[Path, ...] = ()):
        self.name = name
        self.fingerprint = fingerprint
        self.files = files
        self._relation = relation
        self._con = connection
        self._has_values: dict[str, bool] = {}
        self._narrow: frozenset[str] | None = None  # see _small_codes
        self._lock = threading.Lock()
        self._tables: dict[ERCutpoints | None, str] = {}  # classified tables, newest last
        self._table_lock = threading.Lock()
        self._scratch: str | None = None  # attached database holding them (file registries)
        self._finalizer = None
        self._selections: dict = {}
        self._present: dict[tuple[str, str], dict[str, set]] = {}  # see _present_values
        self._values: dict[tuple[str, str], list] = {}  # see _registry_values
        types = dict(self._fetch(f"DESCRIBE SELECT * FROM {relation}")[["column_name",
                                                                        "column_type"]].values)
        self.columns: tuple[str, ...] = tuple(c for c in KNOWN_COLUMNS if c in types)
        _check_types(self.columns, types, name)
        self._base = self._base_sql(types)
        self.n = int(self._scalar(f"SELECT count(*) FROM {relation}"))
        if self.n == 0:
            raise CohortError(f"{name}: the registry holds no patients.")
        self._check_values()
        self.categories = self._levels_order(categories)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike | Sequence[Path], *, name: str | None = None,
             threads: int | None = None, memory_limit: str | None = None) -> Registry:
        """A registry from a Parquet file, a folder of Parquet files, or a list of files (read
        in place)."""
        if isinstance(path, list | tuple):
            files = [Path(p) for p in path]
            if not files:
                raise CohortError("No Parquet file was given.")
            label = name or files[0].name
        else:
            path = Path(path)
            files = _parquet_files(path)
            label = name or path.name
        stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
        fingerprint = hashlib.sha256(repr(stats).encode()).hexdigest()[:16]
        con = _connect(threads, memory_limit)
        listed = "[" + ", ".join(literal(str(f)) for f in files) + "]"
        relation = (f"read_parquet({listed}, union_by_name = true, filename = true, "
                    "file_row_number = true)")
        try:
            return cls(relation, name=label, fingerprint=fingerprint, connection=con,
                       categories=_parquet_categories(files), files=tuple(files))
        except (CohortError, AnalysisError):
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged file is a message, not a crash
            raise CohortError(f"{label}: the registry could not be read ({type(exc).__name__}: "
                              f"{str(exc)[:200]}).") from exc

    @classmethod
    def from_frame(cls, frame, *, name: str = "in-memory cohort", threads: int | None = None,
                   memory_limit: str | None = None) -> Registry:
        """A registry over a pandas DataFrame or Arrow table held in memory (nothing on disk)."""
        import pyarrow as pa

        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(
            frame, preserve_index=False)
        categories = {}
        for field in table.schema:
            if pa.types.is_dictionary(field.type):
                chunks = table.column(field.name).chunks
                if chunks:
                    categories[field.name] = [str(v) for v in chunks[0].dictionary.to_pylist()]
        table = table.append_column("__row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        digest = hashlib.sha256()
        for batch in table.to_batches():
            for column in batch.columns:
                for buffer in column.buffers():
                    if buffer is not None:
                        digest.update(memoryview(buffer))
        con = _connect(threads, memory_limit)
        con.register("cohort_table", table)
        return cls("cohort_table", name=name, fingerprint=digest.hexdigest()[:16], connection=con,
                   categories=categories)

    def _base_sql(self, types: dict[str, str]) -> str:
        """Canonical columns with numbers as DOUBLE (NaN read as missing, as pandas does) and
        text as VARCHAR, plus a stable row key for sampling."""
        parts = []
        for column in self.columns:
            c = ident(column)
            if is_numeric_column(column):
                parts.append(f"(CASE WHEN isnan(CAST({c} AS DOUBLE)) THEN NULL "
                             f"ELSE CAST({c} AS DOUBLE) END) AS {c}")
            else:
                parts.append(f"CAST({c} AS VARCHAR) AS {c}")
        key = ("hash(filename, file_row_number)" if "file_row_number" in types
               else "hash(__row)")
        parts.append(f"{key} AS __key")
        return f"SELECT {', '.join(parts)} FROM {self._relation}"

    # -- queries --------------------------------------------------------------------------
    def _run(self, sql: str, fetch: str):
        """Run a query: on its own cursor (sessions query a file registry in parallel), or on
        the connection under a lock for a registered in-memory table (visible to it alone)."""
        if self.files:
            cursor = self._con.cursor()
            try:
                result = cursor.execute(sql)
                return result.fetchdf() if fetch == "frame" else result.fetchall()
            finally:
                cursor.close()
        with self._lock:
            result = self._con.execute(sql)
            return result.fetchdf() if fetch == "frame" else result.fetchall()

    def _fetch(self, sql: str) -> pd.DataFrame:
        return self._run(sql, "frame")

    def _scalar(self, sql: str):
        return self._run(sql, "rows")[0][0]

    def _check_values(self) -> None:
        """Refuse codings the analyses would misread (statuses, HER2 IHC, categories)."""
        checks = []
        for column in self.columns:
            c = ident(column)
            if column in CODED_LEVELS:
                allowed = CODED_LEVELS[column]
                checks.append((column, f"{c} IS NOT NULL AND {c} NOT IN {in_list(allowed)}",
                               ", ".join(allowed)))
            elif column == "her2_ihc":
                checks.append((column, f"{c} IS NOT NULL AND {c} NOT IN {in_list(IHC_SCORES)}",
                               "0, 0.5 (ultralow), 1, 2 or 3"))
        if not checks:
            return
        counts = ", ".join(f"count(*) FILTER (WHERE {cond}) AS {ident(col)}"
                           for col, cond, _ in checks)
        bad = self._fetch(f"SELECT {counts} FROM ({self._base})").iloc[0]
        for column, cond, allowed in checks:
            if bad[column]:
                odd = self._fetch(f"SELECT DISTINCT {ident(column)} AS v FROM ({self._base}) "
                                  f"WHERE {cond} LIMIT 5")["v"].tolist()
                raise CohortError(
                    f"{self.name}: column {column} has {int(bad[column]):,} value(s) other than "
                    f"{allowed} (e.g. {odd}). A registry must use the canonical codings: recode "
                    "them in the file (or load it once with her2er_dash.cohort.load and save its "
                    ".data as Parquet)."
                )

    def _levels_order(self, given: dict[str, list[str]]) -> dict[str, list[str]]:
        """Level order of every text column: fixed for derived columns, the file's categorical
        order where it has one (as pandas reads it), else sorted; identifiers have none."""
        out = {}
        text = [c for c in self.columns if not is_numeric_column(c) and c not in CODED_LEVELS]
        if text:
            distinct = ", ".join(f"approx_count_distinct({ident(c)}) AS {ident(c)}" for c in text)
            sizes = self._fetch(f"SELECT {distinct} FROM ({self._base})").iloc[0]
            few = [c for c in text if sizes[c] <= MAX_LEVELS * 1.2]
            if few:
                lists = ", ".join(f"list(DISTINCT {ident(c)}) FILTER (WHERE {ident(c)} IS NOT "
                                  f"NULL) AS {ident(c)}" for c in few)
                found = self._fetch(f"SELECT {lists} FROM ({self._base})").iloc[0]
                for column in few:
                    values = list(found[column]) if found[column] is not None else []
                    if len(values) > MAX_LEVELS:
                        continue
                    first = [v for v in given.get(column, []) if v in set(values)]
                    out[column] = first + sorted(set(values) - set(first))
        for column, levels in CODED_LEVELS.items():
            out[column] = list(levels)
        return out

    # -- the classified cohort ---------------------------------------------------------------
    def cutpoints(self, flt: CohortFilter) -> ERCutpoints:
        """:meth:`CohortFilter.cutpoints` with the defaults computed over the whole registry."""
        measure = flt.er_measure or "er_percent"
        base = self.default_cutpoints(measure)
        low = flt.er_low if flt.er_low is not None else base.low
        high = flt.er_high if flt.er_high is not None else base.high
        return ERCutpoints(measure=measure, low=low, high=high)

    def default_cutpoints(self, measure: str) -> ERCutpoints:
        values = None
        if measure == "esr1_mrna" and measure in self.columns:
            median = self._scalar(f"SELECT median({ident(measure)}) FROM ({self._base})")
            values = [] if median is None else [float(median)]
        return default_cutpoints(measure, values=values)

    def _classified(self, cutpoints: ERCutpoints | None) -> str:
        """The classified cohort under ``cutpoints``: a table computed once (see
        :meth:`_materialise`), so no query re-evaluates the classification per row."""
        return f"SELECT * FROM {self._materialise(cutpoints)}"

    def _materialise(self, cutpoints: ERCutpoints | None) -> str:
        """The name of the table holding the classified cohort under ``cutpoints``.

        Classifying is a cascade of ``CASE`` rules over text columns; evaluated inside every
        query it made each count a full re-classification of the registry (6-9 s at 10M
        patients). It is done once per registry and cut-points instead: the classified columns
        are written with the statuses and categories as small integer codes and the other text
        columns as ``ENUM``s of their levels. A file registry's table lives in a DuckDB file of a
        private temporary folder (mode 0700 under ``TMPDIR``; compressed, read through DuckDB's
        bounded buffer pool, deleted when the registry is closed or collected), so memory stays
        within ``memory_limit`` at any size, and its rows are ordered for the counts (see
        :meth:`_row_order`); an in-memory registry's stays in memory (an upload never touches
        the disk). The table name carries the registry's fingerprint and the
        cut-points, and the two most recent cut-points are kept: new cut-points give a new
        table, never a stale one. While DuckDB writes it, the analysis modules the pages need
        are imported (:func:`warm_analyses`), so a page's first render does not pay for them.
        """
        with self._table_lock:
            table = self._tables.get(cutpoints)
            if table is not None:
                self._tables[cutpoints] = self._tables.pop(cutpoints)  # most recently used
                return table
            sql, columns = self._classification(cutpoints)
            table = f"{self._scratch_schema()}.{_table_name(self.fingerprint, cutpoints)}"
            parts = []
            narrow = self._small_codes()
            for column in columns:
                levels = self.categories.get(column)
                if column not in CODED_LEVELS and levels and not is_numeric_column(column):
                    parts.append(f"CAST({ident(column)} AS ENUM {in_list(levels)}) "
                                 f"AS {ident(column)}")
                elif column in narrow:
                    parts.append(f"CAST({ident(column)} AS TINYINT) AS {ident(column)}")
                else:
                    parts.append(ident(column))
            # DuckDB releases the GIL while it writes the table: the pages' imports run meanwhile
            warming = threading.Thread(target=warm_analyses, name="her2er-warm", daemon=True)
            warming.start()
            try:
                self._execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {', '.join(parts)}, "
                              f"__key FROM ({sql}){self._row_order()}")
            finally:
                warming.join()
            # the rows any sample of a large selection is drawn from (see sample())
            self._execute(f"CREATE OR REPLACE TABLE {table}_head AS SELECT * FROM {table} "
                          f"WHERE __key < {self._head_cut()}::UBIGINT")
            self._tables[cutpoints] = table
            self._list_registry_values(table, columns)
            while len(self._tables) > KEEP_CLASSIFIED:
                oldest = self._tables.pop(next(iter(self._tables)))
                self._values = {k: v for k, v in self._values.items() if k[0] != oldest}
                self._execute(f"DROP TABLE IF EXISTS {oldest}")
                self._execute(f"DROP TABLE IF EXISTS {oldest}_head")
            return table

    def _row_order(self) -> str:
        """``ORDER BY`` of a file registry's classified table: by study, then the first survival
        endpoint's time (none for an in-memory registry, which must not spill to disk).

        A count over the rows groups them with a hash table; the Survival page's cells (time,
        event, group, study: 514,059 of them at 10M patients) make that table too large for the
        CPU's caches when rows come in file order. Rows of the same time arriving together keep
        it in cache: that count took 0.15-0.18 s instead of 0.39-0.50 s (the other endpoints'
        times, correlated with the first, 0.18 s instead of 0.60; the pCR cells 0.14 instead of
        0.33). The sort costs the classification ~15 s more at 10M patients (13 -> 28 s: the rows
        spill to the registry's private temporary folder, past DuckDB's memory limit), once per
        registry and ER cut-points; every count after it is cheaper (benchmarks/README.md).
        """
        if not self.files:
            return ""
        keys = [c for c in ("study",) if c in self.columns]
        keys += [time_column(e) for e in ENDPOINTS if time_column(e) in self.columns][:1]
        return f" ORDER BY {', '.join(ident(c) for c in keys)}" if keys else ""

    def _head_cut(self) -> int:
        """Sampling keys below this are also kept in the table's ``_head`` copy: the lowest
        keys of ``HEAD_SAMPLES`` default samples' worth of patients. A sample of a selection of
        at least 1/``HEAD_SAMPLES`` of the registry only needs keys below it, so it reads the
        small copy instead of scanning every patient (the same rows, in the same order)."""
        return min(2**64 - 1, int(2**64 * HEAD_SAMPLES * DEFAULT_SAMPLE / self.n))

    def _scratch_schema(self) -> str:
        if not self.files:
            return "memory.main"
        if self._scratch is None:
            folder = tempfile.mkdtemp(prefix="her2er-registry-")  # mode 0700
            self._execute(f"ATTACH {literal(os.path.join(folder, 'classified.duckdb'))} "
                          "AS classified")
            # what a sort or a large aggregate of this registry spills goes beside its table, in
            # the same private folder (deleted with it), never elsewhere
            self._execute(f"SET temp_directory = {literal(os.path.join(folder, 'spill'))}")
            self._scratch = "classified"
            self._finalizer = weakref.finalize(self, _remove_scratch, self._con, folder)
        return "classified.main"

    def close(self) -> None:
        """Drop the classified tables and delete their temporary file (the registry can still
        be queried afterwards: they are rebuilt on demand)."""
        with self._table_lock:
            for table in self._tables.values():
                self._execute(f"DROP TABLE IF EXISTS {table}")
                self._execute(f"DROP TABLE IF EXISTS {table}_head")
            self._tables.clear()
            self._values.clear()
            if self._scratch is not None:
                self._finalizer()
                self._scratch = None

    def classified_table(self, flt: CohortFilter | None = None) -> str:
        """Name of the DuckDB table of the classified cohort under ``flt``'s cut-points
        (built on first use; for benchmarks and tests)."""
        return self._materialise(self._cutpoints_or_none(flt or CohortFilter()))

    def _execute(self, sql: str) -> None:
        if self.files:
            cursor = self._con.cursor()
            try:
                cursor.execute(sql)
            finally:
                cursor.close()
        else:
            with self._lock:
                self._con.execute(sql)

    def _classification(self, cutpoints: ERCutpoints | None) -> tuple[str, list[str]]:
        any_level = (cutpoints is not None and cutpoints.measure in self.columns
                     and self._has_value(cutpoints.measure))
        return classified_sql(self._base, self.columns, cutpoints, any_level)

    def _small_codes(self) -> frozenset[str]:
        """The event and pCR columns whose every value is a whole number from -128 to 127:
        the classified table stores them as ``TINYINT`` (read back as the same floats).

        Grouping 8.5M patients on (EFS time, event, ER category, study, arm) took 0.60-0.75
        CPU s with the event as ``DOUBLE`` and 0.52-0.56 as ``TINYINT``; the Subgroups page's
        grouping (with pCR) 0.97-1.07 and 0.73-0.77. A column holding any other value (which
        the analyses would refuse anyway) keeps its ``DOUBLE``, so no value is ever changed."""
        if self._narrow is None:
            candidates = [c for c in self.columns if c in BINARY_COLUMNS or
                          (c in ENDPOINT_COLUMNS and c.endswith("_event"))]
            narrow: frozenset[str] = frozenset()
            if candidates:
                checks = ", ".join(
                    f"bool_and({ident(c)} IS NULL OR ({ident(c)} = round({ident(c)}) AND "
                    f"{ident(c)} BETWEEN -128 AND 127)) AS {ident(c)}" for c in candidates)
                row = self._fetch(f"SELECT {checks} FROM ({self._base})").iloc[0]
                narrow = frozenset(c for c in candidates if not pd.isna(row[c]) and row[c])
            self._narrow = narrow
        return self._narrow

    def _has_value(self, column: str) -> bool:
        if column not in self._has_values:
            self._has_values[column] = bool(
                self._scalar(f"SELECT count({ident(column)}) > 0 FROM ({self._base})"))
        return self._has_values[column]

    def classified_columns(self, cutpoints: ERCutpoints | None = None) -> list[str]:
        """The columns of the classified cohort (the registry's, plus the derived ones)."""
        cutpoints = cutpoints or self._cutpoints_or_none(CohortFilter())
        return self._classification(cutpoints)[1]

    # -- the sidebar's selection -------------------------------------------------------------
    def select(self, flt: CohortFilter) -> Selection:
        """The flow of patients through ``flt`` (exact counts, one scan), as
        :meth:`CohortFilter.select` reports it for rows. The last few selections are kept
        (a page asks for the same one several times: flow, levels, counts)."""
        key = flt
        with self._table_lock:
            known = self._selections.get(key)
        if known is not None:
            return known
        selection = self._select(flt)
        with self._table_lock:
            self._selections[key] = selection
            while len(self._selections) > KEEP_SELECTIONS:
                self._selections.pop(next(iter(self._selections)))
        return selection

    def _select(self, flt: CohortFilter) -> Selection:
        cutpoints = self._cutpoints_or_none(flt)
        columns = self.classified_columns(cutpoints) if cutpoints else list(self.columns)
        criteria = flt.criteria(columns)
        source = self._classified(cutpoints)
        parts = ["count(*) AS total"]
        conditions = []
        for i, criterion in enumerate(criteria):
            conditions.append(criterion_sql(criterion))
            parts.append(f"count(*) FILTER (WHERE {' AND '.join(conditions)}) AS step{i}")
            column, _ = note_column(criterion.label)
            if column is not None and column in columns:
                parts.append(f"count(*) FILTER (WHERE {ident(column)} IS NULL) AS missing{i}")
        row = self._fetch(f"SELECT {', '.join(parts)} FROM ({source})").iloc[0]
        total = int(row["total"])
        steps, remaining = [("All patients", "", total, 0)], total
        for i, criterion in enumerate(criteria):
            now = int(row[f"step{i}"])
            column, kept = note_column(criterion.label)
            note = missing_note(column, int(row[f"missing{i}"]), kept) if f"missing{i}" in row \
                else ""
            steps.append((criterion.label, note, now, remaining - now))
            remaining = now
        flow = pd.DataFrame(steps, columns=["criterion", "note", "n_remaining", "n_excluded"])
        where = " AND ".join(conditions) or "TRUE"
        notes, studies = ((), None)
        if flt.pcr_itt and "pcr" in self.columns:
            notes, studies = self._itt(source, where)
        return Selection(flow, remaining, total, notes, where, studies)

    def _cutpoints_or_none(self, flt: CohortFilter) -> ERCutpoints | None:
        try:
            return self.cutpoints(flt)
        except AnalysisError:
            return None  # e.g. ESR1 mRNA with no values: classified without an ER level

    def _itt(self, source: str, where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Intention to treat, as ``filters._pcr_intention_to_treat``: within the selection,
        missing pCR counts as non-pCR in every study that records pCR for anyone."""
        has_study = "study" in self.columns
        group = f"coalesce({ident('study')}, '')" if has_study else "''"
        recorded = self._fetch(f"SELECT DISTINCT {group} AS s FROM ({source}) WHERE {where} AND "
                               f"{ident('pcr')} IS NOT NULL")["s"].tolist()
        missing = f"{ident('pcr')} IS NULL AND {group} IN {in_list(recorded or [''])}" \
            if recorded else "FALSE"
        surgery = (f"count(*) FILTER (WHERE {missing} AND surgery_months IS NULL)"
                   if "surgery_months" in self.columns else "NULL")
        n_missing, no_surgery = self._fetch(
            f"SELECT count(*) FILTER (WHERE {missing}) AS a, {surgery} AS b FROM ({source}) "
            f"WHERE {where}").iloc[0]
        if not n_missing:
            return (ITT_COMPLETE,), tuple(recorded)
        no_surgery = None if pd.isna(no_surgery) else int(no_surgery)
        return (itt_note(int(n_missing), no_surgery),), tuple(recorded)

    def _selected(self, selection: Selection, flt: CohortFilter, *, head: bool = False) -> str:
        """SQL of the selected patients' classified rows (pCR recoded under ITT); ``head``:
        only those of the table's ``_head`` copy (the lowest sampling keys)."""
        table = self._materialise(self._cutpoints_or_none(flt))
        source = f"SELECT * FROM {table}_head" if head else f"SELECT * FROM {table}"
        sql = f"SELECT * FROM ({source}) WHERE {selection.where}"
        if selection.itt_studies is not None:
            group = f"coalesce({ident('study')}, '')" if "study" in self.columns else "''"
            studies = in_list(selection.itt_studies or [""])
            recode = (f"CASE WHEN {ident('pcr')} IS NULL AND {group} IN {studies} THEN 0 "
                      f"ELSE {ident('pcr')} END")
            if not selection.itt_studies:
                recode = ident("pcr")
            sql = f"SELECT * REPLACE ({recode} AS {ident('pcr')}) FROM ({sql})"
        return sql

    # -- counts and samples --------------------------------------------------------------------
    def counts(self, flt: CohortFilter, columns: Sequence[str],
               selection: Selection | None = None) -> Counts:
        """The selected patients grouped on ``columns`` (one ``GROUP BY``), as a
        :class:`~her2er_dash.counts.Counts` whose text columns are categoricals in the
        registry's level order."""
        return self.counts_many(flt, [columns], selection)[0]

    def counts_many(self, flt: CohortFilter, column_sets: Sequence[Sequence[str]],
                    selection: Selection | None = None) -> list[Counts]:
        """:meth:`counts` for several column sets from one scan (``GROUPING SETS``): what a
        page needs (e.g. Kaplan-Meier cells, study-stratified cells and Cox cells) costs one
        pass over the registry instead of one per table. Returns one :class:`Counts` per set,
        in order."""
        sets = [list(dict.fromkeys(columns)) for columns in column_sets]
        if not sets:
            return []
        selection = selection or self.select(flt)
        known = set(self.classified_columns(self._cutpoints_or_none(flt)))
        unknown = list(dict.fromkeys(c for columns in sets for c in columns if c not in known))
        if unknown:
            raise AnalysisError(f"The registry has no column {', '.join(map(repr, unknown))}.")
        if selection.n == 0:
            raise AnalysisError("No patient is selected: widen the filters in the sidebar.")
        source = self._selected(selection, flt)
        distinct = list(dict.fromkeys(tuple(columns) for columns in sets))
        if len(distinct) == 1:
            listed = ", ".join(ident(c) for c in distinct[0])
            table = self._fetch(f"SELECT {listed}, count(*) AS {COUNT} FROM ({source}) "
                                "GROUP BY ALL")
            return [Counts(self._typed(table, sets[0])) for _ in sets]
        union = list(dict.fromkeys(c for columns in distinct for c in columns))
        listed = ", ".join(ident(c) for c in union)
        grouping = ", ".join("(" + ", ".join(ident(c) for c in columns) + ")"
                             for columns in distinct)
        # Two stages: the patients are grouped once, on every column of every set, and the
        # sets are summed from those cells. GROUPING SETS straight over the patients hash each
        # patient once per set (10M patients, the Survival page's three sets: 2.3 CPU s in one
        # stage, 1.4 in two).
        cells = f"SELECT {listed}, count(*) AS __n FROM ({source}) GROUP BY ALL"
        table = self._fetch(f"SELECT {listed}, GROUPING({listed}) AS __set, "
                            f"CAST(sum(__n) AS BIGINT) AS {COUNT} FROM ({cells}) "
                            f"GROUP BY GROUPING SETS ({grouping})")
        which = table["__set"].to_numpy()
        out = []
        for columns in sets:
            # GROUPING() sets bit (len - 1 - i) when union[i] is not grouped in that row's set
            mask = sum(1 << (len(union) - 1 - i) for i, c in enumerate(union)
                       if c not in columns)
            part = table.loc[which == mask, [*columns, COUNT]].reset_index(drop=True)
            out.append(Counts(self._typed(part, columns)))
        return out

    def sample(self, flt: CohortFilter, *, size: int = DEFAULT_SAMPLE,
               selection: Selection | None = None) -> pd.DataFrame:
        """A random sample of about ``size`` selected patients (every column; all of them when
        fewer are selected). The draw is fixed by the data (a hash of each row's position), so
        the same selection always gives the same sample. ``attrs["sample_of"]`` is the number
        selected."""
        selection = selection or self.select(flt)
        sql = self._drawn(selection, flt, size)
        frame = self._fetch(f"SELECT * EXCLUDE (__key) FROM ({sql}) ORDER BY __key")
        frame = self._typed(frame, list(frame.columns))  # (fetched with a RangeIndex: no copy)
        frame.attrs["sample_of"] = selection.n
        return frame

    def _drawn(self, selection: Selection, flt: CohortFilter, size: int) -> str:
        """SQL of the rows :meth:`sample` draws (with their ``__key``, unordered)."""
        sql = self._selected(selection, flt)
        if selection.n > size:
            threshold = int(2**64 * size / selection.n)
            if threshold <= self._head_cut():  # every key drawn is in the small copy
                sql = self._selected(selection, flt, head=True)
            sql = f"SELECT * FROM ({sql}) WHERE __key < {threshold}::UBIGINT"
        return sql

    def subsample(self, flt: CohortFilter, base: pd.DataFrame, *, base_flt: CohortFilter,
                  minimum: int, size: int = DEFAULT_SAMPLE,
                  selection: Selection | None = None) -> pd.DataFrame | None:
        """The patients of ``base`` that ``flt`` selects, as a sample of that selection, or None
        when a new draw is needed: ``base`` must be this registry's :meth:`sample` of
        ``base_flt`` (of ``size``) under the same ER cut-points, neither filter may recode pCR,
        and at least ``minimum`` patients must be kept unless ``base`` holds all of them.

        ``base`` holds the patients whose sampling key is below a threshold, so those of them a
        narrower filter selects are a random sample of its selection too, drawn by the same
        keys: a smaller one, in the same order. Taking them from ``base`` costs one query of the
        drawn keys (0.01 s at 10M patients) and a row take, instead of fetching and typing a new
        sample (0.11-0.17 s).
        """
        selection = selection or self.select(flt)
        source = self.select(base_flt)
        if (selection.n == 0 or selection.itt_studies is not None
                or source.itt_studies is not None
                or self._cutpoints_or_none(flt) != self._cutpoints_or_none(base_flt)):
            return None
        drawn = self._drawn(source, base_flt, size)
        chosen = self._fetch(f"SELECT coalesce(({selection.where}), FALSE) AS chosen "
                             f"FROM ({drawn}) ORDER BY __key")["chosen"].to_numpy(dtype=bool)
        if len(chosen) != len(base):
            return None  # not this registry's sample of base_flt
        positions = np.flatnonzero(chosen)
        if len(positions) < min(minimum, selection.n):
            return None
        # a filter keeping every sampled patient (e.g. the default one) shares base's columns
        # instead of copying them (13 MB for a 100,000-patient sample)
        frame = base.copy(deep=False) if len(positions) == len(base) else base.take(positions)
        frame.index = pd.RangeIndex(len(frame))
        frame.attrs["sample_of"] = selection.n
        return frame

    def _typed(self, table: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
        """Coded and text columns as categoricals in the registry's level order (as pandas
        reads the file and classify_cohort derives them)."""
        narrow = self._narrow or frozenset()
        for column in columns:
            if column in narrow:  # TINYINT in the classified table: the registry's floats
                table[column] = table[column].to_numpy(dtype=float, na_value=np.nan)
            elif column in CODED_LEVELS:
                codes = table[column].to_numpy(dtype=float, na_value=np.nan)
                codes = np.where(np.isnan(codes), -1, codes).astype(np.int8)
                table[column] = pd.Categorical.from_codes(
                    codes, categories=list(CODED_LEVELS[column]),
                    ordered=column in ("er_category", "her2_category"))
            elif column in self.categories:
                levels = self.categories[column]
                dtype = table[column].dtype
                if not (isinstance(dtype, pd.CategoricalDtype) and not dtype.ordered
                        and list(dtype.categories) == levels):  # an ENUM arrives as it is
                    table[column] = pd.Categorical(table[column], categories=levels)
        return table

    # -- what the widgets offer -----------------------------------------------------------------
    def levels(self, column: str, flt: CohortFilter | None = None) -> list[str]:
        """Values of ``column`` present (among the selected patients), in level order.

        For a column of levels (a status, category, event code or text column of few values)
        the registry's values are listed once per classified table, and a filter's are found
        for every such column at once (:meth:`_present_values`) on its first ask."""
        if column not in self._all_columns(flt):
            return []
        table = self._materialise(self._cutpoints_or_none(flt or CohortFilter()))
        where = self.select(flt).where if flt is not None else "TRUE"
        if self._is_level_column(column):
            values = self._registry_values(table, column)
            if where != "TRUE" and values:
                present = self._present_values(table, where, self._all_columns(flt))[column]
                values = [v for v in values if _plain(v) in present]
        else:
            values = self._fetch(f"SELECT DISTINCT {ident(column)} AS v FROM {table} WHERE "
                                 f"{where} AND {ident(column)} IS NOT NULL")["v"].tolist()
        return self._level_labels(column, values)

    def _present_values(self, table: str, where: str, columns: Sequence[str]) -> dict[str, set]:
        """Per column of levels, the values some selected patient has (kept per selection).

        Two queries for every column: a block sample of ~1% of the table shows the common values
        (system sampling reads only the sampled blocks), and one ``GROUP BY`` over the columns
        with values the sample did not show settles the rare and the absent ones. Per column and
        value, a ``LIMIT 1`` probe stops at the first match but scans everything for a value no
        selected patient has: a filter on HER2 status leaves ~4 such values, and the Survival
        page's 15 columns took 0.19 s at 10M patients (0.08 s this way; same values).
        """
        key = (table, where)
        with self._table_lock:
            known = self._present.get(key)
        if known is not None:
            return known
        columns = [c for c in columns if self._is_level_column(c)]
        listed = ", ".join(ident(c) for c in columns)
        share = min(100.0, 100.0 * PRESENCE_SAMPLE_ROWS / max(self.n, 1))
        seen = self._fetch(f"SELECT {listed} FROM {table} TABLESAMPLE {share:.6f}% "
                           f"(system, 1) WHERE {where}")
        present = {c: {_plain(v) for v in seen[c].dropna().unique()} for c in columns}
        unsettled = [c for c in columns
                     if not {_plain(v) for v in self._registry_values(table, c)} <= present[c]]
        if unsettled:
            listed = ", ".join(ident(c) for c in unsettled)
            combinations = math.prod(len(self._registry_values(table, c)) + 1 for c in unsettled)
            # one group per combination present; past a million, one grouping per column
            groups = "ALL" if combinations <= PRESENCE_MAX_GROUPS else "GROUPING SETS (" + \
                ", ".join(f"({ident(c)})" for c in unsettled) + ")"
            rest = self._fetch(f"SELECT {listed} FROM {table} WHERE {where} GROUP BY {groups}")
            for c in unsettled:
                present[c] |= {_plain(v) for v in rest[c].dropna().unique()}
        with self._table_lock:
            self._present[key] = present
            while len(self._present) > KEEP_SELECTIONS:
                self._present.pop(next(iter(self._present)))
        return present

    def _is_level_column(self, column: str) -> bool:
        return (column in CODED_LEVELS or column in (self._narrow or ())
                or (bool(self.categories.get(column)) and not is_numeric_column(column)))

    def _registry_values(self, table: str, column: str) -> list:
        """Every value of ``column`` in the classified ``table`` (listed once per table)."""
        key = (table, column)
        with self._table_lock:
            known = self._values.get(key)
        if known is None:
            known = self._fetch(f"SELECT DISTINCT {ident(column)} AS v FROM {table} WHERE "
                                f"{ident(column)} IS NOT NULL")["v"].tolist()
            with self._table_lock:
                self._values[key] = known
        return known

    def _list_registry_values(self, table: str, columns: Sequence[str]) -> None:
        """List every column of levels' values of a new classified table in one scan (0.5 s
        at 10M, paid with the classification instead of by the first page that offers them)."""
        level_columns = [c for c in columns if self._is_level_column(c)]
        if not level_columns:
            return
        def listed(column: str) -> str:
            value = ident(column)
            if column not in CODED_LEVELS and column not in (self._narrow or ()):
                value = f"CAST({value} AS VARCHAR)"  # an ENUM's list reads back as its codes
            return (f"list(DISTINCT {value}) FILTER (WHERE {ident(column)} IS NOT NULL) "
                    f"AS {ident(column)}")

        lists = ", ".join(listed(c) for c in level_columns)
        row = self._fetch(f"SELECT {lists} FROM {table}").iloc[0]
        for column in level_columns:
            values = row[column]
            self._values[(table, column)] = [] if not isinstance(values, list | np.ndarray) else [
                v.item() if isinstance(v, np.generic) else v for v in values]

    def _level_labels(self, column: str, values: list) -> list[str]:
        if column in CODED_LEVELS:
            values = [CODED_LEVELS[column][int(v)] for v in values]
        elif column in (self._narrow or ()):
            values = [float(v) for v in values]  # as the registry's numbers read
        order = self.categories.get(column)
        if order is not None:
            present = set(values)
            return [str(v) for v in order if v in present]
        return sorted({str(v) for v in values})

    def _all_columns(self, flt: CohortFilter | None) -> list[str]:
        return self.classified_columns(self._cutpoints_or_none(flt or CohortFilter()))

    def range(self, column: str) -> tuple[float, float] | None:
        if column not in self.columns:
            return None
        low, high = self._fetch(f"SELECT min({ident(column)}) AS a, max({ident(column)}) AS b "
                                f"FROM ({self._base})").iloc[0]
        return None if pd.isna(low) else (float(low), float(high))

    def unknown(self, column: str) -> int:
        return int(self._scalar(f"SELECT count(*) - count({ident(column)}) FROM ({self._base})"))

    def values_per_column(self) -> pd.Series:
        """Patients with a value in each canonical column of the registry."""
        counts = ", ".join(f"count({ident(c)}) AS {ident(c)}" for c in self.columns)
        row = self._fetch(f"SELECT {counts} FROM ({self._base})").iloc[0]
        return pd.Series({c: int(row[c]) for c in self.columns}, dtype="int64")

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, {self.n:,} patients, {len(self.columns)} columns)"


# -- helpers ------------------------------------------------------------------------------------

#: Cut-points whose classified table a registry keeps (the most recently used).
KEEP_CLASSIFIED = 2
#: Selections (flows) a registry remembers.
KEEP_SELECTIONS = 16
#: Rows of the block sample that shows a selection's common values (see _present_values).
PRESENCE_SAMPLE_ROWS = 100_000
PRESENCE_MAX_GROUPS = 1_000_000
#: Default samples' worth of the lowest sampling keys copied beside each classified table.
HEAD_SAMPLES = 10


def _plain(value):
    """A value as Python compares it (numpy scalars as their Python value)."""
    return value.item() if isinstance(value, np.generic) else value


#: What the pages import to analyse a registry's counts and sample (see :func:`warm_analyses`).
WARM_MODULES = ("scipy.stats", "her2er_dash.survival", "her2er_dash.response",
                "her2er_dash.subgroups", "her2er_dash.contrasts")


def warm_analyses(modules: Iterable[str] | None = None) -> None:
    """Import the analysis modules the pages run on a registry (``WARM_MODULES``).

    A fresh server process imports them on a page's first render: ~0.3 s for ours and ~0.8 s
    for ``scipy.stats`` (the p-values and intervals of the response analyses), which made the
    first Response render of a 10M-patient registry 1.35 s instead of 0.3 s. The registry
    imports them while DuckDB writes a classified table (a one-time step of several seconds
    that releases the GIL), so no page pays for them. Importing is all it does: a module that
    fails to import fails again, with its message, where a page uses it.
    """
    import importlib

    for name in WARM_MODULES if modules is None else modules:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def _table_name(fingerprint: str, cutpoints: ERCutpoints | None) -> str:
    digest = hashlib.sha256(repr(cutpoints).encode()).hexdigest()[:12]
    return f"classified_{fingerprint}_{digest}"


def _remove_scratch(con, folder: str) -> None:
    with contextlib.suppress(Exception):  # the connection may already be closed at exit
        con.execute("DETACH DATABASE IF EXISTS classified")
    shutil.rmtree(folder, ignore_errors=True)



def _connect(threads: int | None, memory_limit: str | None):
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {int(threads or os.cpu_count() or 1)}")
    # no spilling, unless a file registry points this at its private folder (_scratch_schema)
    con.execute("SET temp_directory = ''")
    con.execute(f"SET memory_limit = {literal(memory_limit or '512MB')}")
    con.execute("SET preserve_insertion_order = false")
    return con


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if files:
            return files
        raise CohortError(f"{path.name}: the folder holds no .parquet files.")
    raise CohortError(f"{path.name}: no such file or folder.")


def _parquet_categories(files: Sequence[Path]) -> dict[str, list[str]]:
    """Level order of the categorical (dictionary) columns, as pandas would read them: the
    dictionary of each file's first row group, in file order."""
    import pyarrow.parquet as pq

    out: dict[str, list[str]] = {}
    for path in files:
        handle = pq.ParquetFile(path)
        schema = handle.schema_arrow
        dictionary = [f.name for f in schema if str(f.type).startswith("dictionary")
                      and f.name in KNOWN_COLUMNS]
        if not dictionary or handle.metadata.num_row_groups == 0:
            continue
        group = handle.read_row_group(0, columns=dictionary)
        for name in dictionary:
            chunks = group.column(name).chunks
            values = [str(v) for v in chunks[0].dictionary.to_pylist()] if chunks else []
            seen = out.setdefault(name, [])
            seen += [v for v in values if v not in seen]
    return out


def _check_types(columns: Sequence[str], types: dict[str, str], name: str) -> None:
    if not columns:
        raise CohortError(
            f"{name}: none of the columns matches the cohort model (patient_id, er_status, "
            "her2_status, pcr, efs_months, efs_event ...). A registry must use the canonical "
            "column names (see data/README.md)."
        )
    wrong = [c for c in columns if is_numeric_column(c)
             and not str(types[c]).upper().startswith(_NUMERIC_TYPES)]
    if wrong:
        shown = ", ".join(f"{c} ({types[c]})" for c in wrong[:5])
        raise CohortError(f"{name}: column(s) {shown} must hold numbers. Store them as numeric "
                          "Parquet columns (missing values as nulls).")
