"""SQL for the registry engine: the classified cohort and the sidebar's filters as DuckDB SQL.

:func:`classified_columns` writes :func:`her2er_dash.classify.classify_cohort` as column
expressions, rule for rule (ER category from the level under the cut-points in force, falling
back to the recorded status; ER and HR status following it where a level is known; PR, HER2
status and HER2 category filled where the file left them empty), for a registry whose statuses
are "positive"/"negative" and whose HER2 IHC scores are valid (both checked when the registry is
opened). ``tests/test_engine.py`` checks it against ``classify_cohort`` on random and real
cohorts. :func:`criterion_sql` turns each :class:`~her2er_dash.filters.Criterion` into a
condition with the same handling of unknown values.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..classify import PR_PERCENT_POSITIVE, ERCutpoints
from ..filters import Criterion
from ..schema import ER_CATEGORIES, HER2_CATEGORIES, HER2_IHC_ULTRALOW, NEGATIVE, POSITIVE


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(value) -> str:
    """A SQL literal for a number or a text value."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(float(value))
    return "'" + str(value).replace("'", "''") + "'"


def in_list(values: Iterable) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"


def status_code(column: str) -> str:
    """1 positive, 0 negative, -1 unknown (as ``classify._status_codes``)."""
    c = ident(column)
    return f"(CASE WHEN {c} = {literal(POSITIVE)} THEN 1 WHEN {c} = {literal(NEGATIVE)} THEN 0 ELSE -1 END)"


def status_text(code: str) -> str:
    return f"(CASE {code} WHEN 1 THEN {literal(POSITIVE)} WHEN 0 THEN {literal(NEGATIVE)} END)"


def _from_masks(positive: str, negative: str) -> str:
    return f"(CASE WHEN {positive} THEN 1 WHEN {negative} THEN 0 ELSE -1 END)"


def _er_codes(measure: str, cutpoints: ERCutpoints) -> str:
    m = ident(measure)
    if cutpoints.low is None:
        rule = f"CASE WHEN {m} >= {literal(cutpoints.high)} THEN 2 ELSE 0 END"
    else:
        rule = (f"CASE WHEN {m} < {literal(cutpoints.low)} THEN 0 "
                f"WHEN {m} <= {literal(cutpoints.high)} THEN 1 ELSE 2 END")
    return f"(CASE WHEN {m} IS NULL THEN -1 ELSE {rule} END)"


def _ish_group(columns: set[str]) -> str:
    if not {"her2_ish_ratio", "her2_copy_number"} <= columns:
        return "NULL"
    r, c = ident("her2_ish_ratio"), ident("her2_copy_number")
    return (f"(CASE WHEN {r} IS NULL OR {c} IS NULL THEN NULL WHEN {r} >= 2.0 THEN "
            f"(CASE WHEN {c} >= 4.0 THEN 1 ELSE 2 END) WHEN {c} >= 6.0 THEN 3 "
            f"WHEN {c} >= 4.0 THEN 4 ELSE 5 END)")


def _her2_codes(score: str, group: str) -> str:
    """ASCO/CAP 2018 status codes from IHC ``score`` and ISH ``group`` (``classify._her2_codes``)."""
    has_ihc = f"({score} IS NOT NULL)"
    ihc3, ihc2_or_3 = f"({score} = 3)", f"({score} >= 2)"
    ihc_0_or_1 = f"({has_ihc} AND {score} <= 1)"
    no_ish = f"({group} IS NULL)"
    positive = (f"(({group} = 1) OR ({group} = 2 AND {ihc3}) OR ({group} = 3 AND {ihc2_or_3}) "
                f"OR ({group} = 4 AND {ihc3}) OR ({no_ish} AND {ihc3}))")
    negative = (f"(({group} = 5) OR ({group} = 2 AND {has_ihc} AND NOT {ihc3}) "
                f"OR ({group} = 3 AND {ihc_0_or_1}) OR ({group} = 4 AND {has_ihc} AND NOT {ihc3}) "
                f"OR ({no_ish} AND {ihc_0_or_1}))")
    return _from_masks(f"coalesce({positive}, FALSE)", f"coalesce({negative}, FALSE)")


def _her2_category(score: str, status: str) -> str:
    """HER2 category text from IHC ``score`` and the final status code (``classify``)."""
    positive = f"({status} = 1 OR ({status} < 0 AND coalesce({score} = 3, FALSE)))"
    negative = f"({status} = 0 OR ({status} < 0 AND coalesce({score} <= 1, FALSE)))"
    pos, low, ultralow, zero = (literal(c) for c in HER2_CATEGORIES)
    return (f"(CASE WHEN {positive} THEN {pos} WHEN {negative} AND ({score} = 1 OR {score} = 2) "
            f"THEN {low} WHEN {negative} AND {score} = {literal(HER2_IHC_ULTRALOW)} THEN "
            f"{ultralow} WHEN {negative} AND {score} = 0 THEN {zero} END)")


def classified_columns(columns: Iterable[str], cutpoints: ERCutpoints | None,
                       any_er_level: bool) -> dict[str, str]:
    """``{column: expression}`` of every column of the classified cohort.

    ``columns`` are the registry's canonical columns (numbers as DOUBLE without NaN, text as
    VARCHAR); ``any_er_level`` says whether any patient has a value of the cut-points' measure
    (``classify_cohort`` adds an ER status only then, when the file has none).
    """
    columns = list(columns)
    present = set(columns)
    out = {c: ident(c) for c in columns}
    er_recorded = next((c for c in ("er_status_recorded", "er_status") if c in present), None)
    hr_recorded = next((c for c in ("hr_status_recorded", "hr_status") if c in present), None)
    given_er = status_code(er_recorded) if er_recorded else None
    has_measure = cutpoints is not None and cutpoints.measure in present
    has_level = f"({ident(cutpoints.measure)} IS NOT NULL)" if has_measure else "FALSE"

    # ER category: the level under the cut-points; where it is missing, the recorded status.
    category = _er_codes(cutpoints.measure, cutpoints) if has_measure else "-1"
    if given_er is not None:
        category = (f"(CASE WHEN {category} >= 0 THEN {category} WHEN {given_er} = 1 THEN 2 "
                    f"WHEN {given_er} = 0 THEN 0 ELSE -1 END)")
    labels = " ".join(f"WHEN {i} THEN {literal(c)}" for i, c in enumerate(ER_CATEGORIES))
    out["er_category"] = f"(CASE {category} {labels} END)"
    er = _from_masks(f"{category} >= 1", f"{category} = 0")
    has_er = True
    if given_er is not None:
        out["er_status_recorded"] = ident(er_recorded)
        er = f"(CASE WHEN {has_level} OR {given_er} < 0 THEN {er} ELSE {given_er} END)"
        out["er_status"] = status_text(er)
    elif any_er_level:
        out["er_status_recorded"] = "CAST(NULL AS VARCHAR)"
        out["er_status"] = status_text(er)
    else:
        has_er = False

    pr = "-1"
    if "pr_percent" in present:
        value = ident("pr_percent")
        derived = _from_masks(f"{value} >= {literal(PR_PERCENT_POSITIVE)}",
                              f"{value} < {literal(PR_PERCENT_POSITIVE)}")
        if "pr_status" in present:
            given = status_code("pr_status")
            derived = f"(CASE WHEN {given} < 0 THEN {derived} ELSE {given} END)"
        pr = derived
        out["pr_status"] = status_text(pr)
    elif "pr_status" in present:
        pr = status_code("pr_status")

    if "her2_ihc" in present or "her2_ish_ratio" in present:
        score = ident("her2_ihc") if "her2_ihc" in present else "CAST(NULL AS DOUBLE)"
        status = _her2_codes(score, _ish_group(present))
        if "her2_status" in present:
            given = status_code("her2_status")
            status = f"(CASE WHEN {given} < 0 THEN {status} ELSE {given} END)"
        out["her2_status"] = status_text(status)
        derived = _her2_category(score, status)
        out["her2_category"] = (f"coalesce({ident('her2_category')}, {derived})"
                                if "her2_category" in present else derived)

    if has_er:
        has_pr = "pr_percent" in present or "pr_status" in present
        derived = (_from_masks(f"{er} = 1 OR {pr} = 1", f"{er} = 0 AND {pr} = 0") if has_pr
                   else f"(CASE WHEN {er} = 1 THEN 1 ELSE -1 END)")
        if hr_recorded is None:
            out["hr_status_recorded"] = "CAST(NULL AS VARCHAR)"
            out["hr_status"] = status_text(derived)
        else:
            given_hr = status_code(hr_recorded)
            unchanged = f"({given_er} = {er})" if given_er is not None else "FALSE"
            at_level = (f"(CASE WHEN {derived} >= 0 THEN {derived} WHEN {unchanged} THEN "
                        f"{given_hr} ELSE -1 END)")
            new = f"(CASE WHEN {has_level} THEN {at_level} ELSE {derived} END)"
            out["hr_status_recorded"] = ident(hr_recorded)
            out["hr_status"] = status_text(
                f"(CASE WHEN {has_level} OR {given_hr} < 0 THEN {new} ELSE {given_hr} END)")
    return out


def criterion_sql(criterion: Criterion) -> str:
    """The condition a patient must meet (unknown values: kept by ranges, excluded otherwise)."""
    column = ident(criterion.column)
    if criterion.kind == "range":
        low, high = criterion.value
        return f"({column} BETWEEN {literal(low)} AND {literal(high)} OR {column} IS NULL)"
    if criterion.kind == "known":
        return f"({column} IS NOT NULL)"
    return f"coalesce(CAST({column} AS VARCHAR) IN {in_list(criterion.value)}, FALSE)"
