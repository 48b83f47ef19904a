"""Reading one upload into a raw table, from memory only (uploads are never written to disk).

The format is decided from the content (magic bytes), not the file name: ``PK`` zip -> xlsx,
``D0 CF 11 E0`` -> xls, ``PAR1`` -> Parquet, ``1F 8B`` -> gzip (unpacked, then read again),
anything else is text: delimited tables (CSV, TSV, semicolon with decimal commas, pipe) or GEO
series-matrix / SOFT files. Where the table starts inside a text file or a sheet is decided by
:mod:`.layout` (``#`` metadata lines, title lines, extra header rows are never patients).

Text that is not UTF-8 is decoded with the encoding ``charset-normalizer`` detects (an explicit
``encoding=`` overrides it). Workbooks are read with the ``calamine`` engine. Every guard (size,
line length, rows, sheets, compression ratio) fails with a
:class:`~her2er_dash.errors.CohortError` that names the file, the problem and the fix.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CohortError
from . import layout as lay
from .evidence import ColumnEvidence, attach

MAX_ROWS = 2_000_000
MAX_SHEETS = 50
MAX_LINE_BYTES = 1024**2
MAX_UNZIPPED_BYTES = 500 * 1024**2
MAX_ZIP_RATIO = 200
_DELIMITERS = (",", "\t", ";", "|")
_FORMAT_NAMES = {",": "csv", "\t": "tsv", ";": "csv (semicolon)", "|": "csv (pipe)"}

#: Encodings offered as overrides in the app, with the Python codec each one uses.
ENCODINGS: dict[str, str] = {
    "UTF-8": "utf-8", "Windows-1252": "cp1252", "Latin-1": "latin-1", "GB18030": "gb18030",
    "Big5": "big5", "Shift-JIS": "cp932", "EUC-KR": "cp949", "UTF-16": "utf-16",
    "Windows-1250": "cp1250", "Windows-1251": "cp1251", "ISO-8859-15": "iso8859-15",
}
_MULTIBYTE = ("gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp932", "shift_jis", "euc_jp",
              "euc_jis_2004", "euc_kr", "cp949", "johab", "hz", "iso2022_jp", "cp950")


@dataclass(eq=False)
class RawTable:
    """A source table before mapping, with what the reader learned and noticed."""

    frame: pd.DataFrame
    name: str
    format: str
    sha256: str
    sheets: tuple[str, ...] = ()
    notes: list[tuple[str, str, str]] = field(default_factory=list)  # (severity, column, text)
    joined_on: str | None = None
    evidence: dict[str, ColumnEvidence] = field(default_factory=dict)
    encoding: str = ""
    all_columns: tuple[str, ...] = ()  # every column of the file (frame may hold fewer)
    sample: pd.DataFrame | None = None  # first rows of every column, when frame holds fewer

    @property
    def complete(self) -> bool:
        """Whether every column of the file is in ``frame``."""
        return not self.all_columns or len(self.all_columns) == self.frame.shape[1]


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
    """``"xlsx"``, ``"xls"``, ``"parquet"``, ``"gzip"`` or ``"text"`` from the first bytes."""
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "xls"
    if data[:4] == b"PAR1":
        return "parquet"
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    return "text"


def read_table(
    data: bytes,
    label: str,
    *,
    sheet=None,
    encoding: str | None = None,
    text_column: Callable[[str], bool],
    id_column: Callable[[list[str]], str | None],
    columns: Iterable[str] | None = None,
    nrows: int | None = None,
) -> RawTable:
    """Parse ``data`` (any supported format) into a :class:`RawTable`.

    ``text_column(name)`` says which columns must stay text (identifiers keep leading zeros);
    ``id_column(names)`` finds the patient-ID column used to join workbook sheets. ``columns``
    keeps only those columns (large files: only what the mapping uses); ``nrows`` reads only the
    first rows (a sample to guess the mapping from).
    """
    digest = hashlib.sha256(data).hexdigest()
    kind = detect_format(data)
    keep = None if columns is None else list(dict.fromkeys(columns))
    if kind == "gzip":
        raw = read_table(_gunzip(data, label), label, sheet=sheet, encoding=encoding,
                         text_column=text_column, id_column=id_column, columns=keep, nrows=nrows)
        raw.format = f"{raw.format} (gzip)"
    elif kind in ("xlsx", "xls"):
        raw = _read_excel(data, label, kind, sheet=sheet, id_column=id_column, nrows=nrows)
        if keep is not None:
            raw = _keep_columns(raw, keep)
    elif kind == "parquet":
        raw = _read_parquet(data, label, columns=keep, nrows=nrows)
    else:
        raw = _read_text(data, label, text_column=text_column, encoding=encoding, columns=keep,
                         nrows=nrows)
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


def _gunzip(data: bytes, label: str) -> bytes:
    out, total = [], 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while chunk := stream.read(8 * 1024**2):
                total += len(chunk)
                if total > MAX_UNZIPPED_BYTES or (total > 10 * 1024**2
                                                   and total / len(data) > MAX_ZIP_RATIO):
                    raise CohortError(
                        f"{label} would expand from {_mb(len(data))} to more than {_mb(total)} "
                        "when unpacked, which looks like a damaged or malicious file. Unpack it "
                        "yourself and upload the table inside.")
                out.append(chunk)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CohortError(f"{label}: the gzip file is damaged ({exc}). Unpack it and upload the "
                          "table inside.") from exc
    return b"".join(out)


def _keep_columns(raw: RawTable, keep: list[str]) -> RawTable:
    present = [c for c in raw.frame.columns if c in set(keep)]
    raw.all_columns = tuple(str(c) for c in raw.frame.columns)
    raw.sample = raw.frame.head(5000)
    raw.frame = raw.frame[present]
    return raw


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def encoding_name(codec: str) -> str:
    """The display name of a Python codec (``"cp1252"`` -> ``"Windows-1252"``)."""
    normal = codecs.lookup(codec).name
    for shown, name in ENCODINGS.items():
        if codecs.lookup(name).name == normal:
            return shown
    return codec.upper().replace("_", "-")


def decode_text(data: bytes, label: str, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding shown to the user).

    BOMs first, then UTF-8, then the encoding ``charset-normalizer`` finds most coherent (a
    multi-byte Asian encoding when that is the best explanation; Windows-1252 for Western text,
    where single-byte code pages are indistinguishable to a detector). ``encoding`` (a name of
    :data:`ENCODINGS` or a Python codec) overrides the detection.
    """
    if encoding:
        codec = ENCODINGS.get(encoding, encoding)
        try:
            text = data.decode(codec)
        except (LookupError, UnicodeDecodeError) as exc:
            raise CohortError(f"{label} cannot be decoded as {encoding} ({exc}). Choose another "
                              "encoding, or 'detect automatically'.") from exc
        return text.lstrip("\ufeff"), f"{encoding_name(codec)} (chosen)"
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
        pass
    codec = _detected_codec(data)
    try:
        return data.decode(codec), f"{encoding_name(codec)} (detected)"
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1"), "Latin-1 (detected)"


def _detected_codec(data: bytes) -> str:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a listed dependency
        return "cp1252"
    matches = list(from_bytes(data[: 2 * 1024**2]))
    if not matches:
        return "cp1252"
    best = matches[0]
    if codecs.lookup(best.encoding).name in {codecs.lookup(c).name for c in _MULTIBYTE}:
        return best.encoding
    for match in matches:
        if codecs.lookup(match.encoding).name == "cp1252" and match.chaos <= best.chaos + 0.05:
            return "cp1252"
    return best.encoding


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


def _read_text(data: bytes, label: str, *, text_column: Callable[[str], bool],
               encoding: str | None, columns: list[str] | None, nrows: int | None) -> RawTable:
    text, shown_encoding = decode_text(data, label, encoding)
    del data
    _check_lines(text, label)
    if lay.is_geo(text[:200_000]):
        return _read_geo(text, label, shown_encoding, columns)
    head_lines = text[:400_000].splitlines()[: lay.HEAD_ROWS]
    content = [line for line in head_lines if line.strip() and not line.lstrip('"').startswith("#")]
    if not content:
        raise CohortError(f"{label}: the file has no table in it (it is blank or only comments). "
                          "Choose the file that holds the data.")
    delim = sniff_delimiter(content[:100])
    layout = lay.detect(lay.rows_from_text(head_lines, delim))
    if layout.header >= len(head_lines):
        raise CohortError(f"{label}: the file has no table in it (it is blank or only comments). "
                          "Choose the file that holds the data.")
    header = next(csv.reader([head_lines[layout.header]], delimiter=delim))
    if layout.strip_hash:
        header[0] = header[0].lstrip().lstrip("#")
    names, repeated = _dedupe(header)
    body, footer = _body(text, layout.first_data, delim, len(names))
    del text
    decimal_comma = delim == ";" and bool(_DECIMAL_COMMA.search(body[:200_000]))
    frame = _parse_delimited(body, delim, names, decimal_comma, text_column, label,
                             columns=columns, nrows=nrows)
    frame = _drop_marker_rows(frame, names, layout)
    raw = RawTable(frame, label, _FORMAT_NAMES[delim], "", encoding=shown_encoding)
    raw.evidence = {names[header.index(c)] if c in header else c: ev
                    for c, ev in layout.evidence.items()}
    if columns is not None:
        raw.all_columns = tuple(names)
    raw.format = _text_format(layout, names, raw.format)
    if footer:
        first = layout.first_data + len(body.splitlines()) + 1
        layout.skipped += [(first + k - 1, "footnote line under the table") for k in range(footer)]
    _text_notes(raw, label, shown_encoding, repeated, decimal_comma, layout, header)
    return raw


def _text_format(layout: lay.Layout, names: list[str], plain: str) -> str:
    lowered = {n.lower() for n in names}
    if {"study id", "patient id", "sample id"} <= lowered:
        return f"cBioPortal study-view download ({plain})"
    if any(n.startswith(("vital status recode", "seer cause-specific", "survival months"))
           for n in lowered):
        return f"SEER*Stat case listing ({plain})"
    return f"{layout.kind} ({plain})" if layout.kind else plain


def _body(text: str, first_data: int, delim: str, width: int) -> tuple[str, int]:
    """The text from the first data line on, without footnote lines at the end."""
    body = text.split("\n", first_data)[-1] if first_data else text
    if first_data and text.count("\n") < first_data:
        body = ""
    tail = body[-20_000:].splitlines()[-20:]
    footer = lay.trailing_notes(lay.rows_from_text(tail, delim), width)
    if footer:
        lines = body.rstrip("\r\n").splitlines()
        blank_tail = len(body.splitlines()) - len(lines)
        body = "\n".join(lines[: len(lines) - max(footer - blank_tail, 0)]) + "\n"
    return body, footer


def _parse_delimited(body, delim, names, decimal_comma, text_column, label, *, columns=None,
                     nrows=None) -> pd.DataFrame:
    dtypes = {n: str for n in names if text_column(n)}
    options = {"sep": delim, "names": names, "header": None, "dtype": dtypes}
    if columns is not None:
        options["usecols"] = [n for n in names if n in set(columns)]
    if not body.strip():
        return pd.DataFrame(columns=options.get("usecols", names))
    if not decimal_comma and delim != "|" and nrows is None:
        try:
            return _read_arrow(body, delim, names, list(dtypes), options.get("usecols"))
        except Exception:  # noqa: BLE001 - fall back to the forgiving parser below
            pass
    try:
        return pd.read_csv(io.StringIO(body), decimal="," if decimal_comma else ".",
                           low_memory=False, nrows=nrows, **options)
    except (pd.errors.ParserError, ValueError, csv.Error) as exc:
        raise CohortError(
            f"{label}: the table could not be parsed ({str(exc).strip()[:200]}). Check that "
            "every row has the same number of fields and that quotes are closed."
        ) from exc


_NA_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
              "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


def _read_arrow(body: str, delim: str, names: list[str], text: list[str], usecols) -> pd.DataFrame:
    """The multi-threaded Arrow CSV reader, with identifier columns kept as text (leading zeros:
    pandas' pyarrow engine converts them to numbers first)."""
    import pyarrow as pa
    import pyarrow.csv as pv

    keep = usecols if usecols is not None else names
    table = pv.read_csv(
        io.BytesIO(body.encode("utf-8")),
        read_options=pv.ReadOptions(column_names=names),
        parse_options=pv.ParseOptions(delimiter=delim),
        convert_options=pv.ConvertOptions(column_types={n: pa.string() for n in text},
                                          include_columns=list(keep), null_values=_NA_VALUES,
                                          strings_can_be_null=True),
    )
    frame = table.to_pandas()
    frame.columns = list(keep)
    for column in frame.columns:  # Arrow gives None for missing text; pandas' readers give NaN
        if frame[column].dtype == object:
            frame[column] = frame[column].where(frame[column].notna(), np.nan)
    return frame


def _drop_marker_rows(frame: pd.DataFrame, names: list[str], layout: lay.Layout) -> pd.DataFrame:
    """Rows deeper in the file that repeat the header or hold CDE_ID codes are not patients."""
    if frame.empty:
        return frame
    text = frame.select_dtypes(include="object")
    if text.empty:
        return frame
    # Only rows whose first text cell repeats its column name or starts "CDE_ID:" can be such
    # rows: test those alone (a million-row file costs one comparison per row).
    first = text.iloc[:, 0]
    suspects = (first == str(text.columns[0])) | first.str.startswith("CDE_ID:", na=False)
    if not suspects.any():
        return frame
    rows = text[suspects.to_numpy()]
    header = pd.Series([str(c) for c in rows.columns], index=rows.columns)
    same = rows.eq(header).sum(axis=1) >= max(2, 0.8 * rows.shape[1])
    cde = rows.apply(lambda s: s.astype(str).str.startswith("CDE_ID:")).sum(axis=1) \
        >= max(2, 0.5 * rows.shape[1])
    marked = same | cde
    drop = np.zeros(len(frame), dtype=bool)
    for label, is_header in same[marked].items():
        i = frame.index.get_loc(label)
        drop[i] = True
        reason = "repeated header row" if is_header else "GDC CDE_ID row (data-element identifiers)"
        layout.skipped.append((layout.first_data + int(i), reason))
    return frame.loc[~drop].reset_index(drop=True) if drop.any() else frame


def _read_geo(text: str, label: str, encoding: str, columns) -> RawTable:
    table = lay.read_geo(text)
    frame = table.frame
    if frame.empty:
        raise CohortError(f"{label} is a GEO file without samples (no '!Sample_' lines). "
                          "Download the series matrix of the study (GSE…_series_matrix.txt.gz).")
    frame.columns = _dedupe([str(c) for c in frame.columns])[0]
    all_columns = tuple(frame.columns)
    if columns is not None:
        frame = frame[[c for c in frame.columns if c in set(columns)]]
    raw = RawTable(frame, label, table.kind, "", encoding=encoding)
    raw.all_columns = all_columns if columns is not None else ()
    raw.notes.append(("info", "", f"{label} is a {table.kind} file: one row per sample "
                      f"({len(frame):,}), one column per '!Sample_characteristics' key."))
    raw.notes += [("info", "", note) for note in table.notes]
    return raw


def _text_notes(raw, label, encoding, repeated, decimal_comma, layout: lay.Layout, header) -> None:
    if encoding not in ("UTF-8", "UTF-8 with BOM"):
        raw.notes.append(("info", "", f"{label} is encoded as {encoding}; it was converted. "
                          "Choose another encoding before uploading if the text looks wrong."))
    for name in dict.fromkeys(repeated):
        raw.notes.append(("warning", name, f"Column name {name!r} appears more than once; the "
                          "copies were renamed with .1, .2 ... Rename them in the source file."))
    if decimal_comma:
        raw.notes.append(("info", "", "Numbers use decimal commas (1,5); they were read as 1.5."))
    if layout.skipped:
        raw.notes.append(("info", "", f"{label}: not patients, skipped: "
                          f"{layout.skipped_text()}."))
    if layout.strip_hash:
        raw.notes.append(("info", "", "The header line starts with '#'; it was read as the "
                          "header."))
    looks_cbio = Path(label).name.startswith("data_clinical") or "PATIENT_ID" in header
    n_hash = layout.hash_rows
    if looks_cbio and n_hash not in (0, 4, 5):
        raw.notes.append(("warning", "", f"{label} has {n_hash} '#' header rows, where "
                          "cBioPortal files have 4; the first non-# line was used as the header."))
    elif looks_cbio and n_hash == 0 and Path(label).name.startswith("data_clinical"):
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


def _excel_sheets(data: bytes, label: str, kind: str, nrows: int | None) -> dict[str, pd.DataFrame]:
    """Every sheet as cells without a header (the header row is found by :mod:`.layout`)."""
    if kind == "xlsx":
        _check_zip(data, label)
    try:
        book = pd.ExcelFile(io.BytesIO(data), engine="calamine")
        names = book.sheet_names
        if len(names) > MAX_SHEETS:
            raise CohortError(f"{label} has {len(names)} sheets; the limit is {MAX_SHEETS}. "
                              "Copy the sheets you need into a new workbook, or choose one with "
                              "sheet=.")
        limit = None if nrows is None else nrows + lay.HEAD_ROWS
        return {name: book.parse(name, header=None, nrows=limit) for name in names}
    except CohortError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a damaged-file message
        raise CohortError(f"{label}: the Excel file could not be read ({type(exc).__name__}: "
                          f"{str(exc)[:200]}). Open it in Excel and save it again, or export "
                          "it as CSV.") from exc


@dataclass
class _Sheet:
    name: str
    frame: pd.DataFrame
    layout: lay.Layout


def _sheet_table(name: str, cells: pd.DataFrame) -> _Sheet:
    cells = cells.dropna(how="all", axis=1).dropna(how="all", axis=0).reset_index(drop=True)
    cells.columns = range(cells.shape[1])
    rows = lay.rows_from_frame(cells)
    layout = lay.detect(rows)
    if cells.empty or layout.header >= len(cells):
        return _Sheet(name, pd.DataFrame(), layout)
    header = rows[layout.header]
    if layout.strip_hash:
        header = [header[0].lstrip("#").strip(), *header[1:]]
    body = cells.iloc[layout.first_data:].reset_index(drop=True)
    footer = lay.trailing_notes(lay.rows_from_frame(body.iloc[-20:]), len(lay._filled(header)))
    if footer:
        body = body.iloc[: len(body) - footer]
        start = layout.first_data + len(body)
        layout.skipped += [(start + k, "footnote line under the table") for k in range(footer)]
    names, _ = _dedupe([h if h else f"Unnamed: {j}" for j, h in enumerate(header)])
    body.columns = names
    body = body.dropna(how="all", axis=1).dropna(how="all", axis=0).reset_index(drop=True)
    body = body.infer_objects()
    layout.evidence = {c: ev for c, ev in layout.evidence.items() if c in body.columns}
    return _Sheet(name, body, layout)


def _read_excel(data, label, kind, *, sheet, id_column, nrows=None) -> RawTable:
    raw_sheets = _excel_sheets(data, label, kind, nrows)
    fmt = "Excel (.xlsx)" if kind == "xlsx" else "Excel (.xls)"
    if sheet is not None:
        names = list(raw_sheets)
        chosen = names[sheet] if isinstance(sheet, int) and -len(names) <= sheet < len(names) else sheet
        if chosen not in raw_sheets:
            raise CohortError(f"{label} has no sheet {sheet!r}; its sheets are {names}.")
        table = _sheet_table(str(chosen), raw_sheets[chosen])
        raw = RawTable(table.frame, label, fmt, "", (str(chosen),), evidence=table.layout.evidence)
        _sheet_notes(raw, [table])
        return raw
    tables, dictionaries = [], {}
    for name, cells in raw_sheets.items():
        table = _sheet_table(str(name), cells)
        if table.frame.empty:
            continue
        if id_column(list(table.frame.columns)) is None:
            entries = lay.read_dictionary(lay.rows_from_frame(cells.dropna(how="all", axis=1)),
                                          f"data dictionary sheet '{name}'")
            if entries:
                dictionaries[str(name)] = entries
                continue
        tables.append(table)
    if not tables:
        raise CohortError(f"{label}: every sheet is empty. Choose the workbook that holds the data.")
    raw = _combine_sheets(tables, label, fmt, id_column)
    _sheet_notes(raw, [t for t in tables if t.name in raw.sheets])
    _attach_dictionaries(raw, dictionaries)
    return raw


def _sheet_notes(raw: RawTable, tables: list[_Sheet]) -> None:
    for table in tables:
        if table.layout.skipped:
            raw.notes.append(("info", "", f"Sheet {table.name!r}: not patients, skipped: "
                              f"{table.layout.skipped_text()}."))
        for column, ev in table.layout.evidence.items():
            raw.evidence.setdefault(column, ev)
    kinds = {t.layout.kind for t in tables if t.layout.kind}
    if kinds:
        raw.format = f"{raw.format}, {', '.join(sorted(kinds))} layout"


def _attach_dictionaries(raw: RawTable, dictionaries: dict[str, dict]) -> None:
    if not dictionaries:
        return
    entries: dict[str, ColumnEvidence] = {}
    for found in dictionaries.values():
        entries.update(found)
    matched = attach([str(c) for c in raw.frame.columns], entries)
    for column, ev in matched.items():
        if column in raw.evidence:
            raw.evidence[column].merge(ev)
        else:
            raw.evidence[column] = ev
    raw.notes.append(("info", "", f"Data dictionary sheet(s) {list(dictionaries)} were read as "
                      f"descriptions of {len(matched)} column(s), not as patients; their "
                      "descriptions and codes are used to map the columns."))


def _combine_sheets(tables: list[_Sheet], label, fmt, id_column) -> RawTable:
    names = [t.name for t in tables]
    filled = {t.name: t.frame for t in tables}
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


def _read_parquet(data: bytes, label: str, *, columns=None, nrows=None) -> RawTable:
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(io.BytesIO(data))
        rows = handle.metadata.num_rows
        if rows > MAX_ROWS:
            raise CohortError(f"{label}: {rows:,} rows; the limit is {MAX_ROWS:,}. Split the "
                              "file by study, or filter it before uploading.")
        every = [str(c) for c in handle.schema_arrow.names]
        keep = None if columns is None else [c for c in every if c in set(columns)]
        if nrows is not None:
            batch = next(handle.iter_batches(batch_size=nrows, columns=keep), None)
            frame = batch.to_pandas() if batch is not None else pd.DataFrame(columns=keep or every)
        else:
            frame = handle.read(columns=keep).to_pandas()
    except CohortError:
        raise
    except Exception as exc:  # noqa: BLE001 - any pyarrow failure is a damaged-file message
        raise CohortError(f"{label}: the Parquet file could not be read ({type(exc).__name__}: "
                          f"{str(exc)[:200]}). Write it again, or export the data as CSV.") from exc
    frame = frame.reset_index(drop=True)
    frame.columns = _dedupe([str(c) for c in frame.columns])[0]
    raw = RawTable(frame, label, "Parquet", "")
    if columns is not None:
        raw.all_columns = tuple(every)
    return raw
