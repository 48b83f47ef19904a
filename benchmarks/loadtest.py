"""Load test: a journal club of 30 opens the shared link at once.

``make loadtest`` (= ``python -m benchmarks.loadtest``) starts ``streamlit run app.py`` on loopback,
then one headless Debian Chromium with 30 browser contexts (30 independent Streamlit sessions,
asyncio Playwright). Every session, all at the same time:

1. opens the synthetic cohort (Cohort page, ``?cohort=synthetic``) — *first render* is the time from navigation to the
   page's title and the sidebar line "n = … of … patients" on screen (*full render*: until every
   chart and table is drawn);
2. goes to Response through the sidebar menu, sets HER2 status = positive and reads "n = …" back;
3. goes to Survival, checks the filter is still applied, adds T stage = T2 and reads "n = …" back.

A session succeeds when every step finishes, the numbers it reads are the same as every other
session's, and no error box is shown. The server's resident memory (VmRSS of its process tree) is
sampled every 0.2 s. Everything is bounded: each step times out, the whole run stops after
``--timeout`` seconds (default 300), and the server is always stopped. Results go to
``benchmarks/results/loadtest.json``; exit status 1 when any session failed.

Targets (issue 6): 30/30 sessions succeed, max first render <= 10 s, server peak RSS <= 2 GB.

Modes: ``--mode contexts`` (default, as specified) gives every session a fresh browser context,
so all 30 download and compile the Streamlit front end at the same moment on the same 2 cores as
the server. ``--mode tabs`` (``benchmarks/results/loadtest_tabs.json``) opens the 30 sessions as
tabs of one pre-warmed context: still 30 independent Streamlit sessions (own websocket and session
state), but the front end comes from the browser cache, as for participants who opened the app
before. The report splits the CPU seconds used by the server and by the browser, because here the
30 browsers compete with the server for the cores; in a real room they run on 30 laptops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests import browser_utils as bu

RESULTS = Path(__file__).resolve().parent / "results" / "loadtest.json"
MODES = {
    "contexts": "one browser, one fresh context per session: every participant downloads and compiles "
                "the Streamlit front end (about 20 MB of JavaScript) with a cold cache, on this machine",
    "tabs": "one browser, one pre-warmed context, one tab per session: still independent Streamlit "
            "sessions (own websocket and session state), but the front end comes from the browser cache",
}
STEP_TIMEOUT_MS = 180_000
VIEWPORT = {"width": 1280, "height": 900}
POLL_MS = 200  # poll page state on a timer: per-frame polling in 30 pages would load the CPU itself
TARGET_FIRST_RENDER_S = 10.0
TARGET_RSS_BYTES = 2 * 1024**3
COUNT_RE = re.compile(r"n = ([\d,]+) of ([\d,]+) patients")


@dataclass
class SessionResult:
    """What one simulated journal-club member saw."""

    session: int
    ok: bool = False
    step: str = "start"
    reason: str = ""
    first_render_s: float | None = None
    full_render_s: float | None = None
    duration_s: float | None = None
    counts: dict[str, int] = field(default_factory=dict)


class RssSampler:
    """Every ``interval`` s: the server tree's VmRSS, and CPU seconds used by server and browser.

    CPU time shows who the two cores were busy for: the server (Python, Streamlit) or the 30
    Chromium renderers that, in a real journal club, would run on 30 different laptops.
    """

    def __init__(self, server: bu.StreamlitServer, interval: float = 0.2) -> None:
        self.server, self.interval = server, interval
        self.samples: list[int] = []
        self._cpu_first: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._server_pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.server.rss_bytes())
            self._sample_cpu()
            self._stop.wait(self.interval)

    def _sample_cpu(self) -> None:
        server = set(bu.process_tree(self.server.pid))
        self._server_pids |= server
        for pid in bu.process_tree(os.getpid())[1:]:
            used = _cpu_seconds(pid)
            if used is not None:
                self._cpu_first.setdefault(pid, used if len(self.samples) == 1 else 0.0)
                self._cpu_last[pid] = used

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used during the run by the server tree and by everything else we started."""
        used = {pid: self._cpu_last[pid] - self._cpu_first[pid] for pid in self._cpu_last}
        server = sum(v for pid, v in used.items() if pid in self._server_pids)
        return {"server": round(server, 1), "browser": round(sum(used.values()) - server, 1)}

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Async page helpers (the sync versions live in tests/browser_utils.py)
# --------------------------------------------------------------------------------------------


async def _count(page) -> tuple[str, int]:
    line = page.locator(bu.COUNT_SELECTOR).filter(has_text="n = ").first
    await line.wait_for(timeout=STEP_TIMEOUT_MS)
    text = (await line.inner_text()).strip()
    match = COUNT_RE.match(text)
    if not match:
        raise ValueError(f"unreadable count line {text!r}")
    return text, int(match.group(1).replace(",", ""))


async def _idle(page) -> None:
    await page.wait_for_function(bu.IDLE_JS, timeout=STEP_TIMEOUT_MS, polling=POLL_MS)
    await page.wait_for_timeout(300)
    await page.wait_for_function(bu.IDLE_JS, timeout=STEP_TIMEOUT_MS, polling=POLL_MS)


async def _open(page, target: bu.AppPage) -> None:
    label = page.get_by_text(target.link, exact=True)
    await page.locator('[data-testid="stSidebarNavLink"]').filter(has=label).first.click()
    await page.get_by_role("heading", name=target.heading, exact=True).first.wait_for(timeout=STEP_TIMEOUT_MS)
    await _idle(page)


async def _choose(page, widget_key: str, option: str) -> None:
    box = page.locator(f".st-key-{widget_key} input").first
    await box.click()
    await box.press_sequentially(option)
    exact = re.compile(rf"^\s*{re.escape(option)}\s*$")
    await page.locator('[role="option"]').filter(has_text=exact).first.click()
    await page.keyboard.press("Escape")


async def _wait_count_change(page, before: str) -> tuple[str, int]:
    await page.wait_for_function(
        """([selector, before]) => Array.from(document.querySelectorAll(selector))
             .some(e => e.innerText.startsWith('n = ') && e.innerText.trim() !== before)""",
        arg=[bu.COUNT_SELECTOR, before],
        timeout=STEP_TIMEOUT_MS,
        polling=POLL_MS,
    )
    await _idle(page)
    return await _count(page)


async def _errors(page) -> list[str]:
    texts = []
    for selector in bu.ERROR_SELECTORS:
        texts.extend(await page.locator(selector).all_inner_texts())
    return texts


# --------------------------------------------------------------------------------------------
# One session
# --------------------------------------------------------------------------------------------


async def _journey(page, base_url: str, pages: tuple[bu.AppPage, ...], result: SessionResult) -> None:
    start = time.perf_counter()
    result.step = "first render"
    # The synthetic trial (2,000 patients, with T stage) is named in the URL: the journey does not
    # depend on which cohort the app opens on.
    await page.goto(f"{base_url}/?cohort=synthetic", wait_until="commit", timeout=STEP_TIMEOUT_MS)
    await page.get_by_role("heading", name=pages[0].heading, exact=True).first.wait_for(timeout=STEP_TIMEOUT_MS)
    default_text, result.counts["default"] = await _count(page)
    result.first_render_s = time.perf_counter() - start
    await _idle(page)
    result.full_render_s = time.perf_counter() - start

    result.step = "Response: HER2 positive"
    await _open(page, bu.find_page(pages, "response"))
    await _choose(page, "f_her2", "positive")
    her2_text, result.counts["her2_positive"] = await _wait_count_change(page, default_text)
    await _check_errors(page, result.step)

    result.step = "Survival: + T2"
    await _open(page, bu.find_page(pages, "survival"))
    kept_text, _ = await _count(page)
    if kept_text != her2_text:
        raise AssertionError(f"filter not kept across pages: {kept_text!r} != {her2_text!r}")
    await _choose(page, "f_t", "T2")
    _, result.counts["her2_positive_t2"] = await _wait_count_change(page, her2_text)
    await _check_errors(page, result.step)
    result.step = "done"
    result.duration_s = time.perf_counter() - start


async def _check_errors(page, where: str) -> None:
    errors = await _errors(page)
    if errors:
        raise AssertionError(f"error box on {where}: {errors[0][:200]}")


async def run_session(browser, shared, base_url: str, pages, index: int) -> SessionResult:
    """One participant: a fresh browser context, or a new tab of ``shared`` (mode "tabs")."""
    result = SessionResult(session=index)
    context = shared or await browser.new_context(viewport=VIEWPORT)
    page = None
    try:
        page = await context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)  # clicks wait as long as any other step
        await _journey(page, base_url, pages, result)
        result.ok = True
    except asyncio.CancelledError:
        result.reason = "stopped by the global timeout"
    except Exception as exc:  # any failure of one session is a finding to report, not a crash
        result.reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    finally:
        # A context that will not close must not hide the results.
        with contextlib.suppress(Exception):
            closing = page.close() if shared is not None and page is not None else context.close()
            await asyncio.wait_for(closing, timeout=30)
    return result


async def _warm_context(browser, base_url: str, pages):
    """A context whose HTTP and code caches already hold the app's static files (mode "tabs")."""
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    await page.goto(base_url, timeout=STEP_TIMEOUT_MS)
    await page.get_by_role("heading", name=pages[0].heading, exact=True).first.wait_for(timeout=STEP_TIMEOUT_MS)
    await page.close()
    return context


async def run_all(base_url: str, sessions: int, timeout: float, mode: str) -> list[SessionResult]:
    from playwright.async_api import async_playwright

    pages = bu.app_pages()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**bu.launch_kwargs())
        try:
            shared = await _warm_context(browser, base_url, pages) if mode == "tabs" else None
            tasks = [
                asyncio.create_task(run_session(browser, shared, base_url, pages, i)) for i in range(sessions)
            ]
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return [t.result() for t in tasks if not t.cancelled() and t.exception() is None]
        finally:
            await browser.close()


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 3),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
    }


def _mark_inconsistent(results: list[SessionResult]) -> dict[str, list[int]]:
    """Every session must read the same numbers; the majority value is taken as the right one."""
    values: dict[str, list[int]] = {}
    for r in results:
        for key, n in r.counts.items():
            values.setdefault(key, []).append(n)
    expected = {k: statistics.mode(v) for k, v in values.items()}
    for r in results:
        odd = {k: n for k, n in r.counts.items() if n != expected[k]}
        if r.ok and odd:
            r.ok, r.reason = False, f"read different numbers: {odd} (others: {expected})"
    return {k: sorted(set(v)) for k, v in values.items()}


def build_report(results, sessions, wall_s, sampler: RssSampler, timeout, mode, load) -> dict:
    numbers = _mark_inconsistent(results)
    ok = [r for r in results if r.ok]
    first = [r.first_render_s for r in results if r.first_render_s is not None]
    rss_samples = sampler.samples
    peak = max(rss_samples, default=0)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": _cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_before": load[0], "load_average_after": load[1]},
        "mode": mode,
        "mode_meaning": MODES[mode],
        "sessions": sessions,
        "succeeded": len(ok),
        "failed": sessions - len(ok),
        "failures": [{"session": r.session, "step": r.step, "reason": r.reason} for r in results if not r.ok],
        "not_finished": sessions - len(results),
        "wall_time_s": round(wall_s, 2),
        "global_timeout_s": timeout,
        "first_render_s": _stats(first),
        "full_render_s": _stats([r.full_render_s for r in results if r.full_render_s is not None]),
        "session_duration_s": _stats([r.duration_s for r in ok]),
        "numbers_read": numbers,
        "server_rss_mb": {
            "start": round(rss_samples[0] / 2**20, 1) if rss_samples else None,
            "peak": round(peak / 2**20, 1),
            "samples": len(rss_samples),
        },
        "cpu_seconds": sampler.cpu_seconds(),
    }
    report["targets"] = {
        "all_sessions_succeed": len(ok) == sessions,
        "max_first_render_le_10s": bool(first) and max(first) <= TARGET_FIRST_RENDER_S and len(first) == sessions,
        "peak_rss_le_2gb": 0 < peak <= TARGET_RSS_BYTES,
    }
    report["sessions_detail"] = [asdict(r) for r in results]
    return report


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _print_summary(report: dict) -> None:
    fr, rss = report["first_render_s"], report["server_rss_mb"]
    print(f"sessions: {report['succeeded']}/{report['sessions']} succeeded in {report['wall_time_s']} s")
    print(f"first render: median {fr.get('median')} s, max {fr.get('max')} s (n={fr.get('n')})")
    print(f"full render:  median {report['full_render_s'].get('median')} s, max {report['full_render_s'].get('max')} s")
    print(f"server RSS:   start {rss['start']} MB, peak {rss['peak']} MB")
    print(f"CPU seconds:  {report['cpu_seconds']} (load average before/after: "
          f"{report['machine']['load_average_before']} / {report['machine']['load_average_after']})")
    print(f"numbers read: {report['numbers_read']}")
    for failure in report["failures"]:
        print(f"  FAILED session {failure['session']} at {failure['step']}: {failure['reason']}")
    print("targets:", report["targets"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=300.0, help="global time limit, seconds")
    parser.add_argument("--mode", choices=sorted(MODES), default="contexts", help=" ".join(
        f"{k}: {v}" for k, v in MODES.items()))
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/loadtest[_tabs].json")
    args = parser.parse_args(argv)
    out = args.out or RESULTS.with_name("loadtest.json" if args.mode == "contexts" else f"loadtest_{args.mode}.json")
    reason = bu.browser_skip_reason()
    if reason:
        print(f"load test not run: {reason}")
        return 2
    load_before = os.getloadavg()[0]
    with bu.streamlit_server() as server, RssSampler(server) as sampler:
        start = time.perf_counter()
        results = asyncio.run(run_all(server.url, args.sessions, args.timeout, args.mode))
        wall = time.perf_counter() - start
    load = (round(load_before, 2), round(os.getloadavg()[0], 2))
    report = build_report(results, args.sessions, wall, sampler, args.timeout, args.mode, load)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _print_summary(report)
    print(f"written: {out}")
    return 0 if report["succeeded"] == args.sessions else 1


if __name__ == "__main__":
    raise SystemExit(main())
