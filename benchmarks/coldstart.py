"""App cold start: process start -> first page rendered (default cohort), the way users start it.

Three ways, measured alternately (``ROUNDS`` rounds) so that a busy host slows all of them alike:

* ``launcher``: ``python -m her2er_dash.cli`` in the checkout, what ``make run`` and the installed
  ``her2er-explorer`` command do (Streamlit's file watcher off unless ``--watch``);
* ``deployed copy``: a plain ``streamlit run app.py`` in a copy of the tracked files only (as
  Community Cloud clones the repository, its virtualenv elsewhere), with the repository's
  ``.streamlit/config.toml`` and so the default file watcher;
* ``checkout, plain streamlit run``: the same command in the checkout, whose folder also holds
  ``.venv`` and the benchmark cache. Streamlit watches the folder of every source file
  recursively, so this one pays for watching the virtualenv (the number reported before
  2026-12-01).

Each starts headless on a free loopback port, then waits until a browser shows the sidebar's
cohort size line (text ``"n = "``). With Playwright + Debian Chromium (``/usr/bin/chromium``) that
is a real render; without them it falls back to the health endpoint (``/_stcore/health``) plus one
page fetch, which only proves the server is up (reported as ``method``). The browser and the blank
tab the page opens in exist before the clock starts, as a researcher's browser does: their own
start-up is not counted (opening the tab, 0.15-0.3 s here, is reported as ``tab_open_s``; until
2026-12-02 it was counted). The server is always stopped, and every wait is bounded.

Python's bytecode cache is set per way, not left to the caller's environment (a
``PYTHONDONTWRITEBYTECODE`` there made every start compile the app's ~100 modules):

* the launcher and the checkout start with the app's sources compiled (:func:`compile_sources`:
  what Python writes at a researcher's first start, ``pip install`` at install and the
  Dockerfile at build): every start after the first;
* the deployed copy starts without any (``PYTHONDONTWRITEBYTECODE=1`` in a copy without
  ``__pycache__``): a fresh clone's first start, as after each deployment.

The target (3 s) applies to the first two: what a researcher runs and what the hosted app runs.

Run alone: ``python -m benchmarks.coldstart [--rounds N]``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
HOST = "127.0.0.1"
MARKER = "n = "


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


#: Options every way is started with: headless on the given loopback port, no usage statistics.
def _server_options(port: int) -> list[str]:
    return [
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", HOST,
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


#: The app's own Python sources (what ``import ui`` and the pages import), compiled ahead by
#: :func:`compile_sources` and by the Dockerfile.
APP_SOURCES = ("app.py", "ui_mapping.py", "ui", "her2er_dash", "deploy")

LAUNCHER = "launcher"
DEPLOYED = "deployed copy"
CHECKOUT = "checkout, plain streamlit run"
WAYS = (LAUNCHER, DEPLOYED, CHECKOUT)
#: The ways the 3 s target applies to (what users and the hosted app run).
TARGET_WAYS = (LAUNCHER, DEPLOYED)


def compile_sources(app_folder: Path = ROOT) -> None:
    """Write the bytecode cache of the app's sources (:data:`APP_SOURCES`) in ``app_folder``, as
    Python does at a first start; files already compiled are only checked."""
    for name in APP_SOURCES:
        path = app_folder / name
        if path.is_dir():
            compileall.compile_dir(path, quiet=1)
        else:
            compileall.compile_file(path, quiet=1)


def server_environment(way: str) -> dict[str, str]:
    """The environment a way starts in: the caller's, with the bytecode cache as the module
    docstring says (written by default, never for the deployed copy)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if way == DEPLOYED:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def start_server(port: int, *, way: str = CHECKOUT, app_folder: Path = ROOT) -> subprocess.Popen:
    """Start the app one of the :data:`WAYS`, on loopback only, in its own process group."""
    if way == LAUNCHER:
        command = [sys.executable, "-m", "her2er_dash.cli", *_server_options(port)]
    else:
        command = [sys.executable, "-m", "streamlit", "run", "app.py", *_server_options(port)]
    return subprocess.Popen(
        command,
        cwd=app_folder,
        env=server_environment(way),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def tracked_copy(destination: Path) -> Path:
    """Copy the repository's tracked files (``git ls-files``, as they are in the working tree) to
    ``destination``: the app folder a deployment clones, without ``.venv``, ``.git`` or caches."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (the launcher passes it on and removes its memory
    folder), then SIGKILL if it has not gone within 10 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_healthy(port: int, proc: subprocess.Popen, deadline: float) -> None:
    url = f"http://{HOST}:{port}/_stcore/health"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise TimeoutError("streamlit did not become healthy in time")


def launch_browser():
    """(playwright, browser) or None when Playwright or Chromium is unavailable."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path(CHROMIUM).exists():
        return None
    manager = sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception:  # noqa: BLE001 - any launch failure means "no browser": use the fallback
        manager.stop()
        return None
    return manager, browser


def _render_in_browser(page, port: int, deadline: float) -> None:
    page.goto(f"http://{HOST}:{port}/", timeout=max(deadline - time.monotonic(), 1) * 1000)
    sidebar = page.locator('[data-testid="stSidebar"]').get_by_text(MARKER).first
    sidebar.wait_for(timeout=max(deadline - time.monotonic(), 1) * 1000)


def _fetch_page(port: int) -> None:
    with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=10) as reply:
        reply.read()


def measure(timeout: float = 90.0, *, way: str = CHECKOUT, app_folder: Path = ROOT,
            launched=None) -> dict:
    """Seconds from starting the app one of the :data:`WAYS` to the first rendered page (and to
    the health endpoint). ``launched`` is a browser from :func:`launch_browser` to reuse."""
    owned = launched is None
    if owned:
        launched = launch_browser()
    port = free_port()
    if way != DEPLOYED:
        compile_sources(app_folder)
    page, tab_open_s = None, None
    if launched is not None:  # the tab is the browser's, opened before the clock starts
        opening = time.monotonic()
        page = launched[1].new_page()
        tab_open_s = time.monotonic() - opening
    start = time.monotonic()
    proc = start_server(port, way=way, app_folder=app_folder)
    deadline = start + timeout
    try:
        wait_healthy(port, proc, deadline)
        healthy = time.monotonic() - start
        if page is not None:
            _render_in_browser(page, port, deadline)
            method = "playwright+chromium: sidebar shows 'n = '"
        else:
            _fetch_page(port)
            method = "health endpoint + page fetch (no browser available)"
        seconds = time.monotonic() - start
    finally:
        stop_server(proc)
        if page is not None:
            page.close()
        if owned and launched is not None:
            launched[1].close()
            launched[0].stop()
    return {"way": way, "seconds": seconds, "server_healthy_s": healthy, "method": method,
            "tab_open_s": tab_open_s, "bytecode_cached": way != DEPLOYED, "port": port}


def measure_ways(rounds: int = 3, timeout: float = 90.0) -> dict:
    """Every one of the :data:`WAYS`, alternating, ``rounds`` times; per way the runs and their
    median. ``seconds`` is the slowest median of :data:`TARGET_WAYS` (what the target judges)."""
    launched = launch_browser()
    runs: dict[str, list[dict]] = {way: [] for way in WAYS}
    try:
        with tempfile.TemporaryDirectory(prefix="her2er-coldstart-") as folder:
            copy = tracked_copy(Path(folder) / "app")
            for _ in range(rounds):
                for way in WAYS:
                    app_folder = copy if way == DEPLOYED else ROOT
                    runs[way].append(measure(timeout, way=way, app_folder=app_folder,
                                             launched=launched))
    finally:
        if launched is not None:
            launched[1].close()
            launched[0].stop()
    medians = {way: statistics.median(r["seconds"] for r in runs[way]) for way in WAYS}
    return {
        "seconds": max(medians[way] for way in TARGET_WAYS),
        "median_s": medians,
        "runs": runs,
        "method": runs[LAUNCHER][0]["method"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each way (alternating)")
    args = parser.parse_args(argv)
    result = measure_ways(args.rounds)
    for way in WAYS:
        seconds = ", ".join(f"{r['seconds']:.2f}" for r in result["runs"][way])
        print(f"{way:32s} median {result['median_s'][way]:.2f} s  ({seconds})")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
