"""Compatibility: the mapping code lives in :mod:`her2er_dash.ingest` (record, names, values)."""

from .ingest.guess import guess_columns, resolve_columns  # noqa: F401
from .ingest.names import match_name, normalise_name  # noqa: F401
from .ingest.record import EVENT_CODINGS, TIME_UNITS, DerivedRule, Mapping  # noqa: F401
from .ingest.values import (  # noqa: F401
    NA,
    Parsed,
    guess_event_coding,
    guess_time_unit,
    parse_binary,
    parse_category,
    parse_ihc,
    parse_number,
    parse_status,
    parse_text,
    value_key,
)
