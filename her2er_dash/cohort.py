"""Loading a cohort: any supported file (or several) -> canonical :class:`Cohort`, nothing dropped.

Example::

    from her2er_dash import cohort
    c = cohort.load("trial.xlsx")              # path, bytes, or a Streamlit UploadedFile
    c.data                                     # canonical columns (see her2er_dash.schema)
    c.issues                                   # validation report: severity, column, count, ...
    c.guesses                                  # how each source column was matched, and why
    saved = c.mapping.to_json()                # edit, then reload with the same choices:
    c2 = cohort.load("trial.xlsx", mapping=cohort.Mapping.from_json(saved))

Uploads are read from memory only. A file's own structure is recognised by its content:
cBioPortal ``#`` attribute lines, GDC biotab extra header rows, GEO series matrices, SEER*Stat
listings, data-dictionary sheets (see :mod:`her2er_dash.ingest`). Anything that cannot become a
cohort raises :class:`~her2er_dash.errors.CohortError` naming the file, the problem and the fix;
everything else that is odd is reported in :attr:`Cohort.issues` and the rows are kept.

To re-map without the file, keep what :func:`read_source` returned (:meth:`compact` makes it
small) and call :func:`build_cohort` with another mapping.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .errors import CohortError
from .ingest import build, layout
from .ingest.names import match_name
from .ingest.readers import RawTable, detect_format, join_on_id, read_table, source_bytes
from .ingest.record import DerivedRule, Mapping
from .schema import IDENTIFIER_COLUMNS
from .summary import table_one
from .validate import issue, issue_frame, validate_cohort
from .wording import count

__all__ = ["Cohort", "DerivedRule", "Mapping", "SourceInfo", "build_cohort", "from_frame",
           "load", "read_source", "table_one"]

DEFAULT_MAX_BYTES = 200 * 1024**2
#: Files larger than this are read twice: a sample of every column to guess the mapping, then
#: only the columns the mapping uses (in full).
LARGE_FILE_BYTES = 50 * 1024**2
#: So are tables of more cells than this, whatever their file size (a compressed Parquet file of
#: 19 MB holds 1M patients x 27 columns), and every file uploaded with a saved mapping.
LARGE_TABLE_CELLS = 5_000_000
SAMPLE_ROWS = 5_000


@dataclass(frozen=True)
class SourceInfo:
    """Where a cohort came from: file name(s), format, checksum, what was read and joined."""

    name: str
    format: str
    sha256: str
    rows: int
    columns: int
    sheets: tuple[str, ...] = ()
    joined_on: str | None = None
    encoding: str = ""
    complete: bool = True  # False: only the columns the mapping uses are in memory

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Cohort:
    """A loaded cohort.

    Attributes
    ----------
    data
        One row per source row, canonical columns only, in the order of ``schema``.
    mapping
        The complete :class:`Mapping` used (pass it back to :func:`load` to reproduce).
    guesses
        ``source_column, canonical, confidence, score, chosen, reason, preview, described_as,
        mapped_to, rule_input`` (the canonical column(s) a derived-column rule computes from it).
    issues
        Validation report: ``severity, column, count, rows, message``.
    source
        :class:`SourceInfo`.
    unmapped
        Source columns not used.
    levels
        ``{canonical column: ((raw value, count), ...)}`` for columns with few distinct raw
        values (statuses, events, categories): what the recoding table offers.
    """

    data: pd.DataFrame
    mapping: Mapping
    guesses: pd.DataFrame
    issues: pd.DataFrame
    source: SourceInfo
    unmapped: tuple[str, ...] = ()
    levels: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.data)

    def describe_rules(self) -> list[str]:
        """Every rule beyond a plain column copy, in words (derived columns, unit conversions,
        time origin, pCR definition): what the app shows and the methods paragraph states."""
        return describe_mapping(self.mapping)


def describe_mapping(mapping: Mapping) -> list[str]:
    """The rules of a mapping in words (see :meth:`Cohort.describe_rules`)."""
    sources = {c: s for s, c in mapping.columns if c is not None}
    lines = [rule.describe(target) for target, rule in mapping.derived if rule is not None]
    for tcol, unit in mapping.time_units:
        if unit != "months" and tcol in sources:
            lines.append(f"{tcol} = '{sources[tcol]}' converted from {unit} to months "
                         "(a month is 365.25/12 days)")
    for endpoint, coding in mapping.event_coding:
        if coding == "1=no event":
            lines.append(f"{endpoint}_event inverted: the file codes 1 = no event")
    if mapping.time_origin:
        lines.append(f"times count from {mapping.time_origin}")
    if mapping.pcr_definition:
        lines.append(f"pCR definition: {mapping.pcr_definition}")
    return lines


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def load(
    source,
    *,
    mapping: Mapping | None = None,
    sheet: str | int | None = None,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    encoding: str | None = None,
) -> Cohort:
    """Read a file (path, bytes or upload), or a list of them joined on patient ID, as a cohort.

    Parameters
    ----------
    source
        A path, ``bytes``, a file-like upload (``.name``, ``.getvalue()``/``.read()``), or a
        list/tuple of those (e.g. cBioPortal ``data_clinical_patient.txt`` and
        ``data_clinical_sample.txt``), joined on their patient-ID column. A table that is a data
        dictionary (variable, description) describes the other files' columns instead.
    mapping
        Choices that override the automatic guesses (see :class:`Mapping`).
    sheet
        Excel sheet name or index; by default sheets sharing a patient-ID column are joined.
    name
        Display name (defaults to the file name).
    max_bytes
        Upload size limit per file.
    encoding
        Text encoding (e.g. ``"GB18030"``); by default UTF-8, else the detected one.
    """
    raw = read_source(source, mapping=mapping, sheet=sheet, name=name, max_bytes=max_bytes,
                      encoding=encoding)
    return build_cohort(raw, mapping)


def read_source(source, *, mapping: Mapping | None = None, sheet=None, name: str | None = None,
                max_bytes: int = DEFAULT_MAX_BYTES, encoding: str | None = None) -> RawTable:
    """The raw table of one file or several joined ones (the step before mapping)."""
    label = name or _label(source)
    try:
        if isinstance(source, list | tuple):
            if not source:
                raise CohortError("No files were given. Choose at least one file to load.")
            raw = _join_sources([_read_one(s, None, sheet, max_bytes, encoding, mapping)
                                 for s in source])
            if name:
                raw.name = name
            return raw
        return _read_one(source, name, sheet, max_bytes, encoding, mapping)
    except CohortError:
        raise
    except (MemoryError, RecursionError) as exc:
        raise CohortError(f"{label}: the file is too large or too deeply nested to read "
                          f"({type(exc).__name__}). Upload a smaller file.") from exc
    except Exception as exc:  # noqa: BLE001 - the boundary: only CohortError may escape
        raise CohortError(
            f"{label}: could not be read as a cohort ({type(exc).__name__}: {str(exc)[:200]}). "
            "Check that it is a CSV, Excel or Parquet table with one patient per row."
        ) from exc


def from_frame(frame: pd.DataFrame, *, mapping: Mapping | None = None,
               name: str = "data frame") -> Cohort:
    """A cohort from an in-memory DataFrame, with the same matching and validation as :func:`load`."""
    if not isinstance(frame, pd.DataFrame):
        raise CohortError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}.")
    try:
        digest = hashlib.sha256(
            pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
        ).hexdigest()
    except TypeError:
        digest = ""
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return build_cohort(RawTable(frame, name, "DataFrame", digest), mapping)


def _label(source) -> str:
    if isinstance(source, list | tuple):
        return " + ".join(_label(s) for s in source)
    if isinstance(source, str):
        return source.replace("\\", "/").rsplit("/", 1)[-1]
    return str(getattr(source, "name", None) or "uploaded data")


def _read_one(source, name, sheet, max_bytes, encoding, mapping) -> RawTable:
    data, label = source_bytes(source, name=name, max_bytes=max_bytes)
    options = {"sheet": sheet, "encoding": encoding, "text_column": _is_text_column,
               "id_column": _id_column}
    why = _why_mapped_columns_only(data, mapping)
    if why is None:
        return read_table(data, label, **options)
    sample = read_table(data, label, nrows=SAMPLE_ROWS, **options)
    if not sample.complete:  # e.g. a GEO file: small once its expression table is skipped
        return sample
    needed = build.needed_columns(sample.frame, sample.evidence, mapping or Mapping())
    needed |= {c for c in [_id_column(list(sample.frame.columns))] if c}
    raw = read_table(data, label, columns=needed, **options)
    raw.sample, raw.all_columns = sample.frame, tuple(str(c) for c in sample.frame.columns)
    raw.evidence = sample.evidence
    kept = raw.frame.shape[1]
    raw.notes.append(("info", "", f"{label} {why}: only the "
                      f"{count(kept, 'column')} the mapping uses were read, of "
                      f"{len(raw.all_columns)}; the others were guessed from the first "
                      f"{SAMPLE_ROWS:,} rows. Mapping another column needs the file again."))
    return raw


def _why_mapped_columns_only(data: bytes, mapping: Mapping | None) -> str | None:
    """Why only the mapped columns of ``data`` are read (None: read every column, so that any of
    them can be mapped later without the file). Excel workbooks are always read whole."""
    kind = detect_format(data)
    if kind in ("xlsx", "xls"):
        return None
    if len(data) > LARGE_FILE_BYTES:
        return f"is large ({len(data) / 1024**2:,.0f} MB)"
    from .memory import table_shape

    try:
        shape = table_shape(data) if kind in ("parquet", "text") else None
    except Exception:  # noqa: BLE001 - a damaged file: the reader says what is wrong with it
        shape = None
    if shape is not None and shape[0] * shape[1] > LARGE_TABLE_CELLS:
        return f"is large ({shape[0]:,} rows x {shape[1]} columns)"
    if mapping is not None:
        return "was loaded with a saved mapping"
    return None


def _is_text_column(name: str) -> bool:
    hit = match_name(name)
    return hit is not None and hit[0] in IDENTIFIER_COLUMNS


def _id_column(names: list[str]) -> str | None:
    hits = [(match_name(n), n) for n in names]
    ids = [(h[1], n) for h, n in hits if h is not None and h[0] == "patient_id" and h[1] >= 0.7]
    return max(ids, key=lambda t: t[0])[1] if ids else None


def _join_sources(raws: list[RawTable]) -> RawTable:
    """Join several tables on patient ID; sample-level tables keep one row per patient; a data
    dictionary describes the others' columns."""
    dictionaries = [r for r in raws if _id_column(list(r.frame.columns)) is None
                    and layout.dictionary_from_table(r.frame, r.name)]
    tables = [r for r in raws if all(r is not d for d in dictionaries)]
    if not tables:
        raise CohortError("Only data dictionaries were given; add the file that holds the "
                          "patients.")
    joined = tables[0] if len(tables) == 1 else _join_tables(tables)
    for dictionary in dictionaries:
        _describe_with(joined, dictionary)
    return joined


def _describe_with(raw: RawTable, dictionary: RawTable) -> None:
    from .ingest.evidence import attach

    entries = layout.dictionary_from_table(dictionary.frame, f"data dictionary {dictionary.name}")
    matched = attach([str(c) for c in raw.frame.columns], entries or {})
    for column, ev in matched.items():
        raw.evidence.setdefault(column, ev)
    raw.notes.append(("info", "", f"{dictionary.name} is a data dictionary: it describes "
                      f"{count(len(matched), 'column')} and was not read as patients."))


def _join_tables(raws: list[RawTable]) -> RawTable:
    parts, notes, evidence = [], [], {}
    for raw in raws:
        key = _id_column(list(raw.frame.columns))
        if key is None:
            raise CohortError(f"{raw.name} has no patient-ID column, so it cannot be joined with "
                              "the other files. Add a PATIENT_ID column, or load it alone.")
        frame = raw.frame
        dup = frame[key].duplicated()
        if dup.any():
            notes.append(("warning", key, f"{raw.name}: {int(dup.sum()):,} extra rows for "
                          "patients with several samples; the first sample of each patient was "
                          "used."))
            frame = frame[~dup.to_numpy()]
        parts.append((bool(dup.any()), raw.name, frame, key))
        notes += raw.notes
        for column, ev in raw.evidence.items():
            evidence.setdefault(column, ev)
    parts.sort(key=lambda p: p[0])  # patient-level tables first
    frame, key = join_on_id([(n, f, k) for _, n, f, k in parts])
    fmts = {r.format for r in raws}
    digest = hashlib.sha256("".join(r.sha256 for r in raws).encode()).hexdigest()
    joined = RawTable(frame, " + ".join(r.name for r in raws), " + ".join(sorted(fmts)), digest,
                      joined_on=key, evidence=evidence,
                      encoding=", ".join(sorted({r.encoding for r in raws if r.encoding})))
    joined.notes = notes + [("info", key, f"{len(raws)} files were joined on {key!r} "
                             f"({len(frame):,} patients).")]
    return joined


def _collapse_samples(raw: RawTable) -> RawTable:
    """A cBioPortal study-view download has one row per sample: keep each patient's first."""
    if not raw.format.startswith("cBioPortal study-view"):
        return raw
    key = next((c for c in raw.frame.columns if str(c).lower() == "patient id"), None)
    if key is None:
        return raw
    dup = raw.frame[key].duplicated() & raw.frame[key].notna()
    if dup.any():
        raw.frame = raw.frame.loc[~dup.to_numpy()].reset_index(drop=True)
        raw.notes.append(("info", key, f"{int(dup.sum()):,} extra rows for patients with several "
                          "samples (a cBioPortal study view lists samples); the first sample of "
                          "each patient was used."))
    return raw


# --------------------------------------------------------------------------------------------
# Mapping a raw table to the canonical model
# --------------------------------------------------------------------------------------------


def build_cohort(raw: RawTable, mapping: Mapping | None, *, release: bool = False) -> Cohort:
    """Map, parse, convert and validate a raw table (the common path of every loader).

    ``release=True``: the caller has no further use for ``raw.frame``'s rows, so they are let
    go once mapped (``raw.frame`` keeps its columns, no rows): derivation and validation then
    run without the parsed file beside the canonical frame (~a third of a 1M-patient upload's
    peak memory). The cohort is the same.
    """
    try:
        raw = _collapse_samples(raw)
        every = raw.all_columns or tuple(raw.frame.columns)
        source = SourceInfo(raw.name, raw.format, raw.sha256, len(raw.frame), len(every),
                            tuple(raw.sheets), raw.joined_on, raw.encoding, raw.complete)
        mapped = build.map_table(raw, mapping)
        if release:
            raw.frame = pd.DataFrame(columns=raw.frame.columns)
        records = mapped.records
        data = _derive(mapped.data, records)
        records += validate_cohort(data).to_dict("records")
    except CohortError:
        raise
    except Exception as exc:  # noqa: BLE001 - the boundary: only CohortError may escape
        raise CohortError(f"{raw.name}: could not be turned into a cohort ({type(exc).__name__}: "
                          f"{str(exc)[:200]}).") from exc
    return Cohort(data, mapped.mapping, mapped.guesses, issue_frame(records), source,
                  mapped.unmapped, mapped.levels)


def _derive(data: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """Hook: derive er_category and missing statuses with her2er_dash.classify when available."""
    try:
        from .classify import classify_cohort
    except ImportError:
        return data
    try:
        derived = classify_cohort(data)
    except Exception as exc:  # noqa: BLE001 - a derivation failure must not block loading
        records.append(issue("warning", "er_category", 0, f"ER/HER2 categories could not be "
                             f"derived ({exc}); the cohort is loaded without them."))
        return data
    if len(derived) != len(data):
        return data
    before = {c: int(data[c].notna().sum()) for c in data if c.endswith("_status")}
    for col in ("er_status", "pr_status", "hr_status", "her2_status"):
        if col in derived and int(derived[col].notna().sum()) > before.get(col, 0):
            added = int(derived[col].notna().sum()) - before.get(col, 0)
            records.append(issue("info", col, added, f"{col} derived for {count(added, 'patient')} "
                                 "from measured levels (ASCO/CAP rules) where the file had none."))
    source = derived.attrs.get("er_category_source")
    if source:
        records.append(issue("info", "er_category", 0, str(source)))
    derived.attrs = {}
    return derived


# --------------------------------------------------------------------------------------------
# Keeping a source in memory cheaply, to re-map it without the file
# --------------------------------------------------------------------------------------------


def compact(raw: RawTable) -> RawTable:
    """The same table in less memory: repeated texts as categories, other texts as Arrow strings.

    :func:`expand` restores the exact values, so re-mapping gives the same cohort.
    """
    import pyarrow as pa

    frame = raw.frame.copy(deep=False)
    kinds = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object:
            continue
        distinct = values.nunique(dropna=True)
        if distinct <= max(50, len(values) // 4):
            frame[column] = values.astype("category")
            kinds[column] = "category"
        elif pd.api.types.infer_dtype(values, skipna=True) == "string":
            frame[column] = values.astype(pd.ArrowDtype(pa.string()))
            kinds[column] = "arrow"
    small = RawTable(frame, raw.name, raw.format, raw.sha256, raw.sheets, list(raw.notes),
                     raw.joined_on, raw.evidence, raw.encoding, raw.all_columns, raw.sample)
    small.frame.attrs["compacted"] = kinds
    return small


def expand(raw: RawTable) -> RawTable:
    """The table as :func:`read_source` gave it (undoes :func:`compact`)."""
    kinds = raw.frame.attrs.get("compacted")
    if not kinds:
        return raw
    frame = raw.frame.copy(deep=False)
    for column in kinds:
        values = frame[column].astype(object)
        frame[column] = values.where(pd.notna(values), np.nan)
    frame.attrs = {}
    return RawTable(frame, raw.name, raw.format, raw.sha256, raw.sheets, list(raw.notes),
                    raw.joined_on, raw.evidence, raw.encoding, raw.all_columns, raw.sample)
