"""A registry queried in place: page work through DuckDB, the real pages, equality with pandas.

Three parts, each in its own process (so that each peak RSS is its own):

``--part scale`` (default 10M patients) writes the benchmark's cached 1M-patient cohort ten
times over (patient IDs made unique) as a folder of Parquet files, with DuckDB alone (no pandas
frame of the registry is ever built), then times what the Survival, Response and Subgroups pages
compute for a registry of the data folder (``ui.py``: the sidebar's flow, the sample of rows,
and the counts-first analyses), cold (first query after opening) and warm, and reports the
process's peak RSS.

``--part equal`` (default 1M patients) computes the same analyses through the registry engine
and through the in-memory engine (pandas rows, as for an upload) and reports the largest
relative difference over every number of every result table.

``--part app`` runs the app itself (``app.py`` through Streamlit's AppTest) on the same
registry folder: pick the registry in the sidebar's picker (the registry is opened and
classified; the Cohort page is the landing page), then either open one page and change the
sidebar's HER2 status filter to positive on it (one path per page: what a page costs alone), or
tour every page before and after that filter change (later pages find what earlier ones
cached). ``scale`` imitates what the pages compute; ``app`` times what they really do (every
panel, the widgets' option queries, the figures) and counts the registry's DuckDB queries per
visit; the Survival page's path ends by opening the panel it computes only on request. Each path
runs in a fresh process (see :func:`part_app`), after a measure of the machine's speed
(:func:`machine_speed`).

    python -m benchmarks.registry --part scale --n 10000000
    python -m benchmarks.registry --part equal --n 1000000
    python -m benchmarks.registry --part app --n 10000000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.run import CACHE, cohort_path, load_cohort
from her2er_dash.filters import CohortFilter

BASE_N = 1_000_000
#: The sidebar state of the benchmark: HER2-positive patients (what the app studies), every
#: other filter open, as ``benchmarks.app_pages``' first filter step.
FILTER = CohortFilter(her2_status=("positive",))
TIME, EVENT = "efs_months", "efs_event"


def _status_mb(field: str) -> float:
    """A memory field of this process's /proc status (``VmHWM`` peak, ``VmRSS`` now), in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return _status_mb("VmHWM")


def registry_folder(n: int) -> Path:
    """The n-patient registry: the cached 1M cohort written n / 1M times (DuckDB only)."""
    import duckdb

    copies = max(1, n // BASE_N)
    source = cohort_path(BASE_N)
    if not source.exists():
        load_cohort(BASE_N)
    folder = CACHE / f"registry_{copies}x_{source.stem}"
    if folder.exists() and len(list(folder.glob("*.parquet"))) == copies:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET memory_limit = '512MB'")
    for k in range(copies):
        target = folder / f"part{k:02d}.parquet"
        con.execute(f"COPY (SELECT * REPLACE (patient_id || '-{k}' AS patient_id) FROM "
                    f"read_parquet('{source}')) TO '{target}' (FORMAT parquet)")
    return folder


def survival_page(registry, flt: CohortFilter) -> dict:
    """What the Survival page computes for a registry (counts-first panels)."""
    from her2er_dash import survival

    selection = registry.select(flt)
    registry.sample(flt, size=100_000, selection=selection)
    cells, strata, cox_cells = registry.counts_many(
        flt, [[TIME, EVENT, "er_category"], [TIME, EVENT, "er_category", "study"],
              [TIME, EVENT, "er_category", "arm"]], selection)
    km = survival.kaplan_meier(cells, TIME, EVENT, by="er_category")
    test = survival.logrank(cells, TIME, EVENT, "er_category", pairwise=True)
    stratified = survival.logrank(strata, TIME, EVENT, "er_category", strata="study")
    model = survival.cox(cox_cells, TIME, EVENT, terms=["er_category", "arm"])
    rmst = survival.rmst(cells, TIME, EVENT, "er_category", tau=60.0)
    stone = survival.milestone(cells, TIME, EVENT, "er_category", at=60.0)
    return {"km": km.table, "medians": km.medians, "logrank": test.table,
            "logrank_pairwise": test.pairwise, "logrank_stratified": stratified.table,
            "cox": model.table, "cox_zph": model.ph_test, "rmst": rmst.table,
            "milestone": stone.table}


def response_page(registry, flt: CohortFilter) -> dict:
    from her2er_dash import response

    selection = registry.select(flt)
    registry.sample(flt, size=100_000, selection=selection)
    cells = registry.counts(flt, ["pcr", "er_category", "her2_status"], selection)
    rates = response.pcr_rates(cells, by=["er_category", "her2_status"])
    compared = response.compare(cells, group="er_category")
    return {"pcr_rates": rates, "compare": compared}


def subgroups_page(registry, flt: CohortFilter) -> dict:
    from her2er_dash import contrasts

    selection = registry.select(flt)
    registry.sample(flt, size=100_000, selection=selection)
    chosen = ["hr_status", "arm", "grade", "t_stage", "n_stage"]
    levels = registry.levels("er_category", flt)
    outcome = (TIME, EVENT)
    cells, pcr_cells = registry.counts_many(
        flt, [[*outcome, "er_category", *chosen], ["pcr", "er_category", *chosen]], selection)
    forest = contrasts.two_level_forest(cells, exposure="er_category", level=levels[-1],
                                        reference=levels[0], subgroups_=chosen, outcome=outcome)
    forest_pcr = contrasts.two_level_forest(pcr_cells, exposure="er_category",
                                            level=levels[-1], reference=levels[0],
                                            subgroups_=chosen, outcome="pcr")
    return {"forest_efs": forest, "forest_pcr": forest_pcr}


PAGES = {"Survival": survival_page, "Response": response_page, "Subgroups": subgroups_page}


def part_scale(n: int, repeats: int) -> dict:
    from her2er_dash.engine import Registry

    start = time.perf_counter()
    folder = registry_folder(n)
    prepared_s = time.perf_counter() - start
    start = time.perf_counter()
    registry = Registry.open(folder, memory_limit=os.environ.get("HER2ER_DUCKDB_MEMORY"))
    open_s = time.perf_counter() - start
    start = time.perf_counter()
    registry.classified_table(FILTER)  # once per registry and cut-points
    classify_s = time.perf_counter() - start
    pages = {}
    for name, page in PAGES.items():
        times, cpu = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            page(registry, FILTER)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        # CPU time of the process (DuckDB's threads included): on a machine shared with other
        # work the wall clock mostly measures the load, the CPU time what the page costs
        pages[name] = {"first_s": times[0], "median_s": float(np.median(times)),
                       "min_s": min(times), "cpu_median_s": float(np.median(cpu))}
    return {"part": "scale", "n": registry.n, "files": len(registry.files),
            "selected": registry.select(FILTER).n, "prepare_s": prepared_s, "open_s": open_s,
            "classify_s": classify_s,
            "pages": pages, "peak_rss_mb": _peak_mb(), "load_average": os.getloadavg()}


def _numbers(frame: pd.DataFrame | None) -> np.ndarray:
    if frame is None:
        return np.empty(0)
    return frame.select_dtypes("number").to_numpy(dtype=float).ravel()


def part_equal(n: int) -> dict:
    """Largest relative difference registry vs in-memory engine over every number shown."""
    from her2er_dash.engine import Registry

    frame = load_cohort(n)
    registry = Registry.open(cohort_path(n))
    rows = FILTER.select(FILTER.classify(frame)).data
    worst, compared, mismatched, per_table = 0.0, 0, [], {}
    for name, page in PAGES.items():
        ours = page(registry, FILTER)
        theirs = page(_RowsEngine(rows), FILTER)
        for key, table in ours.items():
            a, b = _numbers(table), _numbers(theirs[key])
            if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
                mismatched.append(f"{name}.{key}")
                continue
            both = ~np.isnan(a)
            scale = np.maximum(np.abs(b[both]), 1e-300)
            rel = np.abs(a[both] - b[both]) / scale
            rel[np.abs(a[both] - b[both]) < 1e-300] = 0.0
            per_table[f"{name}.{key}"] = float(rel.max(initial=0.0))
            worst = max(worst, per_table[f"{name}.{key}"])
            compared += int(both.sum())
    return {"part": "equal", "n": n, "selected": len(rows), "numbers_compared": compared,
            "max_relative_difference": worst, "mismatched_tables": mismatched,
            "max_relative_difference_per_table": per_table}


class _RowsEngine:
    """The in-memory engine behind the registry's interface: patient rows, no counts."""

    def __init__(self, rows: pd.DataFrame):
        self.rows = rows

    def select(self, flt):
        return None

    def sample(self, flt, *, size, selection=None):
        return self.rows

    def counts(self, flt, columns, selection=None):
        return self.rows

    def counts_many(self, flt, column_sets, selection=None):
        return [self.rows for _ in column_sets]

    def levels(self, column, flt=None):
        values = self.rows[column]
        present = set(values.dropna().astype(str))
        return [str(c) for c in values.cat.categories if str(c) in present]

# --------------------------------------------------------------------------------------------
# --part app: the app's real pages on the registry (Streamlit's AppTest)
# --------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
FIRST, AFTER, OPENED = "first", "after filter change", "panel opened"
#: The sidebar filter the user changes (as in ``benchmarks/loadtest.py``).
APP_FILTER_KEY, APP_FILTER_VALUE = "f_her2", ["positive"]
#: Paths through the app after the registry is picked on the landing page (Cohort): steps of
#: (page file, visit, action), the action a switch to the page or the filter change on the page
#: shown (which reruns it, as in a browser). Every visit after the filter change is the first one
#: under the new filter (every Streamlit cache cold for it).
#: ``tour``: one user visiting every page, so later pages find what earlier ones cached (the
#: widgets' option lists of the same filter, the sample); each page alone: ``direct`` paths.
APP_TOUR = (("2_Response.py", FIRST, "switch"), ("4_Subgroups.py", FIRST, "switch"),
            ("3_Survival.py", FIRST, "switch"), ("3_Survival.py", AFTER, "filter"),
            ("4_Subgroups.py", AFTER, "switch"), ("2_Response.py", AFTER, "switch"),
            ("1_Cohort.py", AFTER, "switch"))
#: A page opened straight after the registry is picked (a bookmarked page), then the filter
#: changed on it: what the issue's per-page targets are about.
DIRECT_PAGES = ("2_Response.py", "3_Survival.py", "4_Subgroups.py", "1_Cohort.py")
#: Panels computed only once opened (``ui.panel_on_request``), by page: the direct path opens
#: each after the filter change, so what opening one costs is measured too.
ON_REQUEST = {"3_Survival.py": ("surv_iptw_open",)}


def app_steps(path: str) -> tuple[tuple[str, str, str], ...]:
    """The steps of ``path``: ``tour`` or a page file (its direct path)."""
    if path == "tour":
        return APP_TOUR
    if path not in DIRECT_PAGES:
        raise ValueError(f"unknown app path {path!r}")
    if path == "1_Cohort.py":  # the landing page: already shown when the registry is picked
        return ((path, AFTER, "filter"),)
    opened = tuple((path, OPENED, f"open:{key}") for key in ON_REQUEST.get(path, ()))
    return ((path, FIRST, "switch"), (path, AFTER, "filter"), *opened)


#: Registry methods whose calls are counted per visit (``counts`` goes through ``counts_many``;
#: ``_select`` is a selection not found in the registry's memo, i.e. one scan).
_COUNTED = ("counts_many", "levels", "sample", "select", "_select", "range", "unknown",
            "values_per_column")


class _Probe:
    """Counts and times (never changes) what the registry and AppTest do during one visit:
    calls of the registry's query methods, the SQL queries run (and their wall time), the
    classification (``_materialise``), AppTest's own tree parsing and Python's garbage
    collections."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.calls = dict.fromkeys(_COUNTED, 0)
        self.count_sets: list[list[str]] = []
        self.sql, self.sql_s, self.classify_s, self.parse_s, self.gc_s = 0, 0.0, 0.0, 0.0, 0.0

    def install(self) -> None:
        import gc

        from streamlit.testing.v1 import local_script_runner

        from her2er_dash.engine.registry import Registry

        probe = self

        def counted(name, fn):
            def wrapper(self, *args, **kwargs):
                with probe.lock:
                    probe.calls[name] += 1
                    if name == "counts_many":
                        sets = args[1] if len(args) > 1 else kwargs["column_sets"]
                        probe.count_sets.extend([list(s) for s in sets])
                return fn(self, *args, **kwargs)
            return wrapper

        def timed(attribute, fn, *, method=True):
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    with probe.lock:
                        setattr(probe, attribute,
                                getattr(probe, attribute) + time.perf_counter() - start)
                        if attribute == "sql_s":
                            probe.sql += 1
            return wrapper

        for name in _COUNTED:
            setattr(Registry, name, counted(name, getattr(Registry, name)))
        Registry._run = timed("sql_s", Registry._run)
        Registry._materialise = timed("classify_s", Registry._materialise)
        local_script_runner.parse_tree_from_messages = timed(
            "parse_s", local_script_runner.parse_tree_from_messages)
        started = {}

        def on_gc(phase, info):
            if phase == "start":
                started["t"] = time.perf_counter()
            elif "t" in started:
                probe.gc_s += time.perf_counter() - started.pop("t")
        gc.callbacks.append(on_gc)

    def visit(self, label: str, visit: str, step) -> dict:
        self.reset()
        load = os.getloadavg()[0]
        start, start_cpu = time.perf_counter(), time.process_time()
        at = step()
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        problems = [str(e.value)[:200] for e in at.exception] + \
            [str(e.value)[:200] for e in at.error]
        return {"page": label, "visit": visit, "wall_s": wall, "cpu_s": cpu,
                "count_queries": self.calls["counts_many"], "count_sets": self.count_sets,
                "levels_queries": self.calls["levels"], "samples": self.calls["sample"],
                "select_calls": self.calls["select"], "selection_scans": self.calls["_select"],
                "other_queries": {k: self.calls[k] for k in ("range", "unknown",
                                                             "values_per_column")},
                "sql_queries": self.sql, "sql_s": self.sql_s, "classify_s": self.classify_s,
                "apptest_parse_s": self.parse_s, "gc_s": self.gc_s, "load_1min": load,
                "rss_mb": _rss_mb(), "charts": len(at.get("plotly_chart")),
                "problems": problems}


def _rss_mb() -> float:
    return _status_mb("VmRSS")


#: Streamlit settings of ``--config production``: those ``make serve`` (``deploy/serve.py``,
#: also the Docker image) gives its workers on top of the repo's config.toml. A server data
#: folder is an operator's deployment, so that is how a registry is served; ``default`` leaves
#: config.toml alone (a plain ``streamlit run app.py``, as on Community Cloud).
APP_CONFIGS = {
    "production": {"runner.postScriptGC": False, "server.fileWatcherType": "none",
                   "server.runOnSave": False},
    "default": {},
}


def duckdb_calibration_s(rounds: int = 3) -> float:
    """Seconds DuckDB takes here now (best of ``rounds``, the registry's settings: one thread per
    core, 512 MB) to group 10M generated rows into 500,000 groups: the size of the Survival page's
    study-stratified count. Beside ``loadtest.calibration_s`` (pure Python) it says how fast
    this machine's cores and memory are at the moment of a run: on this shared 2-core host the
    same query has taken from ~0.2 s to twice that over one day, with the code unchanged."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET threads = {os.cpu_count() or 1}")
        con.execute("SET memory_limit = '512MB'")
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            con.execute("SELECT count(*) FROM (SELECT hash(i) % 500000 AS k, count(*) "
                        "FROM range(10000000) t(i) GROUP BY k)").fetchall()
            best = min(best, time.perf_counter() - start)
        return round(best, 4)
    finally:
        con.close()


def machine_speed() -> dict:
    """The machine's speed now: a pure-Python loop and a DuckDB aggregate (seconds each)."""
    from benchmarks.loadtest import calibration_s

    return {"python_loop_s": calibration_s(), "duckdb_group_s": duckdb_calibration_s()}


def app_path(folder: Path, path: str = "tour", config: str = "production", *,
             ahead: bool = False) -> dict:
    """One user's ``path`` (see :func:`app_steps`) through the app on the registry ``folder``,
    in this process, with the Streamlit settings ``APP_CONFIGS[config]``. ``ahead``: the
    registry is opened ahead first, as a ``make serve`` worker with ``HER2ER_PREWARM`` does at
    its start (``ui.registry.prewarm``), and the landing shows what is left for the user."""
    os.environ["HER2ER_DATA_DIR"] = str(folder.parent)
    os.chdir(ROOT)  # the app's .streamlit/config.toml, as `streamlit run app.py` reads it
    load_before = os.getloadavg()
    from streamlit import config as streamlit_config
    from streamlit.testing.v1 import AppTest

    for option, value in APP_CONFIGS[config].items():
        streamlit_config.set_option(option, value)

    probe = _Probe()
    probe.install()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    visits = [probe.visit("open app (bundled default cohort)", FIRST, at.run)]
    if ahead:
        from ui.registry import prewarm

        def open_ahead():
            if not prewarm([folder.name]):
                raise SystemExit(f"{folder.name} could not be opened ahead (see the log above)")
            return at
        visits.append(probe.visit("registry opened ahead (no user)", FIRST, open_ahead))
    picker = at.sidebar.selectbox[0]
    if f"Registry: {folder.name}" not in picker.options:  # the options are shown as labels
        raise SystemExit(f"{folder.name} is not offered in the picker: {picker.options}")
    visits.append(probe.visit("select registry + Cohort (landing)", FIRST,
                              lambda: picker.select(f"registry:{folder.name}").run()))
    for page, visit, action in app_steps(path):
        visits.append(probe.visit(page.split("_", 1)[1].removesuffix(".py"), visit,
                                  _step(at, page, action)))
    selected = next((i.value for i in at.sidebar.info if str(i.value).startswith("n = ")), "")
    return {"path": path, "config": config,
            "post_script_gc": streamlit_config.get_option("runner.postScriptGC"),
            "visits": visits, "sidebar_after": selected,
            "peak_rss_mb": _peak_mb(), "load_average_before": load_before,
            "load_average_after": os.getloadavg()}


def _step(at, page: str, action: str):
    """The user's action: the filter change on the page shown, opening the panel
    ``open:<key>`` on it, or a switch to ``page``."""
    def change_filter():
        return at.sidebar.multiselect(key=APP_FILTER_KEY).set_value(APP_FILTER_VALUE).run()

    def open_panel():
        at.session_state[action.removeprefix("open:")] = True  # as a click on its expander
        return at.run()

    def switch():
        return at.switch_page(f"pages/{page}").run()
    if action.startswith("open:"):
        return open_panel
    return change_filter if action == "filter" else switch


def part_app(n: int, repeats: int, folder: Path | None = None,
             paths: tuple[str, ...] = ("tour", *DIRECT_PAGES), config: str = "production",
             ahead: bool = False) -> dict:
    """Every path of ``paths`` ``repeats`` times, each in a fresh process.

    Why a fresh process per path: on a server the registry and its classified table outlive a
    user (``st.cache_resource``), but every page of a new filter finds Streamlit's caches and the
    registry's selection memo cold. A fresh process reproduces that exactly for every visit after
    the registry is picked (the pick itself pays the opening and the classification, reported on
    its own line), and no cache of an earlier path can leak into a later one, which clearing
    caches by hand inside one process could not promise. Python's imports are the one thing a
    long-running server has warm and a fresh process has not; the app warms the analysis modules
    while it classifies, and the landing visit absorbs the rest.
    """
    folder = folder or registry_folder(n)
    runs = []
    for repeat in range(1, repeats + 1):
        for path in paths:
            machine = machine_speed()  # here, so that its memory is not in the path's peak
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.registry", "--part", "app-once", "--folder",
                 str(folder), "--path", path, "--config", config,
                 *(["--ahead"] if ahead else [])], cwd=ROOT,
                capture_output=True, text=True,
                check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if done.returncode != 0:
                raise SystemExit(f"app path {path} failed:\n{done.stderr[-4000:]}")
            runs.append({"repeat": repeat, "machine": machine,
                         **json.loads(done.stdout.strip().splitlines()[-1])})
    return {"part": "app", "folder": str(folder), "config": config, "runs": runs}


def format_app(report: dict) -> str:
    """The runs as a table (one line per visit and run)."""
    lines = ["run  path            page                                 visit                "
             " wall s  CPU s  counts  levels  samples  scans  SQL  SQL s  parse s  gc s  load"]
    for run in report["runs"]:
        for v in run["visits"]:
            lines.append(f"{run['repeat']:<4} {run['path']:<15} {v['page']:<36} {v['visit']:<20} {v['wall_s']:7.2f} "
                         f"{v['cpu_s']:6.2f} {v['count_queries']:7d} {v['levels_queries']:7d} "
                         f"{v['samples']:8d} {v['selection_scans']:6d} {v['sql_queries']:4d} "
                         f"{v['sql_s']:6.2f} {v['apptest_parse_s']:8.3f} {v['gc_s']:5.2f} "
                         f"{v['load_1min']:5.2f}")
        lines.append(f"     {run['path']} ({run['config']} settings, post-run GC "
                     f"{'on' if run['post_script_gc'] else 'off'}): "
                     f"peak RSS {run['peak_rss_mb']:.0f} MB; {_machine_text(run)}load before "
                     f"{run['load_average_before']}, after {run['load_average_after']}; "
                     f"{run['sidebar_after']}")
    return "\n".join(lines)


def _machine_text(run: dict) -> str:
    machine = run.get("machine")
    if not machine:
        return ""
    return (f"machine before it: Python loop {machine['python_loop_s']:.3f} s, DuckDB group "
            f"{machine['duckdb_group_s']:.3f} s; ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["scale", "equal", "app", "app-once"],
                        default="scale", help="app-once: one path of --part app (its child)")
    parser.add_argument("--n", type=int, default=None,
                        help="patients (scale and app 10M, equal 1M)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None,
                        help="app: a registry folder (Parquet files) instead of the n-patient one")
    parser.add_argument("--path", default=None,
                        help="app: one path (tour, or a page file of DIRECT_PAGES), default all")
    parser.add_argument("--config", choices=sorted(APP_CONFIGS), default="production",
                        help="app: Streamlit settings: production (make serve's, default) or "
                             "default (config.toml only, a plain streamlit run)")
    parser.add_argument("--ahead", action="store_true",
                        help="app: open the registry ahead first, as a make serve worker with "
                             "HER2ER_PREWARM does (the landing then shows what is left)")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    if args.part == "app-once":
        print(json.dumps(app_path(args.folder.resolve(), args.path or "tour", args.config,
                                  ahead=args.ahead), default=str))
        return 0
    if args.part == "app":
        paths = (args.path,) if args.path else ("tour", *DIRECT_PAGES)
        report = part_app(args.n or 10 * BASE_N, args.repeats, args.folder, paths, args.config,
                          args.ahead)
        print(format_app(report), file=sys.stderr)
    elif args.part == "scale":
        report = part_scale(args.n or 10 * BASE_N, args.repeats)
    else:
        report = part_equal(args.n or BASE_N)
    report["load_average_before"] = load
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
