"""The :class:`Mapping` record: how a source table becomes the canonical cohort.

A mapping is plain data (hashable, JSON round trip) so that a saved mapping reproduces a cohort
exactly and can key a cache. Besides one-to-one column choices and value recodings it carries
**derived-column rules** (:class:`DerivedRule`): a canonical column computed from several source
columns, e.g. overall survival time = the death time for patients who died, else the time of last
contact. Every rule can say what it does in words (:meth:`DerivedRule.describe`), which the app
shows and the methods paragraph states.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import CohortError
from ..schema import CANONICAL_COLUMNS, PCR_DEFINITIONS, TIME_ORIGINS

TIME_UNITS: dict[str, float] = {
    # factor to months; a month is 365.25 / 12 days
    "months": 1.0,
    "days": 12.0 / 365.25,
    "weeks": 7.0 * 12.0 / 365.25,
    "years": 12.0,
}
EVENT_CODINGS = ("1=event", "1=no event")
_INVERTED_ALIASES = {"0=event": "1=no event", "inverted": "1=no event", "1=event": "1=event"}


def _pairs(value, what: str) -> tuple:
    """A dict or an iterable of pairs as a sorted tuple of pairs (hashable, JSON-friendly)."""
    if value is None:
        return ()
    items = value.items() if isinstance(value, dict) else value
    try:
        return tuple(sorted(((str(k), v) for k, v in items), key=lambda kv: kv[0]))
    except (TypeError, ValueError) as exc:
        raise CohortError(
            f"Mapping.{what} must be a dict or a list of (key, value) pairs ({exc})."
        ) from exc


# --------------------------------------------------------------------------------------------
# Derived-column rules
# --------------------------------------------------------------------------------------------

#: kind -> (input roles, which of them are required, a short name for menus)
RULE_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "death_or_last_contact": (("status", "death", "last_contact"), ("death", "last_contact"),
                              "time = death time if dead, else time of last contact"),
    "event_from_status": (("status",), ("status",), "event from a vital-status text"),
    "her2_asco_cap": (("ihc", "ihc_status", "ish_status", "ish_ratio", "copy_number"), (),
                      "HER2 status from IHC and ISH by ASCO/CAP 2018"),
    "date_difference": (("start", "end"), ("start", "end"), "time between two dates"),
}
_ROLE_WORDS = {"status": "vital status", "death": "time to death", "last_contact":
               "time to last contact", "ihc": "IHC score", "ihc_status": "IHC result",
               "ish_status": "ISH result", "ish_ratio": "HER2/CEP17 ratio",
               "copy_number": "HER2 copies per cell", "start": "start date", "end": "end date"}
_RULE_TARGETS = {
    "death_or_last_contact": lambda c: c.endswith("_months") and c != "surgery_months",
    "event_from_status": lambda c: c.endswith("_event"),
    "her2_asco_cap": lambda c: c == "her2_status",
    "date_difference": lambda c: c.endswith("_months"),
}


def _event_word(value) -> str:
    return {1.0: "event", 0.0: "censored"}.get(value, "missing")


@dataclass(frozen=True)
class DerivedRule:
    """A canonical column computed from several source columns.

    Parameters
    ----------
    kind
        ``"death_or_last_contact"`` (a time: the death time where the status says dead, else the
        time of last contact), ``"event_from_status"`` (1 where the status text means dead or
        the event, 0 where it means alive/censored), ``"her2_asco_cap"`` (HER2 status from IHC
        and ISH, see :func:`her2er_dash.classify.her2_status`) or ``"date_difference"`` (months
        from the ``start`` date to the ``end`` date).
    inputs
        ``{role: source column}``; the roles of each kind are listed in :data:`RULE_KINDS`.
    values
        ``{status text: 1.0 | 0.0 | None}`` for kinds that read a status text (1 = dead / event).
    unit
        Unit of the input times (``"days"`` ...); they are converted to months.
    """

    kind: str
    inputs: tuple = ()
    values: tuple = ()
    unit: str | None = None

    def __post_init__(self):
        if self.kind not in RULE_KINDS:
            raise CohortError(f"Unknown derived-column rule {self.kind!r}; use one of "
                              f"{', '.join(RULE_KINDS)}.")
        object.__setattr__(self, "inputs", _pairs(self.inputs, "derived inputs"))
        object.__setattr__(self, "values", _pairs(self.values, "derived values"))
        roles, required, _ = RULE_KINDS[self.kind]
        unknown = [r for r, _ in self.inputs if r not in roles]
        if unknown:
            raise CohortError(f"Rule {self.kind!r} has no input role(s) {unknown}; its roles are "
                              f"{', '.join(roles)}.")
        missing = [r for r in required if r not in dict(self.inputs)]
        if missing:
            raise CohortError(f"Rule {self.kind!r} needs the input(s) {missing}.")
        given = dict(self.inputs)
        if self.kind == "her2_asco_cap" and not (
                {"ihc", "ihc_status"} & set(given) and {"ish_status", "ish_ratio"} & set(given)):
            raise CohortError("Rule 'her2_asco_cap' needs an IHC column (score or result) and an "
                              "ISH column (result or ratio).")
        if self.unit is not None and self.unit not in TIME_UNITS:
            raise CohortError(f"Unknown time unit {self.unit!r}; use one of {list(TIME_UNITS)}.")

    def input(self, role: str) -> str | None:
        return dict(self.inputs).get(role)

    @property
    def sources(self) -> tuple[str, ...]:
        """The source columns the rule reads."""
        return tuple(dict.fromkeys(s for _, s in self.inputs))

    def as_dict(self) -> dict:
        out: dict = {"rule": self.kind, "inputs": dict(self.inputs)}
        if self.values:
            out["values"] = dict(self.values)
        if self.unit:
            out["unit"] = self.unit
        return out

    @classmethod
    def from_dict(cls, raw) -> DerivedRule:
        if not isinstance(raw, dict) or "rule" not in raw:
            raise CohortError("A derived-column rule must be an object with 'rule' and 'inputs'.")
        extra = set(raw) - {"rule", "inputs", "values", "unit"}
        if extra:
            raise CohortError(f"A derived-column rule has unknown key(s) {sorted(extra)}.")
        return cls(raw["rule"], raw.get("inputs") or (), raw.get("values") or (), raw.get("unit"))

    def describe(self, target: str) -> str:
        """The rule in words, e.g. "os_months = 'death_days_to' where 'vital_status' is Dead ..."."""
        q = {role: f"'{source}'" for role, source in self.inputs}
        unit = f" ({self.unit}, converted to months)" if self.unit and self.unit != "months" else ""
        if self.kind == "death_or_last_contact":
            dead = [k for k, v in self.values if v == 1.0]
            status = q.get("status")
            when = (f"whose {status} is {' or '.join(dead) or 'dead'}" if status
                    else "with a death time")
            return (f"{target} = {q['death']} for patients {when}, else "
                    f"{q['last_contact']}{unit}")
        if self.kind == "event_from_status":
            groups: dict[str, list[str]] = {}
            for raw, value in self.values:
                groups.setdefault(_event_word(value), []).append(raw)
            listed = "; ".join(f"{word} for {', '.join(raws)}" for word, raws in groups.items())
            return f"{target} from {q['status']}: {listed or 'dead = event'}"
        if self.kind == "her2_asco_cap":
            roles = RULE_KINDS[self.kind][0]
            parts = [f"{_ROLE_WORDS[r]} {q[r]}" for r in roles if r in q]
            return (f"{target} by ASCO/CAP 2018 (her2er_dash.classify.her2_status) from "
                    f"{', '.join(parts)}; where only the laboratory's ISH result is recorded, "
                    "it decides IHC 2+ and missing IHC")
        return f"{target} = {q['end']} − {q['start']} in months"

    def fits(self, target: str) -> bool:
        """Whether the rule can produce ``target``."""
        return _RULE_TARGETS[self.kind](target)


# --------------------------------------------------------------------------------------------
# The Mapping record
# --------------------------------------------------------------------------------------------


def _derived_pairs(value) -> tuple:
    out = []
    for target, rule in _pairs(value, "derived"):
        if target not in CANONICAL_COLUMNS:
            raise CohortError(f"A derived-column rule names unknown canonical column {target!r}.")
        if rule is not None and not isinstance(rule, DerivedRule):
            rule = DerivedRule.from_dict(rule)
        if rule is not None and not rule.fits(target):
            raise CohortError(f"Rule {rule.kind!r} cannot produce {target}.")
        out.append((target, rule))
    return tuple(out)


@dataclass(frozen=True)
class Mapping:
    """How a source table becomes the canonical cohort; every field overrides the automatic guess.

    Parameters
    ----------
    columns
        ``{source column: canonical column}``; ``None`` as the canonical name ignores a column.
    values
        ``{canonical column: {source value as text: canonical value}}`` for statuses, binaries,
        events (raw indicator before ``event_coding``), HER2 IHC scores and categories.
    time_units
        ``{canonical time column: "months" | "days" | "weeks" | "years"}`` (endpoint times and
        ``surgery_months``).
    event_coding
        ``{endpoint: "1=event" | "1=no event"}``; ``"1=no event"`` inverts 0/1.
    time_origin
        Where the clock of every time column starts (a key of
        :data:`her2er_dash.schema.TIME_ORIGINS`); ``None`` means the loader found no statement
        (shown as "not recorded", never silently "diagnosis").
    pcr_definition
        The pCR definition of the ``pcr`` column (a key of
        :data:`her2er_dash.schema.PCR_DEFINITIONS`) when the file has no ``pcr_definition``
        column; ``None`` means not stated.
    derived
        ``{canonical column: DerivedRule | dict | None}``: columns computed by a rule over several
        source columns; ``None`` switches off a rule the loader would otherwise propose.

    Dicts are accepted and stored as sorted tuples so that the mapping is hashable (a cache key).
    """

    columns: tuple = ()
    values: tuple = ()
    time_units: tuple = ()
    event_coding: tuple = ()
    time_origin: str | None = None
    pcr_definition: str | None = None
    derived: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "columns", _pairs(self.columns, "columns"))
        values = tuple((col, _pairs(vmap, "values")) for col, vmap in _pairs(self.values, "values"))
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "time_units", _pairs(self.time_units, "time_units"))
        coding = tuple((e, _INVERTED_ALIASES.get(c, c)) for e, c in _pairs(self.event_coding, "ev"))
        object.__setattr__(self, "event_coding", coding)
        object.__setattr__(self, "derived", _derived_pairs(self.derived))
        self._check()

    def _check(self) -> None:
        bad = [c for _, c in self.columns if c is not None and c not in CANONICAL_COLUMNS]
        if bad:
            raise CohortError(
                f"The mapping names unknown canonical column(s) {bad}. Use one of: "
                f"{', '.join(CANONICAL_COLUMNS)} (or null to ignore a column)."
            )
        bad = [u for _, u in self.time_units if u not in TIME_UNITS]
        if bad:
            raise CohortError(f"Unknown time unit(s) {bad}; use one of {list(TIME_UNITS)}.")
        bad = [c for _, c in self.event_coding if c not in EVENT_CODINGS]
        if bad:
            raise CohortError(f"Unknown event coding(s) {bad}; use '1=event' or '1=no event'.")
        if self.time_origin is not None and self.time_origin not in TIME_ORIGINS:
            raise CohortError(f"Unknown time origin {self.time_origin!r}; use one of "
                              f"{', '.join(map(repr, TIME_ORIGINS))}.")
        if self.pcr_definition is not None and self.pcr_definition not in PCR_DEFINITIONS:
            raise CohortError(f"Unknown pCR definition {self.pcr_definition!r}; use one of "
                              f"{', '.join(map(repr, PCR_DEFINITIONS))}.")

    @property
    def column_map(self) -> dict[str, str | None]:
        return dict(self.columns)

    @property
    def value_maps(self) -> dict[str, dict]:
        return {col: dict(vmap) for col, vmap in self.values}

    @property
    def rules(self) -> dict[str, DerivedRule | None]:
        """``{canonical column: rule}`` (``None``: a proposed rule switched off)."""
        return dict(self.derived)

    def to_json(self) -> str:
        """The mapping as JSON text (for download, and for :meth:`from_json`)."""
        return json.dumps(
            {
                "columns": dict(self.columns),
                "values": self.value_maps,
                "time_units": dict(self.time_units),
                "event_coding": dict(self.event_coding),
                "time_origin": self.time_origin,
                "pcr_definition": self.pcr_definition,
                "derived": {t: (r.as_dict() if r is not None else None) for t, r in self.derived},
            },
            indent=2,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Mapping:
        """Read a mapping written by :meth:`to_json`; malformed text raises :class:`CohortError`."""
        try:
            raw = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise CohortError(
                f"The mapping file is not valid JSON ({exc}). Download a fresh one from the "
                "Cohort page."
            ) from exc
        if not isinstance(raw, dict):
            raise CohortError("The mapping JSON must be an object with 'columns', 'values', ...")
        tables = {"columns", "values", "time_units", "event_coding", "derived"}
        scalars = {"time_origin", "pcr_definition"}
        unknown = set(raw) - tables - scalars
        if unknown:
            raise CohortError(f"The mapping JSON has unknown key(s) {sorted(unknown)}.")
        return cls(**{k: raw.get(k) or () for k in tables}, **{k: raw.get(k) for k in scalars})

    def replace(self, **changes) -> Mapping:
        """A copy with some fields replaced (dict values accepted, as in the constructor)."""
        fields = {"columns": self.columns, "values": self.values, "time_units": self.time_units,
                  "event_coding": self.event_coding, "time_origin": self.time_origin,
                  "pcr_definition": self.pcr_definition, "derived": self.derived}
        fields.update(changes)
        return Mapping(**fields)
