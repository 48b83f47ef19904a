"""Where a Survival render's CPU time goes in a Streamlit worker (py-spy, sampled, GIL holders only).

Starts one Streamlit server on loopback, with the production flags of ``make serve``
(``--config production``) or Streamlit's defaults (``--config default``: file watcher on, a full
``gc.collect()`` after every run), warms it up, then attaches py-spy (``--gil``: only stacks that
hold the GIL, i.e. the Python work that one process cannot spread over cores) and runs
``--sessions`` users one after the other, each opening ``/Survival?cohort=synthetic`` and setting
HER2 status = positive (the load test's scenario, without contention). Samples are grouped by the
first matching rule of :data:`CATEGORIES` (searched from the innermost frame outwards), and the
worker's measured CPU seconds are split in those proportions. py-spy sees every thread: the
script runs on a ScriptRunner thread, the protocol work on the server's event loop, and each
sample is counted for its thread. ``hotspots`` lists, per thread, the innermost line of this
project's code in each sample (e.g. ``ui/render.py:60 table``): where a cut would take effect.
``--page`` profiles another page (the same scenario).

py-spy is a profiling tool, not a dependency of the project: install it anywhere
(``pip install --target /tmp/pyspy py-spy``) and pass its path.

    python -m benchmarks.profile_render --py-spy /tmp/pyspy/bin/py-spy --config production
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.loadtest import FILTER_KEY, FILTER_VALUE, PAGE, QUERY, cpu_seconds
from benchmarks.st_protocol import Session
from deploy.serve import PRODUCTION_FLAGS
from tests import browser_utils as bu

RESULTS = Path(__file__).resolve().parent / "results" / "profile_render.json"
CONFIGS = {
    "production": [*PRODUCTION_FLAGS, "--runner.postScriptGC", "false"],
    "default": [],
}

def _gc_frame() -> str:
    """'script_runner.py:<line>' of Streamlit's post-run ``gc.collect`` (a C call py-spy shows as its caller's line)."""
    import streamlit.runtime.scriptrunner.script_runner as runner

    for number, line in enumerate(Path(runner.__file__).read_text().splitlines(), start=1):
        if "gc.collect(" in line:
            return f"script_runner.py:{number})"
    return "gc.collect"


#: (category, substrings of a frame "function (file:line)"), checked frame by frame from the innermost.
CATEGORIES = (
    ("garbage collection after the run (runner.postScriptGC)", (_gc_frame(),)),
    ("file watcher (scanning module folders per session)", ("watcher", "watchdog")),
    ("plotly figure validation and JSON", ("plotly/", "_plotly_utils/")),
    ("Arrow conversion of tables (pyarrow, dataframe_util)", ("pyarrow", "dataframe_util", "arrow")),
    ("protobuf serialisation and websocket send", ("protobuf", "_pb2", "websocket", "serialize_forward_msg",
                                                    "starlette", "uvicorn", "forward_msg_queue")),
    ("her2er_dash figures (our figure code)", ("her2er_dash/figures",)),
    ("her2er_dash analyses", ("her2er_dash/",)),
    ("pandas / numpy (called from the page)", ("pandas/", "numpy/")),
    ("Streamlit cache look-ups (hashing arguments)", ("runtime/caching/",)),
    ("ui/ and pages (script glue)", ("/ui/", "/pages/", "/app.py")),
    ("Streamlit elements and widgets", ("streamlit/elements/", "delta_generator", "streamlit/runtime/state/")),
    ("Streamlit runtime (script runner, sessions, messages)", ("streamlit/",)),
    ("asyncio event loop", ("asyncio/",)),
)


def categorise(stack: str) -> tuple[str, str]:
    """(thread, category) of one sampled stack."""
    frames = stack.split(";")
    thread = "script thread" if any("_run_script_thread" in f for f in frames) else "server event loop"
    for frame in reversed(frames):
        for name, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return thread, name
    return thread, "other"


def parse_raw(text: str) -> Counter:
    """py-spy's raw format: one 'frame;frame;... count' line per distinct stack."""
    counts: Counter = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[categorise(stack)] += int(count)
    return counts


def hotspots(text: str, root: Path = bu.ROOT) -> Counter:
    """Samples per innermost frame of this project's code (``ui/render.py:60``, ``pages/...``), per
    thread: the line of ours that each sample's library work was called from, i.e. where a cut
    would take effect. Samples without a frame of ours count as '(library only)'."""
    prefix = f"{root}/"
    counts: Counter = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not (stack and count.isdigit()):
            continue
        frames = stack.split(";")
        thread = "script thread" if any("_run_script_thread" in f for f in frames) else "server event loop"
        ours = next((f for f in reversed(frames) if prefix in f and "/.venv" not in f and "site-packages" not in f),
                    None)  # fmt: skip
        counts[(thread, ours.replace(prefix, "") if ours else "(library only)")] += int(count)
    return counts


async def _users(url: str, n: int, page: str = PAGE) -> int:
    renders = 0
    for _ in range(n):
        async with Session(url, timeout=120) as session:
            await session.open_page(page, QUERY)
            await session.change_widgets([session.multiselect_state(FILTER_KEY, FILTER_VALUE)])
            renders += 2
    return renders


def profile(py_spy: str, config: str, sessions: int, page: str = PAGE, top: int = 15) -> dict:
    with bu.streamlit_server(extra_args=CONFIGS[config]) as server, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_users(server.url, 1, page))  # imports, cohort, cached analyses
        out = Path(tmp) / "profile.txt"
        spy = subprocess.Popen([py_spy, "record", "--pid", str(server.pid), "--format", "raw", "--gil",
                                "--full-filenames", "--rate", "200", "--output", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # py-spy attaches
        cpu_before, start = cpu_seconds(server.pid), time.perf_counter()
        renders = asyncio.run(_users(server.url, sessions, page))
        wall, cpu = time.perf_counter() - start, cpu_seconds(server.pid) - cpu_before
        time.sleep(0.5)  # work that follows the last message (post-run GC) is sampled too
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
        if not out.exists():
            raise RuntimeError(f"py-spy wrote nothing: {spy.stderr.read().decode()[-500:]}")
        raw = out.read_text()
        counts, lines = parse_raw(raw), hotspots(raw)
    total = sum(counts.values())
    per_render = cpu / renders
    return {
        "config": config, "page": page, "flags": CONFIGS[config], "sessions": sessions, "renders": renders,
        "wall_s": round(wall, 2), "worker_cpu_s": round(cpu, 2), "cpu_s_per_render": round(per_render, 3),
        "samples": total,
        "by_thread": {t: round(sum(n for (th, _), n in counts.items() if th == t) / total, 3)
                      for t in sorted({th for th, _ in counts})},
        "breakdown": [{"thread": thread, "category": name, "share": round(n / total, 3),
                       "cpu_s_per_render": round(per_render * n / total, 3)}
                      for (thread, name), n in counts.most_common()],
        "hotspots": [{"thread": thread, "frame": frame, "share": round(n / total, 3),
                      "cpu_s_per_render": round(per_render * n / total, 4)}
                     for (thread, frame), n in lines.most_common(top)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--py-spy", required=True, help="path of the py-spy executable")
    parser.add_argument("--config", choices=sorted(CONFIGS), action="append",
                        help="server settings to profile (repeatable; default: both)")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--page", default=PAGE, help="URL path of the page (default: %(default)s)")
    parser.add_argument("--top", type=int, default=15, help="lines of our code to list (hotspots)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    bu.unwind_on_sigterm()
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_average": os.getloadavg()[0],
              "scenario": f"/{args.page}?{QUERY} then {FILTER_KEY} = {FILTER_VALUE}, sessions one after the other",
              "profiles": [profile(args.py_spy, c, args.sessions, args.page, args.top)
                           for c in args.config or sorted(CONFIGS)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for p in report["profiles"]:
        print(f"{p['config']}: {p['cpu_s_per_render']} CPU s per render ({p['renders']} renders, {p['samples']} samples)")
        for row in p["breakdown"]:
            print(f"  {row['share']:6.1%}  {row['cpu_s_per_render']:.3f} s  {row['thread']}: {row['category']}")
        print("  where in our code (innermost frame of ours):")
        for row in p["hotspots"]:
            print(f"  {row['share']:6.1%}  {row['cpu_s_per_render']:.4f} s  {row['thread']}: {row['frame']}")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
