"""Study-level effect sizes, as metafor ``escalc``: log odds ratios, logit proportions, estimates.

- ``escalc("OR")`` (log odds ratio) and ``escalc("PLO")`` (logit proportion) with ``add = 1/2,
  to = "only0"``: the continuity correction is added to all cells of the studies that have a zero
  cell, and only to those. Odds-ratio studies with no events, or only events, in both groups are
  excluded (``drop00 = TRUE``, as ``rma.mh`` does by default);
- estimates with standard errors are taken as given, on the scale named by ``measure``.

Every study stays in the table: a study that cannot be pooled carries the reason in ``excluded``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._data import Exclusions
from ..errors import AnalysisError

TWO_BY_TWO_COLUMNS: tuple[str, ...] = ("events_exp", "n_exp", "events_ref", "n_ref")
PROPORTION_COLUMNS: tuple[str, ...] = ("events", "n")
ESTIMATE_COLUMNS: tuple[str, ...] = ("estimate", "se")

_SCALE_ALIASES = {
    "or": "log OR",
    "log or": "log OR",
    "hr": "log HR",
    "log hr": "log HR",
    "rr": "log RR",
    "log rr": "log RR",
    "plo": "logit proportion",
    "logit": "logit proportion",
    "logit proportion": "logit proportion",
}
_DEFAULT_ESTIMATE_SCALE = "log ratio"




def _back_transform(scale: str):
    if scale == "logit proportion":
        return lambda x: 1.0 / (1.0 + np.exp(-x))
    if scale.startswith("log "):
        return np.exp
    return None


def _display_scale(scale: str) -> str:
    if scale == "logit proportion":
        return "proportion"
    return scale.removeprefix("log ")



@dataclass(frozen=True)
class _Effects:
    """One row per study with its effect (``estimate``/``se``) or the reason it is excluded."""

    table: pd.DataFrame
    scale: str
    notes: tuple[str, ...]
    exclusions: Exclusions



def _study_effects(table, *, measure, study, continuity) -> _Effects:
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise AnalysisError(
            "pool needs at least 2 studies, but the study table is empty. Add one row per study."
        )
    frame = table.reset_index(drop=True)
    labels = (
        frame[study].to_numpy()
        if study in frame.columns
        else np.array([f"Study {i + 1}" for i in range(len(frame))], dtype=object)
    )
    columns = set(frame.columns)
    if set(ESTIMATE_COLUMNS) <= columns:
        return _effects_from_estimates(frame, labels, _scale_for(measure, _DEFAULT_ESTIMATE_SCALE))
    if set(TWO_BY_TWO_COLUMNS) <= columns:
        _require_scale(measure, "log OR", "2x2 counts")
        return _effects_from_two_by_two(frame, labels, continuity)
    if set(PROPORTION_COLUMNS) <= columns:
        _require_scale(measure, "logit proportion", "events and n")
        return _effects_from_proportions(frame, labels, continuity)
    raise AnalysisError(
        "The study table needs either 'estimate' and 'se' (log scale), or 'events' and 'n' "
        "(one proportion per study), or 'events_exp', 'n_exp', 'events_ref' and 'n_ref' (2x2 "
        f"counts). It has: {', '.join(map(str, frame.columns))}."
    )


def _scale_for(measure: str | None, default: str) -> str:
    if measure is None:
        return default
    return _SCALE_ALIASES.get(str(measure).strip().lower(), str(measure))


def _require_scale(measure: str | None, expected: str, what: str) -> None:
    if measure is not None and _scale_for(measure, expected) != expected:
        raise AnalysisError(
            f"Studies given as {what} are pooled as {expected}, not {measure!r}. Leave measure "
            "empty, or give 'estimate' and 'se' on the scale you want."
        )


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    return values


def _preset_reasons(frame: pd.DataFrame) -> np.ndarray:
    """Exclusion reasons decided before pooling (by :func:`by_study`), "" where none."""
    if "excluded" not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return frame["excluded"].fillna("").astype(str).to_numpy(dtype=object)


def _exclude(reasons: np.ndarray, mask: np.ndarray, why: str) -> None:
    """Record ``why`` for the studies in ``mask`` that have no reason yet (first reason wins)."""
    reasons[mask & (reasons == "")] = why


def _raise_if_any(mask: np.ndarray, labels: np.ndarray, message: str) -> None:
    if mask.any():
        which = ", ".join(str(s) for s in labels[mask][:5])
        raise AnalysisError(f"{message} (studies: {which}). Correct the study table.")


def _effects_from_estimates(frame, labels, scale) -> _Effects:
    estimate = _numeric(frame, "estimate")
    se = _numeric(frame, "se")
    reasons = _preset_reasons(frame)
    _exclude(reasons, np.isnan(estimate) | np.isnan(se), "missing estimate or standard error")
    known = ~np.isnan(estimate) & ~np.isnan(se)
    _raise_if_any(known & ~np.isfinite(estimate), labels, "Some estimates are infinite")
    _raise_if_any(
        known & ~(se > 0) | (known & ~np.isfinite(se)),
        labels,
        "Standard errors must be positive and finite",
    )
    out = pd.DataFrame({"study": labels, "estimate": estimate, "se": se})
    return _finish_effects(out, reasons, scale, ())


def _effects_from_two_by_two(frame, labels, continuity) -> _Effects:
    events_exp, n_exp, events_ref, n_ref = (_numeric(frame, c) for c in TWO_BY_TWO_COLUMNS)
    counts = np.column_stack([events_exp, n_exp, events_ref, n_ref])
    reasons = _preset_reasons(frame)
    missing = np.isnan(counts).any(axis=1)
    _exclude(reasons, missing, "missing counts")
    known = ~missing
    _raise_if_any(known & (counts < 0).any(axis=1), labels, "Counts cannot be negative")
    _raise_if_any(
        known & ((events_exp > n_exp) | (events_ref > n_ref)),
        labels,
        "A group has more events than patients",
    )
    _exclude(reasons, known & ((n_exp == 0) | (n_ref == 0)), "no patients in one group")
    _exclude(reasons, known & (events_exp == 0) & (events_ref == 0), "no events in either group")
    _exclude(
        reasons,
        known & (events_exp == n_exp) & (events_ref == n_ref),
        "every patient had the event in both groups",
    )
    cells = np.column_stack([events_exp, n_exp - events_exp, events_ref, n_ref - events_ref])
    usable = reasons == ""
    corrected = usable & (cells == 0).any(axis=1)
    cells = cells + np.where(corrected, continuity, 0.0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_or = np.log(cells[:, 0] * cells[:, 3] / (cells[:, 1] * cells[:, 2]))
        se = np.sqrt((1.0 / cells).sum(axis=1))
    out = pd.DataFrame(
        {
            "study": labels,
            "estimate": np.where(usable, log_or, np.nan),
            "se": np.where(usable, se, np.nan),
            **{c: v for c, v in zip(TWO_BY_TWO_COLUMNS, counts.T, strict=True)},
            "continuity_corrected": corrected,
        }
    )
    notes = _continuity_note(labels[corrected], continuity)
    return _finish_effects(out, reasons, "log OR", notes)


def _effects_from_proportions(frame, labels, continuity) -> _Effects:
    events, n = _numeric(frame, "events"), _numeric(frame, "n")
    reasons = _preset_reasons(frame)
    missing = np.isnan(events) | np.isnan(n)
    _exclude(reasons, missing, "missing counts")
    known = ~missing
    _raise_if_any(known & ((events < 0) | (n < 0)), labels, "Counts cannot be negative")
    _raise_if_any(known & (events > n), labels, "A study has more events than patients")
    _exclude(reasons, known & (n == 0), "no patients")
    usable = reasons == ""
    corrected = usable & ((events == 0) | (events == n))
    add = np.where(corrected, continuity, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hits, misses = events + add, n - events + add
        logit = np.log(hits / misses)
        se = np.sqrt(1.0 / hits + 1.0 / misses)
    out = pd.DataFrame(
        {
            "study": labels,
            "estimate": np.where(usable, logit, np.nan),
            "se": np.where(usable, se, np.nan),
            "events": events,
            "n": n,
            "continuity_corrected": corrected,
        }
    )
    notes = _continuity_note(labels[corrected], continuity)
    return _finish_effects(out, reasons, "logit proportion", notes)


def _continuity_note(corrected_labels: np.ndarray, continuity: float) -> tuple[str, ...]:
    if len(corrected_labels) == 0:
        return ()
    names = ", ".join(str(s) for s in corrected_labels)
    return (
        f"Continuity correction: {continuity:g} added to every cell of "
        f"{len(corrected_labels)} stud{'y' if len(corrected_labels) == 1 else 'ies'} with a zero "
        f"cell ({names}), as metafor escalc(add = {continuity:g}, to = 'only0').",
    )


def _finish_effects(out: pd.DataFrame, reasons: np.ndarray, scale: str, notes) -> _Effects:
    out["excluded"] = reasons
    used = reasons == ""
    out.loc[~used, ["estimate", "se"]] = np.nan
    counts = Counter(r for r in reasons if r)
    exclusions = Exclusions(
        n_input=len(out),
        n_used=int(used.sum()),
        reasons=tuple((f"stud{'y' if n == 1 else 'ies'}: {why}", n) for why, n in counts.items()),
    )
    return _Effects(out, scale, tuple(notes) + _excluded_note(out), exclusions)


def _excluded_note(table: pd.DataFrame) -> tuple[str, ...]:
    excluded = table[table["excluded"] != ""]
    if excluded.empty:
        return ()
    listed = "; ".join(
        f"{s} ({why})" for s, why in zip(excluded["study"], excluded["excluded"], strict=True)
    )
    return (f"{len(excluded)} of {len(table)} studies excluded from pooling: {listed}.",)


def forest_rows(study: pd.DataFrame, *, pooled: dict, prediction: tuple[float, float] | None,
                scale: str, exclusions, exponentiate: bool, weighted: bool = True,
                with_counts: bool = True) -> pd.DataFrame:
    """The rows a forest plot draws: one per study, the pooled row and (random effects) the
    prediction row; the layout shared by the inverse-variance and the GLMM summaries.

    ``pooled``: label, estimate, ci_low, ci_high and weight of the pooled row. ``weighted``:
    the studies carry inverse-variance weights (a GLMM's do not). ``with_counts``: keep the
    input counts beside each study.
    """
    transform = _back_transform(scale) if exponentiate else None
    rows = pd.DataFrame(
        {
            "label": study["study"].astype(str).to_numpy(),
            "kind": np.where(study["excluded"].eq(""), "study", "excluded"),
            "estimate": study["estimate"].to_numpy(float),
            "ci_low": study["ci_low"].to_numpy(float),
            "ci_high": study["ci_high"].to_numpy(float),
            "weight": study["weight"].to_numpy(float) if weighted else np.nan,
            "excluded": study["excluded"].to_numpy(),
        }
    )
    if with_counts:
        for column in (*TWO_BY_TWO_COLUMNS, *PROPORTION_COLUMNS):
            if column in study.columns:
                rows[column] = study[column].to_numpy()
    extra = [{**pooled, "kind": "pooled", "excluded": ""}]
    if prediction is not None:
        extra.append({"label": "Prediction interval", "kind": "prediction", "estimate": np.nan,
                      "ci_low": prediction[0], "ci_high": prediction[1], "weight": np.nan,
                      "excluded": ""})
    out = pd.concat([rows, pd.DataFrame(extra)], ignore_index=True)
    if transform is not None:
        for column in ("estimate", "ci_low", "ci_high"):
            out[column] = transform(out[column].to_numpy(float))
    out.attrs["scale"] = _display_scale(scale) if transform is not None else scale
    out.attrs["exclusions"] = exclusions
    return out
