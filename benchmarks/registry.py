"""A registry queried in place: page-equivalent work through DuckDB, and equality with pandas.

Two parts, each in its own process (so that each peak RSS is its own):

``--part scale`` (default 10M patients) writes the benchmark's cached 1M-patient cohort ten
times over (patient IDs made unique) as a folder of Parquet files, with DuckDB alone (no pandas
frame of the registry is ever built), then times what the Survival, Response and Subgroups pages
compute for a registry of the data folder (``ui.py``: the sidebar's flow, the sample of rows,
and the counts-first analyses), cold (first query after opening) and warm, and reports the
process's peak RSS.

``--part equal`` (default 1M patients) computes the same analyses through the registry engine
and through the in-memory engine (pandas rows, as for an upload) and reports the largest
relative difference over every number of every result table.

    python -m benchmarks.registry --part scale --n 10000000
    python -m benchmarks.registry --part equal --n 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def _peak_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["scale", "equal"], default="scale")
    parser.add_argument("--n", type=int, default=None, help="patients (scale 10M, equal 1M)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    if args.part == "scale":
        report = part_scale(args.n or 10 * BASE_N, args.repeats)
    else:
        report = part_equal(args.n or BASE_N)
    report["load_average_before"] = load
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
