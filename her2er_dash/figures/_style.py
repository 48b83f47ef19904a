"""Colours, shared layout and number formatting for every figure."""

from __future__ import annotations

import math
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
# Shared layout
# ---------------------------------------------------------------------------------------------

_FONT = {False: 13, True: 20}
_LINE = {False: 2.0, True: 4.0}
_MARKER = {False: 8, True: 13}


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
    """Apply the house layout: white template, font size, title and optional watermark."""
    size = _FONT[presenter]
    fig.update_layout(
        template="plotly_white",
        font={"size": size, "family": "Arial, Helvetica, sans-serif"},
        hoverlabel={"font_size": size},
        legend={"font": {"size": size}},
    )
    if title:
        fig.update_layout(
            title={"text": title, "x": 0.0, "xanchor": "left", "font": {"size": size + 4}}
        )
    if height is not None:
        fig.update_layout(height=height)
    if watermark:
        fig.add_annotation(
            text=watermark,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            showarrow=False,
            textangle=-20,
            font={"size": 3 * size + 20, "color": "rgba(0,0,0,0.10)"},
            name="watermark",
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


