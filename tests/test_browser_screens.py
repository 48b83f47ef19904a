"""Every page at three screen sizes, captured as CI artifacts: a projector (1920 x 1080, presenter
mode on), a laptop (1366 x 768) and a phone (390 x 844), on the default bundled cohort.

Files: ``test-artifacts/screenshots/<size>/<page>.png`` (full page). ``make screenshots`` runs this
test and then ``scripts/screenshots.py --from-artifacts``, which copies the README's pictures from
them into ``docs/screenshots/``. Each capture also checks that the page drew without an exception or
error box and shows its heading. Skips cleanly without Chromium or Playwright.
"""

from __future__ import annotations

import pytest

from tests import browser_utils as bu

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = bu.ROOT / "test-artifacts" / "screenshots"
TIMEOUT_MS = 120_000
#: name -> (viewport, extra query string)
SIZES = {
    "projector_1920x1080": ({"width": 1920, "height": 1080}, "presenter=1"),
    "laptop_1366x768": ({"width": 1366, "height": 768}, ""),
    "phone_390x844": ({"width": 390, "height": 844}, ""),
}


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_at_each_screen_size(server, browser, size):
    viewport, query = SIZES[size]
    out = SHOTS / size
    out.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    try:
        page = context.new_page()
        problems = []
        for target in bu.app_pages():
            page.goto(target.url(server.url) + (f"?{query}" if query else ""),
                      wait_until="domcontentloaded")
            bu.wait_for_page(page, target.heading, TIMEOUT_MS)
            bu.settle(page)
            if query:
                assert "presenter=1" in page.url, page.url  # the URL keeps presenter mode
            page.mouse.move(0, viewport["height"] - 1)  # no hover tooltip in the picture
            page.screenshot(path=str(out / f"{target.path.lower()}.png"), full_page=True)
            errors = bu.error_texts(page)
            if errors:
                problems.append(f"{target.link}: {errors}")
        assert not problems, problems
        assert sorted(p.stem for p in out.glob("*.png")) == sorted(
            p.path.lower() for p in bu.app_pages())
    finally:
        context.close()
