"""Reading a researcher's own file and mapping it to the canonical cohort model.

Used by :mod:`her2er_dash.cohort` (the public entry point: ``cohort.load``). In pipeline order:

* :mod:`.readers` — bytes -> a raw table (format from the content, encodings, Excel, Parquet, gzip);
* :mod:`.layout` — where the table starts (metadata, title and extra header lines are never
  patients), GEO series matrix / SOFT files, data-dictionary sheets;
* :mod:`.evidence` — what the file says about its columns (descriptions, value codes, units);
* :mod:`.names` — column-name patterns; :mod:`.roles` — the values' say; :mod:`.guess` — the
  automatic mapping from all three;
* :mod:`.values` — raw values -> canonical values (statuses, events, scores, categories, times);
* :mod:`.derived` — canonical columns computed from several source columns;
* :mod:`.record` — the :class:`~.record.Mapping` that records every choice (JSON round trip).
"""
