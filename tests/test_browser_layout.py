"""Layout in a real browser at the three screen sizes of issue 16, and the figure export.

A projector (1920 × 1080, presenter mode), a laptop (1366 × 768) and a phone (390 × 844): every
page with charts is opened from its URL (synthetic cohort, HER2-positive) and screenshotted (first screen and
whole page, ``test-artifacts/screenshots/<size>/``), and the page is checked where the issue found
it wanting: the first chart starts above the fold on the laptop, presenter mode scales headings,
body text and figure text by one factor, on the phone the stacked forest layout replaces the wide
one and no chart runs off the screen. The camera button of a figure saves a 7 × 5 in PNG at
300 dpi (2100 × 1500 px). Skips cleanly without Chromium or Playwright.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from her2er_dash.figures import BASE_FONT_PX, PRESENTER_SCALE
from tests import browser_utils as bu

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGE_TIMEOUT_MS = 120_000
#: Pages whose first chart must start above the fold on a 1366 × 768 laptop.
CHART_FIRST = ("Response", "Survival", "Subgroups")
CHECKED = ("Cohort", *CHART_FIRST)
FILTERS = "f_her2=positive"

LAYOUT_JS = """() => {
  const visible = sel => Array.from(document.querySelectorAll(sel)).filter(e => e.offsetParent !== null);
  const charts = visible('[data-testid="stPlotlyChart"]').map(e => e.getBoundingClientRect());
  const text = document.querySelector('[data-testid="stCaptionContainer"], [data-testid="stMarkdownContainer"] p');
  const tick = visible('[data-testid="stPlotlyChart"]').map(e => e.querySelector('.xtick text')).find(t => t);
  return {
    charts: charts.map(r => ({top: r.top, left: r.left, right: r.right})),
    width: window.innerWidth,
    h1: parseFloat(getComputedStyle(document.querySelector('h1')).fontSize),
    body: parseFloat(getComputedStyle(document.body).fontSize),
    text: text ? parseFloat(getComputedStyle(text).fontSize) : null,
    tick: tick ? parseFloat(getComputedStyle(tick).fontSize) : null,
    narrow: visible("[class*='st-key-fignarrow_']").length,
    wide: visible("[class*='st-key-figwide_']").length,
  };
}"""


def _pages():
    return [p for p in bu.app_pages() if p.path in CHECKED]


@pytest.mark.parametrize("size", list(bu.SCREEN_SIZES))
def test_pages_at_three_screen_sizes(server, browser, size):
    viewport, presenter = bu.SCREEN_SIZES[size]
    seen: dict[str, dict] = {}

    def check(page, target):
        page.wait_for_timeout(500)  # plotly lays the charts out after the run
        assert not bu.error_texts(page), f"{size} {target.path}: {bu.error_texts(page)}"
        seen[target.path] = layout = page.evaluate(LAYOUT_JS)
        assert layout["charts"], f"{size} {target.path}: no chart drawn"
        for chart in layout["charts"]:  # nothing runs off the screen, at any size
            assert chart["left"] >= 0, (size, target.path, chart)
            assert chart["right"] <= layout["width"] + 0.5, (size, target.path, chart)

    # One filter chosen, so that the Cohort page draws its flow (unfiltered, a sentence says it)
    written = bu.capture_pages(browser, server.url, size, pages=_pages(), timeout_ms=PAGE_TIMEOUT_MS,
                               check=check, filters=FILTERS)  # fmt: skip
    assert all(path.stat().st_size > 0 for path in written)
    assert set(seen) == set(CHECKED)

    for name, layout in seen.items():
        # Headings stay larger than body text (presenter mode scales both by one factor).
        assert layout["h1"] > 1.5 * layout["body"], (size, name, layout)
        scale = PRESENTER_SCALE if presenter else 1.0
        assert layout["body"] == pytest.approx(16 * scale, abs=0.5), (size, name, layout)
        # Figure text grows with the page's text.
        assert layout["tick"] == pytest.approx(BASE_FONT_PX * scale, abs=0.5), (size, name, layout)
    if size == "1366x768":
        for name in CHART_FIRST:
            assert seen[name]["charts"][0]["top"] < viewport["height"] - 100, (name, seen[name])
    phone = size == "390x844"
    for name in ("Survival", "Subgroups"):  # pages with forest plots: one layout shown per screen
        assert (seen[name]["narrow"] > 0, seen[name]["wide"] > 0) == (phone, not phone), (size, name, seen[name])


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_camera_button_saves_a_publication_size_png(server, browser):
    survival = bu.find_page(bu.app_pages(), "survival")
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(bu.page_url(server.url, survival, cohort="synthetic"), wait_until="domcontentloaded")
        bu.wait_for_page(page, survival.heading, PAGE_TIMEOUT_MS)
        chart = page.locator('[data-testid="stPlotlyChart"]').first
        chart.scroll_into_view_if_needed()
        chart.hover()
        with page.expect_download(timeout=60_000) as download:
            chart.locator('.modebar-btn[data-title^="Download plot"]').first.click()
        saved = download.value
        assert saved.suggested_filename.startswith("SYNTHETIC_km_")
        assert saved.suggested_filename.endswith(".png")
        data = Path(saved.path()).read_bytes()
        # 7 in x 5 in at 300 dpi.
        assert _png_size(data) == (2100, 1500)
        bu.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (bu.SCREENSHOTS / "export_km.png").write_bytes(data)  # to look at: a CI artifact
    finally:
        context.close()
