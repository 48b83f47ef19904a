"""App cold start: ``streamlit run app.py`` process start -> first page rendered (default cohort).

Starts Streamlit headless on a free loopback port, then waits until a browser shows the sidebar's
cohort size line (text ``"n = "``). With Playwright + Debian Chromium (``/usr/bin/chromium``) that
is a real render; without them it falls back to the health endpoint (``/_stcore/health``) plus one
page fetch, which only proves the server is up (reported as ``method``). The browser is launched
before the clock starts, so its own start-up is not counted. The server is always stopped, and
every wait is bounded.

Run alone: ``python -m benchmarks.coldstart``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
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


def start_server(port: int) -> subprocess.Popen:
    """``streamlit run app.py`` on loopback only, in its own process group."""
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", HOST,
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL if it has not gone within 10 s."""
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


def _launch_browser():
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


def _render_in_browser(browser, port: int, deadline: float) -> None:
    page = browser.new_page()
    try:
        page.goto(f"http://{HOST}:{port}/", timeout=max(deadline - time.monotonic(), 1) * 1000)
        sidebar = page.locator('[data-testid="stSidebar"]').get_by_text(MARKER).first
        sidebar.wait_for(timeout=max(deadline - time.monotonic(), 1) * 1000)
    finally:
        page.close()


def _fetch_page(port: int) -> None:
    with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=10) as reply:
        reply.read()


def measure(timeout: float = 90.0) -> dict:
    """Seconds from ``streamlit run`` to the first rendered page (and to the health endpoint)."""
    launched = _launch_browser()
    port = free_port()
    start = time.monotonic()
    proc = start_server(port)
    deadline = start + timeout
    try:
        wait_healthy(port, proc, deadline)
        healthy = time.monotonic() - start
        if launched is not None:
            _render_in_browser(launched[1], port, deadline)
            method = "playwright+chromium: sidebar shows 'n = '"
        else:
            _fetch_page(port)
            method = "health endpoint + page fetch (no browser available)"
        seconds = time.monotonic() - start
    finally:
        stop_server(proc)
        if launched is not None:
            launched[1].close()
            launched[0].stop()
    return {"seconds": seconds, "server_healthy_s": healthy, "method": method, "port": port}


if __name__ == "__main__":
    print(json.dumps(measure()))
