"""Memory footprint of uploaded cohorts: compact representation, estimates and a budget.

A hosted app shares one memory ceiling between all its users (Streamlit Community Cloud: about
2.7 GB), so an upload that would not fit is refused *before* it is parsed, with a message that
names the file, its estimated size, the budget and the fix, instead of taking the server down.

:func:`estimate_upload` reads only a file's header (Parquet metadata; the first line and the line
count of a text file) and predicts the memory its cohort will hold once loaded and analysed:
``rows x columns read x bytes per value x`` :data:`WORKING_COPIES`, plus the file's bytes while
they are parsed. The number of working copies was measured with ``benchmarks/app_pages.py``
(1M patients, every page visited): the canonical cohort, its filtered copies (the current view and
those the app's frame cache keeps), the analyses' temporary arrays, and the parsed table kept for
re-mapping when it is small (:func:`keeps_table_for_remapping`).

:func:`compact_frame` stores a loaded cohort's repeated texts (study, arm, grade, ...) as
categoricals, as the bundled cohorts are stored: at 1M patients each such column falls from
~60 MB of Python strings to ~1 MB of codes; its patient IDs, distinct per patient, become Arrow
strings (~65 MB of Python strings -> ~15 MB).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import CohortError
from .schema import CANONICAL_COLUMNS

#: Bytes per value of a numeric or categorical column once loaded (float64; a text column
#: before compaction costs more, after it less).
BYTES_PER_VALUE = 8
#: Copies of the analysed columns alive at the peak of a session (see the module docstring).
WORKING_COPIES = 6
#: Files larger than this are read for the columns the mapping uses only (``cohort.read_source``).
LARGE_FILE_BYTES = 50 * 1024**2
#: The app keeps an upload's parsed table (to re-map it without the file) only up to this many
#: values (rows x columns, the size at which ``cohort.read_source`` reads a file's mapped columns
#: only). Larger, only its first :data:`REMAP_SAMPLE_ROWS` rows are kept, to guide the mapping
#: editor: at 1M patients x 27 columns the compacted table held ~120 MB for the session's
#: lifetime, a quarter of the memory of a whole-app visit (``benchmarks/app_pages.py``).
REMAP_TABLE_CELLS = 5_000_000
REMAP_SAMPLE_ROWS = 5_000
#: Identifier columns: one distinct value per patient, so categories do not help; their texts
#: are stored as Arrow strings (one buffer, ~15 bytes per patient) instead of one Python string
#: each (~65 bytes): ~50 MB less at 1M patients, for the session's lifetime.
_IDENTIFIERS = ("patient_id",)


@dataclass(frozen=True)
class UploadEstimate:
    """What a file will cost in memory once loaded: its rows and columns (as far as the header
    tells) and the estimated bytes."""

    name: str
    file_bytes: int
    rows: int
    columns: int
    bytes: int

    def describe(self) -> str:
        return (f"{self.name}: about {self.rows:,} rows x {self.columns} columns, an estimated "
                f"{mb_text(self.bytes)} of server memory once loaded and analysed")


def mb_text(n: float) -> str:
    """Bytes as MB for a message ("0.4 MB", "1,532 MB")."""
    mb = n / 1024**2
    return f"{mb:,.1f} MB" if mb < 10 else f"{mb:,.0f} MB"


def table_shape(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) of a Parquet or delimited text file from its header, or None."""
    if data[:4] == b"PAR1":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        return meta.num_rows, meta.num_columns
    if data[:2] == b"PK" or data[:4] == b"\xd0\xcf\x11\xe0":  # Excel: no cheap row count
        return None
    first = data[: data.find(b"\n") if b"\n" in data else len(data)]
    delimiter = max((b",", b"\t", b";", b"|"), key=first.count)
    rows = max(data.count(b"\n") - 1 + (not data.endswith(b"\n")), 0)
    return rows, first.count(delimiter) + 1


def estimate_upload(data: bytes, name: str) -> UploadEstimate:
    """The memory an uploaded file's cohort will need (see the module docstring).

    A large file is read for the columns its mapping uses only, so at most as many columns as
    the canonical schema has count. An Excel workbook (no cheap row count) is costed at ten
    times its compressed size, the usual expansion of its XML.
    """
    shape = table_shape(data)
    if shape is None:
        return UploadEstimate(name, len(data), 0, 0, len(data) * 10)
    rows, columns = shape
    if len(data) > LARGE_FILE_BYTES:
        columns = min(columns, len(CANONICAL_COLUMNS))
    needed = len(data) + rows * columns * BYTES_PER_VALUE * WORKING_COPIES
    return UploadEstimate(name, len(data), rows, columns, int(needed))


def check_budget(estimates: list[UploadEstimate], budget_bytes: int | None) -> None:
    """CohortError when the files together would not fit ``budget_bytes`` (None: no budget)."""
    if budget_bytes is None or not estimates:
        return
    total = sum(e.bytes for e in estimates)
    if total <= budget_bytes:
        return
    what = "; ".join(e.describe() for e in estimates)
    raise CohortError(
        f"{what}. This server allows {mb_text(budget_bytes)} per upload (its memory is shared by "
        "every user), so the file was not loaded. Fix: upload only the columns the analysis "
        "needs (patient ID, ER/HER2 measures, pCR, times and events) or fewer patients (e.g. "
        "one study), or ask the operator to place the file in the server's data folder, where "
        "a registry of any size is queried in place without loading it."
    )


def keeps_table_for_remapping(rows: int, columns: int) -> bool:
    """Whether a parsed table of this shape is small enough to keep whole for re-mapping
    (:data:`REMAP_TABLE_CELLS`); a larger one is re-mapped by uploading the file again."""
    return rows * columns <= REMAP_TABLE_CELLS


def compact_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its repeated texts as categoricals (categories sorted, as the bundled
    cohorts store them) and its identifiers' texts as Arrow strings (as ``cohort.compact``
    stores mostly-distinct texts); numbers and other mostly-distinct texts unchanged. The
    values are the same: only their representation changes."""
    import pyarrow as pa

    out = frame.copy(deep=False)
    for column in out.columns:
        values = out[column]
        if values.dtype != object:
            continue
        texts = values.dropna()
        if not len(texts) or pd.api.types.infer_dtype(texts, skipna=True) != "string":
            continue
        if column in _IDENTIFIERS:
            out[column] = values.astype(pd.ArrowDtype(pa.string()))
        elif texts.nunique() <= max(50, len(values) // 4):
            out[column] = pd.Categorical(values, categories=np.sort(texts.unique()))
    out.attrs = dict(frame.attrs)
    return out
