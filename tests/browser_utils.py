"""Shared helpers for driving the real app: a loopback Streamlit server, Debian's Chromium, snapshots.

Used by ``tests/test_browser.py``, ``tests/test_privacy.py``, ``benchmarks/loadtest.py`` and
``scripts/screenshots.py``. Nothing here downloads a browser: Playwright is pointed at the
system Chromium (``/usr/bin/chromium``), and everything listens on 127.0.0.1 only.

The server's stdout/stderr are kept in memory (never in a log file), so a privacy test can search
them for cell values without itself creating a file on disk.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from deploy.serve import stop_group

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
LOOPBACK = "127.0.0.1"



@dataclass(frozen=True)
class AppPage:
    """One page of the router: its menu text, URL path, st.title, and whether it is the default page."""

    link: str
    path: str
    heading: str
    default: bool = False

    def url(self, base: str) -> str:
        """Where the page is served (the default page also answers at the root)."""
        return base if self.default else f"{base}/{self.path}"


def _page_heading(page_file: Path) -> str:
    """The title a page passes to ``ui.page_header(ctx, title, ...)`` (read from the source)."""
    tree = ast.parse(page_file.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "page_header":
            return ast.literal_eval(node.args[1])
    raise LookupError(f"{page_file.name} does not call ui.page_header(ctx, title, ...)")


def app_pages() -> tuple[AppPage, ...]:
    """The router's pages, read from ``PAGES`` in app.py, so the tests follow the menu as it evolves.

    Entries are ``(file, title, url_path, icon)`` or ``(file, title, icon)``; without an explicit
    url_path Streamlit derives it from the file name ("2_Response.py" -> "Response").
    """
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    entries = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PAGES" for t in node.targets)
    )
    pages = []
    for index, (file, title, *rest) in enumerate(entries):
        path = rest[0] if len(rest) == 2 else re.sub(r"^\d+_", "", Path(file).stem)
        heading = _page_heading(ROOT / "pages" / file)
        pages.append(AppPage(link=title, path=path, heading=heading, default=index == 0))
    return tuple(pages)

# The app is idle when the script has finished, the websocket is up, and lazily drawn elements
# (charts, tables: shown as skeletons first) are all in place.
IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  return app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && document.querySelectorAll('[data-testid="stSkeleton"]').length === 0
    && document.querySelectorAll('[data-testid="stStatusWidgetRunningIcon"]').length === 0;
}"""

COUNT_SELECTOR = '[data-testid="stSidebar"] [data-testid="stAlertContentInfo"]'
# st.exception draws stException; st.error draws an alert whose content is stAlertContentError.
ERROR_SELECTORS = ('[data-testid="stException"]', '[data-testid="stAlertContentError"]')


# --------------------------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------------------------


def browser_skip_reason() -> str | None:
    """Why a real-browser run is impossible here, or None when Chromium and Playwright are present."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"Debian Chromium not found at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    return None


def require_browser() -> None:
    """Skip the calling test, with the reason, when the browser stack is missing."""
    reason = browser_skip_reason()
    if reason:
        import pytest

        pytest.skip(reason)


def launch_kwargs() -> dict:
    """Keyword arguments for ``playwright.chromium.launch`` (sync or async API)."""
    return {"executable_path": CHROMIUM, "headless": True, "args": list(BROWSER_ARGS)}


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass
class StreamlitServer:
    """A running ``streamlit run app.py``; its output is collected in memory."""

    url: str
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """Everything the server printed on stdout and stderr so far."""
        return "".join(self.lines)

    def rss_bytes(self) -> int:
        """Resident memory of the server and all its child processes."""
        return sum(_vm_rss(pid) for pid in process_tree(self.pid))


def _drain(stream, sink: list[str]) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)
    stream.close()


def _loopback_get(url: str, timeout: float) -> str:
    # An explicit empty proxy map: a loopback health check must never go through a proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read().decode(errors="replace")


def _wait_healthy(server: StreamlitServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"streamlit exited early ({server.process.returncode}):\n{server.output()}")
        try:
            if _loopback_get(f"{server.url}/_stcore/health", timeout=2).strip() == "ok":
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"streamlit was not healthy after {timeout:.0f} s:\n{server.output()}")


def unwind_on_sigterm() -> None:
    """Make a SIGTERM unwind like Ctrl-C, so a benchmark killed with ``kill`` still stops the
    servers its ``with streamlit_server(...)`` blocks started (each in its own process group)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


@contextmanager
def streamlit_server(
    *,
    port: int | None = None,
    startup_timeout: float = 90.0,
    extra_args: Iterable[str] = (),
    env_overrides: dict[str, str] | None = None,
    launcher: Iterable[str] | None = None,
    cwd: Path | None = None,
) -> Iterator[StreamlitServer]:
    """Run the app on loopback from the repository root; always stop it (and its children) at exit.

    ``env_overrides`` lets a test give the server its own HOME and TMPDIR to watch. ``launcher``
    replaces ``python -m streamlit run app.py`` (e.g. an installed ``her2er-explorer``) and
    ``cwd`` the repository root; the server options below are appended to it.
    """
    port = port or free_port()
    command = [
        *(launcher or (sys.executable, "-m", "streamlit", "run", "app.py")),
        "--server.headless", "true",
        "--server.address", LOOPBACK,
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        *extra_args,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_overrides or {})}
    process = subprocess.Popen(
        command, cwd=cwd or ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
    )
    server = StreamlitServer(url=f"http://{LOOPBACK}:{port}", process=process)
    reader = threading.Thread(target=_drain, args=(process.stdout, server.lines), daemon=True)
    reader.start()
    try:
        _wait_healthy(server, startup_timeout)
        yield server
    finally:
        stop_group(process, grace=10.0)
        reader.join(timeout=5)


def process_tree(root_pid: int) -> list[int]:
    """``root_pid`` and all its descendants (from /proc; threads' children included)."""
    pids, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        task_dir = Path(f"/proc/{pid}/task")
        try:
            tasks = list(task_dir.iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return pids


def _vm_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


# --------------------------------------------------------------------------------------------
# Page helpers (sync Playwright API)
# --------------------------------------------------------------------------------------------


def wait_until_idle(page, timeout_ms: float = 60_000, settle_ms: int = 300) -> None:
    """Wait until the script run is over and nothing is still being drawn (checked twice)."""
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)
    page.wait_for_timeout(settle_ms)
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)


def wait_for_page(page, title: str, timeout_ms: float = 60_000) -> None:
    """Wait for a page's own heading, then for the app to be idle."""
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=timeout_ms)
    wait_until_idle(page, timeout_ms)


def sidebar_count(page, timeout_ms: float = 60_000) -> str:
    """The sidebar line "n = … of … patients; excluded: …"."""
    line = page.locator(COUNT_SELECTOR).filter(has_text="n = ").first
    line.wait_for(timeout=timeout_ms)
    return line.inner_text().strip()


def wait_for_count_change(page, before: str, timeout_ms: float = 60_000) -> str:
    """Wait until the sidebar count differs from ``before``; return the new line."""
    page.wait_for_function(
        """([selector, before]) => Array.from(document.querySelectorAll(selector))
             .some(e => e.innerText.startsWith('n = ') && e.innerText.trim() !== before)""",
        arg=[COUNT_SELECTOR, before],
        timeout=timeout_ms,
    )
    return sidebar_count(page)


def choose_option(page, widget_key: str, option: str) -> None:
    """Pick ``option`` in the multiselect/selectbox drawn with ``key=widget_key``."""
    box = page.locator(f".st-key-{widget_key} input").first
    box.click()
    # A click may only focus the combobox without opening it; typing always opens the filtered list.
    box.press_sequentially(option)
    exact = re.compile(rf"^\s*{re.escape(option)}\s*$")
    page.locator('[role="option"]').filter(has_text=exact).first.click()
    page.keyboard.press("Escape")


def error_texts(page) -> list[str]:
    """Texts of every exception box and st.error alert on the page."""
    texts = []
    for selector in ERROR_SELECTORS:
        texts.extend(page.locator(selector).all_inner_texts())
    return texts


def open_page_by_link(page, target: AppPage, timeout_ms: float = 60_000) -> None:
    """Click a sidebar navigation link (keeps the session) and wait for that page to finish."""
    label = page.get_by_text(target.link, exact=True)
    page.locator('[data-testid="stSidebarNavLink"]').filter(has=label).first.click()
    wait_for_page(page, target.heading, timeout_ms)


def find_page(pages: Iterable[AppPage], path: str) -> AppPage:
    """The page served at ``path`` (e.g. "response")."""
    return next(p for p in pages if p.path.lower() == path.lower())


# --------------------------------------------------------------------------------------------
# File-system snapshots (privacy tests)
# --------------------------------------------------------------------------------------------

# Directories written by the tooling itself (bytecode, test and lint caches, artefacts of these
# tests), never by the app.
NOISE_DIRS = frozenset(
    {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", ".git", "test-artifacts", ".mypy_cache"}
)


def snapshot(roots: Iterable[Path | str], ignore: Iterable[Path | str] = ()) -> dict[str, tuple[int, int]]:
    """Map every file under ``roots`` to (mtime_ns, size), skipping noise dirs and ``ignore`` paths."""
    ignored = tuple(str(Path(p)) for p in ignore)
    files: dict[str, tuple[int, int]] = {}
    todo = [str(Path(r)) for r in roots]
    seen: set[str] = set()
    while todo:
        folder = todo.pop()
        if folder in seen or folder.startswith(ignored):
            continue
        seen.add(folder)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in NOISE_DIRS:
                        todo.append(entry.path)
                elif not entry.path.startswith(ignored):
                    info = entry.stat(follow_symlinks=False)
                    files[entry.path] = (info.st_mtime_ns, info.st_size)
            except OSError:
                continue
    return files


def new_or_changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """Paths that appeared or were rewritten between two snapshots."""
    return sorted(path for path, stamp in after.items() if before.get(path) != stamp)


def privacy_ignores() -> list[str]:
    """Paths outside the app's reach that change on their own (set HER2ER_PRIVACY_IGNORE).

    On a shared development machine other programs keep writing under $HOME and /tmp (shell job
    spools, editor state); list them, separated by ``os.pathsep``, to keep the test meaningful there.
    """
    extra = os.environ.get("HER2ER_PRIVACY_IGNORE", "")
    return [p for p in extra.split(os.pathsep) if p] + own_output_files()


def own_output_files() -> list[str]:
    """Files that this test run's own stdin/stdout/stderr (or its parent's) are redirected to.

    ``pytest > run.log`` writes to run.log while the test watches for new files; that is not the app.
    """
    found = []
    for pid in ("self", str(os.getppid())):
        for fd in (0, 1, 2):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("/") and os.path.isfile(target):
                found.append(target)
    return sorted(set(found))


# --------------------------------------------------------------------------------------------
# Screenshots at the three screen sizes of issue 16
# --------------------------------------------------------------------------------------------

#: name -> (viewport, presenter mode on): a projector, a laptop, a phone.
SCREEN_SIZES: dict[str, tuple[dict[str, int], bool]] = {
    "1920x1080-presenter": ({"width": 1920, "height": 1080}, True),
    "1366x768": ({"width": 1366, "height": 768}, False),
    "390x844": ({"width": 390, "height": 844}, False),
}
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def page_url(base: str, target: AppPage, *, cohort: str | None = None, presenter: bool = False,
             filters: str = "") -> str:
    """The URL of ``target`` with the cohort, presenter mode and ``filters`` (query text such as
    ``"f_her2=positive"``) set in the query, as a shared link."""
    parts = (f"cohort={cohort}" if cohort else "", "presenter=1" if presenter else "", filters)
    query = "&".join(q for q in parts if q)
    return target.url(base) + (f"?{query}" if query else "")


MAIN_SCROLLER = '[data-testid="stMain"]'
MAX_SHOT_HEIGHT = 16_000


def capture(page, path: Path, *, full_page: bool = True) -> list[Path]:
    """Screenshot the page as a user sees it (scrolled to the top, no hover tooltip): ``path`` is
    the first screen (above the fold); with ``full_page``, ``<stem>-full.png`` is the whole page.

    Streamlit scrolls its main area, not the document, so a browser's "full page" screenshot
    stops at the fold: the whole page is taken by growing the viewport to the main area's
    height (at most :data:`MAX_SHOT_HEIGHT` px), then restoring it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.evaluate(f"document.querySelector('{MAIN_SCROLLER}')?.scrollTo(0, 0)")
    page.screenshot(path=str(path))
    written = [path]
    if full_page:
        viewport = page.viewport_size
        height = page.evaluate(f"document.querySelector('{MAIN_SCROLLER}')?.scrollHeight || 0")
        if height > viewport["height"]:
            page.set_viewport_size({"width": viewport["width"], "height": min(int(height), MAX_SHOT_HEIGHT)})
            try:
                wait_until_idle(page)
                page.wait_for_timeout(500)  # charts re-layout to the new size
                full = path.with_name(f"{path.stem}-full.png")
                page.screenshot(path=str(full))
                written.append(full)
            finally:
                page.set_viewport_size(viewport)
    return written


def capture_pages(browser, base: str, size: str, *, cohort: str | None = "synthetic",
                  pages: Iterable[AppPage] | None = None, out: Path = SCREENSHOTS,
                  timeout_ms: float = 120_000, check=None, filters: str = "") -> list[Path]:
    """Open every page at one of :data:`SCREEN_SIZES` (a fresh browser context, each page from
    its URL, with ``filters`` in its query) and write ``<out>/<size>/<page>.png`` (the first
    screen) and ``<page>-full.png``; ``check(page, target)`` runs before each shot."""
    viewport, presenter = SCREEN_SIZES[size]
    context = browser.new_context(viewport=viewport)
    written = []
    try:
        page = context.new_page()
        for target in pages or app_pages():
            page.goto(page_url(base, target, cohort=cohort, presenter=presenter, filters=filters),
                      wait_until="domcontentloaded")
            wait_for_page(page, target.heading, timeout_ms)
            if check is not None:
                check(page, target)
            written += capture(page, out / size / f"{target.path.lower()}.png")
    finally:
        context.close()
    return written


# Watching a page settle (randomised and fault tests)
# --------------------------------------------------------------------------------------------

# What the page is doing right now: the script state, the websocket, and every element that
# spins: st.spinner, a status widget's running icon, lazily drawn skeletons and a download
# button left disabled (the issue 16 freeze).
STATE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const count = s => document.querySelectorAll(s).length;
  return {
    script: app ? app.getAttribute('data-test-script-state') : null,
    connection: app ? app.getAttribute('data-test-connection-state') : null,
    spinners: count('[data-testid="stSpinner"]') + count('[data-testid="stSkeleton"]')
      + count('[data-testid="stDownloadButton"] button[disabled]'),
    running: count('[data-testid="stStatusWidgetRunningIcon"]'),
  };
}"""


class StuckPage(AssertionError):
    """The page did not settle: a spinner outlived its script run, or the run never ended."""


def settle(page, *, stuck_after_s: float = 10.0, timeout_s: float = 120.0, poll_s: float = 0.25) -> float:
    """Wait until the app is idle (as :data:`IDLE_JS`), watching for stuck spinners; return the
    seconds waited.

    A spinner, skeleton or disabled download button still on screen ``stuck_after_s`` seconds
    after the script run finished (the server has nothing more to send) is stuck: raise
    :class:`StuckPage`. A long computation keeps its spinner while the script runs; only
    ``timeout_s`` bounds that.
    """
    start = time.monotonic()
    idle_since = None  # when the script was last seen finished and connected
    calm = 0
    while True:
        now = time.monotonic()
        state = page.evaluate(STATE_JS)
        finished = state["script"] == "notRunning" and state["connection"] == "CONNECTED"
        if finished and not state["running"]:
            idle_since = idle_since or now
            if state["spinners"] == 0:
                calm += 1
                if calm >= 3:  # idle on three polls in a row (a rerun may start right after)
                    return now - start
            else:
                calm = 0
                if now - idle_since > stuck_after_s:
                    raise StuckPage(f"a spinner is still on screen {now - idle_since:.1f} s after "
                                    f"the script run finished ({state})")
        else:
            idle_since, calm = None, 0
        if now - start > timeout_s:
            raise StuckPage(f"the page was not idle after {timeout_s:.0f} s ({state})")
        time.sleep(poll_s)


def count_numbers(line: str) -> tuple[int, int]:
    """(analysed, total) from the sidebar line "n = 1,573 of 2,000 patients; ..."."""
    match = re.match(r"n = ([\d,]+) of ([\d,]+) patients", line)
    if not match:
        raise AssertionError(f"unexpected sidebar count line: {line!r}")
    return int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))


def exception_texts(page) -> list[str]:
    """Texts of every exception box (st.exception / an uncaught error) on the page."""
    return page.locator('[data-testid="stException"]').all_inner_texts()


def alert_error_texts(page) -> list[str]:
    """Texts of every st.error alert on the page."""
    return page.locator('[data-testid="stAlertContentError"]').all_inner_texts()


def selectbox_value(page, widget_key: str) -> str:
    """The option shown by the selectbox drawn with ``key=widget_key`` (its combobox input)."""
    return page.locator(f".st-key-{widget_key} input").first.input_value()


def wait_for_selectbox(page, widget_key: str, contains: str, timeout_ms: float = 60_000) -> None:
    """Wait until the selectbox ``widget_key`` shows an option containing ``contains``."""
    page.wait_for_function(
        """([key, text]) => { const e = document.querySelector(`.st-key-${key} input`);
                              return !!e && e.value.includes(text); }""",
        arg=[widget_key, contains], timeout=timeout_ms)
