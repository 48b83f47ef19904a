"""The mapping editor on the Cohort page: every source column, its guess and why, and the edits.

Drawn by :func:`ui.mapping_editor`. Edits are kept per cohort in ``st.session_state`` as
:class:`her2er_dash.ingest.edits.Edits`, keyed by source-column or canonical-column name (never by a
table row), and applied together with "Apply mapping". The logic lives in
:mod:`her2er_dash.ingest.edits`; this module only draws.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

import ui
from her2er_dash import schema
from her2er_dash.ingest import edits as ed
from her2er_dash.ingest import roles
from her2er_dash.ingest.guess import assess_choice
from her2er_dash.ingest.record import RULE_KINDS, TIME_UNITS, DerivedRule

NOT_USED = "(not used)"


def _edits(token: str) -> ed.Edits:
    return st.session_state.setdefault(f"_map_edits_{token}", ed.Edits())


def _target_label(canonical: str) -> str:
    if canonical == NOT_USED:
        return NOT_USED
    return f"{canonical} — {schema.COLUMN_DESCRIPTIONS.get(canonical, '')}"


def draw(token: str, loaded, source_frame: Callable[[], pd.DataFrame | None],
         apply: Callable[[object], None]) -> None:
    """The whole editor for the uploaded cohort ``loaded`` (``source_frame()``: its raw table)."""
    edits = _edits(token)
    summaries = _summaries(token, source_frame)
    table = st.container()  # drawn after the edit widgets have read this run's edits
    _change_column(token, loaded, edits, summaries)
    with st.expander("Recode values", expanded=bool(edits.values)):
        _recode(token, loaded, edits)
    with st.expander(f"Derived columns (rules): {len([r for r in loaded.mapping.rules.values() if r])}",
                     expanded=bool(edits.rules)):
        _rules(token, loaded, edits)
    with st.expander("Time origin, units and pCR definition"):
        _clock_and_definition(token, loaded, edits)
    with table:
        _overview(token, loaded, edits, summaries)
    _pending_and_apply(token, loaded, edits, apply)


def _summaries(token: str, source_frame) -> dict[str, roles.Summary]:
    key = f"_map_summaries_{token}"
    if key not in st.session_state:
        frame = source_frame()
        columns = [] if frame is None else list(frame.columns)
        st.session_state[key] = {c: roles.summarize(frame[c]) for c in columns}
    return st.session_state[key]


# --------------------------------------------------------------------------------------------
# The table of every source column
# --------------------------------------------------------------------------------------------


def _row_state(loaded, edits: ed.Edits, summaries) -> pd.DataFrame:
    """One row per source column, with the pending edits applied to target, confidence, reason."""
    guesses = loaded.guesses.set_index("source_column")
    rows = []
    for source in guesses.index:
        row = guesses.loc[source]
        target = row.mapped_to if isinstance(row.mapped_to, str) else None
        confidence, reason = row.confidence, row.reason
        if target is None and isinstance(row.rule_input, str):
            target_text = f"→ rule for {row.rule_input}"
        else:
            target_text = target or ""
        if source in edits.columns:
            target = edits.columns[source]
            target_text = (target or NOT_USED) + " (edited)"
            summary = summaries.get(source, roles.Summary())
            confidence, reason = assess_choice(source, target, summary)
        elif target is None:
            confidence = ""  # not used (a rule input, a losing candidate or no match)
        rows.append({"source column": source, "maps to": target_text, "confidence": confidence,
                     "why": reason, "first values": row.preview,
                     "means": schema.COLUMN_DESCRIPTIONS.get(target or "", ""),
                     "the file describes it as": row.described_as or ""})
    return pd.DataFrame(rows)


def _overview(token: str, loaded, edits: ed.Edits, summaries) -> None:
    table = _row_state(loaded, edits, summaries)
    used = int((table["maps to"] != "").sum())
    st.caption(f"{len(table)} source columns, {used} used. Format: {loaded.source.format}"
               + (f" · encoding {loaded.source.encoding}" if loaded.source.encoding else ""))
    query = st.text_input("Search the columns", key=f"map_search_{token}",
                          placeholder="name, canonical column, value or reason")
    if query:
        hit = table.apply(lambda col: col.astype(str).str.contains(query, case=False,
                                                                    regex=False))
        table = table[hit.any(axis=1)]
    # Every row is shown (no scrolling window): the height follows the number of rows.
    text = st.column_config.TextColumn
    st.dataframe(table, hide_index=True, width="stretch", height=38 + 35 * max(len(table), 1),
                 key=f"map_table_{token}",
                 column_config={"source column": text(width="medium"),
                                "maps to": text(width="medium"), "confidence": text(width="small"),
                                "why": text(width="large"), "first values": text(width="medium")})


def _change_column(token: str, loaded, edits: ed.Edits, summaries) -> None:
    sources = loaded.guesses.source_column.tolist()
    current = dict(zip(loaded.guesses.source_column, loaded.guesses.mapped_to, strict=True))
    st.markdown("**Change a column** — pick a source column (type to search), then what it is.")
    left, right = st.columns(2)
    source = left.selectbox("Source column", sources, key=f"map_src_{token}")
    index = sources.index(source)
    options = [NOT_USED, *schema.CANONICAL_COLUMNS]
    now = edits.columns.get(source, current.get(source))
    now = now if isinstance(now, str) else NOT_USED
    # One selectbox per source column: a choice made for one column can never be carried over to
    # another when the source changes.
    chosen = right.selectbox("Maps to", options, index=options.index(now), key=f"map_to_{token}_{index}",
                             format_func=_target_label)
    target = None if chosen == NOT_USED else chosen
    original = current.get(source) if isinstance(current.get(source), str) else None
    if target != original:
        edits.columns[source] = target
    else:
        edits.columns.pop(source, None)
    summary = summaries.get(source, roles.Summary())
    confidence, reason = assess_choice(source, target, summary)
    st.caption(f"First values: {summary.preview or '—'} · confidence **{confidence}**: {reason}")


# --------------------------------------------------------------------------------------------
# Recoding values
# --------------------------------------------------------------------------------------------


def _recode(token: str, loaded, edits: ed.Edits) -> None:
    columns = [c for c in loaded.levels if ed.recode_kind(c)]
    if not columns:
        st.caption("No mapped status, event or category column has few enough distinct values "
                   "to recode here.")
        return
    st.caption("What each value of the file means. Pre-filled with the automatic reading; "
               "'missing' leaves the value out of the analyses (it is counted, never dropped).")
    canonical = st.selectbox("Column", columns, key=f"map_rc_col_{token}",
                             format_func=lambda c: f"{c} ({schema.column_label(c)})")
    kind = ed.recode_kind(canonical)
    levels = loaded.levels[canonical]
    current = ed.current_recoding(loaded.mapping, canonical, levels)
    table: dict[str, object] = {}
    changed = False
    grid = st.columns(3)
    for i, (raw, count) in enumerate(levels):
        key = f"map_rc_{token}_{canonical}_{i}"
        label = f"'{raw}' ({count:,} rows)"
        cell = grid[i % 3]
        if kind == "category":
            text = cell.text_input(label, value=ed.label_of(kind, current[raw]), key=key)
            value = None if text.strip() in ("", ed.MISSING) else text.strip()
        else:
            choices = list(ed.RECODE_CHOICES[kind])
            pick = cell.selectbox(label, choices, key=key,
                                  index=choices.index(ed.label_of(kind, current[raw])))
            value = ed.RECODE_CHOICES[kind][pick]
        table[raw] = value
        changed |= value != current[raw]
    if changed:
        edits.values[canonical] = table
    else:
        edits.values.pop(canonical, None)


# --------------------------------------------------------------------------------------------
# Derived-column rules
# --------------------------------------------------------------------------------------------


def _rules(token: str, loaded, edits: ed.Edits) -> None:
    rules = {t: r for t, r in loaded.mapping.rules.items() if r is not None}
    if rules:
        st.caption("Columns computed from several source columns. Untick a rule to stop using it.")
    for target, rule in rules.items():
        keep = st.checkbox(rule.describe(target), value=True, key=f"map_rule_{token}_{target}")
        if keep:
            if edits.rules.get(target, rule) is None:
                edits.rules.pop(target, None)
        else:
            edits.rules[target] = None
    _add_rule(token, loaded, edits)


def _add_rule(token: str, loaded, edits: ed.Edits) -> None:
    st.markdown("**Add a rule**")
    kinds = list(RULE_KINDS)
    kind = st.selectbox("Rule", kinds, key=f"map_newrule_{token}",
                        format_func=lambda k: RULE_KINDS[k][2])
    roles_, required, _ = RULE_KINDS[kind]
    targets = [c for c in schema.CANONICAL_COLUMNS if DerivedRule(kind, _dummy(kind)).fits(c)]
    target = st.selectbox("Computes", targets, key=f"map_newrule_target_{token}_{kind}")
    sources = ["", *loaded.guesses.source_column.tolist()]
    inputs = {}
    cols = st.columns(len(roles_))
    for col, role in zip(cols, roles_, strict=True):
        pick = col.selectbox(role.replace("_", " ") + (" *" if role in required else ""), sources,
                             key=f"map_newrule_{token}_{kind}_{role}")
        if pick:
            inputs[role] = pick
    unit = None
    if kind in ("death_or_last_contact",):
        unit = st.selectbox("Unit of the times", list(TIME_UNITS), index=1,
                            key=f"map_newrule_unit_{token}")
    if st.button("Add the rule", key=f"map_newrule_add_{token}"):
        try:
            edits.rules[target] = DerivedRule(kind, inputs, unit=unit)
        except ValueError as exc:
            st.error(str(exc))


def _dummy(kind: str) -> dict[str, str]:
    return {role: "x" for role in RULE_KINDS[kind][1]}


# --------------------------------------------------------------------------------------------
# Time origin, units, pCR definition
# --------------------------------------------------------------------------------------------


def _clock_and_definition(token: str, loaded, edits: ed.Edits) -> None:
    origins = list(schema.TIME_ORIGINS)
    current = loaded.mapping.time_origin or schema.UNSTATED_TIME_ORIGIN
    origin = st.selectbox("Time origin of every time column", origins,
                          index=origins.index(current), key=f"map_origin_{token}",
                          format_func=lambda o: f"{o} — {schema.TIME_ORIGINS[o]}")
    if origin != current:
        edits.set_origin(origin)
    else:
        edits.time_origin_set = False
    if "pcr" in loaded.data.columns:
        definitions = list(schema.PCR_DEFINITIONS)
        now = loaded.mapping.pcr_definition or "not recorded"
        pick = st.selectbox("pCR definition of the pCR column", definitions,
                            index=definitions.index(now), key=f"map_pcrdef_{token}",
                            format_func=lambda d: f"{d} — {schema.PCR_DEFINITIONS[d]}")
        edits.pcr_definition = pick if pick != now else None
    units = dict(loaded.mapping.time_units)
    for tcol, unit in units.items():
        pick = st.selectbox(f"Unit of {tcol} in the file", list(TIME_UNITS),
                            index=list(TIME_UNITS).index(unit), key=f"map_unit_{token}_{tcol}")
        if pick != unit:
            edits.units[tcol] = pick
        else:
            edits.units.pop(tcol, None)


# --------------------------------------------------------------------------------------------
# Pending changes
# --------------------------------------------------------------------------------------------


def _pending_and_apply(token: str, loaded, edits: ed.Edits, apply) -> None:
    lines = [f"'{s}' → {t or NOT_USED}" for s, t in edits.columns.items()]
    lines += [f"{c}: values recoded" for c in edits.values]
    lines += [f"{t}: rule {'removed' if r is None else 'added'}" for t, r in edits.rules.items()]
    lines += [f"{t}: unit {u}" for t, u in edits.units.items()]
    if edits.time_origin_set:
        lines.append(f"time origin: {edits.time_origin or 'not stated'}")
    if edits.pcr_definition:
        lines.append(f"pCR definition: {edits.pcr_definition}")
    if lines:
        st.info("Changes not applied yet: " + "; ".join(lines))
    left, middle, right = st.columns(3)
    if left.button("Apply mapping", key=f"map_apply_{token}", type="primary",
                   disabled=not edits):
        apply(ed.apply_edits(loaded.mapping, edits))
    if middle.button("Discard changes", key=f"map_discard_{token}", disabled=not edits):
        st.session_state.pop(f"_map_edits_{token}", None)
        st.rerun()
    ui.download("Download mapping (JSON)", loaded.mapping.to_json(), where=right,
                file_name="her2er_mapping.json", mime="application/json", key=f"map_dl_{token}")
