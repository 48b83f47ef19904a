"""Compatibility: the readers live in :mod:`her2er_dash.ingest.readers`."""

from .ingest.readers import *  # noqa: F403
from .ingest.readers import RawTable, join_on_id, read_table, source_bytes  # noqa: F401
