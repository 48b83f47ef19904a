"""The validation report of a canonical cohort: every problem found, no row dropped.

:func:`validate_cohort` returns one row per problem with ``severity`` (``"error"`` /
``"warning"`` / ``"info"``), ``column``, ``count``, ``rows`` (the first five 1-based data row
numbers) and ``message`` (the problem and what to do). Errors are values that no analysis should
use as they are (negative times, events coded 2, ER % of 140); warnings are suspicious but
possible (contradictory HER2 calls, all censored); info is context (missing values).

Example::

    >>> from her2er_dash.validate import validate_cohort
    >>> validate_cohort(pd.DataFrame({"patient_id": ["a", "a"], "age": [50, 130]}))  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import COMPETING_ENDPOINTS, ENDPOINTS, event_column, time_column
from .wording import count

ISSUE_COLUMNS = ("severity", "column", "count", "rows", "message")
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

#: Plausible ranges of numeric measures: (low, high, what to do when outside).
_RANGES: dict[str, tuple[float, float, str]] = {
    "er_percent": (0, 100, "ER % must be 0-100: check that the column is a percentage"),
    "pr_percent": (0, 100, "PR % must be 0-100: check that the column is a percentage"),
    "er_allred": (0, 8, "Allred scores run 0-8: check the column is an Allred score"),
    "er_hscore": (0, 300, "H-scores run 0-300: check the column is an H-score"),
    "age": (0, 120, "ages must be 0-120 years: check the unit (days? birth year?)"),
    "her2_ish_ratio": (0, 100, "HER2/CEP17 ratios above 100 are implausible: check the column"),
    "her2_copy_number": (0, 200, "HER2 copies per cell above 200 are implausible"),
}
_TEXT_COLUMNS = ("patient_id", "study", "arm", "grade", "t_stage", "n_stage", "rcb_class")
#: Text columns with one value per patient (see :func:`_text_masks`).
_IDENTIFIER_COLUMNS = ("patient_id",)


def rows_text(mask: np.ndarray) -> str:
    """First five 1-based row numbers where ``mask`` is true, e.g. ``"2, 7, 9"``."""
    return ", ".join(str(i + 1) for i in np.flatnonzero(mask)[:5])


def issue(severity: str, column: str, mask_or_count, message: str) -> dict:
    """One report row from a boolean mask (count and rows filled in) or a plain count."""
    if isinstance(mask_or_count, np.ndarray):
        count, rows = int(mask_or_count.sum()), rows_text(mask_or_count)
    else:
        count, rows = int(mask_or_count), ""
    return {"severity": severity, "column": column, "count": count, "rows": rows,
            "message": message}


def issue_frame(records: list[dict]) -> pd.DataFrame:
    """Report rows as a DataFrame, errors first, then warnings, then info."""
    frame = pd.DataFrame(records, columns=list(ISSUE_COLUMNS))
    if frame.empty:
        return frame.astype({"count": "int64"})
    order = frame["severity"].map(_SEVERITY_ORDER)
    return frame.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype="float64")


def _status(df: pd.DataFrame, col: str, value: str) -> np.ndarray:
    return (df[col] == value).to_numpy(dtype=bool) if col in df else np.zeros(len(df), bool)


def validate_cohort(df: pd.DataFrame) -> pd.DataFrame:
    """All problems found in a canonical cohort, as a report DataFrame (see module docstring)."""
    records: list[dict] = []
    for check in (_check_size, _check_ids, _check_ranges, _check_her2, _check_er, _check_pcr,
                  _check_groups, _check_text):
        records += check(df)
    for endpoint in ENDPOINTS:
        records += _check_endpoint(df, endpoint)
    return issue_frame(records)


def _check_size(df: pd.DataFrame) -> list[dict]:
    if len(df) == 1:
        return [issue("warning", "", 1, "The cohort has a single patient: no comparison or "
                      "survival analysis is possible. Check that the whole file was uploaded.")]
    return []


def _check_ids(df: pd.DataFrame) -> list[dict]:
    if "patient_id" not in df:
        return []
    ids = df["patient_id"]
    out = []
    dup = ids.duplicated(keep=False).to_numpy() & ids.notna().to_numpy()
    if dup.any():
        n_ids = ids[dup].nunique()
        out.append(issue("error", "patient_id", dup, f"{count(n_ids, 'patient ID')} "
                         f"{'appears' if n_ids == 1 else 'appear'} on more than one row. Each row must be one patient: remove "
                         "duplicates or map another column as the patient ID."))
    missing = ids.isna().to_numpy()
    if missing.any():
        out.append(issue("warning", "patient_id", missing, "Rows without a patient ID; they are "
                         "kept, but cannot be matched to other files."))
    return out


def _check_ranges(df: pd.DataFrame) -> list[dict]:
    out = []
    for col, (low, high, advice) in _RANGES.items():
        if col not in df:
            continue
        values = _num(df, col)
        bad = (values < low) | (values > high) | np.isinf(values)
        if bad.any():
            out.append(issue("error", col, bad, f"{col} has values outside {low:g}-{high:g}; "
                             f"{advice}."))
    return out


def _check_her2(df: pd.DataFrame) -> list[dict]:
    if "her2_ihc" not in df:
        return []
    from .schema import HER2_IHC_ULTRALOW

    ihc = _num(df, "her2_ihc")
    out = []
    bad = ~np.isnan(ihc) & ~np.isin(ihc, (0, HER2_IHC_ULTRALOW, 1, 2, 3))
    if bad.any():
        out.append(issue("error", "her2_ihc", bad, "HER2 IHC scores must be 0, 1, 2 or 3 (1+ "
                         "is 1; 0.5 marks an ultralow result, >0 but <1+). Check the column: is "
                         "it a percentage or an H-score?"))
    return out + _check_her2_calls(df, ihc)


def _check_her2_calls(df: pd.DataFrame, ihc: np.ndarray) -> list[dict]:
    """Recorded HER2 calls against the ASCO/CAP 2018 algorithm on the same IHC/ISH results."""
    from .classify import _her2_codes, _ish_group_array

    if "her2_status" not in df:
        return []
    has_ish = "her2_ish_ratio" in df and "her2_copy_number" in df
    group = (_ish_group_array(_num(df, "her2_ish_ratio"), _num(df, "her2_copy_number"))
             if has_ish else np.full(len(df), np.nan))
    algorithm = _her2_codes(ihc, group)
    recorded_pos, recorded_neg = (_status(df, "her2_status", v) for v in ("positive", "negative"))
    out = []
    discordant = (ihc == 3) & (group == 5)
    if discordant.any():
        out.append(issue("warning", "her2_ihc", discordant, "HER2 IHC 3+ with dual-probe ISH "
                         "group 5 (not amplified): ASCO/CAP 2018 reads group 5 as negative "
                         "whatever the IHC, so the app calls these negative unless the file "
                         "records a status. Review them (heterogeneity? re-test?)."))
    ihc3_negative = (ihc == 3) & recorded_neg & ~discordant
    if ihc3_negative.any():
        out.append(issue("warning", "her2_status", ihc3_negative, "HER2 IHC 3+ but her2_status "
                         "negative: ASCO/CAP calls IHC 3+ positive. Check these patients."))
    ratio = _num(df, "her2_ish_ratio") if "her2_ish_ratio" in df else np.full(len(df), np.nan)
    ihc0_positive = (ihc == 0) & recorded_pos & ~(ratio >= 2)
    if ihc0_positive.any():
        out.append(issue("warning", "her2_status", ihc0_positive, "HER2 IHC 0 but her2_status "
                         "positive without a positive ISH ratio. Check these patients (ISH "
                         "result?)."))
    clash = ((algorithm == 1) & recorded_neg) | ((algorithm == 0) & recorded_pos)
    clash &= ~(ihc3_negative | ihc0_positive)
    if clash.any():
        out.append(issue("warning", "her2_status", clash, "The recorded HER2 status disagrees "
                         "with the ASCO/CAP 2018 algorithm applied to the same IHC and ISH "
                         "results (e.g. IHC 3+ recorded negative, or ISH group 1 recorded "
                         "negative). The recorded status is used; check these patients."))
    return out


def _check_er(df: pd.DataFrame) -> list[dict]:
    status = next((c for c in ("er_status_recorded", "er_status") if c in df), None)
    if "er_percent" not in df or status is None:
        return []
    pct = _num(df, "er_percent")
    out = []
    # ASCO/CAP: < 1 % of nuclei is ER-negative, so only >= 1 % contradicts "negative".
    clash = (pct >= 1) & _status(df, status, "negative")
    if clash.any():
        out.append(issue("warning", "er_status", clash, "ER % is 1 or more but er_status is "
                         "negative in the file (ASCO/CAP: >= 1 % is ER-positive or ER-low). The "
                         "app's ER and HR status follow the ER cut-points; the file's status is "
                         "kept as er_status_recorded. See the ER cut-off each study used."))
    clash = (pct < 1) & _status(df, status, "positive")
    if clash.any():
        out.append(issue("warning", "er_status", clash, "ER % is below 1 but er_status is "
                         "positive in the file. Check which one is right."))
    return out + _check_er_cutoffs(df)


def _check_er_cutoffs(df: pd.DataFrame) -> list[dict]:
    """The ER cut-off each study's recorded status implies, when it is not ASCO/CAP's."""
    from .classify import recorded_er_cutoffs

    table = recorded_er_cutoffs(df)
    differing = table[~table["consistent_with_current"]]
    out = []
    for row in differing.itertuples():
        out.append(issue("info", "er_status", int(row.n_changed), (
            f"Study {row.study}: its recorded ER status implies {row.implied_rule}, not the "
            f"current rule ({row.current_rule}); {row.n_changed:,} of {row.n:,} recorded "
            "statuses change under the current rule. ER and HR status follow the current rule "
            "in every study.")))
    return out


def _check_pcr(df: pd.DataFrame) -> list[dict]:
    if "pcr" not in df:
        return []
    pcr = _num(df, "pcr")
    bad = ~np.isnan(pcr) & ~np.isin(pcr, (0, 1))
    if bad.any():
        return [issue("error", "pcr", bad, "pCR must be 1 (pCR) or 0 (residual disease). "
                      "Recode it in the mapping (Cohort page → Column mapping → Recode values).")]
    return []


def _check_groups(df: pd.DataFrame) -> list[dict]:
    out = []
    for col in ("er_status", "her2_status"):
        if col in df:
            seen = df[col].dropna().unique()
            if len(seen) == 1:
                out.append(issue("info", col, len(df), f"Every patient with a value has "
                                 f"{col} = {seen[0]}: comparisons by {col} are not possible."))
    if "pcr" in df and "er_status" in df:
        out += _check_separation(df)
    return out


def _check_separation(df: pd.DataFrame) -> list[dict]:
    keys = [c for c in ("er_status", "her2_status") if c in df]
    pcr = pd.to_numeric(df["pcr"], errors="coerce")
    known = pcr.isin([0, 1])
    rates = pcr[known].groupby([df.loc[known, k] for k in keys], observed=True).agg(["mean", "size"])
    out = []
    for group, row in rates.iterrows():
        if row["size"] >= 5 and row["mean"] in (0.0, 1.0):
            label = " / ".join(map(str, group if isinstance(group, tuple) else (group,)))
            out.append(issue("warning", "pcr", int(row["size"]), f"pCR is {row['mean']:.0%} in "
                             f"group {label}: odds ratios for this group cannot be estimated "
                             "(separation); exact or penalised methods are needed."))
    return out


def _text_masks(series: pd.Series, *, distinct: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(formula-like, HTML-like) cell masks, computed on distinct values with pyarrow.

    ``distinct``: the values are (nearly) all different, e.g. patient IDs: the masks are computed
    on the cells themselves, without finding the distinct values first (at 1M IDs that hash
    table and its codes raised the upload's peak memory by ~55 MB, for no fewer values).
    """
    if distinct and not isinstance(series.dtype, pd.CategoricalDtype):
        return _cell_masks(series)
    import pyarrow as pa
    import pyarrow.compute as pc

    codes, uniques = pd.factorize(series)
    uniques = np.asarray(uniques, dtype=object)  # object, str[python/pyarrow] or categorical
    try:
        text = pa.array(uniques, type=pa.string())
    except (pa.ArrowException, TypeError):
        text = pa.array([str(u) for u in uniques], type=pa.string())
    formula = pc.match_substring_regex(text, r"^[=+\-@\t\r]").to_numpy(zero_copy_only=False)
    if formula.any():
        numeric = pd.to_numeric(pd.Series(uniques[formula]), errors="coerce").notna().to_numpy()
        formula[np.flatnonzero(formula)[numeric]] = False
    markup = pc.match_substring_regex(text, r"<\s*/?\s*[a-zA-Z][^>]*>").to_numpy(
        zero_copy_only=False)
    pick = np.append(np.arange(len(uniques)), -1)
    none = np.append(np.zeros(len(uniques), bool), False)
    index = pick[codes]
    return (np.where(index >= 0, np.append(formula, False)[index], none[index]),
            np.where(index >= 0, np.append(markup, False)[index], none[index]))


def _cell_masks(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_text_masks` cell by cell (the same rules; a missing cell matches neither)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = series.to_numpy(dtype=object)
    missing = pd.isna(values)
    try:
        text = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError):
        text = pa.array([None if gone else str(v) for v, gone in zip(values, missing, strict=True)],
                        type=pa.string())
    formula = pc.fill_null(pc.match_substring_regex(text, r"^[=+\-@\t\r]"), False).to_numpy(
        zero_copy_only=False)
    if formula.any():
        numeric = pd.to_numeric(pd.Series(values[formula]), errors="coerce").notna().to_numpy()
        formula[np.flatnonzero(formula)[numeric]] = False
    markup = pc.fill_null(pc.match_substring_regex(text, r"<\s*/?\s*[a-zA-Z][^>]*>"),
                          False).to_numpy(zero_copy_only=False)
    return formula, markup


def _holds_text(values: pd.Series) -> bool:
    """Whether a column can hold text cells, whatever its dtype: object, pandas' string dtypes
    ("str" by default from pandas 3, "string[python]", "string[pyarrow]") or categorical."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return not pd.api.types.is_numeric_dtype(dtype.categories.dtype)
    return pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)


def _check_text(df: pd.DataFrame) -> list[dict]:
    out = []
    for col in _TEXT_COLUMNS:
        if col not in df or not _holds_text(df[col]):
            continue
        formula, markup = _text_masks(df[col], distinct=col in _IDENTIFIER_COLUMNS)
        if formula.any():
            out.append(issue("warning", col, formula, "Cells start with = + - or @ (a spreadsheet "
                             "formula). They are kept as text and escaped on export; check the "
                             "source file."))
        if markup.any():
            out.append(issue("warning", col, markup, "Cells contain HTML markup "
                             "(e.g. <script>); it is shown as plain text, never run. Clean the "
                             "labels in the source file."))
    return out


def _check_endpoint(df: pd.DataFrame, endpoint: str) -> list[dict]:
    tcol, ecol = time_column(endpoint), event_column(endpoint)
    has_t, has_e = tcol in df, ecol in df
    if has_t != has_e:
        have, lack = (tcol, ecol) if has_t else (ecol, tcol)
        return [issue("warning", have, 0, f"{have} is present but {lack} is not, so "
                      f"{endpoint.upper()} cannot be analysed. Map a column to {lack}.")]
    if not has_t:
        return []
    return _check_times(df, tcol) + _check_events(df, ecol, endpoint)


def _check_times(df: pd.DataFrame, col: str) -> list[dict]:
    times = _num(df, col)
    out = []
    for severity, mask, text in (
        ("error", times < 0, "negative times; times must be >= 0: check the time origin"),
        ("warning", times == 0, "times of exactly 0 (event or censoring at the start?)"),
        ("warning", np.isinf(times), "infinite times; replace them with the last follow-up"),
        ("info", np.isnan(times), "missing times; these patients are left out of "
                                  "analyses of this endpoint"),
    ):
        if mask.any():
            out.append(issue(severity, col, mask, f"{col}: {text}."))
    return out


def _check_events(df: pd.DataFrame, col: str, endpoint: str) -> list[dict]:
    events = _num(df, col)
    out = []
    if endpoint in COMPETING_ENDPOINTS:  # 0 censored, 1 event, 2, 3... competing causes
        bad = ~np.isnan(events) & ((events < 0) | (events % 1 != 0))
        rule = "0 (censored), 1 (event) or 2, 3... (competing causes)"
    else:
        bad = ~np.isnan(events) & ~np.isin(events, (0, 1))
        rule = "1 (event) or 0 (censored)"
    if bad.any():
        odd = sorted(set(events[bad].tolist()))[:5]
        out.append(issue("error", col, bad, f"{col} must be {rule}; found "
                         f"{odd}. Recode it in the mapping (Cohort page → Column mapping → "
                         "Recode values)."))
    known = ~np.isnan(events) & ~bad
    if known.any() and not (events[known] == 1).any():
        out.append(issue("warning", col, int(known.sum()), f"No {endpoint.upper()} events: "
                         "every patient is censored. Check the event coding (is 1 the event?)."))
    missing = np.isnan(events)
    if missing.any():
        out.append(issue("info", col, missing, f"{col}: missing event indicators."))
    return out
