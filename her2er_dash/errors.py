"""Exceptions raised by her2er_dash.

Both are ``ValueError`` subclasses so that callers (and the dashboard) can catch one type and show
its message, which is written for a researcher: what is wrong and what to do about it.
"""


class AnalysisError(ValueError):
    """The data cannot support the requested analysis (no events, one group, separation, ...)."""


class CohortError(ValueError):
    """An input file or mapping cannot be turned into a canonical cohort."""
