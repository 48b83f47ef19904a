"""Table 1: the cohort described by ER x HER2 group.

:func:`table_one` returns one row per characteristic (``variable``, ``level``) and one text
column per group plus ``All``: n, age median [IQR], stage, grade, nodes, arm and study counts
(%), pCR availability and rate, and per endpoint the patients with data, events and median
follow-up (reverse Kaplan-Meier: the Kaplan-Meier median with censoring as the "event").
Patients whose group is unknown appear in a ``Missing group`` column, so every patient is
counted once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._data import Exclusions, as_list, require_columns
from .errors import AnalysisError
from .schema import (
    COMPETING_ENDPOINTS,
    ENDPOINT_LABELS,
    ENDPOINTS,
    column_label,
    event_column,
    time_column,
)

_CATEGORY_ROWS = (("t_stage", "T stage"), ("grade", "Grade"), ("n_stage", "Nodes"),
                  ("arm", "Arm"), ("study", "Study"))
MISSING_GROUP = "Missing group"
#: Columns a Table 1 reads (besides endpoint times and events).
_SUMMARISED = ("age", "pcr", *(c for c, _ in _CATEGORY_ROWS))


def reverse_km_median(time: np.ndarray, event: np.ndarray) -> float:
    """Median follow-up: Kaplan-Meier median of the censoring times (NaN if never reached)."""
    ok = np.isfinite(time) & np.isin(event, (0, 1))
    time, censored = time[ok], (event[ok] == 0).astype(float)
    if len(time) == 0:
        return float("nan")
    order = np.argsort(time, kind="stable")
    time, censored = time[order], censored[order]
    unique, first = np.unique(time, return_index=True)
    d = np.add.reduceat(censored, first)
    at_risk = len(time) - first
    surv = np.cumprod(1.0 - d / at_risk)
    below = np.flatnonzero(surv <= 0.5)
    return float(unique[below[0]]) if below.size else float("nan")


def _pct(k: int, n: int) -> str:
    return f"{k:,} ({100 * k / n:.0f}%)" if n else "0"


def _natural_key(value) -> tuple:
    """Order levels as a reader expects: T1 < T2 < T10, numbers by value."""
    import re

    parts = re.split(r"(\d+)", str(value))
    return tuple(int(p) if p.isdigit() else p for p in parts)


def _level_counts(values: pd.Series) -> dict:
    """Patients per present value, missing ones under "missing" (counted, not converted)."""
    counts: dict = {}
    for value, k in values.value_counts(dropna=False).items():
        if k:
            key = "missing" if pd.isna(value) else value
            counts[key] = counts.get(key, 0) + int(k)
    return counts


def _group_rows(df: pd.DataFrame) -> list[tuple[str, str, str]]:
    rows = [("n", "", f"{len(df):,}")]
    if "age" in df:
        age = pd.to_numeric(df["age"], errors="coerce").dropna()
        text = (f"{age.median():.0f} [{age.quantile(0.25):.0f}-{age.quantile(0.75):.0f}]"
                if len(age) else "-")
        rows.append(("Age, median [IQR]", "", text))
    for col, label in _CATEGORY_ROWS:
        if col in df:
            counts = _level_counts(df[col])
            levels = sorted(counts, key=lambda v: (v == "missing", _natural_key(v)))
            rows += [(label, str(level), _pct(counts[level], len(df))) for level in levels]
    if "pcr" in df:
        pcr = pd.to_numeric(df["pcr"], errors="coerce")
        known = pcr.isin([0, 1])
        rows.append(("pCR", "available", _pct(int(known.sum()), len(df))))
        rows.append(("pCR", "rate", _pct(int((pcr[known] == 1).sum()), int(known.sum()))))
    for endpoint in ENDPOINTS:
        tcol, ecol = time_column(endpoint), event_column(endpoint)
        if tcol in df and ecol in df:
            rows += _endpoint_rows(df, endpoint, tcol, ecol)
    return rows


def _endpoint_rows(df, endpoint, tcol, ecol) -> list[tuple[str, str, str]]:
    time = pd.to_numeric(df[tcol], errors="coerce").to_numpy(dtype=float)
    event = pd.to_numeric(df[ecol], errors="coerce").to_numpy(dtype=float)
    competing = endpoint in COMPETING_ENDPOINTS  # codes 0 / 1 / 2...: 2+ are competing events
    ok = np.isfinite(time) & (np.isin(event, (0, 1)) | (competing & (event >= 2)))
    label = ENDPOINT_LABELS[endpoint]
    # Follow-up is the time to censoring: any event (competing ones too) ends follow-up.
    follow = reverse_km_median(time, np.where(event >= 1, 1.0, event))
    rows = [
        (label, "with data", _pct(int(ok.sum()), len(df))),
        (label, "events", f"{int((event[ok] == 1).sum()):,}"),
    ]
    if competing:
        rows.append((label, "competing events", f"{int((event[ok] >= 2).sum()):,}"))
    rows.append((label, "median follow-up, months", "-" if np.isnan(follow) else f"{follow:.1f}"))
    return rows


def table_one(df: pd.DataFrame, *, by=("er_category", "her2_status")) -> pd.DataFrame:
    """Cohort summary by group (see module docstring); text cells, one column per group + All.

    ``result.attrs["exclusions"]`` counts the patients whose group is unknown (they are shown
    in the ``Missing group`` column and in ``All``, never dropped).
    """
    by = as_list(by)
    require_columns(df, by)
    if df.empty:
        raise AnalysisError("The cohort is empty, so there is nothing to summarise. Load a "
                            "cohort, or relax the filters.")
    group, labels = _group_codes(df[by])
    missing = group < 0
    order = [k for k in _ordered_groups(df, by, labels) if (group == k).any()]
    if missing.any():
        order.append(-1)
    # _group_rows reads these columns only: each group is copied with them alone, one group at
    # a time, and "All" reads the cohort itself (a copy of them all cost ~100 MB at 1M patients).
    used = [c for c in df.columns if c in _SUMMARISED or c.endswith(("_months", "_event"))]
    columns = {
        (labels[k] if k >= 0 else MISSING_GROUP): _group_rows(df.loc[group == k, used])
        for k in order
    }
    columns["All"] = _group_rows(df)
    table = _assemble(columns)
    reasons = ((f"missing {' / '.join(map(column_label, by))} (shown as '{MISSING_GROUP}')",
                int(missing.sum())),)
    table.attrs["exclusions"] = Exclusions(len(df), int((~missing).sum()),
                                           reasons if missing.any() else ())
    return table


def _group_codes(keys: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Each row's group (-1 when any key is missing) and the group labels ("ER-low / positive"),
    built from integer codes: joining text row by row took seconds at 1M patients."""
    group = np.zeros(len(keys), dtype=np.int64)
    names: list[list[str]] = []
    for column in keys.columns:
        codes, uniques = pd.factorize(keys[column])
        names.append([str(u) for u in uniques])
        group = np.where((group < 0) | (codes < 0), -1, group * len(uniques) + codes)
    labels = [" / ".join(parts) for parts in _product(names)]
    return group, labels


def _product(names: list[list[str]]) -> list[list[str]]:
    combos: list[list[str]] = [[]]
    for values in names:
        combos = [c + [v] for c in combos for v in values]
    return combos


def _ordered_groups(df: pd.DataFrame, by: list[str], labels: list[str]) -> list[int]:
    """Group codes in category order when the columns are categorical, else sorted by text."""
    position = {label: k for k, label in enumerate(labels)}
    return [position[g] for g in _ordered_levels(df, by) if g in position]


def _ordered_levels(df: pd.DataFrame, by: list[str]) -> list[str]:
    """Group labels in category order when the columns are categorical, else sorted."""
    levels = []
    for col in by:
        series = df[col]
        cats = (list(series.cat.categories) if isinstance(series.dtype, pd.CategoricalDtype)
                else sorted({str(v) for v in series.unique() if not pd.isna(v)}))
        levels.append([str(c) for c in cats])
    return [" / ".join(c) for c in _product(levels)]


def _assemble(columns: dict[str, list[tuple[str, str, str]]]) -> pd.DataFrame:
    levels: dict[str, dict[str, None]] = {}
    for rows in columns.values():
        for variable, level, _ in rows:
            levels.setdefault(variable, {}).setdefault(level, None)
    keys = [(v, lv) for v, lvs in levels.items() for lv in lvs]
    table = pd.DataFrame(keys, columns=["variable", "level"])
    for group, rows in columns.items():
        cells = {(v, lv): text for v, lv, text in rows}
        table[group] = [cells.get(k, "-") for k in keys]
    return table
