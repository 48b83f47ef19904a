"""Reading one upload into a raw table, from memory only (uploads are never written to disk).

The format is decided from the content (magic bytes), not the file name: ``PK`` zip -> xlsx,
``D0 CF 11 E0`` -> xls, ``PAR1`` -> Parquet, anything else is treated as delimited text (CSV,
TSV, semicolon with decimal commas, pipe, cBioPortal clinical files with ``#`` header rows).
Every guard (size, line length, rows, sheets, compression ratio) fails with a
:class:`~her2er_dash.errors.CohortError` that names the file, the problem and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import CohortError

MAX_ROWS = 2_000_000
MAX_SHEETS = 50
MAX_LINE_BYTES = 1024**2
MAX_UNZIPPED_BYTES = 500 * 1024**2
MAX_ZIP_RATIO = 200
_DELIMITERS = (",", "\t", ";", "|")
_FORMAT_NAMES = {",": "csv", "\t": "tsv", ";": "csv (semicolon)", "|": "csv (pipe)"}


@dataclass
class RawTable:
    """A source table before mapping, with what the reader learned and noticed."""

    frame: pd.DataFrame
    name: str
    format: str
    sha256: str
    sheets: tuple[str, ...] = ()
    notes: list[tuple[str, str, str]] = field(default_factory=list)  # (severity, column, text)
    joined_on: str | None = None


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.1f} MB"


# --------------------------------------------------------------------------------------------
# Bytes from a path, bytes, or an upload
# --------------------------------------------------------------------------------------------


def source_bytes(source, *, name: str | None, max_bytes: int) -> tuple[bytes, str]:
    """The content and display name of a path, ``bytes`` or file-like upload, size-checked."""
    if isinstance(source, str | Path):
        path = Path(source)
        label = name or path.name
        if not path.is_file():
            raise CohortError(f"{label}: no such file ({path}). Check the path and try again.")
        _check_size(path.stat().st_size, label, max_bytes)
        return path.read_bytes(), label
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        label = name or "uploaded data"
    elif hasattr(source, "read") or hasattr(source, "getvalue"):
        label = name or str(getattr(source, "name", None) or "uploaded file")
        size = getattr(source, "size", None)
        if isinstance(size, int):
            _check_size(size, label, max_bytes)
        data = source.getvalue() if hasattr(source, "getvalue") else source.read(max_bytes + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
        data = bytes(data)
    else:
        raise CohortError(
            f"Cannot read a {type(source).__name__} as a cohort: pass a file path, bytes, or an "
            "uploaded file."
        )
    _check_size(len(data), label, max_bytes)
    return data, label


def _check_size(size: int, label: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise CohortError(
            f"{label}: the file is {_mb(size)}; the limit is {_mb(max_bytes)}. Remove unused "
            "columns or rows, or save it as Parquet (much smaller), and upload again."
        )
    if size == 0:
        raise CohortError(f"{label}: the file is empty. Choose the file that holds the data.")


def detect_format(data: bytes) -> str:
    """``"xlsx"``, ``"xls"``, ``"parquet"`` or ``"text"`` from the first bytes."""
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "xls"
    if data[:4] == b"PAR1":
        return "parquet"
    return "text"


def read_table(
    data: bytes,
    label: str,
    *,
    sheet=None,
    text_column: Callable[[str], bool],
    id_column: Callable[[list[str]], str | None],
) -> RawTable:
    """Parse ``data`` (any supported format) into a :class:`RawTable`.

    ``text_column(name)`` says which columns must stay text (identifiers keep leading zeros);
    ``id_column(names)`` finds the patient-ID column used to join workbook sheets.
    """
    digest = hashlib.sha256(data).hexdigest()
    kind = detect_format(data)
    if kind == "xlsx" or kind == "xls":
        raw = _read_excel(data, label, kind, sheet=sheet, id_column=id_column)
    elif kind == "parquet":
        raw = _read_parquet(data, label)
    else:
        raw = _read_text(data, label, text_column=text_column)
        suffix = Path(label).suffix.lower()
        if suffix in (".xlsx", ".xls", ".parquet"):
            raw.notes.append(("warning", "", f"{label} is named {suffix} but holds a text table; "
                                             f"it was read as {raw.format}."))
    raw.sha256 = digest
    if len(raw.frame) > MAX_ROWS:
        raise CohortError(
            f"{label}: {len(raw.frame):,} rows; the limit is {MAX_ROWS:,}. Split the file by "
            "study, or filter it before uploading."
        )
    return raw


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def decode_text(data: bytes, label: str) -> tuple[str, str]:
    """(text, encoding): BOMs first, then UTF-8, then cp1252/Latin-1; binary junk is refused."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "UTF-8 with BOM"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "UTF-16"
    head = data[:65536]
    if head.count(0) > len(head) // 4:
        odd_nuls = head[1::2].count(0) > len(head) // 3
        even_nuls = head[0::2].count(0) > len(head) // 3
        if odd_nuls or even_nuls:
            codec = "utf-16-le" if odd_nuls else "utf-16-be"
            return data.decode(codec, errors="replace"), "UTF-16 (no BOM)"
    _refuse_binary(head, label)
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252"), "Windows-1252"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "Latin-1"


def _refuse_binary(head: bytes, label: str) -> None:
    arr = np.frombuffer(head, dtype=np.uint8)
    control = (arr < 32) & ~np.isin(arr, (9, 10, 13))
    if len(arr) and (control.mean() > 0.02 or (arr == 0).any()):
        raise CohortError(
            f"{label} does not look like a table: it holds binary data (not text, Excel or "
            "Parquet). Export the data as CSV, Excel (.xlsx) or Parquet and upload that file."
        )


def _check_lines(text: str, label: str) -> None:
    """Refuse absurdly long lines (before the parser spends minutes on them) and too many rows."""
    breaks = text.count("\n") or text.count("\r")
    if breaks > MAX_ROWS + 1:
        raise CohortError(
            f"{label}: about {breaks:,} lines; the limit is {MAX_ROWS:,} rows. Split the file "
            "by study, or filter it before uploading."
        )
    sep = "\n" if "\n" in text else "\r"
    if len(text) <= MAX_LINE_BYTES:
        return
    arr = np.frombuffer(text.encode("utf-8", errors="replace"), dtype=np.uint8)
    ends = np.concatenate(([-1], np.flatnonzero(arr == ord(sep)), [len(arr)]))
    lengths = np.diff(ends)
    longest = int(lengths.max())
    if longest > MAX_LINE_BYTES:
        line = int(np.argmax(lengths)) + 1
        raise CohortError(
            f"{label}: line {line:,} is {_mb(longest)} long; a table row should be a few hundred "
            "characters. The file may not be a table, or its line breaks were lost: export it "
            "again as CSV with one patient per line."
        )


def _comment_lines(lines: list[str]) -> int:
    count = 0
    for line in lines:
        if not line.startswith("#"):
            break
        count += 1
    return count


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter giving the most consistent field count (>1) over the sample lines."""
    best, best_score = ",", (-1.0, 0)
    for delim in _DELIMITERS:
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=delim) if r]
        except csv.Error:
            continue
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        if mode < 2:
            continue
        score = (counts.count(mode) / len(counts), mode)
        if score > best_score:
            best, best_score = delim, score
    return best


def _dedupe(names: list[str]) -> tuple[list[str], list[str]]:
    seen: dict[str, int] = {}
    out, repeated = [], []
    for i, raw in enumerate(names):
        name = raw.strip() or f"Unnamed: {i}"
        if name in seen:
            seen[name] += 1
            repeated.append(name)
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out, repeated


_DECIMAL_COMMA = re.compile(r'(?:^|;)\s*"?-?\d+,\d+"?\s*(?:;|$)', re.MULTILINE)


def _read_text(data: bytes, label: str, *, text_column: Callable[[str], bool]) -> RawTable:
    text, encoding = decode_text(data, label)
    _check_lines(text, label)
    head_lines = text[:200_000].splitlines()[:200]
    n_comments = _comment_lines(head_lines)
    body_lines = head_lines[n_comments:]
    if not [line for line in body_lines if line.strip()]:
        raise CohortError(f"{label}: the file has no table in it (it is blank or only comments). "
                          "Choose the file that holds the data.")
    delim = sniff_delimiter(body_lines[:100])
    header = next(csv.reader([body_lines[0]], delimiter=delim))
    names, repeated = _dedupe(header)
    decimal_comma = delim == ";" and bool(_DECIMAL_COMMA.search("\n".join(body_lines[1:])))
    frame = _parse_delimited(text, n_comments, delim, names, decimal_comma, text_column, label)
    raw = RawTable(frame, label, _FORMAT_NAMES[delim], "")
    if n_comments:
        raw.format = "cBioPortal clinical" if n_comments == 4 else raw.format
    _text_notes(raw, label, encoding, repeated, decimal_comma, n_comments, header)
    return raw


def _parse_delimited(text, skip, delim, names, decimal_comma, text_column, label) -> pd.DataFrame:
    body = text.split("\n", skip)[-1] if skip else text
    dtypes = {n: str for n in names if text_column(n)}
    options = {"sep": delim, "names": names, "header": 0, "dtype": dtypes}
    if not decimal_comma and delim != "|":
        try:
            frame = pd.read_csv(io.BytesIO(body.encode("utf-8")), engine="pyarrow", **options)
            frame.columns = names  # the pyarrow engine keeps the file's (duplicated) names
            return frame
        except Exception:  # noqa: BLE001 - fall back to the forgiving parser below
            pass
    try:
        return pd.read_csv(io.StringIO(body), decimal="," if decimal_comma else ".",
                           low_memory=False, **options)
    except (pd.errors.ParserError, ValueError, csv.Error) as exc:
        raise CohortError(
            f"{label}: the table could not be parsed ({str(exc).strip()[:200]}). Check that "
            "every row has the same number of fields and that quotes are closed."
        ) from exc


def _text_notes(raw, label, encoding, repeated, decimal_comma, n_comments, header) -> None:
    if encoding not in ("UTF-8", "UTF-8 with BOM"):
        raw.notes.append(("info", "", f"{label} is encoded as {encoding}; it was converted."))
    for name in dict.fromkeys(repeated):
        raw.notes.append(("warning", name, f"Column name {name!r} appears more than once; the "
                          "copies were renamed with .1, .2 ... Rename them in the source file."))
    if decimal_comma:
        raw.notes.append(("info", "", "Numbers use decimal commas (1,5); they were read as 1.5."))
    looks_cbio = Path(label).name.startswith("data_clinical") or "PATIENT_ID" in header
    if looks_cbio and n_comments not in (0, 4):
        raw.notes.append(("warning", "", f"{label} has {n_comments} '#' header rows, where "
                          "cBioPortal files have 4; the first non-# line was used as the header."))
    elif looks_cbio and n_comments == 0 and Path(label).name.startswith("data_clinical"):
        raw.notes.append(("warning", "", f"{label} is named like a cBioPortal clinical file but "
                          "has no '#' header rows; it was read as a plain table (check the "
                          "header line)."))


# --------------------------------------------------------------------------------------------
# Excel and Parquet
# --------------------------------------------------------------------------------------------


def _check_zip(data: bytes, label: str) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CohortError(f"{label}: the Excel file is damaged ({exc}). Open it in Excel and "
                          "save it again, or export it as CSV.") from exc
    if not any(m.filename == "xl/workbook.xml" for m in members):
        raise CohortError(f"{label} is a zip archive but not an Excel workbook. Unzip it and "
                          "upload the table inside (CSV, .xlsx or Parquet).")
    unzipped = sum(m.file_size for m in members)
    packed = max(sum(m.compress_size for m in members), 1)
    if unzipped > MAX_UNZIPPED_BYTES or (unzipped > 10 * 1024**2 and unzipped / packed > MAX_ZIP_RATIO):
        raise CohortError(
            f"{label} would expand from {_mb(len(data))} to {_mb(unzipped)} when opened, which "
            "looks like a damaged or malicious workbook (a 'zip bomb'). Export the data again "
            "as CSV or Parquet."
        )


def _excel_sheets(data: bytes, label: str, kind: str) -> dict[str, pd.DataFrame]:
    if kind == "xlsx":
        _check_zip(data, label)
    engine = "openpyxl" if kind == "xlsx" else "xlrd"
    try:
        book = pd.ExcelFile(io.BytesIO(data), engine=engine)
        names = book.sheet_names
        if len(names) > MAX_SHEETS:
            raise CohortError(f"{label} has {len(names)} sheets; the limit is {MAX_SHEETS}. "
                              "Copy the sheets you need into a new workbook, or choose one with "
                              "sheet=.")
        return {name: book.parse(name) for name in names}
    except CohortError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a damaged-file message
        raise CohortError(f"{label}: the Excel file could not be read ({type(exc).__name__}: "
                          f"{str(exc)[:200]}). Open it in Excel and save it again, or export "
                          "it as CSV.") from exc


def _read_excel(data, label, kind, *, sheet, id_column) -> RawTable:
    sheets = _excel_sheets(data, label, kind)
    fmt = "Excel (.xlsx)" if kind == "xlsx" else "Excel (.xls)"
    if sheet is not None:
        names = list(sheets)
        chosen = names[sheet] if isinstance(sheet, int) and -len(names) <= sheet < len(names) else sheet
        if chosen not in sheets:
            raise CohortError(f"{label} has no sheet {sheet!r}; its sheets are {names}.")
        return RawTable(_strip_names(sheets[chosen]), label, fmt, "", (str(chosen),))
    filled = {n: _strip_names(f) for n, f in sheets.items() if not f.dropna(how="all").empty}
    if not filled:
        raise CohortError(f"{label}: every sheet is empty. Choose the workbook that holds the data.")
    return _combine_sheets(filled, label, fmt, id_column)


def _strip_names(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.dropna(how="all", axis=1).dropna(how="all", axis=0)
    frame.columns = _dedupe([str(c) for c in frame.columns])[0]
    return frame.reset_index(drop=True)


def _combine_sheets(filled, label, fmt, id_column) -> RawTable:
    names = list(filled)
    keyed = {n: id_column(list(f.columns)) for n, f in filled.items()}
    joinable = [n for n in names if keyed[n] is not None]
    unique_ids = [n for n in joinable if not filled[n][keyed[n]].duplicated().any()]
    if len(joinable) >= 2 and len(unique_ids) == len(joinable):
        frame, key = join_on_id([(n, filled[n], keyed[n]) for n in joinable])
        raw = RawTable(frame, label, fmt, "", tuple(joinable), joined_on=key)
        raw.notes.append(("info", key, f"Sheets {joinable} were joined on patient ID column "
                          f"{key!r} ({len(frame):,} patients)."))
    else:
        first = names[0]
        raw = RawTable(filled[first], label, fmt, "", (first,))
        if len(names) > 1:
            why = ("they do not share a patient-ID column with unique values"
                   if len(joinable) < 2 or len(unique_ids) < len(joinable) else "")
            raw.notes.append(("warning", "", f"{label} has {len(names)} sheets with data; only "
                              f"{first!r} was read ({why}). Choose another with sheet=."))
    ignored = [n for n in names if n not in raw.sheets]
    if ignored and raw.joined_on:
        raw.notes.append(("info", "", f"Sheets without the patient-ID column were not read: "
                          f"{ignored}."))
    return raw


def join_on_id(parts: list[tuple[str, pd.DataFrame, str]]) -> tuple[pd.DataFrame, str]:
    """Outer-join tables on their ID columns (named as in the first); clashing names get a suffix."""
    _, frame, key = parts[0]
    frame = frame.copy()
    frame[key] = _id_text(frame[key])
    for part_name, other, other_key in parts[1:]:
        other = other.rename(columns={other_key: key}).copy()
        other[key] = _id_text(other[key])
        clash = {c: f"{c} ({part_name})" for c in other.columns if c in frame.columns and c != key}
        frame = frame.merge(other.rename(columns=clash), on=key, how="outer", sort=False)
    return frame, key


def _id_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values):
        whole = values.dropna()
        if (whole == np.floor(whole)).all():
            values = values.astype("Int64")
    return values.astype(str).where(values.notna(), None)


def _read_parquet(data: bytes, label: str) -> RawTable:
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(io.BytesIO(data))
        rows = handle.metadata.num_rows
        if rows > MAX_ROWS:
            raise CohortError(f"{label}: {rows:,} rows; the limit is {MAX_ROWS:,}. Split the "
                              "file by study, or filter it before uploading.")
        frame = handle.read().to_pandas()
    except CohortError:
        raise
    except Exception as exc:  # noqa: BLE001 - any pyarrow failure is a damaged-file message
        raise CohortError(f"{label}: the Parquet file could not be read ({type(exc).__name__}: "
                          f"{str(exc)[:200]}). Write it again, or export the data as CSV.") from exc
    frame = frame.reset_index(drop=True)
    frame.columns = _dedupe([str(c) for c in frame.columns])[0]
    return RawTable(frame, label, "Parquet", "")
