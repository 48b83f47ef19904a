"""README screenshots: every main page of the app with the default cohort.

Two ways, from the repository root:

- ``make screenshots``: runs the screenshot test (``tests/test_browser_screens.py``, every page at
  1920 x 1080 with presenter mode, 1366 x 768 and 390 x 844, into ``test-artifacts/screenshots/``)
  and then ``python scripts/screenshots.py --from-artifacts``, which copies the README's pictures
  (:data:`CHOSEN`: the laptop size, the view of a journal-club reader) into ``docs/screenshots/``.
  So the README always shows what the tests saw.
- ``python scripts/screenshots.py`` (about a minute): starts ``streamlit run app.py`` on loopback,
  opens each page in Debian's Chromium (1400 x 1000) through the sidebar menu, waits until every
  chart is drawn, and writes ``docs/screenshots/<page>.png`` directly.

Each PNG is reduced to a 256-colour palette (Pillow) so it stays well under 400 KB.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import browser_utils as bu  # noqa: E402  (the repository root is put on the path first)

OUT = ROOT / "docs" / "screenshots"
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
#: README picture -> the test artifact it is copied from (viewport-sized crop of the page top).
CHOSEN = {
    f"{page}.png": f"laptop_1366x768/{page}.png"
    for page in ("cohort", "response", "survival", "subgroups", "evidence", "methods", "subsets")
} | {"response_presenter.png": "projector_1920x1080/response.png",
     "response_phone.png": "phone_390x844/response.png"}
#: The top of a full-page capture kept for the README (width x height of its viewport).
CROP_HEIGHT = {"laptop_1366x768": 768 * 2, "projector_1920x1080": 1080, "phone_390x844": 844 * 2}
VIEWPORT = {"width": 1400, "height": 1000}
MAX_BYTES = 400 * 1024
TIMEOUT_MS = 120_000


def compact_png(raw: bytes) -> bytes:
    """The same picture as a palette PNG (screens of flat colours lose nothing visible)."""
    from PIL import Image

    image = Image.open(io.BytesIO(raw)).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue() if buffer.tell() < len(raw) else raw


def from_artifacts(out: Path = OUT, artifacts: Path = ARTIFACTS) -> list[Path]:
    """Copy the :data:`CHOSEN` captures of the screenshot test into ``out`` (cropped to the top of
    the page, palette PNG); fail when one is missing (run the test first)."""
    from PIL import Image

    missing = [src for src in CHOSEN.values() if not (artifacts / src).exists()]
    if missing:
        raise FileNotFoundError(f"not captured yet: {missing}; run pytest tests/test_browser_screens.py")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, src in CHOSEN.items():
        image = Image.open(artifacts / src)
        height = min(image.height, CROP_HEIGHT[src.split("/")[0]])
        buffer = io.BytesIO()
        image.crop((0, 0, image.width, height)).save(buffer, format="PNG")
        path = out / name
        path.write_bytes(compact_png(buffer.getvalue()))
        print(f"{path.relative_to(ROOT)} <- {src}: {path.stat().st_size / 1024:.0f} KB")
        written.append(path)
    return written


def shoot(out: Path = OUT) -> list[Path]:
    """Take one screenshot per page; return the files written."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    pages = bu.app_pages()
    with bu.streamlit_server() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(**bu.launch_kwargs())
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(server.url, wait_until="domcontentloaded")
            bu.wait_for_page(page, pages[0].heading, TIMEOUT_MS)
            for target in pages:
                bu.open_page_by_link(page, target, TIMEOUT_MS)
                errors = bu.error_texts(page)
                if errors:
                    print(f"warning: {target.link}: error box on screen: {errors}", file=sys.stderr)
                page.mouse.move(0, VIEWPORT["height"] - 1)  # no hover tooltip in the picture
                page.evaluate("window.scrollTo(0, 0)")
                path = out / f"{target.path.lower()}.png"
                path.write_bytes(compact_png(page.screenshot()))
                size = path.stat().st_size
                note = "" if size <= MAX_BYTES else f"  (over {MAX_BYTES // 1024} KB!)"
                print(f"{path.relative_to(ROOT)}: {size / 1024:.0f} KB{note}")
                written.append(path)
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--from-artifacts", action="store_true",
                        help="copy the README pictures from the screenshot test's captures")
    args = parser.parse_args(argv)
    if args.from_artifacts:
        written = from_artifacts(args.out)
        return 0 if all(p.stat().st_size <= MAX_BYTES for p in written) else 1
    reason = bu.browser_skip_reason()
    if reason:
        print(f"no screenshots: {reason}", file=sys.stderr)
        return 2
    written = shoot(args.out)
    return 0 if all(p.stat().st_size <= MAX_BYTES for p in written) else 1


if __name__ == "__main__":
    raise SystemExit(main())
