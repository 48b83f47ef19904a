"""Plotly figures built from result tables.

Every builder reads the tables of an analysis result (never the patient data) and draws exactly
their numbers, so a figure and the table shown beside it cannot disagree. Builders share the
keywords ``title``, ``presenter`` (every text larger by :data:`PRESENTER_SCALE`, the factor the
app's CSS applies to the page, and thicker lines, for projectors) and ``watermark`` (a faint label
such as "SYNTHETIC" across the plot, sized to fit an exported image). Forest-type figures also take
``narrow``: a stacked layout for phone screens. Each figure is built in one ``go.Figure(data,
layout)`` construction with a small house template (see ``_style``), which is several times
cheaper than step-by-step ``update_layout`` calls on plotly's built-in templates.

Colours come from the Okabe–Ito palette, which stays distinguishable with the common forms of
colour-vision deficiency; :func:`group_colors` gives each level name the same colour on every page.

``plotly.graph_objects`` is imported inside the builders so that importing this module is cheap.
"""

from __future__ import annotations

from ._style import BASE_FONT_PX, GREY, OKABE_ITO, PRESENTER_SCALE, font_px, group_colors
from .adjusted import BALANCE_THRESHOLD, adjusted_figure, balance_figure
from .competing import cif_figure
from .flow import flow_figure
from .forest import forest_figure, heterogeneity_text, interaction_test_count, meta_forest_figure
from .km import STEP_TOLERANCE, km_figure, thin_steps
from .meta import funnel_figure, leave_one_out_figure
from .published import prognosis_figure, published_figure
from .response import dose_response_figure, rates_figure
from .subsets import slopes_figure, subtype_rates_figure, surface_figure

__all__ = [
    "BALANCE_THRESHOLD",
    "BASE_FONT_PX",
    "PRESENTER_SCALE",
    "GREY",
    "OKABE_ITO",
    "STEP_TOLERANCE",
    "adjusted_figure",
    "balance_figure",
    "cif_figure",
    "dose_response_figure",
    "flow_figure",
    "font_px",
    "forest_figure",
    "funnel_figure",
    "group_colors",
    "heterogeneity_text",
    "interaction_test_count",
    "km_figure",
    "leave_one_out_figure",
    "meta_forest_figure",
    "prognosis_figure",
    "published_figure",
    "rates_figure",
    "slopes_figure",
    "subtype_rates_figure",
    "surface_figure",
    "thin_steps",
]
