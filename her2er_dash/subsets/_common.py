"""Shared pieces of the subset analyses: row selection within HER2 status, guard rails, fits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import _logit, response
from .._data import Exclusions, matches_text, require_columns
from ..errors import AnalysisError
from ..schema import ER_MEASURES, SIGNATURE_COLUMNS, column_label

MIN_GROUP = 10
MIN_EVENTS = 5
MIN_EPV = response.MIN_EVENTS_PER_VARIABLE  # one rule for every logistic model of the app

#: Molecular subtype columns, in order of preference (BluePrint was I-SPY 2's classifier).
SUBTYPE_COLUMNS: tuple[str, ...] = ("blueprint_subtype", "pam50_subtype")
#: The subtype most HER2+ tumours belong to: the natural reference for contrasts.
REFERENCE_SUBTYPE: dict[str, str] = {"blueprint_subtype": "HER2-type", "pam50_subtype": "Her2"}
#: Hormone-receptor columns for the subtype x receptor split, in order of preference.
RECEPTOR_COLUMNS: tuple[str, ...] = ("hr_status", "er_status")
#: Continuous markers: expression signatures, ER level measures and quantitative HER2.
MARKER_COLUMNS: tuple[str, ...] = (
    *SIGNATURE_COLUMNS, *ER_MEASURES, "pr_percent", "her2_ish_ratio", "her2_copy_number",
)  # fmt: skip

#: Preferred markers of ER signalling and of HER2 level, most specific first (page defaults).
ER_MARKERS: tuple[str, ...] = (
    "er_pgr_avg", "esr1_mrna", "er_percent", "er_hscore", "er_allred", "er_fmol",
)  # fmt: skip
LUMINAL_MARKERS: tuple[str, ...] = ("luminal_index", *ER_MARKERS)
HER2_MARKERS: tuple[str, ...] = (
    "her2_index", "mod7_erbb2", "erbb2_y1248", "her2_ish_ratio", "her2_copy_number",
)  # fmt: skip
#: Columns that can define regimen groups.
REGIMEN_COLUMNS: tuple[str, ...] = ("regimen_class", "arm")

ALL = "all"


def _check(value: str, allowed: Sequence[str], name: str) -> None:
    if value not in allowed:
        raise AnalysisError(f"Unknown {name} {value!r}; choose one of {', '.join(allowed)}.")


# ---------------------------------------------------------------------------------------------
# Row selection and small shared pieces
# ---------------------------------------------------------------------------------------------


def _select(df: pd.DataFrame, columns: Sequence[str], her2: str | None, what: str,
            reasons_for: dict[str, str] | None = None):
    """HER2 ``her2`` rows with every one of ``columns``; every other row counted by reason
    (``"missing <column>"`` unless ``reasons_for`` words it otherwise)."""
    columns = list(dict.fromkeys(columns))
    require_columns(df, columns + (["her2_status"] if her2 is not None else []))
    reasons: list[tuple[str, int]] = []
    keep = np.ones(len(df), dtype=bool)
    if her2 is not None:
        status = df["her2_status"]
        missing = status.isna().to_numpy()
        match = matches_text(status, [her2])
        if missing.any():
            reasons.append(("missing HER2 status", int(missing.sum())))
        if (~missing & ~match).any():
            reasons.append((f"HER2 status not {her2}", int((~missing & ~match).sum())))
        keep = match
        if not keep.any():
            raise AnalysisError(
                f"No patient has HER2 status {her2!r}, so {what} cannot be computed. Check the "
                "HER2 filter in the sidebar, or map a HER2 status column on the Cohort page."
            )
    for column in columns:
        lost = keep & df[column].isna().to_numpy()
        if lost.any():
            reasons.append(((reasons_for or {}).get(column, f"missing {column_label(column)}"),
                            int(lost.sum())))
            keep &= ~lost
    excl = Exclusions(len(df), int(keep.sum()), tuple(reasons))
    if not keep.any():
        raise AnalysisError(f"No patient has every value needed for {what}: {excl.describe()}.")
    return df.loc[keep, columns], excl


def _outcome(frame: pd.DataFrame, outcome: str, what: str) -> np.ndarray:
    y = _logit.binary_outcome(frame[outcome], outcome)
    _logit.require_both_outcomes(y, outcome, what)
    return y


def _too_small(n, events, min_n: int, min_events: int) -> np.ndarray:
    n, events = np.asarray(n, float), np.asarray(events, float)
    return (n < min_n) | (events < min_events) | (n - events < min_events)


def _small_note(min_n: int, min_events: int) -> str:
    return (f"fewer than {min_n} patients or {min_events} responders/non-responders: shown "
            "descriptively, no p-value")


def _epv(y: np.ndarray, n_coefficients: int) -> float:
    """Events per variable: the rarer outcome per estimated coefficient (intercept excluded)."""
    rarer = min(float(y.sum()), float(len(y) - y.sum()))
    return rarer / max(n_coefficients, 1)


def _epv_warning(epv: float, what: str, min_epv: int) -> str | None:
    if epv >= min_epv:
        return None
    return (f"{what}: only {epv:.1f} of the rarer outcome per coefficient (fewer than {min_epv}); "
            "estimates may be biased away from 1 and intervals too narrow.")


def _fit(X: np.ndarray, y: np.ndarray, names: Sequence[str], what: str):
    """Maximum-likelihood logistic fit; refuses collinear designs and separation."""
    aliased = _logit.aliased_column(X)
    if aliased is not None:
        raise AnalysisError(
            f"In {what}, {names[aliased]} is determined by the other terms (collinear): drop one "
            "of the overlapping variables."
        )
    fit, rows = _logit.fit_collapsed(X, y)
    culprit = _logit.separated_column(fit, rows, names)
    if culprit is not None:
        raise AnalysisError(
            f"Separation in {what}: no finite estimate for {culprit} (fitted probabilities reach "
            "0 or 1). Use fewer terms or larger groups."
        )
    return fit


def _lr(full_loglik: float, reduced_loglik: float, df: int) -> tuple[float, float]:
    from scipy.stats import chi2

    statistic = max(2.0 * (full_loglik - reduced_loglik), 0.0)
    return statistic, float(chi2.sf(statistic, df))


def _dummies(values: pd.Series, levels: Sequence, reference) -> tuple[list[np.ndarray], list]:
    """Treatment-coded indicator columns of ``values`` for every level but ``reference``."""
    text = values.astype(str).to_numpy()
    others = [lev for lev in levels if lev != reference]
    return [(text == str(lev)).astype(float) for lev in others], others


def _chain(first: Exclusions, second: Exclusions) -> Exclusions:
    """The row accounting of two selections applied one after the other."""
    return Exclusions(first.n_input, second.n_used, first.reasons + second.reasons)


