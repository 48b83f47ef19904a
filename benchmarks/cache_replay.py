"""Where a server's memory goes as sessions pass: replay the soak's sessions in one process, then
empty the app's caches one by one and see what each held.

``benchmarks/soak.py`` watches a real server's resident memory for an hour but cannot look
inside it. This replays the same kind of sessions in-process with Streamlit's AppTest (each opens
a page in turn: Survival, Response, Subgroups, Cohort, Evidence, on the synthetic cohort, then
sets a random selection of HER2 status (positive always kept) and T stage), so that afterwards
each cache can be emptied and the memory it held measured:

* ``malloc_in_use_mb``: bytes glibc has handed out and not had back (``mallinfo2``: heap in use
  plus mapped blocks), i.e. live C-level allocations (numpy arrays, pickled results);
* ``python_blocks``: ``sys.getallocatedblocks()``, live small Python objects (pymalloc);
* ``rss_mb``: what the system counts, which stays up after a free until memory is handed back
  (the last step calls ``malloc_trim``).

The caches are emptied in this order: the frame cache (frames, registry tables, analysis
results, and since 2026-12-01 the Arrow tables and CSV payloads drawn from them), the figure
cache, the options memo, Streamlit's data and resource caches.

``--every N`` also measures after every N sessions (with the frame cache's entries and counted
megabytes), to see whether memory levels off once the frame cache is at its byte budget (run it
with a small ``HER2ER_CACHE_MB`` to reach the budget in a few hundred sessions).

    python -m benchmarks.cache_replay --sessions 250
    HER2ER_CACHE_MB=32 python -m benchmarks.cache_replay --sessions 750 --every 50 \
        --out benchmarks/results/cache_replay_32mb.json
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import random
import sys
import time
from pathlib import Path

from benchmarks.run import ROOT

RESULTS = Path(__file__).resolve().parent / "results"
PAGES = ("pages/3_Survival.py", "pages/2_Response.py", "pages/4_Subgroups.py", "app.py",
         "pages/5_Evidence.py")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):
        return None


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS"))


def measure(label: str, libc, *, frame_cache=None) -> dict:
    gc.collect()
    row = {"step": label, "rss_mb": round(_rss_mb(), 1), "python_blocks": sys.getallocatedblocks()}
    if libc is not None:
        info = libc.mallinfo2()
        row["malloc_in_use_mb"] = round((info.uordblks + info.hblkhd) / 2**20, 1)
    if frame_cache is not None:
        row["frame_cache_entries"] = len(frame_cache)
        row["frame_cache_counted_mb"] = round(frame_cache.nbytes / 2**20, 1)
    print(json.dumps(row), flush=True)
    return row


def replay(index: int) -> None:
    from streamlit.testing.v1 import AppTest

    rng = random.Random(index)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["cohort"] = "synthetic"
    at.run()
    page = PAGES[index % len(PAGES)]
    if page != "app.py":
        at.switch_page(page).run()
    for key in ("f_her2", "f_t"):
        widget = next((w for w in at.sidebar.multiselect if w.key == key), None)
        if widget is None:
            continue
        options = list(widget.options)
        chosen = rng.sample(options, rng.randint(1, len(options)))
        if key == "f_her2" and "positive" in options and "positive" not in chosen:
            chosen.append("positive")
        widget.set_value(chosen)
    at.run()
    if at.exception:
        raise RuntimeError(f"session {index} ({page}): {at.exception[0].value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--every", type=int, default=0,
                        help="also measure after every N sessions (0: only after the first and last)")
    parser.add_argument("--out", type=Path, default=RESULTS / "cache_replay.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from streamlit import config

    config.set_option("runner.postScriptGC", False)  # as `make serve`
    libc = _glibc()
    started = time.perf_counter()
    replay(0)
    import streamlit as st

    import ui
    from ui import keys

    steps = [measure("after 1 session", libc)]
    during = []
    for index in range(1, args.sessions):
        replay(index)
        if args.every and (index + 1) % args.every == 0 and index + 1 < args.sessions:
            during.append(measure(f"after {index + 1} sessions", libc, frame_cache=ui.FRAME_CACHE))
    steps.append(measure(f"after {args.sessions} sessions", libc, frame_cache=ui.FRAME_CACHE))

    frame_cache = {"entries": len(ui.FRAME_CACHE), "counted_mb": round(ui.FRAME_CACHE.nbytes / 2**20, 1)}
    ui.FRAME_CACHE.clear()
    steps.append(measure("frame cache emptied", libc))
    ui.render._figure_cache.clear()
    steps.append(measure("figure cache emptied", libc))
    keys._options_memo.clear()
    steps.append(measure("options memo emptied", libc))
    st.cache_data.clear()
    st.cache_resource.clear()
    steps.append(measure("Streamlit's caches emptied", libc))
    if libc is not None:
        libc.malloc_trim(0)
        steps.append(measure("malloc_trim(0)", libc))
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": " ".join(["python -m benchmarks.cache_replay", *(argv or sys.argv[1:])]),
              "sessions": args.sessions, "seconds": round(time.perf_counter() - started, 1),
              "frame_cache_budget_mb": round(ui.FRAME_CACHE.budget / 2**20, 1),
              "frame_cache_before_emptying": frame_cache, "steps": steps, "during": during}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
