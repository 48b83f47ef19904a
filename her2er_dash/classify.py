"""ER, PR, HR and HER2 classification by the published rules (ASCO/CAP), fully vectorised.

Rules (see ``docs/definitions.md``):

* **ER level → category** with editable :class:`ERCutpoints`. Three-band rule (``low`` set):
  ``value < low`` → ER-negative, ``low <= value <= high`` → ER-low, ``value > high`` →
  ER-positive (ASCO/CAP 2020 for % of nuclei: < 1 %, 1–10 %, > 10 %). Binary rule
  (``low=None``), used where no ER-low band is defined: ``value >= high`` → ER-positive, else
  ER-negative (Allred >= 3, ligand binding >= 10 fmol/mg, ESR1 mRNA >= cohort median).
* **One ER definition.** Wherever a patient has an ER level, ``er_status`` follows the category
  under the cut-points in force (ER-low counts as positive: ASCO/CAP 2020 reports it as "ER low
  positive") and ``hr_status`` follows ``er_status``; the statuses the file recorded stay
  available as ``er_status_recorded`` and ``hr_status_recorded``. Without an ER level the
  recorded status is used as it is.
* **HER2 status** by ASCO/CAP 2018 (Wolff et al., J Clin Oncol 2018;36:2105-22; confirmed
  2023). By IHC alone: 3+ positive, 0/1+ negative, 2+ equivocal (ISH decides). Once a dual-probe
  ISH group is known: group 1 (ratio >= 2.0, >= 4.0 copies) is positive and group 5 (ratio < 2.0,
  < 4.0 copies) negative *whatever the IHC*; groups 2–4 are read with the concurrent IHC:
  group 2 (ratio >= 2.0, < 4.0 copies) and group 4 (ratio < 2.0, 4.0–< 6.0 copies) are negative
  unless IHC is 3+; group 3 (ratio < 2.0, >= 6.0 copies) is positive if IHC is 2+ or 3+ and
  negative if IHC is 0 or 1+. Without IHC, groups 2–4 stay unknown.
* **HER2 category**: HER2-positive; HER2-low = IHC 1+, or IHC 2+ with a negative status;
  HER2-ultralow = IHC >0 <1+ (faint, incomplete staining in <= 10 % of cells; ``her2_ihc`` 0.5)
  where the IHC records it; HER2-zero = IHC 0 (which then includes ultralow tumours when the
  file does not separate them).
* **HR status**: positive if ER or PR is positive; negative only if both are negative.

Statuses are the strings ``"positive"``/``"negative"`` with ``NaN`` for unknown (object dtype, as
``pandas.read_csv`` gives them); categories are ordered ``pd.Categorical`` columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import AnalysisError
from .schema import (
    ER_CATEGORIES,
    ER_MEASURES,
    HER2_CATEGORIES,
    HER2_IHC_ULTRALOW,
    NEGATIVE,
    POSITIVE,
    column_label,
)
from .wording import count

#: Units used when a cut-point rule is written out for a person.
_UNITS: dict[str, tuple[str, str]] = {
    # measure: (prefix, suffix) around a number, e.g. "Allred 3", "10 %"
    "er_percent": ("", " %"),
    "er_allred": ("Allred ", ""),
    "er_hscore": ("H-score ", ""),
    "er_fmol": ("", " fmol/mg"),
    "esr1_mrna": ("ESR1 mRNA ", ""),
}

#: Default cut-points per measure: (low, high, reference). esr1_mrna is data-driven (median).
_DEFAULTS: dict[str, tuple[float | None, float, str]] = {
    "er_percent": (1.0, 10.0, "ASCO/CAP 2020"),
    "er_allred": (None, 3.0, "Allred score; positive >= 3"),
    "er_hscore": (
        1.0,
        30.0,
        "no consensus; app convention, editable: ER-low is the H-score range reachable by "
        "<= 10 % of nuclei at strong intensity",
    ),
    "er_fmol": (None, 10.0, "ligand-binding assay; positive >= 10 fmol/mg protein"),
}

#: PR positivity on % of nuclei (ASCO/CAP 2020: >= 1 % is PR-positive).
PR_PERCENT_POSITIVE = 1.0


@dataclass(frozen=True)
class ERCutpoints:
    """Cut-points turning an ER level measure into ER categories.

    Parameters
    ----------
    measure : one of :data:`her2er_dash.schema.ER_MEASURES`.
    low : lower edge of the ER-low band (``value < low`` is ER-negative). ``None`` means a
        binary rule with no ER-low band: ``value >= high`` is ER-positive, else ER-negative.
    high : upper edge of the ER-low band (``value > high`` is ER-positive); with ``low=None``
        the positivity threshold (``value >= high`` is ER-positive).
    reference : where the rule comes from, shown by :meth:`describe`. ``None`` means "look it up":
        the measure's default reference when the cut-points equal its defaults, else nothing.
    """

    measure: str = "er_percent"
    low: float | None = 1.0
    high: float = 10.0
    reference: str | None = None

    def __post_init__(self) -> None:
        if self.measure not in ER_MEASURES:
            raise AnalysisError(
                f"Unknown ER measure {self.measure!r}. Choose one of: {', '.join(ER_MEASURES)}."
            )
        if not np.isfinite(self.high) or (self.low is not None and not np.isfinite(self.low)):
            raise AnalysisError("ER cut-points must be finite numbers.")
        if self.low is not None and self.low > self.high:
            raise AnalysisError(
                f"The ER-low band is empty: its lower cut-point ({self.low:g}) is above its upper "
                f"cut-point ({self.high:g}). Swap them, or clear the lower one for a binary rule."
            )

    @property
    def is_binary(self) -> bool:
        """True when there is no ER-low band (only ER-negative / ER-positive)."""
        return self.low is None

    def describe(self) -> str:
        """The rule in words, e.g. "ER-negative < 1 %, ER-low 1–10 %, ER-positive > 10 % (ASCO/CAP 2020)"."""
        prefix, suffix = _UNITS[self.measure]

        def fmt(value: float) -> str:
            return f"{prefix}{value:g}{suffix}"

        if self.low is None:
            rule = f"ER-negative < {fmt(self.high)}, ER-positive >= {fmt(self.high)}"
        else:
            band = f"{prefix}{self.low:g}–{self.high:g}{suffix}"
            rule = f"ER-negative < {fmt(self.low)}, ER-low {band}, ER-positive > {fmt(self.high)}"
        reference = self.reference if self.reference is not None else self._default_reference()
        return f"{rule} ({reference})" if reference else rule

    def _default_reference(self) -> str:
        default = _DEFAULTS.get(self.measure)
        if default is not None and (self.low, self.high) == default[:2]:
            return default[2]
        return ""


def default_cutpoints(measure: str = "er_percent", values=None) -> ERCutpoints:
    """The documented default cut-points of an ER measure (editable by the user).

    ``er_percent``: ASCO/CAP 2020 (< 1 % negative, 1–10 % ER-low, > 10 % positive).
    ``er_allred``: >= 3 positive, no ER-low band. ``er_fmol``: >= 10 fmol/mg positive.
    ``er_hscore``: no consensus; this app uses < 1 negative, 1–30 ER-low, > 30 positive (30 is
    the H-score of 10 % of nuclei at strong intensity), editable. ``esr1_mrna``: no universal
    cut-point; the cohort median of ``values`` (>= median counted as ER-positive).
    """
    if measure == "esr1_mrna":
        numbers = pd.to_numeric(pd.Series(values, dtype="float64"), errors="coerce")
        if values is None or numbers.notna().sum() == 0:
            raise AnalysisError(
                "ESR1 mRNA has no universal cut-point: the default is the cohort median, which "
                "needs the ESR1 values. Pass values=, or enter a cut-point by hand."
            )
        median = float(numbers.median())
        return ERCutpoints("esr1_mrna", None, median, f"no universal cut-point; cohort median {median:.3g}")
    if measure not in _DEFAULTS:
        raise AnalysisError(
            f"Unknown ER measure {measure!r}. Choose one of: {', '.join(ER_MEASURES)}."
        )
    low, high, reference = _DEFAULTS[measure]
    return ERCutpoints(measure, low, high, reference)


# -- small vectorised helpers -----------------------------------------------------------------


def _numeric(values, name: str) -> np.ndarray:
    """Float array of a column; text such as "2+" is read as 2; unreadable text is an error."""
    series = pd.Series(values)
    if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
        series = series.astype("string").str.replace("+", "", regex=False).str.strip()
    numbers = pd.to_numeric(series, errors="coerce")
    bad = numbers.isna() & series.notna()
    if bad.any():
        examples = sorted({str(v) for v in series[bad].head(5)})
        raise AnalysisError(
            f"{name} has values that are not numbers: {examples}. Recode them on the Cohort page."
        )
    return numbers.to_numpy(dtype="float64", na_value=np.nan)


def _status_codes(values) -> np.ndarray:
    """int8 codes of a status column: 1 positive, 0 negative, -1 unknown or unrecognised."""
    series = pd.Series(values)
    if isinstance(series.dtype, pd.CategoricalDtype):
        lookup = np.array([_CODE.get(c, -1) for c in series.cat.categories] + [-1], dtype="int8")
        return lookup[series.cat.codes.to_numpy()]
    array = series.to_numpy(dtype=object, copy=True)
    missing = pd.isna(array)
    if missing.any():
        array[missing] = None  # pd.NA would make the element-wise == below ambiguous
    codes = np.full(len(array), -1, dtype="int8")
    codes[array == POSITIVE] = 1
    codes[array == NEGATIVE] = 0
    return codes


_CODE = {POSITIVE: 1, NEGATIVE: 0}
#: Status strings by code; index -1 (unknown) picks the last element, NaN.
_STATUS_BY_CODE = np.array([NEGATIVE, POSITIVE, np.nan], dtype=object)


def _status_from_codes(codes: np.ndarray, index=None, name: str | None = None) -> pd.Series:
    return pd.Series(_STATUS_BY_CODE[codes], index=index, dtype=object, name=name)


def _codes_from_masks(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """1 where ``positive``, else 0 where ``negative``, else -1 (arithmetic: no fancy indexing)."""
    positive = np.asarray(positive, dtype=bool)
    unknown = ~(positive | np.asarray(negative, dtype=bool))
    return positive.view(np.int8) - unknown.view(np.int8)


def _categorical(codes: np.ndarray, levels: tuple[str, ...], index, name: str) -> pd.Series:
    cat = pd.Categorical.from_codes(codes.astype("int8"), categories=list(levels), ordered=True)
    return pd.Series(cat, index=index, name=name)


# -- ER ---------------------------------------------------------------------------------------


def _er_codes(values: np.ndarray, cutpoints: ERCutpoints) -> np.ndarray:
    """Category codes (0 neg, 1 low, 2 pos, -1 missing) of an ER level array."""
    codes = np.full(len(values), -1, dtype="int8")
    known = ~np.isnan(values)
    if cutpoints.low is None:
        codes[known] = np.where(values[known] >= cutpoints.high, 2, 0)
    else:
        v = values[known]
        codes[known] = np.where(v < cutpoints.low, 0, np.where(v <= cutpoints.high, 1, 2))
    return codes


def _resolve_cutpoints(df: pd.DataFrame, cutpoints: ERCutpoints | None) -> ERCutpoints | None:
    """The cut-points to use: the given ones, or the defaults of the first ER measure present."""
    if cutpoints is not None:
        return cutpoints
    for measure in ER_MEASURES:
        if measure in df.columns and df[measure].notna().any():
            return default_cutpoints(measure, values=df[measure])
    return None


def er_category(df: pd.DataFrame, cutpoints: ERCutpoints | None = None) -> pd.Series:
    """ER category per patient (ordered ER-negative < ER-low < ER-positive).

    Uses the measure named by ``cutpoints`` (default: the documented defaults of the first ER
    measure present, see :func:`default_cutpoints`). Where that measure is missing, falls back
    to ``er_status`` (positive → ER-positive, negative → ER-negative);
    :func:`er_category_source` says which was used. Raises :class:`AnalysisError` when the data
    has neither an ER measure nor ``er_status``.
    """
    column = _recorded_column(df, "er_status")
    status = _status_codes(df[column]) if column is not None else None
    return _er_category(df, cutpoints, status)


def _recorded_column(df: pd.DataFrame, status: str) -> str | None:
    """The column holding ``status`` as the file recorded it (``*_recorded`` once classified)."""
    for name in (f"{status}_recorded", status):
        if name in df.columns:
            return name
    return None


def _er_category(
    df: pd.DataFrame, cutpoints: ERCutpoints | None, status: np.ndarray | None
) -> pd.Series:
    cutpoints = _resolve_cutpoints(df, cutpoints)
    has_measure = cutpoints is not None and cutpoints.measure in df.columns
    if not has_measure and status is None:
        wanted = cutpoints.measure if cutpoints is not None else "an ER level measure"
        raise AnalysisError(
            f"ER category needs {wanted} or er_status, and the data has neither. Map an ER "
            "column on the Cohort page."
        )
    codes = np.full(len(df), -1, dtype="int8")
    if has_measure:
        codes = _er_codes(_numeric(df[cutpoints.measure], cutpoints.measure), cutpoints)
    if status is not None:
        fill = codes < 0
        codes[fill & (status == 1)] = 2
        codes[fill & (status == 0)] = 0
    return _categorical(codes, ER_CATEGORIES, df.index, "er_category")


def er_category_source(df: pd.DataFrame, cutpoints: ERCutpoints | None = None) -> str:
    """A sentence saying how :func:`er_category` classified this data (measure, rule, fallback)."""
    cutpoints = _resolve_cutpoints(df, cutpoints)
    status = _recorded_column(df, "er_status")
    if cutpoints is None or cutpoints.measure not in df.columns:
        if status is None:
            return "ER category unavailable: the data has no ER level measure and no er_status."
        return "ER category from er_status only (no ER level measure): ER-low cannot be identified."
    text = (
        f"ER category from {ER_MEASURES[cutpoints.measure]}: {cutpoints.describe()}; ER status "
        "and HR status follow it (ER-low counts as ER-positive)."
    )
    n_missing = int(df[cutpoints.measure].isna().sum())
    if n_missing and status is not None:
        n_status = int((df[cutpoints.measure].isna() & df[status].notna()).sum())
        text += (
            f" {count(n_status, 'patient')} without a value of {column_label(cutpoints.measure)} "
            f"{'was' if n_status == 1 else 'were'} classified from the recorded ER status "
            "(ER-positive or ER-negative only)."
        )
    return text


def recorded_er_cutoffs(
    df: pd.DataFrame, cutpoints: ERCutpoints | None = None, *, by: str = "study"
) -> pd.DataFrame:
    """The ER cut-off each study's recorded ER status implies, beside the rule in force.

    For every level of ``by`` (the whole cohort when the column is absent) among patients with
    both an ER level and a recorded ER status: how many were recorded positive and negative, the
    highest level recorded negative and the lowest recorded positive, the cut-off this implies,
    and how many recorded statuses the current rule (``cutpoints``, default: the measure's
    defaults) changes. Studies that used another cut-off (e.g. ER-positive from 10 % rather than
    1 %) then show up before their patients are pooled.

    Returns columns ``study, measure, n, recorded_positive, recorded_negative,
    highest_negative, lowest_positive, implied_rule, consistent_with_current, n_changed,
    current_rule``; empty when no patient has both values.
    """
    columns = ["study", "measure", "n", "recorded_positive", "recorded_negative",
               "highest_negative", "lowest_positive", "implied_rule",
               "consistent_with_current", "n_changed", "current_rule"]  # fmt: skip
    cutpoints = _resolve_cutpoints(df, cutpoints)
    status_column = _recorded_column(df, "er_status")
    if cutpoints is None or cutpoints.measure not in df.columns or status_column is None:
        return pd.DataFrame(columns=columns)
    level = _numeric(df[cutpoints.measure], cutpoints.measure)
    recorded = _status_codes(df[status_column])
    usable = ~np.isnan(level) & (recorded >= 0)
    if not usable.any():
        return pd.DataFrame(columns=columns)
    current = _er_codes(level, cutpoints) >= 1  # ER-low and ER-positive count as positive
    groups = df[by].astype(object).where(df[by].notna(), "(no study)") if by in df else None
    labels = np.full(len(df), "(all patients)", dtype=object) if groups is None else groups.to_numpy()
    threshold = cutpoints.high if cutpoints.low is None else cutpoints.low
    prefix, suffix = _UNITS[cutpoints.measure]
    rows = []
    for study in pd.unique(labels[usable]):
        rows_of = usable & (labels == study)
        values, positive = level[rows_of], recorded[rows_of] == 1
        highest_negative = float(values[~positive].max()) if (~positive).any() else np.nan
        lowest_positive = float(values[positive].min()) if positive.any() else np.nan
        rows.append({
            "study": str(study),
            "measure": cutpoints.measure,
            "n": int(rows_of.sum()),
            "recorded_positive": int(positive.sum()),
            "recorded_negative": int((~positive).sum()),
            "highest_negative": highest_negative,
            "lowest_positive": lowest_positive,
            "implied_rule": _implied_rule(highest_negative, lowest_positive, prefix, suffix),
            "consistent_with_current": bool(
                not highest_negative >= threshold and not lowest_positive < threshold
            ),
            "n_changed": int((current[rows_of] != positive).sum()),
            "current_rule": f"ER status positive from {prefix}{threshold:g}{suffix}",
        })  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _implied_rule(highest_negative: float, lowest_positive: float, prefix: str, suffix: str) -> str:
    def fmt(value: float) -> str:
        return f"{prefix}{value:g}{suffix}"

    if np.isnan(highest_negative):
        return f"all recorded positive (lowest {fmt(lowest_positive)})"
    if np.isnan(lowest_positive):
        return f"all recorded negative (highest {fmt(highest_negative)})"
    if highest_negative < lowest_positive:
        return (
            f"positive from {fmt(lowest_positive)} (negative up to {fmt(highest_negative)})"
        )
    return (
        f"no single cut-off: recorded statuses overlap between {fmt(lowest_positive)} and "
        f"{fmt(highest_negative)}"
    )


# -- HER2 -------------------------------------------------------------------------------------


def _ish_group_array(ratio: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """Float array of ISH groups 1-5 (NaN where a number is missing).

    Filled by masks, from group 5 up, rather than nested ``np.where`` (four float temporaries
    per patient: ~25 MB at the peak of a 1M-patient upload's loading)."""
    group = np.full(len(ratio), 5.0)
    group[copies >= 4.0] = 4.0
    group[copies >= 6.0] = 3.0
    amplified = ratio >= 2.0
    group[amplified] = 2.0
    group[amplified & (copies >= 4.0)] = 1.0
    group[np.isnan(ratio) | np.isnan(copies)] = np.nan
    return group


def ish_group(ratio, copies) -> pd.Series:
    """ASCO/CAP 2018 dual-probe ISH group (1–5) from HER2/CEP17 ratio and HER2 copies per cell.

    1: ratio >= 2.0 and copies >= 4.0; 2: ratio >= 2.0, copies < 4.0; 3: ratio < 2.0, copies
    >= 6.0; 4: ratio < 2.0, copies 4.0–< 6.0; 5: ratio < 2.0, copies < 4.0. NA when either is
    missing (the group needs both numbers).
    """
    r = _numeric(ratio, "her2_ish_ratio")
    c = _numeric(copies, "her2_copy_number")
    if len(r) != len(c):
        raise AnalysisError("ISH ratio and copy number must have the same length.")
    index = ratio.index if isinstance(ratio, pd.Series) else None
    return pd.Series(_ish_group_array(r, c), index=index, name="ish_group").astype("Int8")


#: IHC scores the algorithm reads: 0, ultralow (>0 <1+), 1+, 2+, 3+.
IHC_SCORES: tuple[float, ...] = (0.0, HER2_IHC_ULTRALOW, 1.0, 2.0, 3.0)


def _ihc_scores(ihc) -> np.ndarray:
    score = _numeric(ihc, "her2_ihc")
    known = ~np.isnan(score)
    invalid = known & ~np.isin(score, IHC_SCORES)
    if invalid.any():
        odd = sorted(set(score[invalid].tolist()))[:5]
        raise AnalysisError(
            f"her2_ihc must be 0, 1, 2 or 3 (IHC 1+ is 1, 2+ is 2, 3+ is 3; 0.5 marks an "
            f"ultralow result, >0 but <1+); found {odd}. Recode the HER2 IHC column on the "
            "Cohort page."
        )
    return score


def _her2_codes(score: np.ndarray, group: np.ndarray) -> np.ndarray:
    """HER2 status codes (1 positive, 0 negative, -1 unknown) by ASCO/CAP 2018.

    ``score`` is the IHC score (NaN unknown; 0.5 ultralow counts as IHC 0 here), ``group`` the
    dual-probe ISH group 1-5 (NaN when no ISH result). With an ISH group, the ISH algorithm and
    the concurrent IHC decide together; without one, IHC alone decides (2+ stays unknown).
    """
    has_ihc = ~np.isnan(score)
    ihc3 = score == 3
    ihc2_or_3 = score >= 2
    ihc_0_or_1 = has_ihc & (score <= 1)
    no_ish = np.isnan(group)
    positive = (
        (group == 1)
        | ((group == 2) & ihc3)
        | ((group == 3) & ihc2_or_3)
        | ((group == 4) & ihc3)
        | (no_ish & ihc3)
    )
    negative = (
        (group == 5)
        | ((group == 2) & has_ihc & ~ihc3)
        | ((group == 3) & ihc_0_or_1)
        | ((group == 4) & has_ihc & ~ihc3)
        | (no_ish & ihc_0_or_1)
    )
    return _codes_from_masks(positive, negative)


def her2_status(ihc, ish_ratio=None, copy_number=None) -> pd.Series:
    """HER2 status by ASCO/CAP 2018 (Wolff et al. 2018; confirmed 2023).

    IHC only (no ISH group): 3+ → positive; 0 or 1+ → negative; 2+ → unknown (equivocal, ISH
    needed). With a dual-probe ISH group: group 1 → positive and group 5 → negative whatever the
    IHC; group 2 → negative unless the concurrent IHC is 3+; group 3 → positive if IHC is 2+ or
    3+, negative if 0 or 1+; group 4 → negative unless IHC is 3+. Groups 2–4 without IHC stay
    unknown (NaN): the guideline resolves them only with the concurrent IHC. An ultralow IHC
    (0.5) is read as IHC 0.
    """
    index = ihc.index if isinstance(ihc, pd.Series) else None
    score = _ihc_scores(ihc)
    if ish_ratio is None or copy_number is None:
        group = np.full(len(score), np.nan)
    else:
        group = _ish_group_array(
            _numeric(ish_ratio, "her2_ish_ratio"), _numeric(copy_number, "her2_copy_number")
        )
    return _status_from_codes(_her2_codes(score, group), index, "her2_status")


_HER2_POSITIVE, _HER2_LOW, _HER2_ULTRALOW, _HER2_ZERO = range(4)


def _her2_category_codes(score: np.ndarray, status: np.ndarray) -> np.ndarray:
    positive = status == 1
    negative = status == 0
    unknown = status < 0
    positive |= unknown & (score == 3)
    negative |= unknown & (score <= 1)
    codes = np.full(len(score), -1, dtype="int8")
    codes[positive] = _HER2_POSITIVE
    codes[negative & ((score == 1) | (score == 2))] = _HER2_LOW
    codes[negative & (score == HER2_IHC_ULTRALOW)] = _HER2_ULTRALOW
    codes[negative & (score == 0)] = _HER2_ZERO
    return codes


def her2_category(ihc, status) -> pd.Series:
    """HER2-positive / HER2-low / HER2-ultralow / HER2-zero from IHC and the final status.

    HER2-low = IHC 1+, or IHC 2+ with a negative status; HER2-ultralow = IHC >0 <1+ (``her2_ihc``
    0.5) with a negative status; HER2-zero = IHC 0 with a negative status. ``status`` is the final
    HER2 status; where it is unknown, IHC 0, ultralow, 1+ and 3+ decide on their own (IHC 2+ then
    stays unknown). A negative status with IHC 3+ (e.g. ISH group 5) is discordant: unknown.
    """
    index = status.index if isinstance(status, pd.Series) else None
    codes = _her2_category_codes(_ihc_scores(ihc), _status_codes(status))
    return _categorical(codes, HER2_CATEGORIES, index, "her2_category")


def _hr_codes(er: np.ndarray, pr: np.ndarray) -> np.ndarray:
    return _codes_from_masks((er == 1) | (pr == 1), (er == 0) & (pr == 0))


def hr_status(er_status, pr_status) -> pd.Series:
    """Hormone-receptor status: positive if ER or PR is positive; negative only if both are negative."""
    index = er_status.index if isinstance(er_status, pd.Series) else None
    codes = _hr_codes(_status_codes(er_status), _status_codes(pr_status))
    return _status_from_codes(codes, index, "hr_status")


# -- whole cohort ------------------------------------------------------------------------------


def _fill_status(
    out: pd.DataFrame, column: str, derived: np.ndarray, given_codes: np.ndarray | None = None
) -> np.ndarray:
    """Fill ``column`` from ``derived`` codes only where the file gave no value; return its codes."""
    return _set_status(out, column, derived, np.zeros(len(out), dtype=bool), given_codes)


def _set_status(
    out: pd.DataFrame,
    column: str,
    derived: np.ndarray,
    override: np.ndarray,
    given_codes: np.ndarray | None = None,
) -> np.ndarray:
    """Write ``column``: ``derived`` where ``override`` or where the file gave no value, the
    file's value elsewhere; return the resulting codes.

    A column holding only "negative", "positive" and missing values becomes categorical (cheap
    to filter and copy at registry scale); one with other text keeps that text where it is not
    overridden.
    """
    if column not in out.columns:
        out[column] = _status_categorical(derived, out.index)
        return derived
    given = out[column]
    codes = _status_codes(given) if given_codes is None else given_codes
    # Only rows without a recognised status can be missing: test those alone (isna is slow).
    unknown = codes < 0
    if _only_statuses(given):  # categorical of statuses: unknown means missing
        result = np.where(unknown | override, derived, codes).astype("int8")
        out[column] = _status_categorical(result, out.index)
        return result
    values = given.to_numpy(dtype=object)
    missing = unknown.copy()
    missing[unknown] = pd.isna(values[unknown])
    replace = missing | override
    result = np.where(replace, derived, codes).astype("int8")
    odd_text = unknown & ~replace
    if not odd_text.any():  # every value kept is a recognised status (or missing)
        out[column] = _status_categorical(result, out.index)
    elif replace.any():
        values = values.copy()
        values[replace] = _STATUS_BY_CODE[derived[replace]]
        out[column] = values
    return result


def _only_statuses(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.CategoricalDtype) and set(values.cat.categories) <= {
        NEGATIVE, POSITIVE}


def _status_categorical(codes: np.ndarray, index) -> pd.Categorical:
    return pd.Series(pd.Categorical.from_codes(codes, [NEGATIVE, POSITIVE]), index=index)


def _recorded(values: pd.Series, codes: np.ndarray) -> pd.Series:
    """The recorded status column, categorical when it holds only statuses and missing values
    (cheap to copy and to read again on every re-classification), else as given."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values
    unknown = codes < 0
    if unknown.any() and not pd.isna(values.to_numpy(dtype=object)[unknown]).all():
        return values
    return _status_categorical(codes, values.index)


def _has_er_level(df: pd.DataFrame, cutpoints: ERCutpoints | None) -> np.ndarray:
    if cutpoints is None or cutpoints.measure not in df.columns:
        return np.zeros(len(df), dtype=bool)
    return df[cutpoints.measure].notna().to_numpy()


def classify_cohort(df: pd.DataFrame, *, er_cutpoints: ERCutpoints | None = None) -> pd.DataFrame:
    """A copy of ``df`` with ``er_category`` added and statuses made consistent with it.

    * ``er_status``: wherever the patient has an ER level, the status of the ER category under
      ``er_cutpoints`` (ER-low counts as positive, as ASCO/CAP 2020 reports it "ER low
      positive"); elsewhere the recorded status. The file's own column is kept as
      ``er_status_recorded`` (so classifying again, with other cut-points, starts from it).
    * ``hr_status``: positive if ER or PR is positive, negative if both are negative. Wherever an
      ER level exists it follows the new ``er_status`` (with PR unknown and ER negative, the
      recorded HR status is kept only if the recorded ER status was negative too); elsewhere
      the recorded status, filled where missing. The file's column is kept as
      ``hr_status_recorded``. Without PR, ER-positive means HR-positive and ER-negative leaves
      HR unknown.
    * ``pr_status`` (from ``pr_percent`` >= 1 %), ``her2_status`` (ASCO/CAP 2018 from IHC/ISH)
      and ``her2_category`` are filled only where the file left them empty: a recorded HER2
      call is never overwritten (the validation report lists calls that disagree with the
      algorithm).

    A status column that holds only "negative", "positive" and missing values comes back
    categorical; one with other text is returned with that text where it is kept.
    ``result.attrs["er_category_source"]`` says how ER was classified (an all-missing
    ``er_category`` when the data has no ER information).
    """
    out = df.copy(deep=False)
    out.attrs = dict(df.attrs)
    er_column = _recorded_column(df, "er_status")
    hr_column = _recorded_column(df, "hr_status")
    given_er = _status_codes(df[er_column]) if er_column is not None else None
    cutpoints = _resolve_cutpoints(df, er_cutpoints)
    try:
        category = _er_category(df, cutpoints, given_er)
    except AnalysisError:
        category = _categorical(np.full(len(df), -1), ER_CATEGORIES, df.index, "er_category")
    out["er_category"] = category
    out.attrs["er_category_source"] = er_category_source(df, er_cutpoints)
    has_level = _has_er_level(df, cutpoints)
    cat_codes = category.cat.codes.to_numpy()
    er = _codes_from_masks(cat_codes >= 1, cat_codes == 0)
    if er_column is not None:
        out["er_status_recorded"] = _recorded(df[er_column], given_er)
        out["er_status"] = out["er_status_recorded"]
        er = _set_status(out, "er_status", er, has_level, given_er)
    elif (cat_codes >= 0).any():
        out["er_status_recorded"] = _status_categorical(np.full(len(out), -1, "int8"), out.index)
        er = _set_status(out, "er_status", er, has_level)
    pr = np.full(len(out), -1, dtype="int8")
    if "pr_percent" in out.columns:
        values = _numeric(out["pr_percent"], "pr_percent")
        pr = _codes_from_masks(values >= PR_PERCENT_POSITIVE, values < PR_PERCENT_POSITIVE)
        pr = _fill_status(out, "pr_status", pr)
    elif "pr_status" in out.columns:
        pr = _status_codes(out["pr_status"])
    if "her2_ihc" in out.columns or "her2_ish_ratio" in out.columns:
        _fill_her2(out)
    if "er_status" in out.columns:
        _classify_hr(out, df, er, pr, given_er, has_level, hr_column)
    return out


def _classify_hr(out, df, er, pr, given_er, has_level, hr_column) -> None:
    if "pr_status" in out.columns:
        derived = _hr_codes(er, pr)
    else:
        # Without PR, ER-positive means HR-positive; ER-negative leaves HR unknown.
        derived = np.where(er == 1, 1, -1).astype("int8")
    if hr_column is None:
        # Recorded as "nothing recorded", so that classifying again never mistakes the derived
        # status for the file's.
        out["hr_status_recorded"] = _status_categorical(np.full(len(out), -1, "int8"), out.index)
        _set_status(out, "hr_status", derived, has_level)
        return
    given_hr = _status_codes(df[hr_column])
    er_unchanged = given_er is not None
    if er_unchanged:
        er_unchanged = given_er == er
    # With an ER level, HR follows the new ER status; when that alone cannot decide (ER
    # negative, PR unknown), the file's HR call stands only if its ER call was the same.
    at_level = np.where(derived >= 0, derived, np.where(er_unchanged, given_hr, -1)).astype("int8")
    out["hr_status_recorded"] = _recorded(df[hr_column], given_hr)
    out["hr_status"] = out["hr_status_recorded"]
    _set_status(out, "hr_status", np.where(has_level, at_level, derived), has_level, given_hr)


def _fill_her2(out: pd.DataFrame) -> None:
    nan = np.full(len(out), np.nan)
    score = _ihc_scores(out["her2_ihc"]) if "her2_ihc" in out.columns else nan
    group = nan
    if "her2_ish_ratio" in out.columns and "her2_copy_number" in out.columns:
        group = _ish_group_array(
            _numeric(out["her2_ish_ratio"], "her2_ish_ratio"),
            _numeric(out["her2_copy_number"], "her2_copy_number"),
        )
    status = _fill_status(out, "her2_status", _her2_codes(score, group))
    derived = _categorical(_her2_category_codes(score, status), HER2_CATEGORIES, out.index, "")
    _fill_category(out, derived)


def _fill_category(out: pd.DataFrame, derived: pd.Series) -> None:
    """Fill her2_category where missing; keep it categorical when every value is a known level."""
    if "her2_category" not in out.columns:
        out["her2_category"] = derived.array
        return
    given = out["her2_category"]
    missing = given.isna().to_numpy()
    if not missing.any():
        return
    values = given.astype(object).to_numpy().copy()
    values[missing] = derived.astype(object).to_numpy()[missing]
    filled = pd.Series(values, index=out.index)
    if filled.dropna().isin(HER2_CATEGORIES).all():
        filled = filled.astype(pd.CategoricalDtype(list(HER2_CATEGORIES), ordered=True))
    out["her2_category"] = filled
