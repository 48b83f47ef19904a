"""The automatic mapping: one guess per source column, from its names, its description and its values.

For each column the candidates are the canonical columns its name, its other names (a cBioPortal
display name, a GDC alternative name) and its description (a cBioPortal attribute description, a
data-dictionary entry) point to. Agreeing evidence raises the score, a description beats a weak
name, and :func:`~.roles.check` then looks at the values. When several columns compete for one
canonical column the best score wins (ties: the column with more values) and the others say why
they lost.
"""

from __future__ import annotations

import pandas as pd

from ..errors import CohortError
from . import roles
from .evidence import ColumnEvidence, match_description
from .names import confidence, match_name, normalise_name
from .record import Mapping

GUESS_COLUMNS = ["source_column", "canonical", "confidence", "score", "chosen", "reason",
                 "preview", "described_as"]


def _candidate(column: str, evidence: ColumnEvidence | None):
    """(canonical, score, reason) from the names and the description, or None."""
    name_hit = match_name(column)
    for other in (evidence.names if evidence else []):
        hit = match_name(other)
        if hit is not None and (name_hit is None or hit[1] > name_hit[1]):
            name_hit = (hit[0], hit[1], f"{hit[2]} (from the name '{other}' the file gives it)")
    described = match_description(evidence.description) if evidence else None
    if described is None:
        return name_hit
    if name_hit is None or (name_hit[1] <= 0.5 and name_hit[0] != described[0]):
        return described
    if name_hit[0] == described[0]:
        score = max(name_hit[1], min(described[1], name_hit[1] + 0.2))
        return name_hit[0], score, f"{name_hit[2]}; {described[2]}"
    if described[0] is None:  # the description says subtype/stage: trust it over the name
        return None, 1.0, f"{described[2]}: not used (the name suggested {name_hit[0]})"
    if _same_endpoint(name_hit[0], described[0]) or name_hit[1] < 0.9:
        return described[0], min(described[1], roles.CONTRADICTED), (
            f"{described[2]}; the name suggested {name_hit[0]}")
    return name_hit[0], min(name_hit[1], roles.CONTRADICTED), (
        f"{name_hit[2]}; but {described[2]}")


def _same_endpoint(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.split("_")[0] == b.split("_")[0] and a != b)


def guess_columns(frame: pd.DataFrame, evidence: dict[str, ColumnEvidence] | None = None,
                  summaries: dict[str, roles.Summary] | None = None) -> pd.DataFrame:
    """One row per source column: the canonical column it matches, score, and whether chosen.

    Columns: ``source_column, canonical, confidence, score, chosen, reason, preview,
    described_as`` (the file's own description of the column, if any).
    """
    evidence = evidence or {}
    summaries = summaries if summaries is not None else {
        c: roles.summarize(frame[c]) for c in frame.columns}
    rows = []
    for column in frame.columns:
        summary = summaries[column]
        ev = evidence.get(column)
        hit = _candidate(column, ev)
        described = ev.description if ev else ""
        if hit is None:
            rows.append((column, None, 0.0, "no matching canonical column", summary.preview,
                         described))
            continue
        canonical, score, reason = roles.check(column, *hit, summary)
        rows.append((column, canonical, score, reason, summary.preview, described))
    guesses = pd.DataFrame(rows, columns=["source_column", "canonical", "score", "reason",
                                          "preview", "described_as"])
    guesses["canonical"] = guesses["canonical"].astype(object).where(guesses.canonical.notna(),
                                                                      None)
    roles.pair_endpoints(guesses, summaries, {c: normalise_name(c) for c in frame.columns})
    guesses["confidence"] = [confidence(s) if c is not None else "none"
                             for c, s in zip(guesses.canonical, guesses.score, strict=True)]
    guesses["chosen"] = False
    guesses["filled"] = [summaries[c].n for c in guesses.source_column]
    return _choose(guesses)[GUESS_COLUMNS]


def _choose(guesses: pd.DataFrame) -> pd.DataFrame:
    empty = guesses.canonical.notna() & (guesses.filled == 0)
    guesses.loc[empty, "reason"] += "; not used: the column is empty"
    ranked = guesses[guesses.canonical.notna() & ~empty].sort_values(
        ["canonical", "score", "filled"], ascending=[True, False, False], kind="stable"
    )
    winners = ranked.drop_duplicates("canonical")
    guesses.loc[winners.index, "chosen"] = True
    for idx in ranked.index.difference(winners.index):
        canonical = guesses.at[idx, "canonical"]
        winner = winners.loc[winners.canonical == canonical, "source_column"].iloc[0]
        guesses.at[idx, "reason"] += f"; not used: '{winner}' is a better match for {canonical}"
    return guesses


def resolve_columns(guesses: pd.DataFrame, mapping: Mapping, *, consumed: set[str] = frozenset(),
                    derived: set[str] = frozenset()) -> dict[str, str]:
    """``{source: canonical}`` after applying the mapping's explicit choices over the guesses.

    ``consumed`` source columns are inputs of derived-column rules and ``derived`` canonical
    columns come from rules, so neither is filled from a guess (an explicit choice still wins).
    """
    explicit = mapping.column_map
    chosen = {s: c for s, c in explicit.items() if c is not None and s in set(guesses.source_column)}
    taken = set(chosen.values()) | set(derived)
    for row in guesses.itertuples(index=False):
        if (row.source_column in explicit or not row.chosen or row.canonical in taken
                or row.source_column in consumed):
            continue
        chosen[row.source_column] = row.canonical
        taken.add(row.canonical)
    counts = pd.Series(list(chosen.values()), dtype=object).value_counts()
    twice = counts[counts > 1].index.tolist()
    if twice:
        raise CohortError(
            f"The mapping sends several source columns to {twice}. Map each canonical column "
            "from one source column only."
        )
    return chosen


def assess_choice(column: str, canonical: str | None, summary: roles.Summary,
                  evidence: ColumnEvidence | None = None) -> tuple[str, str]:
    """(confidence, reason) of a user's choice of ``canonical`` for ``column``, from its values.

    Used by the mapping editor so that confidence and reason follow an edit.
    """
    if canonical is None:
        return "none", "not used (your choice)"
    hit = _candidate(column, evidence)
    if hit is not None and hit[0] == canonical:
        checked = roles.check(column, *hit, summary)
        if checked[0] == canonical:
            return confidence(checked[1]), f"your choice; {checked[2]}"
    checked = roles.check(column, canonical, 0.9, "your choice", summary)
    if checked[0] != canonical:
        moved = checked[0] or "nothing"
        return "low", f"{checked[2].replace('read as', 'they read as')} (the values fit {moved})"
    if checked[1] < 0.9:
        return "low", checked[2]
    return "medium", f"your choice; the values fit ({summary.preview or 'no values'})"
