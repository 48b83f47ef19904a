"""Where the table starts: header and metadata rows recognised by their content, not the file name.

Works on the first rows of a text file or a workbook sheet, as lists of cell texts, and decides
which row is the header and which rows above or below it are not patients:

* ``#`` lines (cBioPortal clinical files: display names, descriptions, datatypes, priorities; or
  plain comments). Aligned cBioPortal lines become :class:`~.evidence.ColumnEvidence`.
* title lines above the header (SEER*Stat listings copied with their title, spreadsheet exports);
* extra header rows under the header (GDC biotab: a row of alternative names and a ``CDE_ID:``
  row; a repeated header);
* footnote lines under the table.

Every skipped row is reported with its line number and the reason. GEO series-matrix and SOFT
files are not tables at all: :func:`read_geo` turns their ``!Sample_characteristics_ch1``
"key: value" cells into columns, one row per sample. :func:`read_dictionary` reads a
data-dictionary sheet (variable, description, codes such as ``8 = Dead``).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .evidence import ColumnEvidence

HEAD_ROWS = 200

_CBIO_DATATYPES = {"STRING", "NUMBER", "BOOLEAN"}
_CBIO_ATTRIBUTE_TYPES = {"PATIENT", "SAMPLE"}
_NAME_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
_NUMBER = re.compile(r"^[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?%?$")


@dataclass
class Layout:
    """Where the header is, which rows to skip (with reasons), and what the rows above said."""

    header: int = 0  # row index of the header
    first_data: int = 1  # row index of the first data row
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row index, reason)
    evidence: dict[str, ColumnEvidence] = field(default_factory=dict)  # keyed by header cell
    kind: str = ""  # "cBioPortal clinical", "GDC biotab", ... ("" for a plain table)
    hash_rows: int = 0  # leading '#' lines
    strip_hash: bool = False  # the header line itself starts with '#'

    def skipped_text(self, offset: int = 1) -> str:
        """ "lines 1-4 (cBioPortal attribute metadata), line 6 (GDC CDE_ID row)"."""
        groups: dict[str, list[int]] = {}
        for row, reason in self.skipped:
            groups.setdefault(reason, []).append(row + offset)
        return "; ".join(f"{_line_span(rows)} ({reason})" for reason, rows in groups.items())


def _line_span(rows: list[int]) -> str:
    rows = sorted(rows)
    if len(rows) == 1:
        return f"line {rows[0]}"
    if rows == list(range(rows[0], rows[-1] + 1)):
        return f"lines {rows[0]}-{rows[-1]}"
    return "lines " + ", ".join(map(str, rows[:8])) + (" ..." if len(rows) > 8 else "")


def _clean(cell) -> str:
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return ""
    return str(cell).strip().lstrip("\ufeff").strip()


def _filled(row: list[str]) -> list[str]:
    return [c for c in row if c]


def _first(row: list[str]) -> str:
    filled = _filled(row)
    return filled[0].lstrip('"').strip() if filled else ""


def _looks_like_header(row: list[str]) -> bool:
    cells = _filled(row)
    if len(cells) < 2:
        return False
    texty = [c for c in cells if not _NUMBER.match(c)]
    return len(texty) >= 0.7 * len(cells) and len(set(cells)) >= 0.9 * len(cells)


def rows_from_text(lines: list[str], delimiter: str) -> list[list[str]]:
    """Cells of each line (one line = one row; used only for the head of a file)."""
    out = []
    for line in lines:
        try:
            cells = next(csv.reader([line], delimiter=delimiter), [])
        except csv.Error:
            cells = line.split(delimiter)
        out.append([_clean(c) for c in cells])
    return out


def rows_from_frame(frame: pd.DataFrame, limit: int = HEAD_ROWS) -> list[list[str]]:
    """Cells of the first rows of a sheet read without a header."""
    head = frame.iloc[:limit]
    return [[_clean(v) for v in row] for row in head.itertuples(index=False, name=None)]


# --------------------------------------------------------------------------------------------
# Header detection
# --------------------------------------------------------------------------------------------


def detect(rows: list[list[str]]) -> Layout:
    """Find the header row and the non-patient rows around it (see module docstring)."""
    layout = Layout()
    i = 0
    hash_rows: list[int] = []
    while i < len(rows):
        if not _filled(rows[i]):
            layout.skipped.append((i, "blank line"))
        elif _first(rows[i]).startswith("#"):
            hash_rows.append(i)
        else:
            break
        i += 1
    layout.hash_rows = len(hash_rows)
    if hash_rows:
        _hash_block(rows, hash_rows, i, layout)
        if layout.strip_hash:
            i = layout.header
    if i >= len(rows):
        layout.header = layout.first_data = len(rows)
        return layout
    if not layout.strip_hash:
        i = _skip_preamble(rows, i, layout)
        layout.header = i
    layout.first_data = _skip_extra_headers(rows, layout.header, layout)
    if layout.hash_rows >= 2 and not layout.kind:
        layout.kind = "cBioPortal clinical"
    return layout


def _hash_block(rows, hash_rows: list[int], header: int, layout: Layout) -> None:
    following = rows[header] if header < len(rows) else []
    if len(hash_rows) == 1 and following and not _looks_like_header(following) \
            and _looks_like_header([c.lstrip("#") for c in rows[hash_rows[0]]]):
        # "#id,age" above data rows: the header itself starts with '#'
        layout.header, layout.strip_hash = hash_rows[0], True
        return
    width = len(following)
    aligned = [r for r in hash_rows if len(rows[r]) == width and width > 1]
    if len(aligned) >= 2 and len(aligned) == len(hash_rows):
        _cbioportal_meta(rows, hash_rows, following, layout)
        return
    for r in hash_rows:
        layout.skipped.append((r, "comment line starting with '#'"))


def _cbioportal_meta(rows, hash_rows: list[int], header: list[str], layout: Layout) -> None:
    """cBioPortal's attribute lines: display names, descriptions, datatypes, priorities
    (and, in older files, attribute types), recognised by their content."""
    meta = [[c.lstrip("#").strip() if j == 0 else c for j, c in enumerate(rows[r])]
            for r in hash_rows]
    roles: dict[int, str] = {}
    for r, cells in zip(hash_rows, meta, strict=True):
        values = {c.upper() for c in cells if c}
        if values and values <= _CBIO_DATATYPES:
            roles[r] = "datatypes"
        elif values and values <= _CBIO_ATTRIBUTE_TYPES:
            roles[r] = "attribute types"
        elif cells and all(re.fullmatch(r"-?\d+", c or "0") for c in cells):
            roles[r] = "priorities"
    text_rows = [r for r in hash_rows if r not in roles]
    if text_rows:
        roles[text_rows[0]] = "display names"
    for r in text_rows[1:2]:
        roles[r] = "descriptions"
    for r in text_rows[2:]:
        roles[r] = "comment"
    by_role = {role: meta[hash_rows.index(r)] for r, role in roles.items()}
    for j, column in enumerate(header):
        if not column:
            continue
        ev = ColumnEvidence(source="cBioPortal attribute lines")
        name = by_role.get("display names", [""] * len(header))[j]
        if name and name != column:
            ev.names.append(name)
        ev.description = by_role.get("descriptions", [""] * len(header))[j]
        ev.datatype = by_role.get("datatypes", [""] * len(header))[j].upper()
        layout.evidence[column] = ev
    kinds = ", ".join(roles.get(r, "metadata") for r in hash_rows)
    for r in hash_rows:
        layout.skipped.append((r, f"cBioPortal attribute lines: {kinds}"))
    layout.kind = "cBioPortal clinical"


def _skip_preamble(rows, start: int, layout: Layout) -> int:
    """Title lines above the header (few cells, followed by a header-like row)."""
    if _looks_like_header(rows[start]) or start + 1 >= len(rows):
        return start
    for j in range(start + 1, min(start + 12, len(rows))):
        if not _looks_like_header(rows[j]):
            continue
        width = len(_filled(rows[j]))
        above = rows[start:j]
        body = [len(_filled(r)) for r in rows[j + 1: j + 6] if _filled(r)]
        if width >= 3 and body and max(body) >= 0.5 * width and all(
                len(_filled(r)) <= max(2, width // 3) for r in above):
            for k in range(start, j):
                reason = "blank line" if not _filled(rows[k]) else "title line above the header"
                layout.skipped.append((k, reason))
            return j
        return start
    return start


def _skip_extra_headers(rows, header: int, layout: Layout) -> int:
    """GDC biotab's alternative-name and ``CDE_ID:`` rows, repeated headers, under the header."""
    names = rows[header]
    i = header + 1
    while i < min(len(rows), header + 4):
        row = rows[i]
        cells = _filled(row)
        if not cells:
            break
        if sum(c.startswith("CDE_ID:") for c in cells) >= 0.5 * len(cells):
            _record_cde(names, row, layout)
            layout.skipped.append((i, "GDC CDE_ID row (data-element identifiers)"))
            layout.kind = "GDC biotab"
        elif _same_as_header(row, names) >= 0.8:
            layout.skipped.append((i, "repeated header row"))
        elif len(cells) >= 3 and all(_NAME_LIKE.match(c) for c in cells) \
                and _same_as_header(row, names) >= 0.25 and not _has_ids(cells):
            _record_alternative_names(names, row, layout)
            layout.skipped.append((i, "second header row (alternative column names)"))
            layout.kind = "GDC biotab"
        else:
            break
        i += 1
    return i


def _same_as_header(row: list[str], names: list[str]) -> float:
    pairs = [(a, b) for a, b in zip(row, names, strict=False) if a]
    return sum(a.lower() == b.lower() for a, b in pairs) / max(len(pairs), 1)


def _has_ids(cells: list[str]) -> bool:
    return any(re.search(r"\d{3,}|[0-9A-F]{8}-[0-9A-F]{4}", c, re.I) for c in cells)


def _record_alternative_names(names, row, layout: Layout) -> None:
    for column, alt in zip(names, row, strict=False):
        if column and alt and alt.lower() != column.lower():
            layout.evidence.setdefault(column, ColumnEvidence(source="alternative header row"))
            ev = layout.evidence[column]
            if alt not in ev.names:
                ev.names.append(alt)


def _record_cde(names, row, layout: Layout) -> None:
    for column, cde in zip(names, row, strict=False):
        if column and cde.removeprefix("CDE_ID:"):
            ev = layout.evidence.setdefault(column, ColumnEvidence(source="GDC biotab"))
            ev.datatype = ev.datatype or cde


def trailing_notes(rows: list[list[str]], width: int) -> int:
    """How many rows at the end are footnotes (one cell of text in a wide table)."""
    count, notes = 0, 0
    for row in reversed(rows):
        if not row:  # a truly blank line (a row of empty cells is a patient with no values)
            count += 1
            continue
        cells = _filled(row)
        if width >= 3 and len(cells) == 1 and len(row) < width and not _NUMBER.match(cells[0]):
            count, notes = count + 1, notes + 1
            continue
        break
    return count if notes else 0


# --------------------------------------------------------------------------------------------
# GEO series matrix and SOFT
# --------------------------------------------------------------------------------------------

_GEO_KEEP = {"title": "title", "geo_accession": "geo_accession", "source_name_ch1": "source_name",
             "description": "description"}


def is_geo(head: str) -> bool:
    """Whether the text starts like a GEO series matrix or SOFT file."""
    first = [line for line in head.splitlines()[:60] if line.strip()]
    return any(line.startswith(("!Series_", "!Sample_", "^SERIES", "^SAMPLE", "^DATABASE"))
               for line in first)


@dataclass
class GeoTable:
    frame: pd.DataFrame
    kind: str
    notes: list[str]


def read_geo(text: str) -> GeoTable:
    """One row per sample: accession, title, and one column per characteristics key."""
    if re.search(r"^\^SAMPLE\s*=", text, re.M):
        samples, series, skipped = _soft_samples(text)
        kind = "GEO SOFT"
    else:
        samples, series, skipped = _matrix_samples(text)
        kind = "GEO series matrix"
    notes = []
    records, unkeyed, doubled = [], 0, 0
    for sample in samples:
        record, lost, repeated = _sample_record(sample, series)
        records.append(record)
        unkeyed, doubled = unkeyed + lost, doubled + repeated
    frame = pd.DataFrame.from_records(records)
    frame = frame.replace({"": np.nan, "NA": np.nan, "N/A": np.nan, "na": np.nan})
    for column in frame.columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.notna().sum() == frame[column].notna().sum() and frame[column].notna().any():
            frame[column] = numbers
    if unkeyed:
        notes.append(f"{unkeyed:,} characteristics cells had no 'key: value' form and were not "
                     "used.")
    if doubled:
        notes.append(f"{doubled:,} characteristics repeated a key already given for the sample; "
                     "the first value was kept.")
    notes += skipped
    return GeoTable(frame, kind, notes)


def _sample_record(sample: dict[str, list[str]], series: str) -> tuple[dict, int, int]:
    """(record, cells without a key, repeated keys) of one sample; characteristics are read by
    their key, never by their row, because rows drift between samples."""
    record = {"series_id": series} if series else {}
    unkeyed = doubled = 0
    for name, values in sample.items():
        if name in _GEO_KEEP and values:
            record[_GEO_KEEP[name]] = values[0]
        if not name.startswith("characteristics"):
            continue
        for cell in values:
            key, sep, value = cell.partition(":")
            if not sep:
                unkeyed += bool(cell.strip())
                continue
            key = key.strip() or "characteristic"
            if key in record:
                doubled += 1
                continue
            record[key] = value.strip()
    return record, unkeyed, doubled


def _unquote(cell: str) -> str:
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        cell = cell[1:-1]
    return cell.strip()


def _matrix_samples(text: str):
    columns: dict[str, list[list[str]]] = {}
    series = ""
    skipped = []
    n_samples = 0
    for line in text.splitlines():
        if line.startswith("!series_matrix_table_begin"):
            rest = text.count("\n", text.index("!series_matrix_table_begin"))
            skipped.append(f"The expression table ({max(rest - 2, 0):,} lines after "
                           "'!series_matrix_table_begin') was not read: only the sample "
                           "characteristics are clinical data.")
            break
        if line.startswith("!Series_geo_accession"):
            series = _unquote(line.split("\t", 1)[1]) if "\t" in line else ""
        if not line.startswith("!Sample_"):
            continue
        name, _, rest = line[len("!Sample_"):].partition("\t")
        cells = [_unquote(c) for c in rest.split("\t")] if rest else []
        n_samples = max(n_samples, len(cells))
        key = "characteristics" if name.startswith("characteristics") else name
        columns.setdefault(key, []).append(cells)
    samples = []
    for k in range(n_samples):
        sample = {}
        for key, lines in columns.items():
            values = [cells[k] for cells in lines if k < len(cells) and cells[k]]
            sample[key] = values
        samples.append(sample)
    return samples, series, skipped


def _soft_samples(text: str):
    samples: list[dict[str, list[str]]] = []
    series = ""
    current: dict[str, list[str]] | None = None
    in_table = False
    skipped_tables = 0
    for line in text.splitlines():
        if in_table:
            in_table = not line.startswith(("!sample_table_end", "!platform_table_end"))
            continue
        if line.startswith(("!sample_table_begin", "!platform_table_begin")):
            in_table, skipped_tables = True, skipped_tables + 1
            continue
        if line.startswith("^"):
            current = {} if line.upper().startswith("^SAMPLE") else None
            if current is not None:
                samples.append(current)
            continue
        if line.startswith("!Series_geo_accession"):
            series = line.partition("=")[2].strip()
        if current is not None and line.startswith("!Sample_"):
            name, _, value = line[len("!Sample_"):].partition("=")
            name = name.strip()
            key = "characteristics" if name.startswith("characteristics") else name
            current.setdefault(key, []).append(value.strip())
    notes = [f"{skipped_tables:,} data tables (platform and sample measurements) were not read: "
             "only the sample characteristics are clinical data."] if skipped_tables else []
    return samples, series, notes


# --------------------------------------------------------------------------------------------
# Data dictionaries
# --------------------------------------------------------------------------------------------

_VARIABLE_HEAD = re.compile(r"^(variable|variable name|field|field name|column|column name|"
                            r"attribute|item|name|variable id)s?:?$", re.I)
_DESCRIPTION_HEAD = re.compile(r"description|definition|label|meaning|explanation", re.I)
_CODE = re.compile(r"^\s*([^=:]{1,24}?)\s*[=:]\s*(.+?)\s*$")


def read_dictionary(rows: list[list[str]], source: str) -> dict[str, ColumnEvidence] | None:
    """A data-dictionary sheet as ``{variable: evidence}``, or None when it is not one.

    Recognised by a header row with a variable-name cell and a description cell; code lines
    (``0=Negative``) under a variable become its codes; lines under the description column that
    continue a variable's text are appended to its description.
    """
    found = _dictionary_header(rows)
    if found is None:
        return None
    at, name_col, desc_col, type_col = found
    entries: dict[str, ColumnEvidence] = {}
    current: ColumnEvidence | None = None
    for row in rows[at + 1:]:
        cells = row + [""] * (max(name_col, desc_col, type_col or 0) + 1 - len(row))
        name, text = cells[name_col], cells[desc_col]
        kind = cells[type_col] if type_col is not None else ""
        if name:
            key = name.splitlines()[0].strip().rstrip(":").strip()
            if not text and not kind:  # a section title ("Patient Demographics")
                current = None
                continue
            current = ColumnEvidence(description=text, datatype=kind, source=source)
            entries[key] = current
            continue
        if current is None or not text:
            continue
        code = _CODE.match(text)
        if code and len(code.group(1).split()) <= 2:
            if code.group(1).strip().lower() not in ("blank", "blanks", "empty", "missing"):
                current.codes[code.group(1).strip()] = code.group(2).strip()
        elif not current.codes:
            current.description = f"{current.description} {text}".strip()
    return entries or None


def _dictionary_header(rows):
    for at, row in enumerate(rows[:40]):
        names = [j for j, c in enumerate(row) if _VARIABLE_HEAD.match(c)]
        descs = [j for j, c in enumerate(row) if _DESCRIPTION_HEAD.search(c) and j not in names]
        if names and descs:
            types = [j for j, c in enumerate(row) if re.match(r"^(format|type|data ?type|unit)",
                                                                c, re.I)]
            return at, names[0], descs[0], (types[0] if types else None)
    return None


def dictionary_from_table(frame: pd.DataFrame, source: str) -> dict[str, ColumnEvidence] | None:
    """A separately uploaded dictionary table (columns like Variable, Description[, Codes])."""
    rows = [[_clean(c) for c in frame.columns]] + rows_from_frame(frame, limit=5000)
    return read_dictionary(rows, source)


def most_common_width(rows: list[list[str]]) -> int:
    widths = Counter(len(r) for r in rows if _filled(r))
    return widths.most_common(1)[0][0] if widths else 0
