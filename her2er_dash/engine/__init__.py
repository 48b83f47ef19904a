"""Registries queried in place: a DuckDB engine for cohorts too large to load into pandas.

:class:`Registry` answers what the dashboard asks of a cohort with SQL over Parquet files (or an
in-memory Arrow table): the flow through the sidebar's filters, grouped
:class:`~her2er_dash.counts.Counts` for the counts-first analyses (Kaplan-Meier, log-rank, pCR
rates, Cox models of categorical terms and their PH test, subgroup forests) and a random sample of
rows for the views that need individual values. :class:`DataFolder` lists the registries of an
operator's server-side folder and opens them by name, never outside it.

Every number equals the in-memory (pandas) engine's on the same patients; ``tests/test_engine.py``
checks it.
"""

from .folder import DataFolder
from .registry import DEFAULT_SAMPLE, Registry, Selection

__all__ = ["DEFAULT_SAMPLE", "DataFolder", "Registry", "Selection"]
