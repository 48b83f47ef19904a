"""Edits a user makes to a mapping, as plain data: the mapping editor's logic without the widgets.

:class:`Edits` holds what changed (a column sent elsewhere, a value recoded, a rule switched off
or added, a unit, the time origin, the pCR definition), keyed by source column or canonical
column, never by a row position, so an edit can never land on another row.
:func:`apply_edits` turns the cohort's current mapping plus the edits into the next mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..schema import ENDPOINTS, event_column
from .build import kind_of
from .record import DerivedRule, Mapping

MISSING = "missing"
#: Choices offered in the recoding table, per kind of canonical column: label -> stored value.
RECODE_CHOICES: dict[str, dict[str, object]] = {
    "status": {"positive": "positive", "negative": "negative", MISSING: None},
    "event": {"event": 1.0, "censored": 0.0, MISSING: None},
    "binary": {"pCR": 1.0, "no pCR": 0.0, MISSING: None},
    "ihc": {"0": 0.0, "1+": 1.0, "2+": 2.0, "3+": 3.0, MISSING: None},
}
RECODABLE = ("status", "event", "binary", "ihc", "category")


@dataclass
class Edits:
    """Pending changes to a cohort's mapping (empty: nothing changed)."""

    columns: dict[str, str | None] = field(default_factory=dict)  # source -> canonical | None
    values: dict[str, dict[str, object]] = field(default_factory=dict)  # canonical -> raw -> value
    rules: dict[str, DerivedRule | None] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    time_origin: str | None = None
    time_origin_set: bool = False
    pcr_definition: str | None = None

    def __bool__(self) -> bool:
        return bool(self.columns or self.values or self.rules or self.units
                    or self.time_origin_set or self.pcr_definition)

    def set_origin(self, origin: str | None) -> None:
        self.time_origin, self.time_origin_set = origin, True


def recode_kind(canonical: str) -> str | None:
    kind = kind_of(canonical)
    return kind if kind in RECODABLE else None


def label_of(kind: str, value) -> str:
    """The recoding table's label for a stored value (``1.0`` for an event -> ``"event"``)."""
    if value is None:
        return MISSING
    if kind == "category":
        return str(value)
    for label, stored in RECODE_CHOICES[kind].items():
        if stored == value:
            return label
    return MISSING


def current_recoding(mapping: Mapping, canonical: str, levels: tuple) -> dict[str, object]:
    """What each raw value of ``canonical`` means now: ``{raw: stored value or None}``.

    Events are shown after the event coding (``1=no event`` inverts), so the table says what the
    analysis uses. Raw values the current map does not read are ``None`` (missing).
    """
    kind = recode_kind(canonical)
    rule = mapping.rules.get(canonical)
    value_map = dict(rule.values) if rule is not None else mapping.value_maps.get(canonical, {})
    out: dict[str, object] = {}
    for raw, _count in levels:
        if raw in value_map:
            out[raw] = value_map[raw]
        elif kind in ("event", "binary", "ihc") and not value_map:
            try:
                out[raw] = float(raw)
            except ValueError:
                out[raw] = None
        else:
            out[raw] = None
        if kind == "event" and out[raw] in (0.0, 1.0):
            endpoint = canonical.removesuffix("_event")
            if dict(mapping.event_coding).get(endpoint) == "1=no event" and rule is None:
                out[raw] = 1.0 - out[raw]
    return out


def apply_edits(mapping: Mapping, edits: Edits) -> Mapping:
    """The mapping after ``edits`` (see :class:`Edits`)."""
    columns = dict(mapping.column_map)
    values = mapping.value_maps
    units = dict(mapping.time_units)
    coding = dict(mapping.event_coding)
    derived = dict(mapping.rules)
    for source, target in edits.columns.items():
        previous = columns.get(source)
        if target is not None:
            for other, canonical in list(columns.items()):
                if canonical == target and other != source:
                    columns[other] = None
            if derived.get(target) is not None:
                derived[target] = None  # a direct column replaces the rule
        columns[source] = target
        for changed in {previous, target} - {None}:
            values.pop(changed, None)  # the old column's recoding means nothing for the new one
            units.pop(changed, None)
            if changed.endswith("_event"):
                coding.pop(changed.removesuffix("_event"), None)
    for target, rule in edits.rules.items():
        derived[target] = rule
        if rule is not None:
            columns.update({s: None for s, c in columns.items() if c == target})
    for canonical, recoded in edits.values.items():
        _recode(canonical, recoded, values, coding, derived)
    units.update(edits.units)
    return mapping.replace(
        columns=columns, values=values, time_units=units, event_coding=coding, derived=derived,
        time_origin=edits.time_origin if edits.time_origin_set else mapping.time_origin,
        pcr_definition=edits.pcr_definition or mapping.pcr_definition,
    )


def _recode(canonical, recoded, values, coding, derived) -> None:
    rule = derived.get(canonical)
    if rule is not None:
        status = rule.input("status")
        merged = {**dict(rule.values), **recoded}
        for target, other in list(derived.items()):  # every rule reading the same status text
            if other is not None and other.input("status") == status:
                derived[target] = DerivedRule(other.kind, other.inputs, merged, other.unit)
        return
    values[canonical] = {**values.get(canonical, {}), **recoded}
    if canonical.endswith("_event"):
        # the table states what each value means after any inversion: no inversion on top
        coding[canonical.removesuffix("_event")] = "1=event"


def endpoints_with_events(columns) -> list[str]:
    return [e for e in ENDPOINTS if event_column(e) in columns]
