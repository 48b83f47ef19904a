"""Memory soak: does a worker's memory stay flat without Streamlit's post-run garbage collection?

``runner.postScriptGC`` (Streamlit's default: on) runs a full ``gc.collect()`` after every script
run, 0.12–0.18 s of CPU per render at 30 users. ``make serve`` turns it off only because this soak
showed memory stable without it. It starts two servers side by side, identical except for that
setting (both with the rest of ``deploy.serve.PRODUCTION_FLAGS``), and drives each with the same
stream of sessions for ``--minutes`` (default 60) over the websocket protocol
(``benchmarks/st_protocol.py``):

* a new session every ``--interval`` seconds (default 6), at most ``--open`` (default 8) held open
  at once (a session due while all are open is skipped and counted), each closed after 20–40 s
  (then kept by Streamlit for its disconnected-session TTL, 120 s);
* each session opens a page (Survival, Response, Subgroups, Cohort, Evidence in turn) with the
  synthetic cohort, then sets a random non-empty selection of HER2 status and of T stage, so the
  filter states keep changing and the bounded caches fill and evict (HER2-positive patients are
  always kept, as the dashboard's population of interest).

Error boxes are counted (a small random subgroup can legitimately produce one, e.g. too few
events for an estimate); sessions that break (protocol error, exception) are counted apart.

``--compare freeze`` instead compares two servers that both run without the post-run GC and differ
only in ``ui.process.freeze_startup_objects`` (environment ``HER2ER_GC_FREEZE`` = 1 or 0): whether
the objects alive at the app's first import are moved out of the cycle collector's reach. Its result
goes to ``benchmarks/results/soak_freeze.json``.

``--compare allocator`` runs three servers without the post-run GC: the app's own allocator
settings (glibc's mmap threshold fixed at 1 MB, Arrow's system pool: ``ui/process.py``), glibc's
and Arrow's defaults (``HER2ER_MEMORY_SETTINGS=0``), and the app's settings with glibc limited to
two malloc arenas (``MALLOC_ARENA_MAX=2``; by default glibc gives threads up to eight arenas per
core, and Streamlit runs each script on its own thread). Result: ``soak_allocator.json``.

``--compare idle`` runs two servers that differ only in how long the frame cache keeps an entry
no session asked for (``HER2ER_CACHE_IDLE_S``): an hour (the default until 2026-12-01), and ten
minutes (the default since). The cache of
whole-cohort frames grows with each new filter state up to its byte budget; with the idle bound
a server's memory should level off once entries start expiring. Result: ``soak_idle.json``.
``--compare budget`` runs two servers that differ only in that cache's byte budget
(``HER2ER_CACHE_MB``: the default 256, and 32), both with an hour's idle time: the small budget
should cap memory before any entry is idle for an hour. Result: ``soak_budget.json``.
``--compare bounds`` runs three servers: an hour and 256 MB (the defaults until 2026-12-01, the
server then named ``defaults``), ten minutes, and an hour with 32 MB. Run for two hours it shows
whether the hour levels off once the first hour's entries expire; its summary adds the slope over
the last quarter. Result: ``soak_bounds.json``.
``--compare defaults`` runs the shipped defaults (ten minutes, 256 MB) beside the same server with
the previous default hour. Result: ``soak_defaults.json``.

Every server starts as ``streamlit run app.py`` does on Community Cloud: the launcher's allocator
variables are removed from the environment it inherits, so the app applies its own settings.

Every ``--sample`` seconds (default 10) it records each server's resident memory (VmRSS) and the
renders and errors so far; each server's render times (median and 95th percentile) are reported
with the summary. Result: ``benchmarks/results/soak.json`` with the time series, and per
setting the RSS after warm-up, at the end, the peak, and the slope of a least-squares line over the
second half (MB per hour). Loopback only; bounded by ``--minutes`` plus 2 minutes.

    python -m benchmarks.soak --minutes 60
    python -m benchmarks.soak --minutes 60 --compare freeze
    python -m benchmarks.soak --minutes 110 --compare allocator
    python -m benchmarks.soak --minutes 75 --compare idle
    python -m benchmarks.soak --minutes 120 --compare bounds
    python -m benchmarks.soak --minutes 120 --compare defaults
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

from benchmarks.st_protocol import Session, installed_streamlit
from deploy.serve import PRODUCTION_FLAGS
from her2er_dash.cli import FREEZE_ENV, POOL_ENV, SETTINGS_ENV, THRESHOLD_ENV
from tests import browser_utils as bu

RESULTS = Path(__file__).resolve().parent / "results"
# URL paths as a browser opens them; the default page (Cohort) is served at the root, "".
PAGES = ("Survival", "Response", "Subgroups", "", "Evidence")
IDLE, BUDGET = "HER2ER_CACHE_IDLE_S", "HER2ER_CACHE_MB"  # ui.cohorts; set explicitly where varied
#: What each comparison varies: server name -> (extra Streamlit flags, environment).
COMPARISONS = {
    "gc": {"postScriptGC_on": (["--runner.postScriptGC", "true"], {}),
           "postScriptGC_off": (["--runner.postScriptGC", "false"], {})},
    "freeze": {"freeze_on": (["--runner.postScriptGC", "false"], {FREEZE_ENV: "1"}),
               "freeze_off": (["--runner.postScriptGC", "false"], {FREEZE_ENV: "0"})},
    "allocator": {"app_settings": (["--runner.postScriptGC", "false"], {}),
                  "library_defaults": (["--runner.postScriptGC", "false"], {SETTINGS_ENV: "0"}),
                  "arena_max_2": (["--runner.postScriptGC", "false"], {"MALLOC_ARENA_MAX": "2"})},
    "idle": {"idle_1h": (["--runner.postScriptGC", "false"], {IDLE: "3600"}),
             "idle_10min": (["--runner.postScriptGC", "false"], {IDLE: "600"})},
    "budget": {"cache_256mb": (["--runner.postScriptGC", "false"], {IDLE: "3600"}),
               "cache_32mb": (["--runner.postScriptGC", "false"], {IDLE: "3600", BUDGET: "32"})},
    "bounds": {"idle_1h": (["--runner.postScriptGC", "false"], {IDLE: "3600"}),
               "idle_10min": (["--runner.postScriptGC", "false"], {IDLE: "600"}),
               "cache_32mb": (["--runner.postScriptGC", "false"], {IDLE: "3600", BUDGET: "32"})},
    "defaults": {"defaults": (["--runner.postScriptGC", "false"], {}),
                 "idle_1h": (["--runner.postScriptGC", "false"], {IDLE: "3600"})},
}
OUTPUTS = {"gc": "soak.json", "freeze": "soak_freeze.json", "allocator": "soak_allocator.json",
           "idle": "soak_idle.json", "budget": "soak_budget.json", "bounds": "soak_bounds.json",
           "defaults": "soak_defaults.json"}


class Driver:
    """The stream of sessions against one server, with its counters."""

    def __init__(self, url: str, open_max: int) -> None:
        self.url = url
        self.renders = self.errors = self.failures = self.sessions = self.skipped = self.open = 0
        self.open_max = open_max
        self.error_samples: list[str] = []
        self.seconds: list[float] = []

    async def session(self, index: int) -> None:
        if self.open >= self.open_max:
            self.skipped += 1
            return
        self.open += 1
        self.sessions += 1
        rng = random.Random(index)  # the same choices for session ``index`` on both servers
        try:
            async with Session(self.url, timeout=120) as s:
                first = await s.open_page(PAGES[index % len(PAGES)], "cohort=synthetic")
                states = []
                for key in ("f_her2", "f_t"):
                    widget = s.widgets.get(key)
                    if widget and widget.options:
                        options = list(widget.options)
                        chosen = rng.sample(options, rng.randint(1, len(options)))
                        if key == "f_her2" and "positive" in options and "positive" not in chosen:
                            chosen.append("positive")  # the population of interest stays in
                        states.append(s.multiselect_state(key, chosen))
                second = await s.change_widgets(states)
                self.renders += 2
                for render in (first, second):
                    self._errors(render.errors)
                    self.seconds.append(render.seconds)
                await asyncio.sleep(rng.uniform(20, 40))
        except Exception as exc:  # a failed session is a finding, counted and sampled
            self.failures += 1
            self._errors([f"{type(exc).__name__}: {exc}"[:200]])
        finally:
            self.open -= 1

    def _errors(self, errors: list[str]) -> None:
        self.errors += len(errors)
        self.error_samples.extend(errors[: max(0, 5 - len(self.error_samples))])


def _slope_mb_per_hour(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3:
        return None
    xs, ys = [p[0] / 3600 for p in points], [p[1] for p in points]
    return round(statistics.linear_regression(xs, ys).slope, 1)


def summarise(series: list[dict], name: str) -> dict:
    points = [(s["t_s"], s[name]["rss_mb"]) for s in series]
    if not points:
        return {}
    end = points[-1][0]
    second_half = [p for p in points if p[0] >= end / 2]
    last_quarter = [p for p in points if p[0] >= end * 3 / 4]
    warm = [p for p in points if p[0] >= min(300.0, end / 4)]
    return {
        "rss_mb_after_warmup": warm[0][1] if warm else None,
        "rss_mb_end": points[-1][1],
        "rss_mb_peak": max(p[1] for p in points),
        "rss_mb_second_half_min": min(p[1] for p in second_half),
        "rss_mb_second_half_max": max(p[1] for p in second_half),
        "slope_mb_per_hour_second_half": _slope_mb_per_hour(second_half),
        "slope_mb_per_hour_last_quarter": _slope_mb_per_hour(last_quarter),
    }


async def soak(urls: dict[str, str], servers: dict, minutes: float, interval: float, sample: float,
               open_max: int) -> list[dict]:
    drivers = {name: Driver(url, open_max=open_max) for name, url in urls.items()}
    tasks: set[asyncio.Task] = set()
    series: list[dict] = []
    start = time.monotonic()
    next_session = next_sample = start
    index = 0
    while (now := time.monotonic()) < start + minutes * 60:
        if now >= next_session:
            for driver in drivers.values():  # the same session index on both servers
                task = asyncio.create_task(driver.session(index))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            index += 1
            next_session += interval
        if now >= next_sample:
            row = {"t_s": round(now - start, 1), "load_average": round(os.getloadavg()[0], 2)}
            for name, driver in drivers.items():
                row[name] = {"rss_mb": round(servers[name].rss_bytes() / 2**20, 1), "renders": driver.renders,
                             "errors": driver.errors, "failed_sessions": driver.failures,
                             "sessions": driver.sessions,
                             "skipped": driver.skipped}
            series.append(row)
            next_sample += sample
        await asyncio.sleep(0.2)
    for task in list(tasks):
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks, return_exceptions=True)
    return series, {name: d.error_samples for name, d in drivers.items()}, {
        name: _render_times(d.seconds) for name, d in drivers.items()}


def _render_times(seconds: list[float]) -> dict:
    if not seconds:
        return {}
    ordered = sorted(seconds)
    return {"median_s": round(statistics.median(ordered), 3),
            "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
            "max_s": round(ordered[-1], 3)}


def to_json(report: dict) -> str:
    """Indented, except one line per sample of the time series (360 samples an hour)."""
    head = json.dumps({k: v for k, v in report.items() if k != "series"}, indent=1)
    rows = ",\n  ".join(json.dumps(row) for row in report.get("series", []))
    return head[:-2] + ',\n "series": [\n  ' + rows + "\n ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=6.0, help="seconds between new sessions")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between memory samples")
    parser.add_argument("--open", type=int, default=8, help="sessions held open at once (per server)")
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="gc",
                        help="gc: post-run GC on vs off; freeze: startup freeze on vs off (GC off); "
                             "allocator: malloc settings; idle: the frame cache's idle time; "
                             "budget: its byte budget; bounds: defaults vs both bounds tightened")
    parser.add_argument("--out", type=Path, default=None,
                        help="default benchmarks/results/<OUTPUTS[compare]>, e.g. soak.json for gc")
    args = parser.parse_args(argv)
    flags = list(PRODUCTION_FLAGS)
    settings = COMPARISONS[args.compare]
    out = args.out or RESULTS / OUTPUTS[args.compare]
    for name in (THRESHOLD_ENV, POOL_ENV):  # inherited by the servers: as on Community Cloud
        os.environ.pop(name, None)
    bu.unwind_on_sigterm()
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(bu.streamlit_server(extra_args=[*flags, *extra],
                                                          env_overrides=env))
            for name, (extra, env) in settings.items()
        }
        series, error_samples, times = asyncio.run(
            asyncio.wait_for(
                soak({n: s.url for n, s in servers.items()}, servers, args.minutes, args.interval, args.sample,
                     args.open),
                timeout=args.minutes * 60 + 120,
            )
        )
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python -m benchmarks.soak", *(sys.argv[1:] if argv is None else argv)]),
        "streamlit": installed_streamlit(),
        "compare": args.compare, "minutes": args.minutes, "interval_s": args.interval,
        "open_max": args.open,
        "summary": {name: {**summarise(series, name), "renders": series[-1][name]["renders"],
                           "errors": series[-1][name]["errors"],
                           "failed_sessions": series[-1][name]["failed_sessions"], "error_samples": error_samples[name],
                           "render_times": times[name]}
                    for name in settings} if series else {},
        "series": series,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_json(report), encoding="utf-8")
    print(json.dumps(report["summary"], indent=1))
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
