"""Loading a cohort: any supported file (or several) -> canonical :class:`Cohort`, nothing dropped.

Example::

    from her2er_dash import cohort
    c = cohort.load("trial.xlsx")              # path, bytes, or a Streamlit UploadedFile
    c.data                                     # canonical columns (see her2er_dash.schema)
    c.issues                                   # validation report: severity, column, count, ...
    c.guesses                                  # how each source column was matched, and why
    saved = c.mapping.to_json()                # edit, then reload with the same choices:
    c2 = cohort.load("trial.xlsx", mapping=cohort.Mapping.from_json(saved))

Uploads are read from memory only. Anything that cannot become a cohort raises
:class:`~her2er_dash.errors.CohortError` naming the file, the problem and the fix; everything
else that is odd is reported in :attr:`Cohort.issues` and the rows are kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from . import _mapping as mp
from ._mapping import Mapping
from ._readers import RawTable, join_on_id, read_table, source_bytes
from .errors import CohortError
from .schema import (
    BINARY_COLUMNS,
    CANONICAL_COLUMNS,
    CATEGORY_COLUMNS,
    COMPETING_ENDPOINTS,
    ENDPOINTS,
    IDENTIFIER_COLUMNS,
    STATUS_COLUMNS,
    event_column,
    time_column,
)
from .summary import table_one
from .validate import issue, issue_frame, validate_cohort

__all__ = ["Cohort", "Mapping", "SourceInfo", "from_frame", "load", "table_one"]

DEFAULT_MAX_BYTES = 200 * 1024**2


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
        ``source_column, canonical, confidence, score, chosen, reason, mapped_to``.
    issues
        Validation report: ``severity, column, count, rows, message``.
    source
        :class:`SourceInfo`.
    unmapped
        Source columns not used.
    """

    data: pd.DataFrame
    mapping: Mapping
    guesses: pd.DataFrame
    issues: pd.DataFrame
    source: SourceInfo
    unmapped: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.data)


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
) -> Cohort:
    """Read a file (path, bytes or upload), or a list of them joined on patient ID, as a cohort.

    Parameters
    ----------
    source
        A path, ``bytes``, a file-like upload (``.name``, ``.getvalue()``/``.read()``), or a
        list/tuple of those (e.g. cBioPortal ``data_clinical_patient.txt`` and
        ``data_clinical_sample.txt``), joined on their patient-ID column.
    mapping
        Choices that override the automatic guesses (see :class:`Mapping`).
    sheet
        Excel sheet name or index; by default sheets sharing a patient-ID column are joined.
    name
        Display name (defaults to the file name).
    max_bytes
        Upload size limit per file.
    """
    label = name or _label(source)
    try:
        if isinstance(source, list | tuple):
            if not source:
                raise CohortError("No files were given. Choose at least one file to load.")
            raw = _join_sources([_read_one(s, None, sheet, max_bytes) for s in source])
            if name:
                raw.name = name
        else:
            raw = _read_one(source, name, sheet, max_bytes)
        return build_cohort(raw, mapping)
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
    try:
        return build_cohort(RawTable(frame, name, "DataFrame", digest), mapping)
    except CohortError:
        raise
    except Exception as exc:  # noqa: BLE001 - the boundary: only CohortError may escape
        raise CohortError(f"{name}: could not be turned into a cohort ({type(exc).__name__}: "
                          f"{str(exc)[:200]}).") from exc


def _label(source) -> str:
    if isinstance(source, list | tuple):
        return " + ".join(_label(s) for s in source)
    if isinstance(source, str):
        return source.replace("\\", "/").rsplit("/", 1)[-1]
    return str(getattr(source, "name", None) or "uploaded data")


def _read_one(source, name, sheet, max_bytes) -> RawTable:
    data, label = source_bytes(source, name=name, max_bytes=max_bytes)
    return read_table(data, label, sheet=sheet, text_column=_is_text_column, id_column=_id_column)


def _is_text_column(name: str) -> bool:
    hit = mp.match_name(name)
    return hit is not None and hit[0] in IDENTIFIER_COLUMNS


def _id_column(names: list[str]) -> str | None:
    hits = [(mp.match_name(n), n) for n in names]
    ids = [(h[1], n) for h, n in hits if h is not None and h[0] == "patient_id" and h[1] >= 0.7]
    return max(ids, key=lambda t: t[0])[1] if ids else None


def _join_sources(raws: list[RawTable]) -> RawTable:
    """Join several tables on patient ID; sample-level tables keep one row per patient."""
    if len(raws) == 1:
        return raws[0]
    parts, notes = [], []
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
    parts.sort(key=lambda p: p[0])  # patient-level tables first
    frame, key = join_on_id([(n, f, k) for _, n, f, k in parts])
    fmts = {r.format for r in raws}
    digest = hashlib.sha256("".join(r.sha256 for r in raws).encode()).hexdigest()
    joined = RawTable(frame, " + ".join(r.name for r in raws), " + ".join(sorted(fmts)), digest,
                      joined_on=key)
    joined.notes = notes + [("info", key, f"{len(raws)} files were joined on {key!r} "
                             f"({len(frame):,} patients).")]
    return joined


# --------------------------------------------------------------------------------------------
# Mapping a raw table to the canonical model
# --------------------------------------------------------------------------------------------


def _kind(canonical: str) -> str:
    if canonical in IDENTIFIER_COLUMNS or canonical == "pcr_definition":
        return "text"
    if canonical in STATUS_COLUMNS:
        return "status"
    if canonical in BINARY_COLUMNS:
        return "binary"
    if canonical in CATEGORY_COLUMNS:
        return "category"
    if canonical == "her2_ihc":
        return "ihc"
    if canonical in _COMPETING_EVENTS:
        return "competing"
    if canonical.endswith("_event"):
        return "event"
    if canonical.endswith("_months"):
        return "time"
    return "number"


def _parse(canonical: str, values: pd.Series, given: dict | None) -> mp.Parsed:
    kind = _kind(canonical)
    if kind == "text":
        return mp.parse_text(values)
    if kind == "status":
        return mp.parse_status(values, given, name=canonical)
    if kind in ("binary", "event"):
        return mp.parse_binary(values, given, name=canonical, kind=kind)
    if kind == "competing":
        return _parse_competing(values, given)
    if kind == "ihc":
        return mp.parse_ihc(values, given, name=canonical)
    if kind == "category":
        return mp.parse_category(values, given, name=canonical)
    return mp.parse_number(values)


_COMPETING_EVENTS = tuple(event_column(e) for e in COMPETING_ENDPOINTS)


def _parse_competing(values: pd.Series, given: dict | None) -> mp.Parsed:
    """Event codes 0 / 1 / 2... of a competing-risk endpoint: numbers are kept; text goes
    through the mapping's value map, else the usual vital-status spellings ("Living" 0, "Died
    of Disease" 1, "Died of Other Causes" 2); other texts are set to missing and reported."""
    from . import events

    if pd.api.types.is_numeric_dtype(values) and given is None:
        return mp.Parsed(values.astype("float64"), {}, failed=np.zeros(len(values), dtype=bool))
    vocab = {events._key(t): float(code) for code, texts in (
        (1, events.VITAL_STATUS_EVENT), (2, events.VITAL_STATUS_COMPETING),
        (0, events.VITAL_STATUS_CENSORED)) for t in texts}  # fmt: skip
    lookup = ({events._key(k): (np.nan if v is None else float(v)) for k, v in given.items()}
              if given is not None else vocab)  # fmt: skip
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table, value_map, bad = [], {}, []
    for u in uniques:
        key = events._key(u)
        number = pd.to_numeric(pd.Series([u]), errors="coerce").iloc[0]
        code = lookup.get(key, number if pd.notna(number) else None)
        bad.append(code is None)
        table.append(np.nan if code is None else code)
        if code is not None and not (pd.notna(number) and number == code):
            value_map[str(u)] = code
    table = np.array([*table, np.nan], dtype=float)
    failed = np.array([*bad, False])[codes]
    return mp.Parsed(pd.Series(table[codes], index=values.index), value_map, failed=failed)


_KIND_WORDS = {"status": "positive/negative", "binary": "0/1", "event": "0/1 event",
               "competing": "an event code (0 censored, 1 event, 2 competing)",
               "ihc": "an IHC score 0-3", "time": "a number", "number": "a number",
               "category": "a category", "text": "text"}


def _examples(values: pd.Series, mask: np.ndarray) -> str:
    seen = pd.unique(values[mask].astype(str))[:3]
    return ", ".join(repr(v) for v in seen)


def _parse_issues(canonical: str, source: str, raw: pd.Series, parsed: mp.Parsed) -> list[dict]:
    out = []
    kind = _kind(canonical)
    if parsed.failed is not None and parsed.failed.any():
        mixed = kind in ("time", "number") and raw.dtype == object
        what = "mixed types: " if mixed and (~parsed.failed & raw.notna().to_numpy()).any() else ""
        out.append(issue("warning", canonical, parsed.failed, (
            f"{what}{int(parsed.failed.sum()):,} value(s) of '{source}' could not be read as "
            f"{_KIND_WORDS[kind]} ({_examples(raw, parsed.failed)}); they were set to missing. "
            "Correct them in the file, or recode them in the mapping.")))
    if parsed.indeterminate is not None and parsed.indeterminate.any():
        out.append(issue("info", canonical, parsed.indeterminate, (
            f"{int(parsed.indeterminate.sum()):,} value(s) of '{source}' mean indeterminate / "
            f"not done ({_examples(raw, parsed.indeterminate)}); they were set to missing.")))
    if kind == "category" and raw.dtype == object:
        codes, uniques = pd.factorize(raw)
        numeric_u = np.append(pd.to_numeric(pd.Series(uniques), errors="coerce").notna(), False)
        numeric = numeric_u[codes]
        if numeric_u.any() and not numeric_u[:-1].all():
            out.append(issue("info", canonical, numeric, (
                f"mixed types in '{source}': numbers and text; numbers were recoded "
                f"({_value_map_text(parsed.value_map)}). Check the recoding.")))
    elif parsed.value_map and kind in ("status", "binary", "event", "competing"):
        out.append(issue("info", canonical, 0, f"'{source}' recoded as "
                         f"{_value_map_text(parsed.value_map)}."))
    return out


def _value_map_text(value_map: dict) -> str:
    shown = [f"{k!r} -> {v}" for k, v in list(value_map.items())[:8]]
    return ", ".join(shown) + (" ..." if len(value_map) > 8 else "")


def build_cohort(raw: RawTable, mapping: Mapping | None) -> Cohort:
    """Map, parse, convert and validate a raw table (the common path of every loader)."""
    mapping = mapping or Mapping()
    frame = raw.frame
    if frame.shape[1] == 0:
        raise CohortError(f"{raw.name}: no columns were found. Check that the file is a table "
                          "with a header row.")
    if len(frame) == 0:
        raise CohortError(f"{raw.name}: the file has column names but no data rows. Upload the "
                          "file that holds the patients.")
    guesses = mp.guess_columns(frame)
    chosen = mp.resolve_columns(guesses, mapping)
    if not chosen:
        raise CohortError(
            f"{raw.name}: none of the columns ({', '.join(map(str, list(frame.columns)[:8]))}"
            f"{' ...' if frame.shape[1] > 8 else ''}) matches the cohort model (patient_id, "
            "er_status, her2_status, pcr, os_months ...). Rename them, or map them on the "
            "Cohort page."
        )
    records = [issue(s, c, 0, m) for s, c, m in raw.notes]
    records += _mapping_notes(guesses, mapping, frame)
    columns, value_maps, units, codings = _convert(frame, chosen, mapping, records)
    _derive_competing(frame, chosen, columns, records)
    data = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
    data = data[[c for c in CANONICAL_COLUMNS if c in data]]
    data = _derive(data, records)
    records += validate_cohort(data).to_dict("records")
    guesses["mapped_to"] = guesses.source_column.map(chosen)
    final = Mapping(
        columns={str(s): chosen.get(s) for s in frame.columns},
        values=value_maps, time_units=units, event_coding=codings,
        time_origin=mapping.time_origin, pcr_definition=mapping.pcr_definition,
    )
    source = SourceInfo(raw.name, raw.format, raw.sha256, len(frame), frame.shape[1],
                        tuple(raw.sheets), raw.joined_on)
    unmapped = tuple(str(c) for c in frame.columns if c not in chosen)
    return Cohort(data, final, guesses, issue_frame(records), source, unmapped)


def _mapping_notes(guesses: pd.DataFrame, mapping: Mapping, frame: pd.DataFrame) -> list[dict]:
    out = []
    missing = [s for s in mapping.column_map if s not in frame.columns]
    if missing:
        out.append(issue("warning", "", len(missing), f"The mapping names column(s) {missing} "
                         "that the file does not have; they were ignored."))
    for row in guesses[guesses.canonical.notna() & ~guesses.chosen].itertuples(index=False):
        if row.source_column not in mapping.column_map:
            out.append(issue("info", row.canonical, 0, f"'{row.source_column}' also matches "
                             f"{row.canonical}: {row.reason}."))
    for row in guesses[guesses.chosen & (guesses.score < 0.6)].itertuples(index=False):
        if row.source_column not in mapping.column_map:
            out.append(issue("warning", row.canonical, 0, f"'{row.source_column}' was mapped to "
                             f"{row.canonical} with low confidence ({row.reason}); confirm it."))
    return out


def _derive_competing(frame, chosen, columns, records) -> None:
    """Breast-cancer-specific survival from a vital status with cause of death.

    When no column is mapped to ``bcss_event`` but one source column (mapped to ``os_event`` or
    unmapped) records the cause of death in words (e.g. METABRIC's ``VITAL_STATUS``: "Living",
    "Died of Disease", "Died of Other Causes"), ``bcss_event`` is built from it (0 alive, 1 died
    of breast cancer, 2 died of other causes) with the overall-survival time, and this is said.
    """
    from . import events

    if "bcss_event" in columns or "os_months" not in columns:
        return
    event_keys = {events._key(t) for t in events.VITAL_STATUS_EVENT}
    competing_keys = {events._key(t) for t in events.VITAL_STATUS_COMPETING}
    known = event_keys | competing_keys | {events._key(t) for t in events.VITAL_STATUS_CENSORED}
    for source in frame.columns:
        if chosen.get(source) not in (None, "os_event") or frame[source].dtype != object:
            continue
        keys = {events._key(v) for v in pd.unique(frame[source].dropna())}
        if not (keys & event_keys and keys & competing_keys and keys <= known):
            continue
        coded = events.vital_status_event(frame[source], pd.Series(columns["os_months"]))
        columns["bcss_event"] = coded.to_numpy()
        columns["bcss_months"] = np.array(columns["os_months"], dtype=float, copy=True)
        counts = coded.attrs["counts"]
        records.append(issue("info", "bcss_event", 0, (
            f"Breast-cancer-specific survival built from '{source}' (cause of death): "
            f"{counts.get(1, 0):,} died of breast cancer (event 1), {counts.get(2, 0):,} of other "
            f"causes (competing, 2), {counts.get(0, 0):,} alive (censored); time = overall "
            "survival time.")))
        return


def _convert(frame, chosen, mapping, records):
    """Parse every mapped column; convert times to months and events to 1 = event."""
    by_canonical = {c: s for s, c in chosen.items()}
    given_values = mapping.value_maps
    columns, value_maps = {}, {}
    for canonical in CANONICAL_COLUMNS:
        if canonical not in by_canonical:
            continue
        source = by_canonical[canonical]
        parsed = _parse(canonical, frame[source], given_values.get(canonical))
        records += _parse_issues(canonical, source, frame[source], parsed)
        columns[canonical] = parsed.values.to_numpy()
        if parsed.value_map or canonical in given_values:
            value_maps[canonical] = parsed.value_map
    units = _convert_times(columns, by_canonical, mapping, records)
    codings = _convert_events(columns, by_canonical, value_maps, mapping, records)
    if "patient_id" not in columns:
        columns["patient_id"] = np.array([str(i + 1) for i in range(len(frame))], dtype=object)
        records.append(issue("info", "patient_id", 0, "No patient-ID column was found; row "
                             "numbers (1, 2, ...) are used as patient IDs."))
    return columns, value_maps, units, codings


def _convert_times(columns, by_canonical, mapping, records) -> dict[str, str]:
    units = {}
    given = dict(mapping.time_units)
    for endpoint in ENDPOINTS:
        tcol = time_column(endpoint)
        if tcol not in columns:
            continue
        values = pd.Series(columns[tcol], dtype="float64")
        if tcol in given:
            unit = given[tcol]
        else:
            unit, why, from_size = mp.guess_time_unit(by_canonical[tcol], values)
            severity = "warning" if from_size and unit != "months" else "info"
            records.append(issue(severity, tcol, 0, f"'{by_canonical[tcol]}' read in {unit} "
                                 f"({why}); converted to months. Change the unit in the "
                                 "mapping if this is wrong."))
        units[tcol] = unit
        columns[tcol] = values.to_numpy() * mp.TIME_UNITS[unit]
    return units


def _convert_events(columns, by_canonical, value_maps, mapping, records) -> dict[str, str]:
    codings = {}
    given = dict(mapping.event_coding)
    for endpoint in ENDPOINTS:
        ecol = event_column(endpoint)
        if ecol not in columns:
            continue
        values = pd.Series(columns[ecol], dtype="float64")
        if endpoint in COMPETING_ENDPOINTS:  # codes 0 / 1 / 2...: never inverted
            codings[endpoint] = "1=event"
            counts = values.value_counts().sort_index()
            records.append(issue("info", ecol, 0, f"'{by_canonical[ecol]}' read as competing-"
                                 "risk codes: " + ", ".join(f"{int(k)} = {int(n):,} patients"
                                                            for k, n in counts.items()) + "."))
            continue
        if endpoint in given:
            coding = given[endpoint]
        else:
            tsource = by_canonical.get(time_column(endpoint))
            from_text = bool(value_maps.get(ecol)) and any(
                not k.lstrip("-").replace(".", "").isdigit() for k in value_maps[ecol])
            coding, why, flag = mp.guess_event_coding(endpoint, by_canonical[ecol], tsource,
                                                      values, from_text)
            records.append(_coding_issue(endpoint, by_canonical[ecol], coding, why, flag))
        codings[endpoint] = coding
        if coding == "1=no event":
            values = values.where(~values.isin([0, 1]), 1 - values)
        columns[ecol] = values.to_numpy()
    return codings


def _coding_issue(endpoint: str, source: str, coding: str, why: str, flag: bool) -> dict:
    other = "1=event" if coding == "1=no event" else "1=no event"
    if coding == "1=no event":
        text = (f"'{source}' could be inverted: taken as 1 = no event, so it was inverted to "
                f"1 = event ({why}).")
    else:
        text = f"'{source}' taken as 1 = event ({why})."
    if flag:
        text += (f" Confirm the direction, or set event_coding={{'{endpoint}': '{other}'}} in "
                 "the mapping.")
    return issue("warning" if flag else "info", event_column(endpoint), 0, text)


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
            records.append(issue("info", col, added, f"{col} derived for {added:,} patient(s) "
                                 "from measured levels (ASCO/CAP rules) where the file had none."))
    source = derived.attrs.get("er_category_source")
    if source:
        records.append(issue("info", "er_category", 0, str(source)))
    derived.attrs = {}
    return derived
