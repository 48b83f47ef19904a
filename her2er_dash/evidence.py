"""Evidence synthesis inputs: published tables and a cohort's studies, ready for :mod:`meta`.

The Evidence page pools three kinds of input. This module turns each into the one-row-per-study
tables that the :mod:`her2er_dash.meta` functions take, and holds the guard rails that decide
what may be pooled or tested, so that the page only draws:

- **published arms** (``data/published_trials.csv``): :func:`published_table` keeps the arms
  whose source prints the *counts* a quantity needs (HR+ vs HR− odds ratio from 2×2 counts, or
  the pCR proportion of one HR group); :func:`published_not_pooled` lists every other arm with
  the reason. Counts are never reconstructed from printed percentages.
- **a multi-study cohort**: :func:`study_table` gives each study's counts (or Cox estimate) as
  :func:`meta.by_study` computes them, plus study-level moderators computed from the patients
  (the study's pCR definition, the share of its patients in a chosen regimen class or arm).
- **moderators**: :func:`moderator_support` says whether a moderator can be tested (a
  categorical moderator needs at least :data:`MIN_STUDIES_PER_LEVEL` studies in each level
  compared; levels with fewer are left out of its test, and named); :func:`moderator_tests`
  runs :func:`meta.regress` for each supported moderator and says why the others are not run.
- **published pCR → survival hazard ratios**: :func:`prognosis_rows`, and
  :func:`prognosis_contrasts` for each study and endpoint that prints both HR groups
  (:func:`meta.ctneobc_from_summary`).
- **small studies and p-values**: :func:`small_study_flags`, :func:`p_value_guard`,
  :func:`ctneobc_guard`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import meta
from ._data import text_codes
from .errors import AnalysisError
from .meta.effects import PROPORTION_COLUMNS, TWO_BY_TWO_COLUMNS, _back_transform

#: What can be pooled from the published arms, and how the page names it.
PUBLISHED_QUANTITIES: dict[str, str] = {
    "or": "Odds ratio of pCR, HR+ vs HR− (arms printing both 2×2 counts)",
    "rate_hr_pos": "pCR rate in HR+ tumours (arms printing events and n)",
    "rate_hr_neg": "pCR rate in HR− tumours (arms printing events and n)",
}
#: Axis names of the pooled published quantities.
PUBLISHED_MEASURE_LABELS: dict[str, str] = {
    "or": "Odds ratio of pCR, HR+ vs HR−",
    "rate_hr_pos": "pCR rate, HR+",
    "rate_hr_neg": "pCR rate, HR−",
}
#: Study-level moderators of the published arms (columns of published_trials.csv).
PUBLISHED_MODERATORS: tuple[str, ...] = ("regimen_class", "pcr_definition", "dual_blockade", "chemo")
MODERATOR_LABELS: dict[str, str] = {
    "regimen_class": "Regimen class",
    "pcr_definition": "pCR definition",
    "dual_blockade": "Dual HER2 blockade",
    "chemo": "Cytotoxic drug in the regimen (ADC counts)",
}
#: A categorical moderator level enters a moderator test only with this many studies (arms).
MIN_STUDIES_PER_LEVEL = 2
#: A study (arm, cell) is flagged small below this many patients in a compared group...
SMALL_STUDY_PATIENTS = 20
#: ...or with fewer than this many patients with (or without) the outcome in a group.
SMALL_CELL = 5
#: A CTNeoBC study x group cell with fewer events than this is flagged small.
SMALL_SURVIVAL_EVENTS = 10
#: Funnel plots and Egger's test need at least this many studies (Sterne et al., BMJ 2011).
MIN_STUDIES_FOR_BIAS = 10

_GROUPS = {"hr_pos": "HR+", "hr_neg": "HR−"}
_QUANTITY_GROUPS = {"or": ("hr_pos", "hr_neg"), "rate_hr_pos": ("hr_pos",), "rate_hr_neg": ("hr_neg",)}


# ------------------------------------------------------------------------------------------
# Published arms
# ------------------------------------------------------------------------------------------
def select_published(
    trials: pd.DataFrame,
    *,
    regimen_classes: Sequence[str] | None = None,
    pcr_definitions: Sequence[str] | None = None,
    verification: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The rows of ``datasets.published_trials()`` in the chosen regimen classes, pCR
    definitions and verification levels (``None``: no restriction on that column)."""
    keep = np.ones(len(trials), dtype=bool)
    for column, chosen in (
        ("regimen_class", regimen_classes),
        ("pcr_definition", pcr_definitions),
        ("verification", verification),
    ):
        if chosen is not None:
            keep &= trials[column].astype(str).isin([str(c) for c in chosen]).to_numpy()
    return trials[keep].reset_index(drop=True)


def arm_labels(trials: pd.DataFrame, limit: int = 46) -> pd.Series:
    """ "Trial · arm", unique per row and about ``limit`` characters, for tables and forests.

    The trial loses its citation. A long arm is cut to the window that tells it apart from the
    other arms of its trial: arms that share a long beginning ("lapatinib + trastuzumab 12 wk"
    vs "... 24 wk") are shown from shortly before the first difference.
    """
    trial = trials["trial"].astype(str).str.split(" (", n=1, regex=False).str[0].to_numpy()
    arms = trials["arm"].astype(str).to_numpy()
    shared = {name: len(os.path.commonprefix(list(arms[trial == name]))) if (trial == name).sum() > 1 else 0
              for name in set(trial)}
    labels = []
    for name, arm in zip(trial, arms, strict=True):
        room = max(16, limit - len(name) - 3)
        if len(arm) > room:
            start = max(0, shared[name] - room // 3) if shared[name] > room // 3 else 0
            window = arm[start:start + room - (2 if start else 1)]
            arm = ("…" if start else "") + window.strip() + ("…" if start + len(window) < len(arm) else "")
        labels.append(f"{name} · {arm}")
    labels = pd.Series(labels, dtype=object)
    repeated = labels.duplicated(keep=False)
    if repeated.any():  # never two rows with one label (forests and leave-one-out match by label)
        labels[repeated] = labels[repeated] + " (row " + (labels.index[repeated] + 1).astype(str) + ")"
    return labels


def _count_reason(trials: pd.DataFrame, group: str) -> np.ndarray:
    """Why an arm has no usable counts for one HR group ("" when it has them)."""
    n = trials[f"n_{group}"]
    events = trials[f"pcr_events_{group}"]
    rate = trials[f"pcr_rate_{group}"]
    name = _GROUPS[group]
    reasons = np.full(len(trials), "", dtype=object)
    no_counts = (n.isna() | events.isna()).to_numpy()
    nothing = (n.isna() & events.isna() & rate.isna()).to_numpy()
    n_only = (n.notna() & events.isna()).to_numpy()
    reasons[no_counts] = f"{name}: percentage only, no n or number with pCR printed"
    reasons[n_only] = f"{name}: n printed but not the number with pCR"
    reasons[nothing] = f"{name}: not reported"
    return reasons


def _published_split(trials: pd.DataFrame, quantity: str) -> tuple[pd.DataFrame, np.ndarray]:
    if quantity not in PUBLISHED_QUANTITIES:
        raise AnalysisError(
            f"Unknown quantity {quantity!r}; choose one of {', '.join(PUBLISHED_QUANTITIES)}."
        )
    rows = trials.reset_index(drop=True)
    reasons = [_count_reason(rows, g) for g in _QUANTITY_GROUPS[quantity]]
    why = np.array(["; ".join(r for r in parts if r) for parts in zip(*reasons, strict=True)],
                   dtype=object) if len(rows) else np.array([], dtype=object)
    return rows, why


def published_table(
    trials: pd.DataFrame,
    *,
    quantity: str = "or",
    regimen_classes: Sequence[str] | None = None,
    pcr_definitions: Sequence[str] | None = None,
    verification: Sequence[str] | None = None,
    supported_for: str | None = None,
    min_per_level: int = MIN_STUDIES_PER_LEVEL,
) -> pd.DataFrame:
    """The published arms that print the counts ``quantity`` needs, one row per arm, for meta.*.

    Parameters
    ----------
    trials
        ``datasets.published_trials()``.
    quantity
        "or": odds ratio of pCR in HR+ vs HR− tumours (``events_exp, n_exp`` = HR+,
        ``events_ref, n_ref`` = HR−); "rate_hr_pos" / "rate_hr_neg": the pCR proportion of one
        HR group (``events, n``).
    regimen_classes, pcr_definitions, verification
        As :func:`select_published`.
    supported_for
        A moderator column: keep only the arms in its levels with at least ``min_per_level``
        arms (the input of that moderator's test, see :func:`restrict_to_supported`).

    Returns
    -------
    DataFrame with ``study`` ("Trial · arm"), the counts, the moderators
    (:data:`PUBLISHED_MODERATORS`, as text), ``verification``, ``trial``, ``arm``,
    ``source_hr_pos``, ``source_hr_neg`` (where each number is printed) and ``small`` (why the
    arm is flagged small, "" if not). Arms without the counts are left out
    (:func:`published_not_pooled` lists them): counts are never derived from percentages.
    """
    chosen = select_published(trials, regimen_classes=regimen_classes,
                              pcr_definitions=pcr_definitions, verification=verification)
    rows, why = _published_split(chosen, quantity)
    counted = rows[why == ""] if len(rows) else rows
    labels = arm_labels(rows)[why == ""] if len(rows) else pd.Series(dtype=object)
    if quantity == "or":
        counts = {
            "events_exp": counted["pcr_events_hr_pos"],
            "n_exp": counted["n_hr_pos"],
            "events_ref": counted["pcr_events_hr_neg"],
            "n_ref": counted["n_hr_neg"],
        }
    else:
        group = _QUANTITY_GROUPS[quantity][0]
        counts = {"events": counted[f"pcr_events_{group}"], "n": counted[f"n_{group}"]}
    table = pd.DataFrame({"study": labels.to_numpy()})
    for column, values in counts.items():
        table[column] = values.to_numpy(dtype="int64")
    for column in PUBLISHED_MODERATORS:
        table[column] = counted[column].astype(str).to_numpy(dtype=object)
    for column in ("verification", "trial", "arm", "source_hr_pos", "source_hr_neg"):
        table[column] = counted[column].astype(str).to_numpy(dtype=object)
    table["small"] = small_study_flags(table)
    if supported_for is not None:
        table = restrict_to_supported(table, supported_for, min_per_level=min_per_level)
    table.attrs["quantity"] = quantity
    return table


def published_not_pooled(
    trials: pd.DataFrame,
    *,
    quantity: str = "or",
    regimen_classes: Sequence[str] | None = None,
    pcr_definitions: Sequence[str] | None = None,
    verification: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The chosen arms that do *not* enter :func:`published_table`, each with the reason.

    Columns ``study, regimen_class, verification, printed_hr_pos, printed_hr_neg, reason``.
    """
    chosen = select_published(trials, regimen_classes=regimen_classes,
                              pcr_definitions=pcr_definitions, verification=verification)
    rows, why = _published_split(chosen, quantity)
    left = why != ""
    if not len(rows):
        left = np.zeros(0, dtype=bool)
    out = pd.DataFrame(
        {
            "study": arm_labels(rows)[left].to_numpy() if len(rows) else [],
            "regimen_class": rows.loc[left, "regimen_class"].astype(str).to_numpy(),
            "verification": rows.loc[left, "verification"].astype(str).to_numpy(),
            "printed_hr_pos": rows.loc[left, "rate_printed_hr_pos"].astype("string").fillna("—").to_numpy(),
            "printed_hr_neg": rows.loc[left, "rate_printed_hr_neg"].astype("string").fillna("—").to_numpy(),
            "reason": why[left],
        }
    )
    return out


def not_pooled_sentence(not_pooled: pd.DataFrame, pooled: int, quantity: str) -> str:
    """One sentence saying how many chosen arms lack counts for ``quantity`` and why.

    Each arm is counted once, under its most basic gap: a group not reported at all, else n
    without the number with pCR, else percentages only.
    """
    if not_pooled.empty:
        return f"All {pooled} chosen arms print the counts needed."
    reason = not_pooled["reason"].astype(str)
    missing_group = reason.str.contains("not reported")
    n_only = ~missing_group & reason.str.contains("n printed but")
    percentage_only = ~missing_group & ~n_only
    parts = []
    if percentage_only.any():
        k = int(percentage_only.sum())
        parts.append(f"{k} print{'s' if k == 1 else ''} only percentages")
    if n_only.any():
        k = int(n_only.sum())
        parts.append(f"{k} print{'s' if k == 1 else ''} n but not the number with pCR")
    if missing_group.any():
        k = int(missing_group.sum())
        if quantity == "or":
            what = f"report{'s' if k == 1 else ''} only one HR group"
        else:
            what = f"do{'es' if k == 1 else ''} not report this HR group"
        parts.append(f"{k} {what}")
    return (
        f"{len(not_pooled)} of {len(not_pooled) + pooled} chosen arms are not pooled "
        f"({'; '.join(parts)}): a meta-analysis needs the number of patients and the number with "
        "pCR, and those are never reconstructed from a rounded percentage."
    )


# ------------------------------------------------------------------------------------------
# A multi-study cohort
# ------------------------------------------------------------------------------------------
def study_table(
    df: pd.DataFrame,
    *,
    analysis: str = "pcr_or",
    exposure: str | None = None,
    reference=None,
    outcome: str = "pcr",
    time: str | None = None,
    event: str | None = None,
    study: str = "study",
    share: Sequence[str] | None = None,
    supported_for: str | None = None,
    min_per_level: int = MIN_STUDIES_PER_LEVEL,
) -> pd.DataFrame:
    """One row per study of a patient-level cohort: its counts (or Cox estimate) and moderators.

    The per-study numbers are those of :func:`meta.by_study` with the same options (so
    ``meta.pool(study_table(df, ...))`` equals ``meta.by_study(df, ...)``), ready for
    :func:`meta.regress`, :func:`meta.leave_one_out`, :func:`meta.glmm`, :func:`meta.funnel` and
    :func:`meta.egger`.

    Parameters
    ----------
    analysis, exposure, reference, outcome, time, event, study
        As :func:`meta.by_study` ("pcr_or": 2×2 counts; "pcr_rate": ``events, n``; "hr":
        ``estimate, se`` on the log scale, with the counts beside them).
    share
        ``(column, level)``: add the study-level moderator "share of <level>", the fraction of
        each study's patients (with a value in ``column``) who are in ``level`` — e.g. the share
        of a regimen class or an arm.
    supported_for, min_per_level
        As :func:`published_table`.

    Returns
    -------
    DataFrame with ``study``, the counts or estimates, ``excluded`` (why a study cannot be
    pooled, "" if it can), ``patients`` (in the study), ``pcr_definition`` (the study's own;
    "mixed" when its patients carry several, "not recorded" when none), the share column when
    asked, and ``small`` (why a study is flagged small, "" if not).
    """
    result = meta.by_study(df, study, analysis=analysis, exposure=exposure, outcome=outcome,
                           time=time, event=event, reference=reference)
    source = result.table
    if analysis == "pcr_rate":
        columns = list(PROPORTION_COLUMNS)
    elif analysis == "pcr_or":
        columns = list(TWO_BY_TWO_COLUMNS)
    else:
        columns = ["estimate", "se", *TWO_BY_TWO_COLUMNS]
    table = source[["study", *columns, "excluded"]].copy()
    labels = table["study"].astype(str)
    patients = _rows_per_text(*text_codes(df[study]))
    table["patients"] = labels.map(patients).fillna(0).astype(int).to_numpy()
    table["pcr_definition"] = labels.map(_definitions_by_study(df, study)).fillna("not recorded")
    if share:
        column, level = share
        table[share_name(level)] = labels.map(_share_by_study(df, study, column, level)).to_numpy()
    table["small"] = small_study_flags(table)
    if supported_for is not None:
        table = restrict_to_supported(table, supported_for, min_per_level=min_per_level)
    table.attrs["note"] = result.notes[0] if result.notes else ""
    return table


def share_name(level: str) -> str:
    """Column name of the study-level moderator "share of patients in ``level``"."""
    return f"share of {level}"


# Per-study summaries read each patient's study (and definition, or level) as text, as
# ``Series.astype(str)`` gives it, but through integer codes (``_data.text_codes``): a string
# per patient cost ~150 MB at 700k patients, the Evidence page's peak.


def _rows_per_text(codes: np.ndarray, texts: np.ndarray, weights=None) -> pd.Series:
    """Rows (or summed ``weights``) per distinct text, indexed by text."""
    sums = np.bincount(codes, weights=weights, minlength=len(texts))
    if weights is None:
        sums = sums.astype(np.int64)
    return pd.Series(sums, index=texts).groupby(level=0, sort=True).sum()


def _definitions_by_study(df: pd.DataFrame, study: str) -> pd.Series:
    if "pcr_definition" not in df.columns:
        return pd.Series(dtype=object)
    known = df["pcr_definition"].notna().to_numpy()
    studies, study_texts = text_codes(df[study])
    definitions, definition_texts = text_codes(df["pcr_definition"])
    pairs = pd.DataFrame({"study": studies[known], "d": definitions[known]}).drop_duplicates()
    frame = pd.DataFrame({"study": study_texts[pairs["study"].to_numpy()],
                          "d": definition_texts[pairs["d"].to_numpy()]})
    grouped = frame.groupby("study")["d"].agg(lambda v: v.iloc[0] if v.nunique() == 1 else "mixed")
    return grouped


def _share_by_study(df: pd.DataFrame, study: str, column: str, level: str) -> pd.Series:
    if column not in df.columns:
        raise AnalysisError(f"The cohort has no column {column!r} to compute a share from.")
    values = df[column]
    known = values.notna().to_numpy()
    codes, texts = text_codes(values)
    hit = (texts == str(level))[codes] & known
    studies, study_texts = text_codes(df[study])
    hits = _rows_per_text(studies[hit], study_texts)
    knowns = _rows_per_text(studies[known], study_texts)
    return (hits / knowns.where(knowns > 0)).astype(float)


def small_study_flags(table: pd.DataFrame) -> np.ndarray:
    """Why each study (arm) is small, "" if it is not.

    Small: fewer than :data:`SMALL_STUDY_PATIENTS` patients in a compared group, or fewer than
    :data:`SMALL_CELL` patients with, or without, pCR in a group (for hazard ratios: fewer than
    :data:`SMALL_SURVIVAL_EVENTS` events in the study).
    """
    flags = np.full(len(table), "", dtype=object)
    if "estimate" in table.columns and set(TWO_BY_TWO_COLUMNS) <= set(table.columns):
        events = table["events_exp"].to_numpy(float) + table["events_ref"].to_numpy(float)
        flags[events < SMALL_SURVIVAL_EVENTS] = f"fewer than {SMALL_SURVIVAL_EVENTS} events"
        return flags
    if set(TWO_BY_TWO_COLUMNS) <= set(table.columns):
        groups = [("events_exp", "n_exp"), ("events_ref", "n_ref")]
    elif set(PROPORTION_COLUMNS) <= set(table.columns):
        groups = [("events", "n")]
    else:
        return flags
    for events_col, n_col in groups:
        events = table[events_col].to_numpy(float)
        n = table[n_col].to_numpy(float)
        few_cells = (np.minimum(events, n - events) < SMALL_CELL) & (n > 0)
        flags[(flags == "") & few_cells] = (
            f"fewer than {SMALL_CELL} patients with or without pCR in a group"
        )
        flags[(flags == "") & (n < SMALL_STUDY_PATIENTS) & (n > 0)] = (
            f"fewer than {SMALL_STUDY_PATIENTS} patients in a group"
        )
    return flags


# ------------------------------------------------------------------------------------------
# Moderators
# ------------------------------------------------------------------------------------------
def _is_continuous(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _usable(table: pd.DataFrame) -> pd.Series:
    if "excluded" in table.columns:
        return table["excluded"].fillna("").astype(str).eq("")
    return pd.Series(True, index=table.index)


@dataclass(frozen=True)
class ModeratorSupport:
    """Whether a study-level moderator can be tested, and on which studies.

    ``levels``: one row per level (``level, k, used``) for a categorical moderator (empty for a
    continuous one); ``dropped``: studies left out of the test because their level has fewer
    than ``min_per_level`` studies; ``reason``: why the test is not run ("" when it is).
    """

    moderator: str
    continuous: bool
    supported: bool
    reason: str
    levels: pd.DataFrame
    dropped: tuple[str, ...]
    k: int


def moderator_support(
    table: pd.DataFrame, moderator: str, *, min_per_level: int = MIN_STUDIES_PER_LEVEL,
    study: str = "study",
) -> ModeratorSupport:
    """Can ``moderator`` be tested on ``table``'s studies? (see the module doc for the rule)."""
    if moderator not in table.columns:
        raise AnalysisError(f"The study table has no moderator column {moderator!r}.")
    usable = _usable(table) & table[moderator].notna()
    values = table.loc[usable, moderator]
    name = MODERATOR_LABELS.get(moderator, moderator)
    if _is_continuous(values):
        k = int(usable.sum())
        distinct = int(values.round(12).nunique())
        if k < 3:
            reason = f"{name}: {k} studies with a value; a meta-regression needs at least 3."
        elif distinct < 2:
            reason = f"{name}: every study has the same value, so it explains nothing."
        else:
            reason = ""
        return ModeratorSupport(moderator, True, not reason, reason,
                                pd.DataFrame(columns=["level", "k", "used"]), (), k)
    counts = values.astype(str).value_counts()
    levels = pd.DataFrame({"level": counts.index.to_numpy(), "k": counts.to_numpy(int)})
    levels["used"] = levels["k"] >= min_per_level
    used_levels = set(levels.loc[levels["used"], "level"])
    keep = usable & table[moderator].astype(str).isin(used_levels)
    dropped = tuple(table.loc[usable & ~keep, study].astype(str))
    k = int(keep.sum())
    if len(used_levels) < 2:
        shown = ", ".join(f"{r.level} ({r.k})" for r in levels.itertuples()) or "none"
        reason = (
            f"{name}: a test needs at least 2 levels with {min_per_level} or more studies each; "
            f"the studies are in {shown}."
        )
    elif k < len(used_levels) + 1:
        reason = (
            f"{name}: {len(used_levels)} levels need at least {len(used_levels) + 1} studies to "
            f"estimate the between-study variance; there are {k}."
        )
    else:
        reason = ""
    return ModeratorSupport(moderator, False, not reason, reason, levels, dropped, k)


def restrict_to_supported(
    table: pd.DataFrame, moderator: str, *, min_per_level: int = MIN_STUDIES_PER_LEVEL,
    study: str = "study",
) -> pd.DataFrame:
    """The studies that enter ``moderator``'s test: usable, with a value, in a supported level."""
    support = moderator_support(table, moderator, min_per_level=min_per_level, study=study)
    keep = _usable(table) & table[moderator].notna()
    if not support.continuous:
        used = set(support.levels.loc[support.levels["used"], "level"])
        keep &= table[moderator].astype(str).isin(used)
    out = table[keep].reset_index(drop=True)
    out.attrs = {**table.attrs, "dropped": support.dropped}
    return out


def moderator_tests(
    table: pd.DataFrame,
    moderators: Sequence[str],
    *,
    method: str = "REML",
    hksj: bool = False,
    min_per_level: int = MIN_STUDIES_PER_LEVEL,
    study: str = "study",
) -> pd.DataFrame:
    """One meta-regression per moderator (``meta.regress``), with its test of moderators.

    Returns one row per moderator: ``moderator, levels`` (level (k) ...), ``k`` (studies in the
    test), ``qm, qm_df, qm_df2, qm_p`` (the omnibus test: chi-square, or F under
    Hartung-Knapp), ``qe, qe_p`` (residual heterogeneity), ``tau2, r2`` and ``message`` (why a
    moderator was not tested, or which studies its test leaves out). Not tested: empty numbers.
    """
    rows, splits = [], {}
    for moderator in moderators:
        support = moderator_support(table, moderator, min_per_level=min_per_level, study=study)
        levels = "continuous" if support.continuous else ", ".join(
            f"{r.level} ({r.k})" for r in support.levels.itertuples()
        )
        row = {"moderator": MODERATOR_LABELS.get(moderator, moderator), "column": moderator,
               "levels": levels, "k": support.k, "qm": math.nan, "qm_df": math.nan,
               "qm_df2": math.nan, "qm_p": math.nan, "qe": math.nan, "qe_p": math.nan,
               "tau2": math.nan, "r2": math.nan, "message": support.reason}
        if support.supported:
            used = restrict_to_supported(table, moderator, min_per_level=min_per_level, study=study)
            try:
                fit = meta.regress(used, [moderator], method=method, hksj=hksj, study=study)
            except AnalysisError as error:
                row["message"] = f"{row['moderator']}: {error}"
            else:
                row.update(qm=fit.qm, qm_df=fit.qm_df,
                           qm_df2=math.nan if fit.qm_df2 is None else fit.qm_df2, qm_p=fit.qm_p,
                           qe=fit.qe, qe_p=fit.qe_p, tau2=fit.tau2, r2=fit.r2, k=fit.k)
                notes = []
                if support.dropped:
                    notes.append(
                        f"Left out of this test (their level has fewer than {min_per_level} "
                        f"studies): {', '.join(support.dropped)}."
                    )
                split = _partition(used, moderator, support.continuous, study)
                twins = [MODERATOR_LABELS.get(m, m) for m, s in splits.items() if s == split]
                if twins:
                    notes.append(
                        f"Splits the studies exactly as {', '.join(twins)}: the same test, so "
                        "the two cannot be told apart here."
                    )
                splits[moderator] = split
                row["message"] = " ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows)


def _partition(table: pd.DataFrame, moderator: str, continuous: bool, study: str):
    """The grouping of studies a moderator induces (order-free), to spot identical tests."""
    if continuous:
        return ("continuous", tuple(zip(table[study].astype(str), table[moderator].round(12),
                                        strict=True)))
    groups = table.groupby(table[moderator].astype(str))[study].agg(
        lambda s: tuple(sorted(s.astype(str))))
    return frozenset(groups.tolist())


def qm_text(row) -> str:
    """ "QM = 3.21 (df 1), p = 0.073" or "F(1, 2) = …" from a :func:`moderator_tests` row."""
    if not np.isfinite(row["qm"]):
        return "not tested"
    if np.isfinite(row["qm_df2"]):
        return f"F({int(row['qm_df'])}, {int(row['qm_df2'])}) = {row['qm']:.2f}, p = {_p(row['qm_p'])}"
    return f"QM = {row['qm']:.2f} (df {int(row['qm_df'])}), p = {_p(row['qm_p'])}"


def _p(p: float) -> str:
    return "—" if not np.isfinite(p) else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def model_rows(*results, guard: str = "") -> pd.DataFrame:
    """Pooled estimates of several models of the same studies side by side.

    ``results``: :class:`meta.MetaResult` or :class:`meta.GlmmResult`. One row per model
    (``model, k, estimate, ci_low, ci_high, p, tau2, i2``), back-transformed to an odds ratio,
    hazard ratio or proportion. With a ``guard`` reason (:func:`p_value_guard`) the p-values
    are withheld (empty).
    """
    rows = []
    for result in results:
        back = _back_transform(result.scale) or (lambda x: x)
        p = getattr(result, "p_value", None)
        rows.append(
            {
                "model": result.label,
                "k": result.k,
                "estimate": float(back(result.estimate)),
                "ci_low": float(back(result.ci_low)),
                "ci_high": float(back(result.ci_high)),
                "p": math.nan if guard else float(result.p if p is None else p),
                "tau2": float(result.tau2),
                "i2": float(result.i2),
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# Guard rails on p-values
# ------------------------------------------------------------------------------------------
def p_value_guard(table: pd.DataFrame) -> str:
    """Why the pooled p-value of ``table``'s studies is withheld ("" when it may be shown).

    Withheld when fewer than 2 studies are usable, when every usable study is small
    (:func:`small_study_flags`), or when a compared group has fewer than 10 patients or 5 with
    pCR in total.
    """
    usable = _usable(table)
    k = int(usable.sum())
    if k < 2:
        return f"only {k} usable stud{'y' if k == 1 else 'ies'}"
    small = table.loc[usable, "small"] if "small" in table.columns else pd.Series(dtype=object)
    if len(small) and (small.astype(str) != "").all():
        return "every study is small"
    for events_col, n_col in (("events_exp", "n_exp"), ("events_ref", "n_ref"), ("events", "n")):
        if {events_col, n_col} <= set(table.columns) and "estimate" not in table.columns:
            n = float(table.loc[usable, n_col].sum())
            events = float(table.loc[usable, events_col].sum())
            if n < 10 or events < 5:
                return f"only {n:.0f} patients and {events:.0f} with pCR in a compared group"
    return ""


def ctneobc_guard(result: meta.CTNeoBCResult) -> tuple[np.ndarray, str]:
    """Small-cell flags of the per-study table and why the contrast p-values are withheld.

    A study x group cell is small with fewer than :data:`SMALL_STUDY_PATIENTS` patients,
    :data:`SMALL_SURVIVAL_EVENTS` events, or :data:`SMALL_CELL` events among its patients with
    (or without) pCR; the contrast p-values are withheld when a group has
    fewer than :data:`SMALL_SURVIVAL_EVENTS` events in total over its usable cells, or fewer than
    5 events among its pCR patients.
    """
    per = result.per_study
    flags = np.full(len(per), "", dtype=object)
    flags[per["n"].to_numpy() < SMALL_STUDY_PATIENTS] = f"fewer than {SMALL_STUDY_PATIENTS} patients"
    flags[(flags == "") & (per["events"].to_numpy() < SMALL_SURVIVAL_EVENTS)] = (
        f"fewer than {SMALL_SURVIVAL_EVENTS} events"
    )
    few_after = np.minimum(per["events_exposed"], per["events"] - per["events_exposed"]).to_numpy()
    flags[(flags == "") & (few_after < SMALL_CELL)] = (
        f"fewer than {SMALL_CELL} events among patients with (or without) pCR"
    )
    usable = per[per["excluded"] == ""]
    reasons = []
    for group, cells in usable.groupby(usable["group"].astype(str)):
        if cells["events"].sum() < SMALL_SURVIVAL_EVENTS or cells["events_exposed"].sum() < 5:
            reasons.append(
                f"{group}: {int(cells['events'].sum())} events, "
                f"{int(cells['events_exposed'].sum())} after pCR"
            )
    return flags, "; ".join(reasons)


def ctneobc_sentence(result: meta.CTNeoBCResult, labels: dict | None = None) -> str:
    """The pooled pCR hazard ratio of each group in words, and what their ratio means."""
    labels = labels or {}
    parts = []
    for row in result.pooled.itertuples():
        name = labels.get(str(row.group), str(row.group))
        parts.append(f"{name} {row.hr:.2f} ({row.hr_ci_low:.2f}–{row.hr_ci_high:.2f}, {row.k} studies)")
    level = labels.get(str(result.group_level), str(result.group_level))
    reference = labels.get(str(result.group_reference), str(result.group_reference))
    return (
        "Pooled hazard ratio of pCR vs residual disease: " + "; ".join(parts) + ". Below 1, patients "
        f"with pCR fare better; the further below 1, the more pCR says about the outcome. A ratio "
        f"{level}/{reference} above 1 means pCR is less prognostic in {level} disease."
    )


def ctneobc_forest_frame(result: meta.CTNeoBCResult, labels: dict | None = None) -> pd.DataFrame:
    """:meth:`CTNeoBCResult.forest_frame` with each study row named "study · group"."""
    labels = labels or {}
    frame = result.forest_frame()
    is_study = frame["kind"].isin(["study", "excluded"])
    group = frame["subgroup"].astype(str).map(lambda g: labels.get(g, g))
    frame.loc[is_study, "label"] = frame.loc[is_study, "label"].astype(str) + " · " + group[is_study]
    pooled = frame["kind"] == "pooled"
    frame.loc[pooled, "label"] = "Pooled " + group[pooled] + f" ({result.method})"
    return frame


# ------------------------------------------------------------------------------------------
# Published pCR -> survival hazard ratios
# ------------------------------------------------------------------------------------------
def prognosis_rows(
    prognosis: pd.DataFrame, *, endpoints: Sequence[str] | None = None,
    verification: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Published pCR hazard ratios (``datasets.published_prognosis()``), optionally restricted
    to some endpoints and verification levels, ordered by study, endpoint and HR group."""
    keep = np.ones(len(prognosis), dtype=bool)
    if endpoints is not None:
        keep &= prognosis["endpoint"].astype(str).isin(list(endpoints)).to_numpy()
    if verification is not None:
        keep &= prognosis["verification"].astype(str).isin(list(verification)).to_numpy()
    out = prognosis[keep].copy()
    order = {"positive": 0, "negative": 1, "all": 2}
    out["_order"] = out["hr_status"].astype(str).map(order)
    return out.sort_values(["study", "endpoint", "_order"], kind="stable").drop(columns="_order") \
        .reset_index(drop=True)


def prognosis_pairs(prognosis: pd.DataFrame) -> list[tuple[str, str]]:
    """(study, endpoint) pairs that print a hazard ratio for both HR+ and HR− patients."""
    split = prognosis[prognosis["hr_status"].astype(str).isin(["positive", "negative"])]
    both = split.groupby(["study", "endpoint"], observed=True)["hr_status"].agg(
        lambda s: {"positive", "negative"} <= set(s.astype(str))
    )
    return [(str(s), str(e)) for (s, e), ok in both.items() if ok]


def prognosis_contrast_table(prognosis: pd.DataFrame, *, study: str, endpoint: str) -> pd.DataFrame:
    """The HR+ and HR− rows of one study and endpoint, the input of
    ``meta.ctneobc_from_summary(table, group="hr_status", reference="negative")``."""
    rows = prognosis[
        (prognosis["study"].astype(str) == study)
        & (prognosis["endpoint"].astype(str) == endpoint)
        & prognosis["hr_status"].astype(str).isin(["positive", "negative"])
    ]
    if set(rows["hr_status"].astype(str)) != {"positive", "negative"}:
        raise AnalysisError(
            f"{study} ({endpoint}) does not print a hazard ratio for both HR+ and HR− patients."
        )
    out = pd.DataFrame(
        {
            "study": (rows["study"].astype(str) + " · " + rows["hr_status"].astype(str)).to_numpy(),
            "hr_status": rows["hr_status"].astype(str).to_numpy(),
            "hr": rows["hr"].to_numpy(float),
            "ci_low": rows["ci_low"].to_numpy(float),
            "ci_high": rows["ci_high"].to_numpy(float),
        }
    )
    return out


def prognosis_contrasts(prognosis: pd.DataFrame) -> pd.DataFrame:
    """The HR+ vs HR− contrast of every study and endpoint that prints both groups.

    One row per pair: ``study, endpoint``, each group's printed ``hr_pos``/``hr_neg`` text, the
    ``ratio`` of hazard ratios (HR+ / HR−; above 1: pCR less prognostic in HR+) with its 95 % CI
    and ``p`` (``meta.ctneobc_from_summary``, as metafor ``rma(yi, sei, mods = ~ group,
    method = "FE")``), and ``verification`` (the weaker level of the two rows).
    """
    rows = []
    rank = {"primary": 0, "secondary": 1, "tertiary": 2}
    for study, endpoint in prognosis_pairs(prognosis):
        table = prognosis_contrast_table(prognosis, study=study, endpoint=endpoint)
        fit = meta.ctneobc_from_summary(table, group="hr_status", reference="negative")
        term = fit.table.iloc[1]
        pair = prognosis[(prognosis["study"].astype(str) == study)
                         & (prognosis["endpoint"].astype(str) == endpoint)]
        printed = dict(zip(pair["hr_status"].astype(str), pair["printed"].astype(str), strict=False))
        levels = [str(v) for v in pair["verification"].astype(str)]
        rows.append(
            {
                "study": study,
                "endpoint": endpoint,
                "hr_pos": printed.get("positive", ""),
                "hr_neg": printed.get("negative", ""),
                "log_ratio": float(term["estimate"]),
                "se": float(term["se"]),
                "ratio": math.exp(term["estimate"]),
                "ratio_ci_low": math.exp(term["ci_low"]),
                "ratio_ci_high": math.exp(term["ci_high"]),
                "p": float(term["p"]),
                "verification": max(levels, key=lambda v: rank.get(v, 3)),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["study", "endpoint", "hr_pos", "hr_neg", "log_ratio", "se", "ratio",
                 "ratio_ci_low", "ratio_ci_high", "p", "verification"],
    )
