"""From a raw table and a mapping to canonical columns, with every decision reported.

:func:`plan` decides which source column becomes which canonical column (the guesses, the
proposed derived-column rules, the user's explicit choices); :func:`map_table` parses the values,
computes the rules, converts times to months and events to 1 = event, infers the time origin and
the pCR definition from what the file says, and returns the canonical data with the report rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import CohortError
from ..schema import (
    BINARY_COLUMNS,
    CANONICAL_COLUMNS,
    CATEGORY_COLUMNS,
    ENDPOINTS,
    IDENTIFIER_COLUMNS,
    STATUS_COLUMNS,
    event_column,
    is_competing,
    time_column,
)
from ..validate import issue
from . import derived as der
from . import roles
from . import values as vals
from .evidence import ColumnEvidence, origin_hint, pcr_definition_hint, unit_hint
from .guess import guess_columns, resolve_columns
from .readers import RawTable
from .record import TIME_UNITS, DerivedRule, Mapping

TIME_COLUMNS = (*(time_column(e) for e in ENDPOINTS), "surgery_months")


def kind_of(canonical: str) -> str:
    """How a canonical column's values are read: text, status, binary, event, ihc, category,
    time or number."""
    if canonical in IDENTIFIER_COLUMNS or canonical == "pcr_definition":
        return "text"
    if canonical in STATUS_COLUMNS:
        return "status"
    if canonical in BINARY_COLUMNS:
        return "binary"
    if canonical in CATEGORY_COLUMNS:
        return "category"
    if canonical == "her2_ihc":
        return "ihc"
    if canonical.endswith("_event") and is_competing(canonical.removesuffix("_event")):
        return "competing"
    if canonical.endswith("_event"):
        return "event"
    if canonical.endswith("_months"):
        return "time"
    return "number"


def _parse(canonical: str, values: pd.Series, given: dict | None) -> vals.Parsed:
    kind = kind_of(canonical)
    if kind == "text":
        return vals.parse_text(values)
    if kind == "status":
        return vals.parse_status(values, given, name=canonical)
    if kind in ("binary", "event"):
        return vals.parse_binary(values, given, name=canonical, kind=kind)
    if kind == "competing":
        return vals.parse_competing(values, given)
    if kind == "ihc":
        return vals.parse_ihc(values, given, name=canonical)
    if kind == "category":
        return vals.parse_category(values, given, name=canonical)
    return vals.parse_number(values)


# --------------------------------------------------------------------------------------------
# The plan: which column goes where
# --------------------------------------------------------------------------------------------


@dataclass
class Plan:
    guesses: pd.DataFrame
    rules: dict[str, DerivedRule]
    chosen: dict[str, str]  # source -> canonical (direct mappings)
    dropped: list[str]  # notes on proposed rules that were not used

    @property
    def sources(self) -> set[str]:
        """Every source column the cohort reads (direct mappings and rule inputs)."""
        out = set(self.chosen)
        for rule in self.rules.values():
            out.update(rule.sources)
        return out


def plan(frame: pd.DataFrame, evidence: dict[str, ColumnEvidence], mapping: Mapping,
         summaries: dict[str, roles.Summary] | None = None) -> Plan:
    """Guesses, rules and the resulting direct mappings for ``frame`` under ``mapping``."""
    guesses = guess_columns(frame, evidence, summaries)
    proposed = der.propose(guesses, frame)
    explicit_targets = {c for c in mapping.column_map.values() if c is not None}
    rules, dropped = {}, []
    for target, rule in {**proposed, **mapping.rules}.items():
        if rule is None:
            continue
        if target in explicit_targets and target not in mapping.rules:
            dropped.append(f"The proposed rule for {target} ({rule.describe(target)}) was not "
                           "used: the mapping names a source column for it.")
            continue
        if target in explicit_targets:
            raise CohortError(f"{target} is both mapped from a source column and derived by a "
                              "rule. Remove one of them in the mapping.")
        missing = [s for s in rule.sources if s not in frame.columns]
        if missing:
            dropped.append(f"The rule for {target} needs column(s) {missing} that the file does "
                           "not have; it was not used.")
            continue
        rules[target] = rule
    consumed = der.consumed_sources(rules) - set(mapping.column_map)
    chosen = resolve_columns(guesses, mapping, consumed=consumed, derived=set(rules))
    return Plan(guesses, rules, chosen, dropped)


def needed_columns(frame: pd.DataFrame, evidence: dict, mapping: Mapping) -> set[str]:
    """Source columns a mapping reads (for reading only those of a large file)."""
    return plan(frame, evidence, mapping).sources


# --------------------------------------------------------------------------------------------
# Mapping the table
# --------------------------------------------------------------------------------------------


@dataclass
class Mapped:
    data: pd.DataFrame
    mapping: Mapping
    guesses: pd.DataFrame
    records: list[dict]
    levels: dict[str, tuple]
    unmapped: tuple[str, ...]


def map_table(raw: RawTable, mapping: Mapping | None) -> Mapped:
    """Map, parse, derive and convert a raw table (validation is the caller's)."""
    mapping = mapping or Mapping()
    frame = raw.frame
    if frame.shape[1] == 0:
        raise CohortError(f"{raw.name}: no columns were found. Check that the file is a table "
                          "with a header row.")
    if len(frame) == 0:
        raise CohortError(f"{raw.name}: the file has column names but no data rows. Upload the "
                          "file that holds the patients.")
    guess_frame = raw.sample if raw.sample is not None else frame
    the_plan = plan(guess_frame, raw.evidence, mapping)
    absent = sorted(the_plan.sources - set(frame.columns))
    if absent:
        raise CohortError(
            f"{raw.name}: column(s) {absent} were not kept in memory (the file is large, so only "
            "the columns the mapping used were read). Upload the file again to map them.")
    if not the_plan.chosen and not the_plan.rules:
        raise CohortError(
            f"{raw.name}: none of the columns ({', '.join(map(str, list(frame.columns)[:8]))}"
            f"{' ...' if frame.shape[1] > 8 else ''}) matches the cohort model (patient_id, "
            "er_status, her2_status, pcr, os_months ...). Rename them, or map them on the "
            "Cohort page."
        )
    records = [issue(s, c, 0, m) for s, c, m in raw.notes]
    records += _mapping_notes(the_plan, mapping, frame)
    converter = _Converter(frame, the_plan, mapping, raw.evidence, records)
    columns = converter.run()
    # In schema order and without copying: the parsed arrays become the frame's columns as they
    # are (consolidating them into 2-D blocks would hold every column twice at 1M rows).
    ordered = {c: columns.pop(c) for c in CANONICAL_COLUMNS if c in columns}
    data = pd.DataFrame(ordered, index=pd.RangeIndex(len(frame)), copy=False)
    del ordered
    origin = _time_origin(mapping, converter.time_sources(), raw.evidence, records, raw.format)
    definition = _pcr_definition(mapping, data, converter, raw.evidence, records)
    if definition is not None and "pcr_definition" not in data:
        data.insert(data.columns.get_loc("pcr") + 1, "pcr_definition",
                    np.where(data["pcr"].notna(), definition, None).astype(object))
    guesses = _annotate(the_plan)
    every = raw.all_columns or tuple(str(c) for c in frame.columns)
    final = Mapping(
        columns={str(s): the_plan.chosen.get(s) for s in every},
        values=converter.value_maps, time_units=converter.units,
        event_coding=converter.codings, time_origin=origin, pcr_definition=definition,
        derived={**the_plan.rules, **{t: None for t, r in mapping.rules.items() if r is None}},
    )
    used = the_plan.sources
    unmapped = tuple(str(c) for c in every if c not in used)
    return Mapped(data, final, guesses, records, converter.levels, unmapped)


def _annotate(the_plan: Plan) -> pd.DataFrame:
    guesses = the_plan.guesses.copy()
    guesses["mapped_to"] = guesses.source_column.map(the_plan.chosen)
    inputs: dict[str, list[str]] = {}
    for target, rule in the_plan.rules.items():
        for source in rule.sources:
            inputs.setdefault(source, []).append(target)
    guesses["rule_input"] = guesses.source_column.map(
        lambda s: ", ".join(inputs.get(s, [])) or None)
    for i, source in guesses.source_column.items():
        if source in inputs and source not in the_plan.chosen:
            guesses.at[i, "reason"] = (f"{guesses.at[i, 'reason']}; read by the rule for "
                                       f"{', '.join(inputs[source])}")
    return guesses


def _mapping_notes(the_plan: Plan, mapping: Mapping, frame: pd.DataFrame) -> list[dict]:
    guesses = the_plan.guesses
    out = [issue("info", "", 0, text) for text in the_plan.dropped]
    missing = [s for s in mapping.column_map if s not in frame.columns]
    if missing:
        out.append(issue("warning", "", len(missing), f"The mapping names column(s) {missing} "
                         "that the file does not have; they were ignored."))
    inputs = {s for rule in the_plan.rules.values() for s in rule.sources}
    for row in guesses[guesses.canonical.notna() & ~guesses.chosen].itertuples(index=False):
        if row.source_column not in mapping.column_map and row.source_column not in inputs:
            out.append(issue("info", row.canonical, 0, f"'{row.source_column}' also matches "
                             f"{row.canonical}: {row.reason}."))
    for row in guesses[guesses.chosen & (guesses.score < 0.6)].itertuples(index=False):
        if row.source_column not in mapping.column_map and row.source_column in the_plan.chosen:
            out.append(issue("warning", row.canonical, 0, f"'{row.source_column}' was mapped to "
                             f"{row.canonical} with low confidence ({row.reason}); confirm it."))
    for target, rule in the_plan.rules.items():
        out.append(issue("info", target, 0, f"Derived: {rule.describe(target)}."))
    return out


_KIND_WORDS = {"competing": "an event code (0 censored, 1 event, 2 competing)", "status": "positive/negative", "binary": "0/1", "event": "0/1 event",
               "ihc": "an IHC score 0-3", "time": "a number", "number": "a number",
               "category": "a category", "text": "text"}
RECODE_HINT = "recode them in the mapping (Cohort page → Column mapping → Recode values)"


def _examples(values: pd.Series, mask: np.ndarray) -> str:
    seen = pd.unique(values[mask].astype(str))[:3]
    return ", ".join(repr(v) for v in seen)


def _value_map_text(value_map: dict) -> str:
    shown = [f"{k!r} -> {v}" for k, v in list(value_map.items())[:8]]
    return ", ".join(shown) + (" ..." if len(value_map) > 8 else "")


def parse_issues(canonical: str, source: str, raw: pd.Series, parsed: vals.Parsed,
                 codes_used: bool = False) -> list[dict]:
    """Report rows for what parsing a column did (unreadable values, recodings, mixed types)."""
    out = []
    kind = kind_of(canonical)
    if parsed.failed is not None and parsed.failed.any():
        mixed = kind in ("time", "number") and raw.dtype == object
        what = "mixed types: " if mixed and (~parsed.failed & raw.notna().to_numpy()).any() else ""
        out.append(issue("warning", canonical, parsed.failed, (
            f"{what}{int(parsed.failed.sum()):,} value(s) of '{source}' could not be read as "
            f"{_KIND_WORDS[kind]} ({_examples(raw, parsed.failed)}); they were set to missing. "
            f"Correct them in the file, or {RECODE_HINT}.")))
    if parsed.indeterminate is not None and parsed.indeterminate.any():
        out.append(issue("info", canonical, parsed.indeterminate, (
            f"{int(parsed.indeterminate.sum()):,} value(s) of '{source}' mean indeterminate / "
            f"not done ({_examples(raw, parsed.indeterminate)}); they were set to missing.")))
    if kind == "category" and raw.dtype == object:
        codes, uniques = pd.factorize(raw)
        numeric_u = np.append(pd.to_numeric(pd.Series(uniques), errors="coerce").notna(), False)
        numeric = numeric_u[codes]
        if numeric_u.any() and not numeric_u[:-1].all():
            out.append(issue("info", canonical, numeric, (
                f"mixed types in '{source}': numbers and text; numbers were recoded "
                f"({_value_map_text(parsed.value_map)}). Check the recoding.")))
    elif parsed.value_map and kind in ("status", "binary", "event"):
        how = " with the codes of the file's data dictionary" if codes_used else ""
        out.append(issue("info", canonical, 0, f"'{source}' recoded{how} as "
                         f"{_value_map_text(parsed.value_map)}."))
    return out


class _Converter:
    """Parses the direct mappings, computes the rules, converts times and events."""

    def __init__(self, frame, the_plan: Plan, mapping: Mapping, evidence, records):
        self.frame, self.plan, self.mapping = frame, the_plan, mapping
        self.evidence, self.records = evidence, records
        self.by_canonical = {c: s for s, c in the_plan.chosen.items()}
        self.columns: dict[str, np.ndarray] = {}
        self.value_maps: dict[str, dict] = {}
        self.levels: dict[str, tuple] = {}
        self.units: dict[str, str] = {}
        self.codings: dict[str, str] = {}
        self.coded: set[str] = set()  # event columns whose map came from text or codes

    def run(self) -> dict[str, np.ndarray]:
        given_values = self.mapping.value_maps
        for canonical in CANONICAL_COLUMNS:
            if canonical in self.by_canonical:
                self._direct(canonical, given_values.get(canonical))
            elif canonical in self.plan.rules:
                self._rule(canonical, self.plan.rules[canonical])
        self._times()
        self._events()
        if "patient_id" not in self.columns:
            n = len(self.frame)
            self.columns["patient_id"] = np.array([str(i + 1) for i in range(n)], dtype=object)
            self.records.append(issue("info", "patient_id", 0, "No patient-ID column was found; "
                                      "row numbers (1, 2, ...) are used as patient IDs."))
        return self.columns

    def _direct(self, canonical: str, given: dict | None) -> None:
        source = self.by_canonical[canonical]
        raw = self.frame[source]
        codes_used = False
        if given is None:
            given, codes_used = self._codes_map(canonical, source, raw)
        parsed = _parse(canonical, raw, given)
        self.records.extend(parse_issues(canonical, source, raw, parsed, codes_used))
        self.columns[canonical] = parsed.values.to_numpy()
        if parsed.value_map or canonical in self.mapping.value_maps:
            self.value_maps[canonical] = parsed.value_map
        if parsed.levels:
            self.levels[canonical] = parsed.levels
        textual = any(not k.lstrip("-").replace(".", "").isdigit() for k in parsed.value_map)
        if codes_used or (parsed.value_map and textual):
            self.coded.add(canonical)

    def _codes_map(self, canonical: str, source: str, raw: pd.Series) -> tuple[dict | None, bool]:
        """A value map from the data dictionary's codes for ``source`` (and the vocabulary for
        values the codes do not list), or (None, False) without codes."""
        ev = self.evidence.get(source)
        kind = kind_of(canonical)
        if ev is None or not ev.codes or kind not in ("status", "event", "binary", "ihc",
                                                      "category"):
            return None, False
        from_codes = vals.value_map_from_labels(ev.codes, kind)
        if not from_codes:
            return None, False
        keys = [vals.value_key(v) for v in pd.unique(raw.dropna())]
        auto = _parse(canonical, pd.Series(keys, dtype=object), None)
        return {**auto.value_map, **from_codes}, True

    def _rule(self, target: str, rule: DerivedRule) -> None:
        values, notes, levels = der.compute(rule, self.frame, target)
        severity = "warning" if rule.kind == "death_or_last_contact" else "info"
        self.records.extend(issue(severity, target, 0, note) for note in notes)
        self.columns[target] = values
        if levels:
            self.levels[target] = levels
        if rule.kind in ("event_from_status", "cause_from_status"):
            self.coded.add(target)
            self.value_maps[target] = dict(rule.values)

    def time_sources(self) -> dict[str, str]:
        """{time column: the source column whose name/description speaks for it}."""
        out = {}
        for tcol in TIME_COLUMNS:
            if tcol in self.by_canonical:
                out[tcol] = self.by_canonical[tcol]
            elif tcol in self.plan.rules:
                rule = self.plan.rules[tcol]
                out[tcol] = rule.input("death") or rule.input("end") or rule.sources[0]
        return out

    def _times(self) -> None:
        given = dict(self.mapping.time_units)
        sources = self.time_sources()
        for tcol in TIME_COLUMNS:
            if tcol not in self.columns:
                continue
            values = pd.Series(self.columns[tcol], dtype="float64")
            rule = self.plan.rules.get(tcol)
            source = sources[tcol]
            ev = self.evidence.get(source)
            stated = unit_hint(ev.description) if ev else None
            if tcol in given:
                unit = given[tcol]
            elif rule is not None and rule.unit:
                unit = rule.unit
            elif stated:
                unit = stated
                converted = "" if unit == "months" else "; converted to months"
                self.records.append(issue("info", tcol, 0, f"'{source}' read in {unit} (the "
                                          f"file's description says so){converted}."))
            else:
                unit, why, from_size = vals.guess_time_unit(source, values)
                severity = "warning" if from_size and unit != "months" else "info"
                converted = "" if unit == "months" else "; converted to months"
                check = " Change the unit in the mapping if this is wrong." if from_size else ""
                self.records.append(issue(severity, tcol, 0, f"'{source}' read in {unit} "
                                          f"({why}){converted}.{check}"))
            self.units[tcol] = unit
            self.columns[tcol] = values.to_numpy() * TIME_UNITS[unit]

    def _events(self) -> None:
        given = dict(self.mapping.event_coding)
        for endpoint in ENDPOINTS:
            ecol = event_column(endpoint)
            if ecol not in self.columns:
                continue
            values = pd.Series(self.columns[ecol], dtype="float64")
            if is_competing(endpoint):  # codes 0 / 1 / 2...: never inverted
                self.codings[endpoint] = "1=event"
                counts = values.value_counts().sort_index()
                source = self.by_canonical.get(ecol) or self.plan.rules[ecol].input("status")
                self.records.append(issue("info", ecol, 0, f"'{source}' read as competing-risk "
                                          "codes (0 censored, 1 event, 2+ competing): " + ", ".join(
                                              f"{int(k)} = {int(n):,} patients"
                                              for k, n in counts.items()) + "."))
                continue
            if endpoint in given:
                coding = given[endpoint]
            else:
                source = self.by_canonical.get(ecol) or self.plan.rules[ecol].input("status")
                tsource = self.by_canonical.get(time_column(endpoint))
                coding, why, flag = vals.guess_event_coding(endpoint, source, tsource, values,
                                                            ecol in self.coded)
                self.records.append(_coding_issue(endpoint, source, coding, why, flag))
            self.codings[endpoint] = coding
            if coding == "1=no event":
                values = values.where(~values.isin([0, 1]), 1 - values)
            self.columns[ecol] = values.to_numpy()


def _coding_issue(endpoint: str, source: str, coding: str, why: str, flag: bool) -> dict:
    if coding == "1=no event":
        text = (f"'{source}' could be inverted: taken as 1 = no event, so it was inverted to "
                f"1 = event ({why}).")
    else:
        text = f"'{source}' taken as 1 = event ({why})."
    if flag:
        text += (" Confirm the direction: recode the values in the mapping (Cohort page → "
                 "Column mapping → Recode values).")
    return issue("warning" if flag else "info", event_column(endpoint), 0, text)


# --------------------------------------------------------------------------------------------
# What the file says about the clock and the pCR definition
# --------------------------------------------------------------------------------------------


#: Formats whose times count from diagnosis by definition (SEER*Stat "Survival months"; the GDC's
#: "days_to_*" fields are days from the initial pathologic diagnosis).
_FORMAT_ORIGINS = {"SEER*Stat": "diagnosis", "GDC biotab": "diagnosis"}


def _time_origin(mapping: Mapping, sources: dict[str, str], evidence, records,
                 fmt: str = "") -> str | None:
    if mapping.time_origin is not None or not sources:
        return mapping.time_origin
    for prefix, origin in _FORMAT_ORIGINS.items():
        if fmt.startswith(prefix):
            records.append(issue("info", "", 0, f"Time origin: {origin} ({prefix} times count "
                                 f"from {origin}). Change it in the mapping if needed."))
            return origin
    hints = {}
    for source in sources.values():
        ev = evidence.get(source)
        origin = origin_hint(ev.description) if ev else None
        if origin:
            hints[source] = origin
    concrete = {o for o in hints.values() if o != "study entry"}
    entry = [s for s, o in hints.items() if o == "study entry"]
    said = "; ".join(f"'{s}' counts from {o}" for s, o in hints.items())
    if len(concrete) == 1:
        origin = concrete.pop()
        extra = (f" {', '.join(repr(s) for s in entry)} counts from study entry, taken as the "
                 "same clock." if entry else "")
        records.append(issue("info", "", 0, f"Time origin: {origin}, as the file's descriptions "
                             f"say ({said}).{extra} Change it in the mapping if needed."))
        return origin
    if len(concrete) > 1:
        records.append(issue("warning", "", 0, f"The time columns start at different times "
                             f"({said}); choose the cohort's time origin in the mapping."))
    elif entry:
        records.append(issue("info", "", 0, f"The times count from study entry ({said}); choose "
                             "the matching time origin in the mapping."))
    return None


def _pcr_definition(mapping: Mapping, data: pd.DataFrame, converter: _Converter, evidence,
                    records) -> str | None:
    if mapping.pcr_definition is not None:
        return mapping.pcr_definition
    if "pcr" not in data or "pcr_definition" in data:
        return None
    source = converter.by_canonical.get("pcr")
    ev = evidence.get(source) if source else None
    raw_values = [k for k, _ in converter.levels.get("pcr", ())]
    texts = [source or "", *(ev.names if ev else []), *raw_values, ev.description if ev else ""]
    hint = pcr_definition_hint(*texts)
    if hint is not None:
        records.append(issue("info", "pcr", 0, f"pCR definition: {hint[0]} ({hint[1]}). "
                             "Change it in the mapping if the study used another."))
        return hint[0]
    records.append(issue("info", "pcr", 0, f"The file does not say which pCR definition "
                         f"'{source}' follows: recorded as 'not recorded'. Choose it in the "
                         "mapping (Cohort page → Column mapping → Time origin and pCR "
                         "definition)."))
    return "not recorded"
