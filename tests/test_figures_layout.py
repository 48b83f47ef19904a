"""Figure layouts for slides, phones and papers (issue 16), checked on the built figures.

Presenter mode scales every text of a figure by one factor; forest text columns never overlap each
other or the plot; the numbers-at-risk table sits below the KM axis title; long group names are cut
(full text in the hover) instead of squeezing the plot; the grouped pCR legend is a row above the
plot; the SYNTHETIC watermark fits an exported image; the stacked layouts for phones fit their
width. Pixel estimates use ``_style.text_px``, an upper bound of Arial's widths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import export, figures
from her2er_dash.figures._style import BASE_FONT_PX, PRESENTER_SCALE, text_px
from tests.test_figures import FOREST, KM_TABLE, RATES, _builders, _meta_result

LONG_ARM = "Paclitaxel + trastuzumab + pertuzumab, then doxorubicin + cyclophosphamide"


def _text_sizes(fig) -> list[float]:
    """Every explicit text size of a figure except the watermark (which has its own rule)."""
    layout = fig.layout
    sizes = [layout.font.size, layout.legend.font.size, layout.hoverlabel.font.size]
    for key in ("xaxis", "yaxis"):
        axis = layout[key]
        sizes += [axis.tickfont.size, axis.title.font.size]
    sizes += [a.font.size for a in layout.annotations if a.name != "watermark"]
    return [s for s in sizes if s is not None]


@pytest.mark.parametrize("name", ["km", "rates", "dose", "forest", "meta", "flow"])
def test_presenter_mode_scales_every_text_by_one_factor(name):
    normal, big = _builders()[name](), _builders()[name](presenter=True)
    for key in ("xaxis", "yaxis"):  # ticks and axis titles: set on every axis, not left to plotly
        assert normal.layout[key].tickfont.size == BASE_FONT_PX
        assert big.layout[key].tickfont.size == round(BASE_FONT_PX * PRESENTER_SCALE)
        assert big.layout[key].title.font.size == round(BASE_FONT_PX * PRESENTER_SCALE)
    small, large = _text_sizes(normal), _text_sizes(big)
    assert len(small) == len(large)
    for a, b in zip(small, large, strict=True):
        assert b == pytest.approx(a * PRESENTER_SCALE, abs=1), (name, small, large)
    assert big.layout.legend.font.size == big.layout.xaxis.tickfont.size  # legends with the ticks


def test_figure_titles_are_larger_than_their_text_in_both_modes():
    for presenter in (False, True):
        fig = figures.km_figure(KM_TABLE, title="Event-free survival", presenter=presenter)
        assert fig.layout.title.font.size > fig.layout.xaxis.tickfont.size


def _columns(fig) -> dict[str, list]:
    out: dict[str, list] = {}
    for a in fig.layout.annotations:
        if a.name and a.name.startswith("column"):
            out.setdefault(a.name.split(": ", 1)[1], []).append(a)
    return out


def _extent(annotation, size: float) -> tuple[float, float]:
    """Horizontal pixel extent of a margin annotation (x = 0 or 1 of the plot, shifted)."""
    width = text_px(annotation.text, size, bold="<b>" in annotation.text)
    start = annotation.xshift - (width if annotation.xanchor == "right" else 0)
    return start, start + width


@pytest.mark.parametrize("presenter", [False, True])
@pytest.mark.parametrize("build", ["forest", "meta", "published", "prognosis"])
def test_forest_text_columns_never_overlap_each_other_or_the_plot(build, presenter):
    from her2er_dash import datasets, evidence

    fig = {
        "forest": lambda: figures.forest_figure(FOREST, presenter=presenter),
        "meta": lambda: figures.meta_forest_figure(_meta_result(), presenter=presenter),
        "published": lambda: figures.published_figure(datasets.published_trials(), presenter=presenter),
        "prognosis": lambda: figures.prognosis_figure(
            evidence.prognosis_rows(datasets.published_prognosis()), presenter=presenter
        ),
    }[build]()
    size = fig.layout.font.size
    margin = fig.layout.margin
    left, right = [], []
    for header, cells in _columns(fig).items():
        spans = [_extent(a, size) for a in cells]
        side = right if cells[0].x == 1 else left
        side.append((min(s for s, _ in spans), max(e for _, e in spans), header))
    # Left columns end before the plot (x shift <= 0) and start inside the figure.
    for start, end, header in left:
        assert end <= 0.5, (header, start, end)
        assert start >= -margin.l - 0.5, (header, start, margin.l)
    # Right columns start after the plot, end inside the margin, and are disjoint.
    right.sort()
    for start, end, header in right:
        assert start >= 0, (header, start)
        assert end <= margin.r + 0.5, (header, end, margin.r)
    for (_, end, first), (start, _, second) in zip(right, right[1:], strict=False):
        assert end <= start, (first, second, end, start)


def test_long_forest_labels_are_cut_with_the_full_text_in_the_hover():
    table = FOREST.assign(level=FOREST["level"].replace("negative", LONG_ARM))
    fig = figures.forest_figure(table)
    cut = [a for a in fig.layout.annotations if a.name == "column: Subgroup" and "…" in a.text]
    assert len(cut) == 1
    assert cut[0].hovertext == LONG_ARM
    assert fig.layout.margin.l < 300  # the label column does not take the plot's room


def test_the_narrow_forest_fits_a_phone():
    for presenter in (False, True):
        fig = figures.forest_figure(FOREST, narrow=True, presenter=presenter)
        lines = [a for a in fig.layout.annotations if a.name and a.name.startswith("column")]
        size = fig.layout.font.size
        # A 390 px phone gives the figure about 358 px: labels and the right column fit in it.
        widest_label = max(text_px(a.text, size) for a in lines if a.x == 0)
        assert widest_label <= 358 * (1.25 if presenter else 1.0)
        # ... and the interval column keeps at least 150 px beside them.
        assert 358 - fig.layout.margin.l - fig.layout.margin.r >= 150


def test_km_numbers_at_risk_sit_below_the_axis_title():
    from her2er_dash.figures.km import AXIS_STANDOFF

    for presenter in (False, True):
        fig = figures.km_figure(KM_TABLE, presenter=presenter)
        size = fig.layout.font.size
        # Below the plot: tick marks (5), tick labels and title (a line each) and the standoff.
        axis_block = 5 + 2 * size + AXIS_STANDOFF
        counts = [a for a in fig.layout.annotations if a.name and a.name.endswith(" at risk")]
        header = next(a for a in fig.layout.annotations if a.name == "at-risk header")
        assert -header.yshift >= axis_block
        assert min(-a.yshift for a in counts) >= -header.yshift + size
        # Every row fits in the bottom margin.
        assert max(-a.yshift for a in counts) + size <= fig.layout.margin.b


def test_long_arm_names_do_not_squeeze_the_km_plot():
    short = figures.km_figure(KM_TABLE)
    table = KM_TABLE.assign(group=KM_TABLE["group"].replace("ER-negative", LONG_ARM))
    long = figures.km_figure(table)
    assert long.layout.margin.l - short.layout.margin.l < 80
    labels = [a for a in long.layout.annotations if a.name == "at-risk label"]
    assert any(a.hovertext == LONG_ARM for a in labels)
    curve = next(t for t in long.data if t.legendgroup == LONG_ARM and t.mode == "lines"
                 and t.showlegend is not False)  # fmt: skip
    assert len(curve.name) <= 40
    assert LONG_ARM in curve.hovertemplate


def test_grouped_pcr_legend_is_a_row_above_the_plot_and_labels_readable():
    two_arms = pd.concat([RATES.assign(arm="A"), RATES.assign(arm="B")], ignore_index=True)
    for presenter in (False, True):
        fig = figures.rates_figure(two_arms, x="er_category", color="arm", presenter=presenter)
        assert fig.layout.legend.orientation == "h"
        assert fig.layout.legend.y >= 1
        bars = [t for t in fig.data if t.type == "bar"]
        assert all(t.insidetextfont.size == fig.layout.xaxis.tickfont.size for t in bars)
        # Labels that cannot be drawn at a readable size are hidden, never shrunk.
        assert fig.layout.uniformtext.mode == "hide"
        assert fig.layout.uniformtext.minsize >= 0.8 * fig.layout.xaxis.tickfont.size


@pytest.mark.parametrize("name", ["km", "rates", "dose", "forest", "meta", "flow"])
def test_the_watermark_fits_an_exported_image(name):
    width = export.EXPORT_LAYOUT_PX[0]
    for presenter in (False, True):
        fig = _builders()[name](watermark="SYNTHETIC DATA", presenter=presenter)
        mark = next(a for a in fig.layout.annotations if a.name == "watermark")
        plot_width = width - (fig.layout.margin.l or 80) - (fig.layout.margin.r or 80)  # plotly's default
        # Rotated by 20°: its horizontal extent is about cos(20°) of its length.
        extent = text_px(mark.text, mark.font.size) * np.cos(np.radians(20))
        assert extent <= max(plot_width, 0.6 * width), (name, presenter, extent, plot_width)
        assert (mark.x, mark.y, mark.xref, mark.yref) == (0.5, 0.5, "paper", "paper")


def test_exports_keep_the_figure_content_and_size():
    fig = figures.km_figure(KM_TABLE, watermark="SYNTHETIC DATA")
    html = export.figure_html(fig).decode("utf-8")
    assert "SYNTHETIC DATA" in html
    assert "Number at risk" in html
    options = export.image_options(fig, image_format="svg")
    assert (options["width"], options["height"]) == export.EXPORT_LAYOUT_PX
