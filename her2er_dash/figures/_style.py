"""Colours, shared layout and number formatting for every figure."""

from __future__ import annotations

import functools
import math
import re
import textwrap
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go


#: The Okabe–Ito palette (Okabe & Ito 2008), by name.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
GREY = "#999999"

#: Order in which unknown levels are hashed into the palette. Yellow is last because thin yellow
#: lines are hard to see on white; black is kept for "All"/"Overall".
_HASH_PALETTE: tuple[str, ...] = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["black"],
    OKABE_ITO["yellow"],
)

#: Fixed colours for names met across the dashboard (keys are normalised, see ``_norm``).
_FIXED_COLORS: dict[str, str] = {
    "all": OKABE_ITO["black"],
    "all patients": OKABE_ITO["black"],
    "overall": OKABE_ITO["black"],
    "er-negative": OKABE_ITO["vermillion"],
    "er-low": OKABE_ITO["orange"],
    "er-positive": OKABE_ITO["blue"],
    "er-": OKABE_ITO["vermillion"],
    "er+": OKABE_ITO["blue"],
    "negative": OKABE_ITO["vermillion"],
    "positive": OKABE_ITO["blue"],
    "hr-negative": OKABE_ITO["vermillion"],
    "hr-positive": OKABE_ITO["blue"],
    "her2-positive": OKABE_ITO["reddish_purple"],
    "her2-low": OKABE_ITO["sky_blue"],
    "her2-zero": OKABE_ITO["bluish_green"],
    "chemo + trastuzumab": OKABE_ITO["bluish_green"],
    "chemo + trastuzumab + pertuzumab": OKABE_ITO["reddish_purple"],
    "trastuzumab + pertuzumab (no chemo)": OKABE_ITO["sky_blue"],
    "trastuzumab + pertuzumab + endocrine (no chemo)": OKABE_ITO["orange"],
    "chemotherapy alone (her2-negative)": GREY,
    "hormone therapy": OKABE_ITO["bluish_green"],
    "no hormone therapy": OKABE_ITO["orange"],
    "pcr": OKABE_ITO["bluish_green"],
    "no pcr": OKABE_ITO["vermillion"],
    "missing": GREY,
    "unknown": GREY,
}


def _norm(name: str) -> str:
    # Unicode minus and en dash are common in labels ("ER−"); compare names without them.
    text = unicodedata.normalize("NFKC", str(name)).replace("\u2212", "-").replace("\u2013", "-")
    return " ".join(text.lower().split())


def _hashed_start(name: str) -> int:
    # crc32, not hash(): Python's str hash is salted per process, colours must not be.
    return zlib.crc32(_norm(name).encode("utf-8")) % len(_HASH_PALETTE)


def group_colors(levels: Iterable) -> dict[str, str]:
    """A colour per level name, independent of the order of ``levels``.

    Known names ("ER-negative", "ER-low", "ER-positive", "positive", "negative", the bundled
    trial arms, "All"...) always get their fixed colour. Other names are hashed into the
    Okabe–Ito palette; when two names of the same figure would share a colour, the one later in
    alphabetical order moves to the next free colour (so the result depends on the set of levels,
    never on their order). Beyond eight levels colours repeat.

    Returns a dict keyed by ``str(level)``.
    """
    names = sorted({"Missing" if _is_missing(v) else str(v) for v in levels})
    colors: dict[str, str] = {}
    used: set[str] = set()
    deferred = []
    for name in names:
        fixed = _FIXED_COLORS.get(_norm(name))
        if fixed is not None and fixed not in used:
            colors[name] = fixed
            used.add(fixed)
        else:
            deferred.append(name)
    for name in deferred:
        start = _hashed_start(name)
        order = [_HASH_PALETTE[(start + i) % len(_HASH_PALETTE)] for i in range(len(_HASH_PALETTE))]
        free = [c for c in order if c not in used]
        colors[name] = free[0] if free else order[0]
        used.add(colors[name])
    return colors


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# ---------------------------------------------------------------------------------------------
# Shared layout: one text size, scaled by one factor in presenter mode
# ---------------------------------------------------------------------------------------------

FONT_FAMILY = "Arial, Helvetica, sans-serif"
#: Text of figures at normal size (px): tick labels, axis titles, legends, table cells.
BASE_FONT_PX = 14
#: Presenter mode scales every text of the page (``ui``'s page CSS) and of the figures by this
#: one factor, so that headings, body text, tables and figure text keep their proportions.
PRESENTER_SCALE = 1.4
#: The SYNTHETIC watermark's size (px). Fixed, not scaled: it must fit inside the exported image
#: (700 px wide at scale 3, see ``export.image_options``) in presenter mode too.
WATERMARK_FONT_PX = 40
#: ... and in the stacked layouts for phones, whose plot is narrower.
NARROW_WATERMARK_FONT_PX = 26
TEXT_COLOR = "#222222"
MUTED_COLOR = "#555555"
GRID_COLOR = "#E3E7ED"
AXIS_COLOR = "#555555"


def text_scale(presenter: bool) -> float:
    """The factor applied to every text size: :data:`PRESENTER_SCALE` in presenter mode, else 1."""
    return PRESENTER_SCALE if presenter else 1.0


def font_px(presenter: bool, relative: float = 1.0) -> int:
    """A text size in px: ``relative`` × :data:`BASE_FONT_PX`, scaled for presenter mode."""
    return round(BASE_FONT_PX * relative * text_scale(presenter))


_FONT = {p: font_px(p) for p in (False, True)}
_LINE = {p: 2.0 * text_scale(p) for p in (False, True)}
_MARKER = {p: 8.0 * text_scale(p) for p in (False, True)}

#: Plotly's line height for multi-line text (em).
LINE_HEIGHT = 1.3
_AXIS_KEY = re.compile(r"^[xy]axis\d*$")


def text_px(text: str, size: float, *, bold: bool = False) -> float:
    """Width (px) of ``text`` (markup ignored) at ``size`` px in Arial, from per-character widths.

    An upper estimate (used to give text columns room): digits, most letters and punctuation are
    at most 0.61 em wide in Arial (0.67 em bold); wide letters (m, w, M, W) and dashes are counted
    as 0.85 em.
    """
    plain = re.sub(r"<[^>]+>", "", str(text)).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    wide = sum(c in "mwMW—…%@" for c in plain)
    narrow = sum(c in " .,:;|!il'()[]/-" for c in plain)
    other = len(plain) - wide - narrow
    em = 0.85 * wide + 0.34 * narrow + (0.67 if bold else 0.61) * other
    return em * size


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (whole when it fits)."""
    text = str(text)
    return text if len(text) <= limit else text[: max(limit - 1, 1)].rstrip() + "…"


@functools.cache
def _template():
    """The house template, built once: white background, light grid, axis lines."""
    import plotly.graph_objects as go

    axis = {
        "gridcolor": GRID_COLOR,
        "linecolor": AXIS_COLOR,
        "showline": True,
        "ticks": "outside",
        "tickcolor": AXIS_COLOR,
        "ticklen": 5,
        "zeroline": False,
        "automargin": True,
        "title": {"standoff": 8},
    }
    return go.layout.Template(
        layout={
            "font": {"family": FONT_FAMILY, "color": TEXT_COLOR},
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "colorway": list(_HASH_PALETTE),
            "hoverlabel": {"align": "left"},
            "xaxis": axis,
            "yaxis": axis,
        }
    )


def house_layout(
    layout: dict,
    *,
    title: str | None,
    presenter: bool,
    watermark: str | None,
    height: int | None = None,
    axes: Iterable[str] = ("xaxis", "yaxis"),
    narrow: bool = False,
) -> dict:
    """``layout`` completed with the house style: every text size from :func:`font_px`.

    Sets the global font, hover labels, legend, the title, the tick labels and title of every
    axis named in ``layout`` or ``axes``, and the size of annotations that have none, so that
    presenter mode scales all of them by the same factor (and Streamlit's theme cannot replace
    them). Adds the watermark as a last annotation named "watermark".
    """
    size = font_px(presenter)
    out = dict(layout)
    out["template"] = _template()
    out["font"] = {"family": FONT_FAMILY, "color": TEXT_COLOR, **out.get("font", {}), "size": size}
    out["hoverlabel"] = {"font": {"size": size}, **out.get("hoverlabel", {})}
    legend = dict(out.get("legend", {}))
    legend["font"] = {**legend.get("font", {}), "size": size}
    if "title" in legend:
        legend["title"] = {**legend["title"], "font": {"size": size}}
    out["legend"] = legend
    for key in {*axes, *(k for k in out if _AXIS_KEY.match(k))}:
        axis = dict(out.get(key, {}))
        axis["tickfont"] = {**axis.get("tickfont", {}), "size": size}
        axis_title = axis.get("title", {})
        axis_title = {"text": axis_title} if isinstance(axis_title, str) else dict(axis_title)
        axis_title["font"] = {**axis_title.get("font", {}), "size": size}
        axis["title"] = axis_title
        out[key] = axis
    if title:
        # At the top of the figure (legends above the plot sit between it and the plot). A second
        # line ("…<br><sup>caption</sup>") becomes plotly's subtitle: a multi-line title anchored
        # at the top is cut by plotly.js, a subtitle is not.
        main, sub = _split_title(title, narrow)
        out["title"] = {"text": main, "x": 0.0, "xanchor": "left", "xref": "container",
                        "y": 1.0, "yref": "container", "yanchor": "top", "pad": {"t": 8, "l": 8},
                        "font": {"size": font_px(presenter, 1.3)}}
        if sub:
            out["title"]["subtitle"] = {"text": "<br>".join(sub),
                                        "font": {"size": font_px(presenter, 0.9), "color": MUTED_COLOR}}
    if height is not None:
        out["height"] = int(height)
    annotations = [
        {**a, "font": {**a.get("font", {}), "size": a.get("font", {}).get("size", size)}}
        for a in out.get("annotations", ())
    ]
    if watermark:
        annotations.append(watermark_annotation(watermark, NARROW_WATERMARK_FONT_PX if narrow
                                                else WATERMARK_FONT_PX))
    if annotations:
        out["annotations"] = annotations
    return out


#: Subtitles are wrapped at this many characters (fewer in the narrow layouts for phones).
SUBTITLE_CHARS = {False: 110, True: 46}


def _split_title(title: str, narrow: bool = False) -> tuple[str, list[str]]:
    """(main title, subtitle lines): the text after the first ``<br>`` (``<sup>`` dropped),
    wrapped."""
    main, _, sub = str(title).partition("<br>")
    sub = re.sub(r"</?sup>", "", sub).replace("<br>", " ").strip()
    return main, textwrap.wrap(sub, SUBTITLE_CHARS[narrow]) if sub else []


def title_px(title: str | None, presenter: bool, narrow: bool = False) -> int:
    """Height (px) that a figure title (and its subtitle, after a ``<br>``) takes at the top."""
    if not title:
        return 0
    _, sub = _split_title(title, narrow)
    height = 8 + font_px(presenter, 1.3) * LINE_HEIGHT + 6
    if sub:
        height += 10 + len(sub) * font_px(presenter, 0.9) * LINE_HEIGHT
    return round(height)


def legend_px(presenter: bool, names: Sequence[str] = ("",), *, width: float = 520) -> int:
    """Height (px) of a horizontal legend of ``names`` over a plot ``width`` px wide (rows
    wrap like plotly's: each item is its text plus a 40 px symbol and gap)."""
    size = font_px(presenter)
    rows, used = 1, 0.0
    for name in names:
        item = text_px(name, size) + 40 + size
        if used and used + item > width:
            rows, used = rows + 1, 0.0
        used += item
    return round(size * 1.6 * rows + 6)


def watermark_annotation(text: str, size: int = WATERMARK_FONT_PX) -> dict:
    """A faint label across the middle of the plot, sized to fit an exported image."""
    return {
        "text": text,
        "name": "watermark",
        "xref": "paper",
        "yref": "paper",
        "x": 0.5,
        "y": 0.5,
        "showarrow": False,
        "textangle": -20,
        "font": {"size": size, "color": "rgba(0,0,0,0.10)"},
    }


def _compose(
    traces: Sequence,
    layout: dict,
    *,
    title: str | None,
    presenter: bool,
    watermark: str | None,
    height: int | None = None,
    narrow: bool = False,
) -> go.Figure:
    """The figure in one construction: traces and the complete layout validated once.

    Building figures with repeated ``update_layout``/``add_annotation`` calls re-parses property
    paths and re-copies the template each time (half of a Survival render before this; see
    ``benchmarks/README.md``); a single ``go.Figure(data, layout)`` validates everything once.
    """
    import plotly.graph_objects as go

    full = house_layout(layout, title=title, presenter=presenter, watermark=watermark, height=height,
                        narrow=narrow)
    return go.Figure(data=list(traces), layout=full)


def _new_figure() -> go.Figure:
    import plotly.graph_objects as go

    return go.Figure()


def _finish(
    fig: go.Figure,
    *,
    title: str | None,
    presenter: bool,
    watermark: str | None,
    height: int | None = None,
) -> go.Figure:
    """Apply the house layout (:func:`house_layout`) to a figure built step by step, in one update."""
    present = [k for k in fig.layout.to_plotly_json() if _AXIS_KEY.match(k)]
    layout = {"annotations": [a.to_plotly_json() for a in fig.layout.annotations]}
    fig.update_layout(
        house_layout(layout, title=title, presenter=presenter, watermark=watermark, height=height,
                     axes=present or ("xaxis", "yaxis"))  # fmt: skip
    )
    return fig


def _fmt_count(value) -> str:
    return "" if _is_missing(value) else f"{int(value):,}"


def _fmt_ratio(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.2f}" if 0.01 <= abs(value) < 100 else f"{value:.2g}"


def _fmt_p(value) -> str:
    if value is None or _is_missing(value) or not np.isfinite(value):
        return ""
    if value < 0.001:
        return "<0.001"
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    from ..errors import AnalysisError

    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise AnalysisError(
            f"The {what} table lacks column(s) {', '.join(missing)}: pass the table returned by "
            "the matching her2er_dash analysis."
        )


def _table_of(result, attribute: str) -> pd.DataFrame:
    """``result`` itself when it is a DataFrame, else its ``attribute`` table."""
    return result if isinstance(result, pd.DataFrame) else getattr(result, attribute)


