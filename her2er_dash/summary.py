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
from .schema import ENDPOINT_LABELS, ENDPOINTS, event_column, time_column

_CATEGORY_ROWS = (("t_stage", "T stage"), ("grade", "Grade"), ("n_stage", "Nodes"),
                  ("arm", "Arm"), ("study", "Study"))
MISSING_GROUP = "Missing group"


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


def _group_rows(df: pd.DataFrame) -> list[tuple[str, str, str]]:
    rows = [("n", "", f"{len(df):,}")]
    if "age" in df:
        age = pd.to_numeric(df["age"], errors="coerce").dropna()
        text = (f"{age.median():.0f} [{age.quantile(0.25):.0f}-{age.quantile(0.75):.0f}]"
                if len(age) else "-")
        rows.append(("Age, median [IQR]", "", text))
    for col, label in _CATEGORY_ROWS:
        if col in df:
            counts = df[col].astype(object).where(df[col].notna(), "missing").value_counts()
            levels = sorted(counts.index, key=lambda v: (v == "missing", _natural_key(v)))
            rows += [(label, str(level), _pct(int(counts[level]), len(df))) for level in levels]
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
    ok = np.isfinite(time) & np.isin(event, (0, 1))
    label = ENDPOINT_LABELS[endpoint]
    follow = reverse_km_median(time, event)
    return [
        (label, "with data", _pct(int(ok.sum()), len(df))),
        (label, "events", f"{int((event[ok] == 1).sum()):,}"),
        (label, "median follow-up, months", "-" if np.isnan(follow) else f"{follow:.1f}"),
    ]


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
    keys = df[by].astype(object)
    missing = keys.isna().any(axis=1).to_numpy()
    labels = keys.astype(str).agg(" / ".join, axis=1).where(~missing, MISSING_GROUP)
    order = [g for g in _ordered_levels(df, by) if (labels == g).any()]
    if missing.any():
        order.append(MISSING_GROUP)
    columns = {g: _group_rows(df[labels.to_numpy() == g]) for g in order}
    columns["All"] = _group_rows(df)
    table = _assemble(columns)
    reasons = ((f"missing {'/'.join(by)} (shown as '{MISSING_GROUP}')", int(missing.sum())),)
    table.attrs["exclusions"] = Exclusions(len(df), int((~missing).sum()),
                                           reasons if missing.any() else ())
    return table


def _ordered_levels(df: pd.DataFrame, by: list[str]) -> list[str]:
    """Group labels in category order when the columns are categorical, else sorted."""
    levels = []
    for col in by:
        series = df[col]
        cats = (list(series.cat.categories) if isinstance(series.dtype, pd.CategoricalDtype)
                else sorted(series.dropna().astype(str).unique()))
        levels.append([str(c) for c in cats])
    combos = [[]]
    for values in levels:
        combos = [c + [v] for c in combos for v in values]
    return [" / ".join(c) for c in combos]


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
