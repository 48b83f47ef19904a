"""Row selection shared by every analysis: which rows are usable, and why the others are not.

Every analysis works on complete cases of the columns it needs. Rows are never dropped silently:
each exclusion is counted under a plain-language reason and travels with the result as an
:class:`Exclusions` record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import AnalysisError


@dataclass(frozen=True)
class Exclusions:
    """How many rows an analysis received, used, and left out (with the reason for each)."""

    n_input: int
    n_used: int
    reasons: tuple[tuple[str, int], ...] = ()

    @property
    def n_excluded(self) -> int:
        return self.n_input - self.n_used

    def describe(self) -> str:
        """One line, e.g. ``"n = 480 of 500 (excluded: 20 missing efs_months)"``."""
        text = f"n = {self.n_used:,} of {self.n_input:,}"
        if self.reasons:
            text += " (excluded: " + "; ".join(f"{n:,} {why}" for why, n in self.reasons) + ")"
        return text

    def as_frame(self) -> pd.DataFrame:
        rows = [("analysed", self.n_used), *self.reasons]
        return pd.DataFrame(rows, columns=["reason", "n"])


def as_list(columns: str | Sequence[str] | None) -> list[str]:
    """Normalise a column argument (one name, several, or None) to a list."""
    if columns is None:
        return []
    if isinstance(columns, str):
        return [columns]
    return list(columns)


def require_columns(df: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise :class:`AnalysisError` naming every requested column that the data lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AnalysisError(
            f"The data has no column {', '.join(repr(c) for c in missing)}. "
            "Map a column to it on the Cohort page, or choose another variable."
        )


def complete_cases(
    df: pd.DataFrame, columns: Iterable[str], *, what: str = "this analysis"
) -> tuple[pd.DataFrame, Exclusions]:
    """Rows with a value in every one of ``columns``; the others are counted per first missing column."""
    columns = list(dict.fromkeys(columns))
    require_columns(df, columns)
    keep = np.ones(len(df), dtype=bool)
    reasons: list[tuple[str, int]] = []
    for col in columns:
        missing = keep & df[col].isna().to_numpy()
        if missing.any():
            reasons.append((f"missing {col}", int(missing.sum())))
            keep &= ~missing
    out = df.loc[keep]
    excl = Exclusions(len(df), int(keep.sum()), tuple(reasons))
    if out.empty:
        raise AnalysisError(f"No patient has every value needed for {what}: {excl.describe()}.")
    return out, excl


def survival_frame(
    df: pd.DataFrame, time: str, event: str, other: Iterable[str] = (), *, what: str = "this analysis"
) -> tuple[pd.DataFrame, Exclusions]:
    """Complete cases for a survival analysis, with time as float and event as 0/1 integers.

    Missing or non-finite times are excluded and counted; negative times or events outside {0, 1}
    are data errors and raise :class:`AnalysisError`, because excluding them would hide a coding
    problem (e.g. an inverted or mis-scaled column).
    """
    require_columns(df, [time, event, *other])
    times = pd.to_numeric(df[time], errors="coerce").astype(float)
    events = pd.to_numeric(df[event], errors="coerce").astype(float)
    bad_time = ~np.isfinite(times.to_numpy())
    work = df.assign(**{time: times, event: events})
    if (times < 0).any():
        rows = list(np.flatnonzero((times < 0).to_numpy())[:5])
        raise AnalysisError(
            f"{time} has {int((times < 0).sum())} negative value(s) (first rows {rows}). "
            "Survival times must be >= 0: check the time origin and units of this column."
        )
    codes = events.to_numpy()
    odd_mask = ~np.isnan(codes) & (codes != 0) & (codes != 1)
    if odd_mask.any():
        odd = sorted(set(codes[odd_mask].tolist()))[:5]
        raise AnalysisError(
            f"{event} must be 0 (censored) or 1 (event); found {odd}. "
            "Recode the event column on the Cohort page (and confirm which value means an event)."
        )
    work.loc[bad_time, time] = np.nan
    out, excl = complete_cases(work, [time, event, *other], what=what)
    out = out.astype({event: "int8"})
    if int(out[event].sum()) == 0:
        raise AnalysisError(
            f"There are no events in {event} among the {len(out):,} patients analysed, so survival "
            "cannot be compared. Check the event coding (is 1 the event?) or choose another endpoint."
        )
    return out, excl
