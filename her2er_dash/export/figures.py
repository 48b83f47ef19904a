"""Figure files: the camera button's export size, self-contained HTML and PNG/SVG bytes."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from collections.abc import Iterable

#: Exported images: 7 × 5 inches (a journal's double column) at 300 dpi = 2100 × 1500 px. The
#: figure is laid out 700 × 500 CSS px and rasterised at scale 3, so its text keeps the size it
#: has on screen relative to the figure (14 px → 10 pt at 300 dpi).
EXPORT_INCHES = (7.0, 5.0)
EXPORT_DPI = 300
EXPORT_SCALE = 3
EXPORT_LAYOUT_PX = (round(EXPORT_INCHES[0] * EXPORT_DPI / EXPORT_SCALE),
                    round(EXPORT_INCHES[1] * EXPORT_DPI / EXPORT_SCALE))  # fmt: skip
#: Figures drawn taller than this on screen (forest plots with many rows) keep their height in
#: the export (at the same 7 in width) instead of being squeezed into 5 in.
EXPORT_TALL_PX = 640

#: Plotly ``config`` for every chart: the camera button saves a PNG of 2100 × 1500 px.
PLOTLY_CONFIG: dict = {
    "displaylogo": False,
    "toImageButtonOptions": {
        "format": "png",
        "filename": "her2er_figure",
        "width": EXPORT_LAYOUT_PX[0],
        "height": EXPORT_LAYOUT_PX[1],
        "scale": EXPORT_SCALE,
    },
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
}

# ---------------------------------------------------------------------------------------------
# Figure files
# ---------------------------------------------------------------------------------------------


def image_options(fig=None, *, image_format: str = "png", filename: str = "her2er_figure") -> dict:
    """Plotly's ``toImageButtonOptions`` for ``fig``: 7 × 5 in at 300 dpi (2100 × 1500 px for
    PNG; SVG is vector, laid out at the same 700 × 500 px); a figure drawn taller than
    :data:`EXPORT_TALL_PX` keeps its height, at the same width and scale."""
    if image_format not in ("png", "svg"):
        raise ValueError(f"image_format must be 'png' or 'svg', not {image_format!r}")
    width, height = EXPORT_LAYOUT_PX
    drawn = getattr(getattr(fig, "layout", None), "height", None)
    if drawn is not None and drawn > EXPORT_TALL_PX:
        height = int(drawn)
    return {"format": image_format, "filename": filename, "width": width, "height": height,
            "scale": EXPORT_SCALE}  # fmt: skip


def plotly_config(fig=None, *, filename: str = "her2er_figure", image_format: str = "png") -> dict:
    """:data:`PLOTLY_CONFIG` with the camera button's options for ``fig`` (:func:`image_options`)."""
    return {**PLOTLY_CONFIG,
            "toImageButtonOptions": image_options(fig, image_format=image_format, filename=filename)}


def figure_html(fig, config: dict | None = None) -> bytes:
    """The figure as a self-contained HTML page (plotly.js included, works offline), with the
    same camera-button options as in the app (``config``, default :func:`plotly_config`)."""
    html = fig.to_html(include_plotlyjs=True, full_html=True, config=config or plotly_config(fig))
    return html.encode("utf-8")


_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def _static_export_available(browsers: Iterable[str] = _BROWSERS) -> bool:
    if importlib.util.find_spec("kaleido") is None:
        return False
    return any(shutil.which(name) for name in browsers)


def figure_image(fig, fmt: str = "png") -> bytes | None:
    """PNG or SVG bytes via kaleido, or None when kaleido or a browser for it is unavailable.

    When None, the app relies on plotly's own camera button (see :data:`PLOTLY_CONFIG`).
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt must be 'png' or 'svg', not {fmt!r}")
    if not _static_export_available():
        return None
    try:
        options = image_options(fig, image_format=fmt)
        return fig.to_image(format=fmt, width=options["width"], height=options["height"],
                            scale=options["scale"] if fmt == "png" else 1)
    except Exception:  # kaleido failures (no display, browser crash) mean "not available here"
        return None
