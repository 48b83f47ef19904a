"""Roles from content: a second look at each name-based guess, using the column's values.

A name can mislead: I-SPY's ``RFS`` is a time in days (751, 1043, ...), not an event; a text
column of ``HRposHER2neg``/``TripleNeg`` is a subtype, not a HER2 status; TCGA's 0–4+
``er_ihc_score`` is not an H-score. :func:`check` moves such a guess to the role the values
support, or drops it, and then never calls it "high" confidence. :func:`pair_endpoints` gives
an event column with a generic name (``status``, ``censor``) to the one time column that lacks
an event, and vice versa.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..schema import ENDPOINTS, event_column, time_column
from . import values as vals

SAMPLE_ROWS = 5_000
CONTRADICTED = 0.75  # the best score a guess can keep when the values contradict its name
_SUBTYPE = re.compile(
    r"(hr|er|pr|her2)\s*(pos|neg|[+-])[^a-z]*(her2|hr|er)|triple\s*-?\s*neg|luminal|lum\s*[ab]\b|"
    r"\blum[ab]\b|basal|claudin|her2[- ]?enriched|normal[- ]?like|^her2$|tnbc|"
    r"hr\+?/her2|er\+?/her2", re.I)
_RANGE = re.compile(r"^\s*[<>≤≥]?\s*\d+(\.\d+)?\s*(-|–|to)\s*\d+(\.\d+)?\s*%?\s*(years?)?\s*$|"
                    r"^\s*[<>≤≥]\s*\d+\s*%?\s*$", re.I)
_STAGE = re.compile(r"^\s*(stage\s*)?(0|i{1,3}v?|iv|x)[abc]?\s*$|^\s*stage\b", re.I)
_TN = re.compile(r"^\s*(c|p|yp)?[tn]([0-4]|is|x)[a-d]?\w*\s*$", re.I)
_IHC = re.compile(r"^\s*(ihc\s*)?[0-4]\s*\+?\s*$", re.I)
_YEARS = r"(?i)(?<=\d)\s*\+?\s*(years?|yrs?)$"


@dataclass
class Summary:
    """What a column's values look like (on a sample of rows)."""

    n: int = 0
    numeric: np.ndarray = field(default_factory=lambda: np.array([]))  # finite numbers
    numeric_share: float = 0.0
    words: list[str] = field(default_factory=list)  # distinct non-numeric texts (up to 60)
    n_distinct: int = 0
    preview: str = ""

    @property
    def binary(self) -> bool:
        return self.numeric_share > 0.95 and len(self.numeric) > 0 and bool(
            np.isin(self.numeric, (0.0, 1.0)).all())

    def share(self, pattern: re.Pattern) -> float:
        return float(np.mean([bool(pattern.search(w)) for w in self.words])) if self.words else 0.0

    @property
    def times_like(self) -> bool:
        """Many distinct non-negative numbers, well beyond 0/1/2 codes."""
        if self.numeric_share < 0.8 or len(self.numeric) == 0:
            return False
        distinct = len(np.unique(self.numeric))
        return distinct > 10 and float(self.numeric.max()) > 2 and float(self.numeric.min()) >= 0

    def status_words(self) -> float:
        """Share of distinct texts the status vocabulary reads (positive/negative/...)."""
        if not self.words:
            return 0.0
        parsed = vals.parse_status(pd.Series(self.words, dtype=object))
        return float(1 - parsed.failed.mean())


def summarize(series: pd.Series, limit: int = SAMPLE_ROWS) -> Summary:
    """A :class:`Summary` of a column (first ``limit`` values)."""
    head = series.iloc[:limit]
    present = head.dropna()
    summary = Summary(n=int(series.notna().sum()))
    if present.empty:
        return summary
    if pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        numbers = present.to_numpy(dtype="float64")
        text = pd.Series([], dtype=object)
    else:
        text = present.astype(str).str.strip()
        uniques = pd.unique(text)
        missing = {u for u in uniques if vals._word(u) in vals.MISSING_WORDS}
        if missing:  # "[Not Available]", "NA", "Unknown": missing, not content
            text = text[~text.isin(missing)]
            if text.empty:
                return summary
        bare = text.str.rstrip("%").str.replace(_YEARS, "", regex=True)  # "52 years", "90+ years"
        numbers = pd.to_numeric(bare, errors="coerce").to_numpy(dtype="float64")
        text = text[np.isnan(numbers)]
    finite = numbers[np.isfinite(numbers)]
    summary.numeric = finite
    summary.numeric_share = len(finite) / max(len(numbers), 1)
    uniques = pd.unique(text)
    summary.words = [str(u) for u in uniques[:60] if vals._word(str(u)) not in ("", "na", "nan")]
    summary.n_distinct = int(present.nunique())
    first = pd.unique(present.astype(str))[:5]
    summary.preview = ", ".join(str(v) for v in first)
    return summary


def _endpoint_of(canonical: str) -> str | None:
    for endpoint in ENDPOINTS:
        if canonical in (time_column(endpoint), event_column(endpoint)):
            return endpoint
    return None


def _lowered(score: float, reason: str, why: str) -> tuple[float, str]:
    return min(score, CONTRADICTED), f"{reason}; {why}"


def check(column: str, canonical: str | None, score: float, reason: str,
          summary: Summary) -> tuple[str | None, float, str]:
    """The guess after looking at the values: possibly another canonical column or none."""
    if canonical is None or summary.n == 0:
        return canonical, score, reason
    endpoint = _endpoint_of(canonical)
    if endpoint and canonical.endswith("_event") and summary.times_like:
        top = float(summary.numeric.max())
        why = (f"but its values are times ({_examples(summary)}; "
               f"{len(np.unique(summary.numeric)):,} distinct, up to {top:,.0f}): read as "
               f"the {endpoint.upper()} time")
        return time_column(endpoint), *_lowered(score, reason, why)
    if endpoint and canonical.endswith("_months") and (summary.binary or (
            summary.numeric_share < 0.2 and _event_words(summary) > 0.8)):
        why = f"but its values are 0/1 or alive/dead ({_examples(summary)}): read as the event"
        return event_column(endpoint), *_lowered(score, reason, why)
    if endpoint and canonical.endswith("_months") and summary.numeric_share < 0.5:
        return None, score, f"{reason}; but its values are not numbers ({_examples(summary)})"
    return _check_measure(canonical, score, reason, summary)


def _check_measure(canonical, score, reason, summary: Summary):
    if canonical == "esr1_mrna" and score < 0.9 and summary.binary:
        return "er_status", 0.35, "ESR1 binary mRNA call, used as ER status only if no other"
    subtype = summary.share(_SUBTYPE)
    if canonical in ("er_status", "pr_status", "hr_status", "her2_status", "her2_category",
                     "er_category") and subtype >= 0.5:
        return None, 1.0, (f"{reason}; but its values are subtypes ({_examples(summary)}), not "
                           "a status: not used")
    if canonical in ("age", "er_percent", "pr_percent") and summary.words \
            and summary.share(_RANGE) >= 0.5 and summary.numeric_share < 0.5:
        what = "age groups" if canonical == "age" else "percentage bins"
        return None, 0.9, f"{reason}; but its values are {what} ({_examples(summary)}): not used"
    if canonical in ("t_stage", "n_stage") and summary.words and summary.share(_STAGE) >= 0.5 \
            and summary.share(_TN) < 0.5:
        return None, 0.9, (f"{reason}; but its values are overall stages ({_examples(summary)}), "
                           "not T/N categories: not used")
    if canonical == "t_stage" and score < 0.8 and summary.numeric_share > 0.8:
        return None, 0.9, (f"{reason}; its values are numbers ({_examples(summary)}), which "
                           "for 'tumor stage' usually means the overall stage: not used")
    if canonical == "er_hscore" and (summary.share(_IHC) >= 0.5 or (
            len(summary.numeric) and float(summary.numeric.max()) <= 4)):
        return None, 0.9, (f"{reason}; but its values are an intensity score "
                           f"({_examples(summary)}), not an H-score (0-300): not used")
    if canonical == "her2_ihc" and summary.words and summary.share(_IHC) < 0.5 \
            and summary.numeric_share < 0.5 and summary.status_words() > 0.5:
        return "her2_status", 0.8, "HER2 IHC given as a result (positive/negative), not a score"
    numeric_kind = canonical in ("her2_ish_ratio", "her2_copy_number", "er_percent", "pr_percent",
                                 "er_allred", "er_hscore", "er_fmol", "esr1_mrna", "age",
                                 "surgery_months")
    if numeric_kind and summary.numeric_share < 0.3 and summary.words:
        if canonical.startswith("her2") and summary.status_words() > 0.7:
            return "her2_status", 0.7, (f"{reason}; but its values are positive/negative "
                                        f"({_examples(summary)}): read as the HER2 status")
        return None, 0.9, f"{reason}; but its values are not numbers ({_examples(summary)})"
    limits = {"er_percent": 100, "pr_percent": 100, "er_allred": 8, "er_hscore": 300, "age": 120,
              "her2_ihc": 3}
    if canonical in limits and len(summary.numeric) and float(summary.numeric.max()) > \
            limits[canonical] * 1.5:
        why = f"but values reach {float(summary.numeric.max()):,.4g} (expected ≤ {limits[canonical]})"
        return canonical, *_lowered(score, reason, why)
    if canonical in ("er_status", "pr_status", "her2_status", "pcr") and summary.times_like:
        return canonical, *_lowered(score, reason, f"but its values are many different numbers "
                                                   f"({_examples(summary)})")
    return canonical, score, reason


def _event_words(summary: Summary) -> float:
    if not summary.words:
        return 0.0
    parsed = vals.parse_binary(pd.Series(summary.words, dtype=object), kind="event")
    return float(1 - parsed.failed.mean())


def _examples(summary: Summary) -> str:
    if summary.words:
        return ", ".join(summary.words[:3])
    shown = [f"{v:g}" for v in summary.numeric[:3]]
    return ", ".join(shown) + (" ..." if len(summary.numeric) > 3 else "")


def event_like(summary: Summary) -> bool:
    """0/1 numbers or event words (dead/alive, yes/no) only."""
    if summary.n == 0:
        return False
    if summary.binary:
        return True
    return summary.numeric_share < 0.2 and _event_words(summary) > 0.8


# --------------------------------------------------------------------------------------------
# Pairing times and events
# --------------------------------------------------------------------------------------------

_GENERIC_EVENT = re.compile(r"(status|event|cens|censor|censored|censoring|ind|indicator|dead|"
                            r"death|died|fustat|outcome)$")
_GENERIC_TIME = re.compile(r"^(time|survivaltime|followup|followuptime|futime|fumonths|"
                           r"timemonths|timedays|timeyears|survtime|surv|months|days)")


def pair_endpoints(guesses: pd.DataFrame, summaries: dict[str, Summary],
                   keys: dict[str, str]) -> None:
    """Give generic event/time columns to the one endpoint missing its partner (in place).

    ``keys`` maps each source column to its normalised name.
    """
    def endpoints_with(suffix: str, generic: bool) -> set[str]:
        rows = guesses[guesses.canonical.fillna("").str.endswith(suffix)]
        if not generic:
            rows = rows[rows.score > 0.45]
        return {_endpoint_of(c) for c in rows.canonical} - {None}  # not surgery_months

    for suffix, other, pattern, maker in (("_months", "_event", _GENERIC_EVENT, event_column),
                                          ("_event", "_months", _GENERIC_TIME, time_column)):
        lonely = endpoints_with(suffix, generic=False) - endpoints_with(other, generic=False)
        if len(lonely) != 1:
            continue
        endpoint = lonely.pop()
        partner = guesses[guesses.canonical.fillna("").str.endswith(suffix)
                          & (guesses.canonical.map(_endpoint_of) == endpoint)].source_column.iloc[0]
        candidates = [
            i for i, row in guesses.iterrows()
            if (row.canonical is None or (str(row.canonical).endswith(other)
                                          and row.score <= 0.45))
            and pattern.search(keys.get(row.source_column, ""))
            and (event_like(summaries[row.source_column]) if other == "_event"
                 else summaries[row.source_column].times_like)
        ]
        if len(candidates) == 1:
            i = candidates[0]
            guesses.at[i, "canonical"] = maker(endpoint)
            guesses.at[i, "score"] = 0.6
            guesses.at[i, "reason"] = (f"pairs with '{partner}', the only {endpoint.upper()} "
                                       f"column without its {other.strip('_')} partner")
