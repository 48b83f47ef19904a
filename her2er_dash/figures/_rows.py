"""Text columns beside a row figure (forest plots, published estimates), laid out in pixels.

A forest plot is a table whose middle column is a plot. The text columns live in the figure's
margins as annotations placed in pixels from the plot's edges, each as wide as its widest cell,
so that they can never overlap each other or the plot, whatever the figure's width: the plot
takes what is left. Long labels are cut with an ellipsis and keep their full text in the hover.

For phones (``narrow``) the same rows are stacked: each row's label (with the small numbers of
the side columns appended) is written on a line of its own above its interval, and only the
estimate stays in a column on the right, so nothing needs more width than a phone has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._style import LINE_HEIGHT, TEXT_COLOR, font_px, text_px, truncate

#: Labels longer than this (characters) are cut, with the full text in the hover.
LABEL_CHARS = 30
#: In the stacked (phone) layout a label line (label and appended numbers) keeps to this many
#: characters, about the width of a phone screen.
NARROW_LINE_CHARS = 40
#: Gap between two text columns (px).
COLUMN_GAP = 14


@dataclass(frozen=True)
class Labels:
    """The row labels: plain text (user text, escaped when drawn), bold and indented rows."""

    header: str
    texts: Sequence[str]
    bold: Sequence[bool] | None = None
    indent: Sequence[bool] | None = None
    colors: Sequence[str] | None = None

    def cells(self, limit: int) -> tuple[list[str], list[str | None]]:
        """(cell markup, hover) per row, each label cut to ``limit`` characters."""
        cells, hovers = [], []
        for i, text in enumerate(self.texts):
            short = truncate(text, limit)
            cell = escape(short)
            if self.bold is not None and self.bold[i]:
                cell = f"<b>{cell}</b>"
            if self.indent is not None and self.indent[i]:
                cell = "\u2003" + cell
            cells.append(cell)
            hovers.append(escape(text) if short != str(text) else None)
        return cells, hovers


@dataclass(frozen=True)
class Column:
    """One text column: a header and one cell per row (markup; user text already escaped)."""

    header: str
    cells: Sequence[str]
    align: str = "left"  # "left" or "right"
    colors: Sequence[str] | None = None
    #: In the stacked layout, the cell is appended to its row's label after this prefix (an empty
    #: prefix puts the header in the label header instead); None keeps it as the column.
    inline: str | None = None


def escape(text: str) -> str:
    """User-supplied text shown literally (plotly renders a subset of HTML in text)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def row_px(presenter: bool, narrow: bool = False) -> int:
    """Height of one row (px): a line of text, or in the stacked layout a label above a line."""
    size = font_px(presenter)
    return round(size * (2.9 if narrow else 1.85))


def axis_block_px(presenter: bool) -> int:
    """Bottom margin for an x axis with tick labels and a title (px)."""
    size = font_px(presenter)
    return round(5 + 2 * size * LINE_HEIGHT + 8 + 12)


def _width(header: str, cells: Sequence[str], size: int) -> float:
    return max([text_px(header, size, bold=True), *(text_px(c, size, bold="<b>" in c) for c in cells)])


def side_columns(labels: Labels, right: Sequence[Column], y: np.ndarray, presenter: bool, *,
                 header_y: float = 1.0) -> tuple[list[dict], int, int]:  # fmt: skip
    """Annotations of the label column (left margin) and the ``right`` columns (right margin).

    Returns (annotations, left margin, right margin) in px. Cells are named "column: <header>",
    headers "column header: <header>"; a right-aligned column's cells end at its right edge.
    """
    size = font_px(presenter)
    annotations: list[dict] = []
    cells, hovers = labels.cells(LABEL_CHARS)
    margin_l = round(_width(labels.header, cells, size) + 2 * 8)
    _add_column(annotations, labels.header, cells, y, size, header_y, colors=labels.colors,
                hovers=hovers, x=0.0, anchor="left", shift=-(margin_l - 8))  # fmt: skip
    offset = COLUMN_GAP
    for column in right:
        width = _width(column.header, column.cells, size)
        right_aligned = column.align == "right"
        _add_column(annotations, column.header, column.cells, y, size, header_y,
                    colors=column.colors, x=1.0, anchor="right" if right_aligned else "left",
                    shift=round(offset + width if right_aligned else offset))  # fmt: skip
        offset += width + COLUMN_GAP
    return annotations, margin_l, round(offset)


def stacked_columns(labels: Labels, right: Sequence[Column], y: np.ndarray, presenter: bool, *,
                    header_y: float = 1.0) -> tuple[list[dict], int, int]:  # fmt: skip
    """The phone layout: each label on a line above its row, followed by the cells of the
    columns with ``inline`` prefixes ("Grade · p interaction 0.61"); the first column without one
    stays a column on the right. Returns (annotations, left margin, right margin) in px.

    The label line sits half a line above the row's centre, so it cannot touch the row's estimate
    (centred on the row) nor the row above: it may therefore run on over the column's width.
    """
    size = font_px(presenter)
    annotations: list[dict] = []
    inline = [c for c in right if c.inline is not None]
    kept = [c for c in right if c.inline is None][:1]
    lines, hovers = [], []
    for i, text in enumerate(labels.texts):
        extra = [f"{c.inline}{c.cells[i]}" for c in inline if c.cells[i]]
        room = max(12, NARROW_LINE_CHARS - sum(len(_plain(e)) + 3 for e in extra))
        short = truncate(text, room)
        cell = escape(short)
        if labels.bold is not None and labels.bold[i]:
            cell = f"<b>{cell}</b>"
        lines.append(" · ".join([cell, *extra]))
        hovers.append(escape(text) if short != str(text) else None)
    header = " · ".join([labels.header, *(c.header for c in inline if c.inline == "")])
    lift = round(size * LINE_HEIGHT / 2 + 3)
    _add_column(annotations, header, lines, y, size, header_y, colors=labels.colors,
                hovers=hovers, x=0.0, anchor="left", shift=0, yanchor="bottom", yshift=lift)  # fmt: skip
    margin_r = COLUMN_GAP
    for column in kept:
        width = _width(column.header, column.cells, size)
        _add_column(annotations, column.header, column.cells, y, size, header_y,
                    colors=column.colors, x=1.0, anchor="right", shift=round(COLUMN_GAP + width))  # fmt: skip
        margin_r = round(2 * COLUMN_GAP + width)
    return annotations, 8, margin_r


def _plain(markup: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", markup)


def _add_column(annotations: list[dict], header: str, cells: Sequence[str], y: np.ndarray,
                size: int, header_y: float, *, x: float, anchor: str, shift: int,
                colors: Sequence[str] | None = None, hovers: Sequence[str | None] | None = None,
                yanchor: str = "middle", yshift: int = 0) -> None:  # fmt: skip
    common = {"x": x, "xref": "paper", "xanchor": anchor, "xshift": shift, "yref": "y",
              "showarrow": False, "align": anchor}  # fmt: skip
    annotations.append({**common, "name": f"column header: {header}", "text": f"<b>{header}</b>",
                        "y": header_y, "yanchor": yanchor, "yshift": yshift,
                        "font": {"size": size, "color": TEXT_COLOR}})  # fmt: skip
    for i, (cell, row) in enumerate(zip(cells, y, strict=True)):
        if not cell:
            continue
        hover = hovers[i] if hovers is not None else None
        color = colors[i] if colors is not None else TEXT_COLOR
        annotations.append({**common, "name": f"column: {header}", "text": cell, "y": float(row),
                            "yanchor": yanchor, "yshift": yshift,
                            "font": {"size": size, "color": color},
                            **({"hovertext": hover} if hover else {})})  # fmt: skip
