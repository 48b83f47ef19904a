"""Downloads: safe CSV tables, a methods paragraph, a reproduction script and figure files.

Everything here turns what is on screen (described by a plain ``view`` dict, see
:func:`methods_text`) into files a researcher can keep: tables that are safe to open in a
spreadsheet (:mod:`.tables`), the methods text with references and software versions
(:mod:`.methods`, one sentence per analysis in :mod:`.sentences`, citations in
:mod:`.references`), a Python script that recomputes every table with ``her2er_dash`` alone
(:mod:`.script`) and figure files (:mod:`.figures`).
"""

from .figures import (
    EXPORT_DPI,
    EXPORT_INCHES,
    EXPORT_LAYOUT_PX,
    EXPORT_SCALE,
    EXPORT_TALL_PX,
    PLOTLY_CONFIG,
    figure_html,
    figure_image,
    image_options,
    plotly_config,
)
from .methods import derived_rules_sentence, methods_text, software_versions
from .references import REFERENCES, references
from .script import SCRIPT_NAME, repro_script
from .sentences import ANALYSIS_KINDS, SOFTWARE
from .tables import FORMULA_PREFIXES, SYNTHETIC_CSV_BANNER, safe_csv_bytes

__all__ = [
    "ANALYSIS_KINDS",
    "EXPORT_DPI",
    "EXPORT_INCHES",
    "EXPORT_LAYOUT_PX",
    "EXPORT_SCALE",
    "EXPORT_TALL_PX",
    "FORMULA_PREFIXES",
    "PLOTLY_CONFIG",
    "REFERENCES",
    "SCRIPT_NAME",
    "SOFTWARE",
    "SYNTHETIC_CSV_BANNER",
    "derived_rules_sentence",
    "figure_html",
    "figure_image",
    "image_options",
    "methods_text",
    "plotly_config",
    "references",
    "repro_script",
    "safe_csv_bytes",
    "software_versions",
]
