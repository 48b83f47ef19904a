"""A remote visitor's first page: a warm server, a browser behind a slower link.

What a researcher opening the hosted app over the internet waits for, which the loopback cold
start (``benchmarks/coldstart.py``) cannot show: the frontend's script files and the chunks of
the widgets and charts a page draws cross the link. The app is started once, as a deployed copy
(plain ``streamlit run app.py`` in a copy of the tracked files) and given time to open ahead;
then each visit opens a fresh browser context (empty cache) whose network Chromium throttles
(DevTools ``Network.emulateNetworkConditions``: download and upload rates, added latency), loads
the root URL and records

* ``sidebar_s``: until the sidebar shows the cohort size line (``"n = "``), as the cold start;
* ``complete_s``: until the last response before the page stays quiet (no request in flight
  or finishing) for :data:`QUIET_S`, i.e. every script chunk the first page needs has arrived.
  (Playwright's ``networkidle`` cannot tell: it is reached once per navigation, and on a fast
  link already while the first script run is still on its way, before the widgets' chunks are
  asked for.)
* ``kilobytes``: the bytes of every response body the visit received.

Run alone: ``python -m benchmarks.remote_visit [--mbit 20] [--latency-ms 40] [--visits 5]``.
Needs Playwright and Debian's Chromium; loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import coldstart as cs

#: Seconds the server is left to open the app ahead before the first visit.
SETTLE_S = 4.0
#: Seconds without network activity after which a page counts as complete.
QUIET_S = 1.5


def visit(browser, port: int, *, mbit: float, latency_ms: float, timeout_s: float = 120.0) -> dict:
    """One first visit in a fresh context over the throttled link; see the module docstring."""
    context = browser.new_context()
    try:
        page = context.new_page()
        devtools = context.new_cdp_session(page)
        devtools.send("Network.enable")
        devtools.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": latency_ms,
            "downloadThroughput": mbit * 1e6 / 8, "uploadThroughput": mbit * 1e6 / 8,
        })  # fmt: skip
        received: list[int] = []
        network = {"in_flight": 0, "last": time.monotonic()}

        def asked(_request) -> None:
            network["in_flight"] += 1
            network["last"] = time.monotonic()

        def answered(request, *, ok: bool = True) -> None:
            network["in_flight"] -= 1
            network["last"] = time.monotonic()
            if ok:
                received.append(request.sizes()["responseBodySize"])

        page.on("request", asked)
        page.on("requestfinished", answered)
        page.on("requestfailed", lambda request: answered(request, ok=False))
        start = time.monotonic()
        deadline = start + timeout_s
        page.goto(f"http://{cs.HOST}:{port}/", timeout=timeout_s * 1000)
        page.locator('[data-testid="stSidebar"]').get_by_text(cs.MARKER).first.wait_for(
            timeout=timeout_s * 1000)
        sidebar = time.monotonic() - start
        while network["in_flight"] > 0 or time.monotonic() - network["last"] < QUIET_S:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page did not settle within {timeout_s:.0f} s")
            page.wait_for_timeout(50)  # (lets Playwright deliver the network events)
        complete = network["last"] - start
        return {"sidebar_s": sidebar, "complete_s": complete, "kilobytes": sum(received) / 1000}
    finally:
        context.close()


def measure(*, mbit: float = 20.0, latency_ms: float = 40.0, visits: int = 5,
            app_folder: Path | None = None) -> dict:
    """``visits`` first visits to one warm deployed copy (of the checkout's tracked files, or
    the app in ``app_folder``); their medians and the runs."""
    launched = cs.launch_browser()
    if launched is None:
        raise RuntimeError("needs Playwright and Chromium (/usr/bin/chromium)")
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="her2er-remote-") as folder:
            copy = app_folder or cs.tracked_copy(Path(folder) / "app")
            port = cs.free_port()
            server = cs.start_server(port, way=cs.DEPLOYED, app_folder=copy)
            try:
                cs.wait_healthy(port, server, time.monotonic() + 90)
                time.sleep(SETTLE_S)
                for _ in range(visits):
                    runs.append(visit(launched[1], port, mbit=mbit, latency_ms=latency_ms))
            finally:
                cs.stop_server(server)
    finally:
        launched[1].close()
        launched[0].stop()
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    return {"link": {"mbit": mbit, "latency_ms": latency_ms}, "median": medians, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbit", type=float, default=20.0, help="link rate, both ways (Mbit/s)")
    parser.add_argument("--latency-ms", type=float, default=40.0, help="added latency (ms)")
    parser.add_argument("--visits", type=int, default=5, help="first visits to time")
    args = parser.parse_args(argv)
    result = measure(mbit=args.mbit, latency_ms=args.latency_ms, visits=args.visits)
    median = result["median"]
    print(f"{args.mbit:g} Mbit/s, {args.latency_ms:g} ms: sidebar {median['sidebar_s']:.2f} s, "
          f"page complete {median['complete_s']:.2f} s, {median['kilobytes']:,.0f} kB received")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
