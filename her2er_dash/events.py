"""Competing-risk event codes built from a cause-of-death (vital status) text column.

The canonical coding (see :mod:`her2er_dash.schema`): 0 = censored, 1 = the event of interest,
2, 3, ... = competing causes. Registries and cBioPortal record the cause as text, e.g. METABRIC's
``VITAL_STATUS`` "Living" / "Died of Disease" / "Died of Other Causes"; :func:`competing_event`
turns such a column into the codes, refusing values it was not told about (a typo or an unknown
status must never silently become "censored").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import CohortError

#: Usual spellings of vital status with cause of death (METABRIC/cBioPortal, SEER-like exports).
VITAL_STATUS_EVENT: tuple[str, ...] = (
    "Died of Disease", "Dead of Disease", "Died of Breast Cancer", "Breast cancer death", "DOD",
)  # fmt: skip
VITAL_STATUS_COMPETING: tuple[str, ...] = (
    "Died of Other Causes", "Died of Other Cause", "Dead of Other Causes", "Other cause death",
    "DOC",
)  # fmt: skip
VITAL_STATUS_CENSORED: tuple[str, ...] = (
    "Living", "Alive", "Alive with Disease", "Alive without Disease", "Alive, no evidence of "
    "disease", "AWD", "NED",
)  # fmt: skip


def text_key(value: object) -> str:
    """Text compared without case, accents, punctuation or repeated spaces."""
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _cause_groups(competing_values) -> list[list[str]]:
    """One list of texts per competing cause (a flat list of texts is a single cause)."""
    values = list(competing_values)
    if all(isinstance(v, str) for v in values):
        return [values]
    return [[v] if isinstance(v, str) else list(v) for v in values]


def competing_event(
    status: pd.Series,
    time: pd.Series,
    *,
    event_values: Iterable[str],
    competing_values: Iterable[str] | Sequence[Iterable[str]],
    censored_values: Iterable[str],
    missing_values: Iterable[str] = (),
) -> pd.Series:
    """Event codes 0 / 1 / 2... from a text status column (e.g. vital status with cause).

    Parameters
    ----------
    status : the source text column (one row per patient).
    time : the follow-up time of the same patients (same length and order). It is not changed;
        it tells which rows can enter an analysis, for the counts in ``attrs["counts"]``.
    event_values : texts meaning the event of interest (code 1), e.g. "Died of Disease".
    competing_values : texts meaning a competing event (code 2), e.g. "Died of Other Causes";
        or a sequence of such lists, one per competing cause (codes 2, 3, ...).
    censored_values : texts meaning no event by the end of follow-up (code 0), e.g. "Living".
    missing_values : texts that mean the status is unknown (code missing), e.g. "Unknown".

    Texts match without regard to case, accents, punctuation or spacing. Empty cells are missing.

    Returns
    -------
    A float Series (0, 1, 2, ..., NaN) with the index of ``status``; ``attrs["counts"]`` maps each
    code (and "missing") to its number of patients among those with a usable time (>= 0), and
    ``attrs["value_map"]`` gives the code each distinct source text received.

    Raises
    ------
    CohortError
        when a text appears in two lists, or when the column holds a text in none of them (the
        message names those texts and their counts, so the lists can be completed).
    """
    if len(status) != len(time):
        raise CohortError(
            f"The status column has {len(status)} rows but the time column {len(time)}: they "
            "must describe the same patients."
        )
    lists = [(1, list(event_values)), (0, list(censored_values))]
    lists += [(2 + k, group) for k, group in enumerate(_cause_groups(competing_values))]
    lookup: dict[str, float] = {text_key(v): np.nan for v in missing_values}
    for code, texts in lists:
        for text in texts:
            key = text_key(text)
            if key in lookup and lookup[key] != code:
                raise CohortError(
                    f"The status text {text!r} is listed twice (as code {lookup[key]} and "
                    f"{code}); each text must mean one thing."
                )
            lookup[key] = float(code)
    codes, uniques = pd.factorize(status, use_na_sentinel=True)
    keys = [text_key(u) for u in uniques]
    unknown = [(u, int((codes == i).sum())) for i, (u, k) in enumerate(zip(uniques, keys, strict=True))
               if k and k not in lookup]
    if unknown:
        listed = ", ".join(f"{u!r} ({n:,} patients)" for u, n in unknown[:8])
        raise CohortError(
            f"The status column {status.name!r} holds values that are neither the event, a "
            f"competing cause, censored nor missing: {listed}. Add each of them to one of those "
            "lists in the mapping."
        )
    table = np.array([lookup.get(k, np.nan) if k else np.nan for k in keys] + [np.nan])
    out = pd.Series(table[codes], index=status.index, name=status.name, dtype="float64")
    usable = pd.to_numeric(time, errors="coerce").to_numpy(dtype=float) >= 0
    counted = out.to_numpy()[usable]
    counts = {int(c): int((counted == c).sum()) for c in sorted(set(lookup.values()) - {np.nan})
              if np.isfinite(c)}
    counts["missing"] = int(np.isnan(counted).sum())
    out.attrs["counts"] = counts
    out.attrs["value_map"] = {str(u): lookup.get(k, np.nan) for u, k in zip(uniques, keys, strict=True)}
    return out


def vital_status_event(status: pd.Series, time: pd.Series) -> pd.Series:
    """:func:`competing_event` with the usual vital-status spellings (:data:`VITAL_STATUS_EVENT`,
    :data:`VITAL_STATUS_COMPETING`, :data:`VITAL_STATUS_CENSORED`): breast-cancer death = 1,
    death from other causes = 2, alive = 0."""
    return competing_event(
        status,
        time,
        event_values=VITAL_STATUS_EVENT,
        competing_values=VITAL_STATUS_COMPETING,
        censored_values=VITAL_STATUS_CENSORED,
    )


def vital_status_codes() -> dict[str, float]:
    """{normalised text: code} for the usual vital-status spellings (0 alive, 1 died of the
    disease, 2 died of other causes)."""
    return {text_key(t): float(code) for code, texts in (
        (1, VITAL_STATUS_EVENT), (2, VITAL_STATUS_COMPETING), (0, VITAL_STATUS_CENSORED))
        for t in texts}  # fmt: skip


def is_cause_of_death_text(values: pd.Series) -> bool:
    """Whether a text column records vital status with the cause of death: it holds both a
    died-of-the-disease and a died-of-other-causes spelling, and nothing else unknown."""
    codes = vital_status_codes()
    keys = {text_key(v) for v in pd.unique(values.dropna())}
    found = {codes[k] for k in keys if k in codes}
    return {1.0, 2.0} <= found and keys <= set(codes)
