"""Two-level contrasts of a many-level exposure (e.g. one arm against another) for forest plots."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from . import subgroups
from ._data import Exclusions, as_list, matches_text, require_columns
from .counts import Counts, patients, unpack
from .errors import AnalysisError
from .schema import column_label


def two_level_forest(
    df,
    *,
    exposure: str,
    level: str,
    reference: str,
    subgroups_: list[str],
    outcome: str | tuple[str, str] = "pcr",
    alpha: float = 0.05,
    progress: Callable[[float, str], None] | None = None,
) -> pd.DataFrame:
    """Subgroup forest of ``exposure == level`` against ``exposure == reference``.

    Patients in any other level of ``exposure`` are excluded and counted in
    ``attrs["contrast_exclusions"]``; the forest's own exclusions stay in ``attrs["exclusions"]``.
    ``df`` may be a :class:`~her2er_dash.counts.Counts` (see :func:`subgroups.forest`).
    """
    if level == reference:
        raise AnalysisError("Choose two different levels to compare.")
    outcomes = [outcome] if isinstance(outcome, str) else list(outcome)
    df, count = unpack(df)
    needed = list(dict.fromkeys([exposure, *subgroups_, *outcomes, *as_list(count)]))
    require_columns(df, needed)
    is_level = matches_text(df[exposure], [str(level)])
    keep = is_level | matches_text(df[exposure], [str(reference)])
    # Only the columns the forest reads are copied (a registry cohort has dozens).
    subset = df[needed].take(np.flatnonzero(keep))
    subset[exposure] = is_level[keep].astype(int)
    table = subgroups.forest(
        subset if count is None else Counts(subset),
        exposure=exposure,
        subgroups=subgroups_,
        outcome=outcome,
        reference=0,
        alpha=alpha,
        progress=progress,
    )
    total, kept = patients(df, count), patients(df[keep], count)
    other = total - kept
    reasons = ((f"{column_label(exposure)} not {level} or {reference}", other),) if other else ()
    table.attrs["contrast_exclusions"] = Exclusions(total, kept, reasons)
    table.attrs["contrast"] = f"{column_label(exposure)}: {level} vs {reference}"
    return table


def level_subset(df: pd.DataFrame, column: str, levels) -> pd.DataFrame:
    """The patients whose ``column`` is one of ``levels``, with ``column`` as plain text holding
    only those levels (so a two-level comparison sees exactly two). The others are counted in
    ``attrs["subset_exclusions"]``."""
    require_columns(df, [column])
    wanted = [str(v) for v in levels]
    keep = matches_text(df[column], wanted)
    out = df.take(np.flatnonzero(keep))
    out[column] = _as_text(out[column])
    other = int((~keep).sum())
    reasons = ((f"{column_label(column)} not {' or '.join(wanted)}", other),) if other else ()
    out.attrs["subset_exclusions"] = Exclusions(len(df), int(keep.sum()), reasons)
    return out


def _as_text(values: pd.Series) -> np.ndarray:
    """``values.astype(str)`` as an object array; a categorical's rows share its categories'
    strings (one string per level, not one per patient: ~50 MB less at 700k patients)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        labels = np.append(values.cat.categories.astype(str).to_numpy(dtype=object), "nan")
        return labels[values.cat.codes.to_numpy()]
    return values.astype(str).to_numpy(dtype=object)
