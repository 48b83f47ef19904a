"""CPU seconds per render of every page, measured on a real server with the production settings.

One Streamlit server per app folder (the working tree, and optionally a ``--baseline`` copy of
another commit, e.g. ``git archive main | tar -x -C /tmp/base``) runs with the flags of
``make serve`` (no file watcher, no post-run GC). For each page of the router, ``--sessions``
users one after the other (no contention: this measures cost, not queueing) open
``/<Page>?cohort=synthetic`` and set HER2 status = positive in the sidebar, i.e. two renders each,
over the websocket protocol (``benchmarks/st_protocol.py``). Before measuring, every page is run
once per server (imports, cohort loading and analyses cached: a room of users on the same link).
With ``--baseline``, the two servers are measured page by page in alternation (A, B, A, B...) so
both see the same background load on a shared machine.

The result is the server process's CPU time (``/proc``) divided by the renders, per page. With
``--py-spy PATH`` (a profiling tool, not a dependency: ``pip install --target /tmp/pyspy py-spy``)
each page's samples are also grouped into the categories of ``benchmarks/profile_render.py``.

    python -m benchmarks.page_cost --sessions 8
    python -m benchmarks.page_cost --baseline /tmp/base --rounds 3 --py-spy /tmp/pyspy/bin/py-spy
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.loadtest import FILTER_KEY, FILTER_VALUE, cpu_seconds
from benchmarks.profile_render import CONFIGS, parse_raw
from benchmarks.st_protocol import Session
from tests import browser_utils as bu

RESULTS = Path(__file__).resolve().parent / "results" / "page_cost.json"
QUERY = "cohort=synthetic"


def _page_name(path: str) -> str:
    """The ``page_name`` a browser sends for ``/<path>``: empty for the default page (served at /)."""
    return "" if any(p.default and p.path == path for p in bu.app_pages()) else path


async def _users(url: str, page: str, n: int) -> tuple[int, list[str]]:
    """``n`` users one after the other; returns (renders, error texts)."""
    renders, errors = 0, []
    for _ in range(n):
        async with Session(url, timeout=180) as session:
            first = await session.open_page(_page_name(page), QUERY)
            errors += first.errors
            renders += 1
            if FILTER_KEY in session.widgets:
                second = await session.change_widgets([session.multiselect_state(FILTER_KEY, FILTER_VALUE)])
                errors += second.errors
                renders += 1
    return renders, errors


def _measure(server, page: str, sessions: int, py_spy: str | None) -> dict:
    spy, out = None, None
    if py_spy:
        out = Path(tempfile.mkdtemp()) / "profile.txt"
        spy = subprocess.Popen([py_spy, "record", "--pid", str(server.pid), "--format", "raw", "--gil",
                                "--full-filenames", "--rate", "200", "--output", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)
    before = cpu_seconds(server.pid)
    renders, errors = asyncio.run(_users(server.url, page, sessions))
    cpu = cpu_seconds(server.pid) - before
    row = {"renders": renders, "cpu_s": round(cpu, 3), "cpu_s_per_render": round(cpu / max(renders, 1), 4),
           "errors": errors[:3]}
    if spy is not None:
        time.sleep(0.3)
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
        counts = parse_raw(out.read_text()) if out.exists() else {}
        total = sum(counts.values()) or 1
        row["breakdown"] = {f"{t}: {c}": round(row["cpu_s_per_render"] * n / total, 4)
                            for (t, c), n in counts.most_common()}
    return row


def run(dirs: dict[str, Path], pages: list[str], sessions: int, rounds: int, py_spy: str | None) -> dict:
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(bu.streamlit_server(extra_args=CONFIGS["production"], cwd=path))
                   for name, path in dirs.items()}
        for server in servers.values():  # warm-up: every page once
            for page in pages:
                asyncio.run(_users(server.url, page, 1))
        samples: dict[str, dict[str, list[dict]]] = {n: {p: [] for p in pages} for n in servers}
        for _ in range(rounds):
            for page in pages:
                for name, server in servers.items():
                    samples[name][page].append(_measure(server, page, sessions, py_spy))
    report = {}
    for name, by_page in samples.items():
        report[name] = {}
        for page, rows in by_page.items():
            per = [r["cpu_s_per_render"] for r in rows]
            entry = {"cpu_s_per_render_median": round(statistics.median(per), 4), "rounds": per,
                     "renders": sum(r["renders"] for r in rows), "errors": [e for r in rows for e in r["errors"]]}
            if py_spy:
                keys = {k for r in rows for k in r.get("breakdown", {})}
                entry["breakdown"] = dict(sorted(
                    ((k, round(statistics.median(r.get("breakdown", {}).get(k, 0.0) for r in rows), 4))
                     for k in keys), key=lambda kv: -kv[1]))
            report[name][page] = entry
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="an app folder to measure side by side (e.g. main)")
    parser.add_argument("--pages", nargs="*", help="URL paths (default: every page of app.py)")
    parser.add_argument("--sessions", type=int, default=6, help="users per page and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--py-spy", help="path of py-spy, for a breakdown of each page's CPU time")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    bu.unwind_on_sigterm()
    pages = args.pages or [p.path for p in bu.app_pages()]
    dirs = {"this tree": bu.ROOT}
    if args.baseline:
        dirs["baseline"] = args.baseline.resolve()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_average_before": load_before,
              "scenario": f"/<page>?{QUERY}, then {FILTER_KEY} = {FILTER_VALUE}; users one after the other",
              "sessions": args.sessions, "rounds": args.rounds, "flags": CONFIGS["production"],
              "servers": {k: str(v) for k, v in dirs.items()},
              "pages": run(dirs, pages, args.sessions, args.rounds, args.py_spy)}
    report["load_average_after"] = os.getloadavg()[0]
    report["wall_s"] = round(time.perf_counter() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    names = list(dirs)
    print("page".ljust(12) + "".join(f"{n:>16}" for n in names) + "   (CPU s per render, median of rounds)")
    for page in pages:
        print(page.ljust(12) + "".join(f"{report['pages'][n][page]['cpu_s_per_render_median']:>16.3f}" for n in names))
    for name in names:
        for page in pages:
            if report["pages"][name][page]["errors"]:
                print(f"{name} {page}: errors {report['pages'][name][page]['errors'][:2]}")
    print(f"written: {args.out} (load average {load_before:.2f} -> {report['load_average_after']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
