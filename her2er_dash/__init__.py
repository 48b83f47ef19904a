"""her2er_dash: the pure analysis core of HER2/ER Explorer.

DataFrame in, tidy DataFrame or small frozen result object out. No Streamlit anywhere in this
package, so every number on the dashboard can be recomputed in a notebook::

    from her2er_dash import datasets, response
    df = datasets.bundled("synthetic").data     # SYNTHETIC, classified (has er_category)
    response.pcr_rates(df, ["er_category", "arm"])

Submodules are imported lazily so that ``import her2er_dash`` stays cheap.
"""

from __future__ import annotations

import importlib

from .errors import AnalysisError, CohortError

__version__ = "0.1.0"

_SUBMODULES = (
    "cbioportal",
    "cli",
    "classify",
    "cohort",
    "contrasts",
    "datasets",
    "events",
    "export",
    "figures",
    "filters",
    "imputation",
    "meta",
    "prognosis",
    "response",
    "schema",
    "simulate",
    "subgroups",
    "subsets",
    "summary",
    "survival",
    "validate",
    "wording",
)

__all__ = ["AnalysisError", "CohortError", "__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'her2er_dash' has no attribute {name!r}")
