"""Grouped count tables: patients collapsed into cells of identical values.

Many analyses depend on the patients only through how many of them share each combination of a
few values: a Kaplan-Meier curve through the patients per (group, time, event), a pCR rate
through the patients per (group, pCR), a Cox model of categorical terms through the patients per
(time, event, term levels). A :class:`Counts` holds exactly that: one row per distinct
combination of its columns and the number of patients in it (column ``n_patients``).

These functions accept a :class:`Counts` wherever they accept patient rows, and give the same
numbers (the same sums, added in a different order; equal to ~1e-12 relative):
:func:`~her2er_dash.survival.kaplan_meier`, :func:`~her2er_dash.survival.logrank`,
:func:`~her2er_dash.survival.cox` (with its proportional-hazards test),
:func:`~her2er_dash.response.pcr_rates`, :func:`~her2er_dash.response.compare`,
:func:`~her2er_dash.response.pcr_definitions`, :func:`~her2er_dash.subgroups.forest` and
:func:`~her2er_dash.contrasts.two_level_forest`. Rows excluded for missing values are counted in
patients, not cells. Other analyses need patient rows (continuous covariates, quantiles, splines)
and do not accept counts.

A :class:`Counts` is built from patient rows with :meth:`Counts.from_rows`, or by a database
(``her2er_dash.engine`` builds them with one ``GROUP BY`` over a registry without loading it)::

    from her2er_dash import counts, survival
    cells = counts.Counts.from_rows(df, ["arm", "efs_months", "efs_event"])
    survival.kaplan_meier(cells, "efs_months", "efs_event", by="arm")   # = the row-level curve

Missing values are cells of their own (``NaN``/``None``), so exclusions are counted exactly as
on rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import AnalysisError

#: The column holding each cell's number of patients.
COUNT = "n_patients"


@dataclass(frozen=True, eq=False)
class Counts:
    """Patients grouped into cells: ``table`` has one row per cell, its value columns and
    ``n_patients`` (whole numbers >= 1). Cells need not be unique: two rows with the same values
    count as one cell of their summed patients."""

    table: pd.DataFrame

    def __post_init__(self) -> None:
        if COUNT not in self.table.columns:
            raise AnalysisError(
                f"A count table needs a {COUNT!r} column with the number of patients per cell."
            )
        n = pd.to_numeric(self.table[COUNT], errors="coerce").to_numpy(dtype=float)
        if not (np.all(np.isfinite(n)) and np.all(n >= 1) and np.all(n % 1 == 0)):
            raise AnalysisError(
                f"{COUNT!r} must hold whole numbers >= 1 (patients per cell); drop empty cells "
                "and recompute the counts."
            )

    @classmethod
    def from_rows(cls, df: pd.DataFrame, columns: Sequence[str]) -> Counts:
        """Patient rows collapsed on ``columns`` (missing values form cells of their own)."""
        columns = list(dict.fromkeys(columns))
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise AnalysisError(f"The data has no column {', '.join(map(repr, missing))}.")
        if COUNT in columns:
            raise AnalysisError(f"{COUNT!r} is the count column; it cannot be a cell column.")
        if not len(df):
            raise AnalysisError("There are no patients to count.")
        grouped = df[columns].groupby(columns, dropna=False, observed=True, sort=False).size()
        return cls(_cells(grouped, df))

    def summed(self, columns: Sequence[str]) -> Counts:
        """The cells collapsed onto ``columns`` (a subset of :attr:`columns`), patients summed:
        e.g. per-study cells as the pooled table, the same cells a count on ``columns`` gives."""
        columns = list(dict.fromkeys(columns))
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            raise AnalysisError(f"The count table has no column {', '.join(map(repr, unknown))}.")
        grouped = self.table.groupby(columns, dropna=False, observed=True, sort=False)[COUNT].sum()
        return Counts(_cells(grouped, self.table))

    @property
    def columns(self) -> list[str]:
        """The value columns of the cells (every column but ``n_patients``)."""
        return [c for c in self.table.columns if c != COUNT]

    @property
    def n(self) -> int:
        """Number of patients."""
        return int(self.table[COUNT].sum())

    def __len__(self) -> int:
        """Number of cells (rows of ``table``)."""
        return len(self.table)

    def __repr__(self) -> str:
        return f"Counts({self.n:,} patients in {len(self):,} cells of {self.columns})"


def _cells(grouped: pd.Series, source: pd.DataFrame) -> pd.DataFrame:
    """Patients per group as a count table, with ``source``'s dtypes (a categorical stays
    categorical)."""
    table = grouped.rename(COUNT).reset_index()
    for column in table.columns[:-1]:
        if isinstance(source[column].dtype, pd.CategoricalDtype):
            table[column] = pd.Categorical(table[column], dtype=source[column].dtype)
    table[COUNT] = table[COUNT].astype(np.int64)
    return table


def unpack(data) -> tuple[pd.DataFrame, str | None]:
    """``(frame, count column)``: a patient-level frame with ``None``, or a :class:`Counts`'
    table with ``"n_patients"`` (what the analyses use to weight each row)."""
    if isinstance(data, Counts):
        return data.table, COUNT
    return data, None


def weights(frame: pd.DataFrame, count: str | None) -> np.ndarray | None:
    """Patients per row as int64 (None for patient rows: one each)."""
    if count is None:
        return None
    return frame[count].to_numpy(dtype=np.int64)


def patients(frame: pd.DataFrame, count: str | None) -> int:
    """Number of patients in ``frame`` (rows, or the sum of the counts)."""
    return len(frame) if count is None else int(frame[count].sum())


def refuse(data, what: str) -> None:
    """Raise a clear error when an analysis that needs patient rows receives counts."""
    if isinstance(data, Counts):
        raise AnalysisError(
            f"{what} needs patient rows (it uses individual values, not counts per cell); "
            "pass the patient-level data."
        )
