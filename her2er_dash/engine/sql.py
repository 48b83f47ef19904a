"""SQL for the registry engine: the classified cohort and the sidebar's filters as DuckDB SQL.

:func:`classified_sql` writes :func:`her2er_dash.classify.classify_cohort` as column
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


#: Columns the engine keeps as small integer codes (NULL = unknown), with their levels: the
#: statuses (0 negative, 1 positive) and the derived categories. Grouping and filtering on codes
#: is several times faster than on text at registry scale.
STATUS_LIKE = ("er_status", "pr_status", "hr_status", "her2_status", "er_status_recorded",
               "hr_status_recorded")
CODED_LEVELS: dict[str, tuple[str, ...]] = {
    **{c: (NEGATIVE, POSITIVE) for c in STATUS_LIKE},
    "er_category": ER_CATEGORIES,
    "her2_category": HER2_CATEGORIES,
}


def code_of(column: str, levels: Iterable[str]) -> str:
    """Integer code of a text column (index in ``levels``; -1 unknown or unrecognised)."""
    c = ident(column)
    cases = " ".join(f"WHEN {literal(v)} THEN {i}" for i, v in enumerate(levels))
    return f"(CASE {c} {cases} ELSE -1 END)"


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
        return "CAST(NULL AS INTEGER)"
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
    """HER2 category code (index in HER2_CATEGORIES, -1 unknown) from IHC ``score`` and the
    final status code, as ``classify._her2_category_codes``."""
    positive = f"({status} = 1 OR ({status} < 0 AND coalesce({score} = 3, FALSE)))"
    negative = f"({status} = 0 OR ({status} < 0 AND coalesce({score} <= 1, FALSE)))"
    return (f"(CASE WHEN {positive} THEN 0 WHEN {negative} AND ({score} = 1 OR {score} = 2) "
            f"THEN 1 WHEN {negative} AND {score} = {literal(HER2_IHC_ULTRALOW)} THEN 2 "
            f"WHEN {negative} AND {score} = 0 THEN 3 ELSE -1 END)")


def _recorded(present: set[str], cutpoints: ERCutpoints | None) -> dict[str, str]:
    """Layer 1: the codes of what the file records and the levels derived from measurements."""
    has_measure = cutpoints is not None and cutpoints.measure in present
    first = {"__level": f"({ident(cutpoints.measure)} IS NOT NULL)" if has_measure else "FALSE"}
    for column in sorted(present & set(CODED_LEVELS)):
        first[f"__given_{column}"] = code_of(column, CODED_LEVELS[column])
    first["__er_level"] = _er_codes(cutpoints.measure, cutpoints) if has_measure else "-1"
    if "pr_percent" in present:
        value = ident("pr_percent")
        first["__pr_level"] = _from_masks(f"{value} >= {literal(PR_PERCENT_POSITIVE)}",
                                          f"{value} < {literal(PR_PERCENT_POSITIVE)}")
    if _has_her2(present):
        first["__her2_derived"] = _her2_codes(_her2_score(present), _ish_group(present))
    return first


def _has_her2(present: set[str]) -> bool:
    return "her2_ihc" in present or "her2_ish_ratio" in present


def _her2_score(present: set[str]) -> str:
    return ident("her2_ihc") if "her2_ihc" in present else "CAST(NULL AS DOUBLE)"


def _given_or(column: str, present: set[str], derived: str) -> str:
    """The file's code of ``column`` where it stands, else ``derived``."""
    if column not in present:
        return derived
    return f"(CASE WHEN __given_{column} < 0 THEN {derived} ELSE __given_{column} END)"


def _statuses(present: set[str], given_er: str | None, any_er_level: bool) -> dict[str, str]:
    """Layer 2: ER category and the ER, PR and HER2 statuses."""
    category = "__er_level"
    if given_er is not None:
        category = (f"(CASE WHEN __er_level >= 0 THEN __er_level WHEN {given_er} = 1 THEN 2 "
                    f"WHEN {given_er} = 0 THEN 0 ELSE -1 END)")
    second = {"__category": category}
    er_derived = _from_masks("__category >= 1", "__category = 0")
    if given_er is not None:
        second["__er"] = (f"(CASE WHEN __level OR {given_er} < 0 THEN {er_derived} "
                          f"ELSE {given_er} END)")
    elif any_er_level:
        second["__er"] = er_derived
    if "pr_percent" in present:
        second["__pr"] = _given_or("pr_status", present, "__pr_level")
    else:
        second["__pr"] = "__given_pr_status" if "pr_status" in present else "-1"
    if _has_her2(present):
        second["__her2"] = _given_or("her2_status", present, "__her2_derived")
    return second


def _hr_and_her2_category(present: set[str], given_er: str | None, hr_recorded: str | None,
                          has_er: bool) -> dict[str, str]:
    """Layer 3: HR status and HER2 category, which depend on the statuses of layer 2."""
    third = {}
    if has_er:
        has_pr = "pr_percent" in present or "pr_status" in present
        derived = (_from_masks("__er = 1 OR __pr = 1", "__er = 0 AND __pr = 0") if has_pr
                   else "(CASE WHEN __er = 1 THEN 1 ELSE -1 END)")
        if hr_recorded is None:
            third["__hr"] = derived
        else:
            given_hr = f"__given_{hr_recorded}"
            unchanged = f"({given_er} = __er)" if given_er is not None else "FALSE"
            at_level = (f"(CASE WHEN {derived} >= 0 THEN {derived} WHEN {unchanged} THEN "
                        f"{given_hr} ELSE -1 END)")
            new = f"(CASE WHEN __level THEN {at_level} ELSE {derived} END)"
            third["__hr"] = f"(CASE WHEN __level OR {given_hr} < 0 THEN {new} ELSE {given_hr} END)"
    if _has_her2(present):
        third["__her2cat"] = _given_or("her2_category", present,
                                       _her2_category(_her2_score(present), "__her2"))
    return third


def _coded(expression: str) -> str:
    return f"CAST(nullif({expression}, -1) AS TINYINT)"


def _layer(exprs: dict[str, str], source: str) -> str:
    extra = ", ".join(f"{e} AS {n}" for n, e in exprs.items())
    return f"SELECT *, {extra} FROM ({source})" if extra else f"SELECT * FROM ({source})"


def classified_sql(base: str, columns: Iterable[str], cutpoints: ERCutpoints | None,
                   any_er_level: bool) -> tuple[str, list[str]]:
    """The classified cohort over ``base`` and its column names.

    ``base`` selects the registry's canonical ``columns`` (numbers as DOUBLE without NaN, text
    as VARCHAR) and ``__key``; ``any_er_level`` says whether any patient has a value of the
    cut-points' measure (``classify_cohort`` adds an ER status only then, when the file has
    none). The columns of :data:`CODED_LEVELS` come out as integer codes (NULL unknown); the
    rules are computed in three layers so that no expression is evaluated twice per row.
    """
    columns = list(columns)
    present = set(columns)
    er_recorded = next((c for c in ("er_status_recorded", "er_status") if c in present), None)
    hr_recorded = next((c for c in ("hr_status_recorded", "hr_status") if c in present), None)
    given_er = f"__given_{er_recorded}" if er_recorded else None
    has_er = given_er is not None or any_er_level

    out = {c: _coded(f"__given_{c}") if c in CODED_LEVELS else ident(c) for c in columns}
    out["er_category"] = _coded("__category")
    if has_er:
        out["er_status"] = _coded("__er")
        out["er_status_recorded"] = _coded(given_er) if given_er else "CAST(NULL AS TINYINT)"
        out["hr_status"] = _coded("__hr")
        out["hr_status_recorded"] = (_coded(f"__given_{hr_recorded}") if hr_recorded
                                     else "CAST(NULL AS TINYINT)")
    if "pr_percent" in present:
        out["pr_status"] = _coded("__pr")
    if _has_her2(present):
        out["her2_status"] = _coded("__her2")
        out["her2_category"] = _coded("__her2cat")

    sql = _layer(_recorded(present, cutpoints), base)
    sql = _layer(_statuses(present, given_er, any_er_level), sql)
    sql = _layer(_hr_and_her2_category(present, given_er, hr_recorded, has_er), sql)
    select = ", ".join(f"{e} AS {ident(c)}" for c, e in out.items())
    return f"SELECT {select}, __key FROM ({sql})", list(out)


def criterion_sql(criterion: Criterion) -> str:
    """The condition a patient must meet (unknown values: kept by ranges, excluded otherwise);
    a choice of levels of a coded column compares codes."""
    column = ident(criterion.column)
    if criterion.kind == "range":
        low, high = criterion.value
        return f"({column} BETWEEN {literal(low)} AND {literal(high)} OR {column} IS NULL)"
    if criterion.kind == "known":
        return f"({column} IS NOT NULL)"
    levels = CODED_LEVELS.get(criterion.column)
    if levels is not None:
        codes = [i for i, level in enumerate(levels) if level in set(criterion.value)]
        return f"coalesce({column} IN ({', '.join(map(str, codes))}), FALSE)" if codes else "FALSE"
    return f"coalesce(CAST({column} AS VARCHAR) IN {in_list(criterion.value)}, FALSE)"
