"""Time the work each dashboard page triggers, on synthetic cohorts, against R doing the same work.

Usage::

    python -m benchmarks.run [--sizes 10000 100000 1000000] [--repeats 3] [--skip-app] [--no-r]
                             [--out benchmarks/results/latest.json]

For every size n the cohort ``her2er_dash.simulate.trial(n, seed=1, n_studies=20)`` is generated once
and cached as Parquet in ``benchmarks/cache/`` (with a CSV copy of the needed columns for R). Each
task below is timed with ``time.perf_counter`` (median of ``--repeats`` runs); when ``Rscript`` is
present ``benchmarks/r_bench.R`` does the same computations on the same rows, times them with
``proc.time`` and writes its key numbers (ORs, HRs, chi-square statistics, p-values, counts), which
are checked against ours (relative difference < 1e-6). Any disagreement is printed and the exit
status is non-zero; a missed speed target is reported but does not fail the run.

The process exits 0 when every task ran and ours and R agree.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / "cache"
DEFAULT_OUT = HERE / "results" / "latest.json"
R_SCRIPT = HERE / "r_bench.R"

SEED = 1
N_STUDIES = 20
TIME, EVENT = "efs_months", "efs_event"
#: The forest plots and the meta-analysis compare ER-positive with ER-negative HER2+ patients.
EXPOSURE, EXPOSURE_REF = "er_status", "negative"
#: Explicit references so that our dummy coding and R's factor coding cannot drift apart.
ARM_REF = "Chemo + trastuzumab"
ER_CATEGORY_REF = "ER-negative"
#: Eight subgroup variables for the forest plots. None is nested in the exposure (er_category and
#: hr_status are, which would leave one exposure level inside some subgroup levels).
SUBGROUPS = (
    "arm",
    "study",
    "grade",
    "t_stage",
    "n_stage",
    "pr_status",
    "age_group",
    "her2_ihc_group",
)
AT_RISK_TIMES = tuple(float(t) for t in range(0, 121, 12))
#: Points of the 101-point dose-response grid compared with R's predict().
DOSE_GRID_INDEX = (0, 25, 50, 75, 100)
R_COLUMNS = (
    "her2_status",
    "er_status",
    "er_category",
    "er_percent",
    "age",
    "pcr",
    TIME,
    EVENT,
    *SUBGROUPS,
)
#: Agreement rule: relative difference below REL_TOL, or an absolute difference below ABS_FLOOR
#: for quantities that are essentially zero (p-values < 1e-12, where both programs lose relative
#: precision in the tail of the distribution).
REL_TOL = 1e-6
ABS_FLOOR = 1e-12
PAGES = ("Response", "Survival", "Subgroups", "Evidence")

Log = Callable[[str], None]


def _log(message: str) -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------------------------
# Cohorts
# ------------------------------------------------------------------------------------------------


def cohort_path(n: int) -> Path:
    """Cache file of the n-patient cohort, keyed on the simulator's source (a changed generator
    must not be benchmarked on stale data)."""
    source = ROOT / "her2er_dash" / "simulate.py"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:10]
    return CACHE / f"trial_n{n}_seed{SEED}_studies{N_STUDIES}_{digest}.parquet"


def load_cohort(n: int, *, log: Log = _log) -> pd.DataFrame:
    """The synthetic cohort of ``n`` patients (simulated once, then read from the Parquet cache)."""
    path = cohort_path(n)
    if path.exists():
        return pd.read_parquet(path)
    from her2er_dash import simulate

    log(f"simulating n = {n:,} (seed {SEED}, {N_STUDIES} studies) -> {path.relative_to(ROOT)}")
    df = simulate.trial(n, seed=SEED, n_studies=N_STUDIES)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)
    return pd.read_parquet(path)


def _as_labels(values: pd.Series) -> pd.Series:
    """Numeric codes (grade 1/2/3) as text labels, so that ours and R name the levels alike."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.round().astype("Int64").astype("string").astype(object)
    return values


def prepare(cohort: pd.DataFrame) -> pd.DataFrame:
    """Add the two derived subgroup variables used by the forest plots (age group, HER2 IHC),
    categorical like the app's grouping columns."""
    out = cohort.copy()
    out["age_group"] = pd.cut(
        out["age"], [-np.inf, 49.999999, 64.999999, np.inf], labels=["<50", "50-64", ">=65"]
    )
    ihc = pd.to_numeric(out["her2_ihc"], errors="coerce").round()
    labels = ["IHC 0", "IHC 1+", "IHC 2+", "IHC 3+"]
    codes = np.where(ihc.isin([0, 1, 2, 3]), ihc.fillna(-1), -1).astype(int)
    out["her2_ihc_group"] = pd.Categorical.from_codes(codes, labels)
    for column in ("grade", "t_stage", "n_stage"):
        out[column] = _as_labels(out[column])
    return out


def r_input_csv(n: int, cohort: pd.DataFrame) -> Path:
    """CSV of the columns R needs, with ER categories exactly as our filter derives them."""
    path = cohort_path(n).with_suffix(".csv")
    if path.exists() and path.stat().st_mtime >= cohort_path(n).stat().st_mtime:
        return path
    from her2er_dash.classify import classify_cohort
    from her2er_dash.filters import CohortFilter

    classified = classify_cohort(cohort, er_cutpoints=CohortFilter().cutpoints(cohort))
    frame = classified[list(R_COLUMNS)]
    tmp = path.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False, na_rep="NA")
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------------------------
# Our tasks: `compute` is timed, `values` extracts the numbers compared with R (not timed)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    name: str
    page: str
    compute: Callable[[dict], object]
    values: Callable[[object], dict[str, float]]
    in_r: bool = True


def _classify(ctx: dict):
    # The app classifies once per cohort and cut-point setting (ui.analysis._classified) ...
    from her2er_dash.filters import CohortFilter

    ctx["classified"] = CohortFilter().classify(ctx["cohort"])
    return ctx["classified"]


def _filter_her2(ctx: dict):
    # ... and on a filter change only re-selects rows (ui.analysis._filtered).
    from her2er_dash.filters import CohortFilter

    result = CohortFilter(her2_status=("positive",)).select(ctx["classified"])
    ctx["data"] = result.data
    return result


def _pcr_rates(ctx: dict):
    from her2er_dash import response

    return response.pcr_rates(ctx["data"], ["er_category", "arm"])


def _pcr_rates_values(rates: pd.DataFrame) -> dict[str, float]:
    out = {}
    for row in rates.itertuples(index=False):
        key = f"{row.er_category}|{row.arm}"
        for column in ("n", "pcr", "ci_low", "ci_high"):
            out[f"{column}[{key}]"] = float(getattr(row, column))
    return out


def _logistic(ctx: dict):
    from her2er_dash import response

    return response.logistic(
        ctx["data"], ["er_percent", "arm", "age"], reference={"arm": ARM_REF}
    )


def _term_values(table: pd.DataFrame) -> dict[str, float]:
    out = {}
    for row in table.itertuples(index=False):
        out[f"coef[{row.term}]"] = float(row.coef)
        out[f"se[{row.term}]"] = float(row.se)
        out[f"p[{row.term}]"] = float(row.p)
    return out


def _logistic_values(fit) -> dict[str, float]:
    return {**_term_values(fit.table), "lr_statistic": float(fit.lr_statistic)}


def _dose_response(ctx: dict):
    from her2er_dash import response

    return response.er_dose_response(ctx["data"], er="er_percent", df_spline=3)


def _dose_values(dose) -> dict[str, float]:
    out = {"p_overall": dose.p_overall, "p_nonlinear": dose.p_nonlinear}
    for i in DOSE_GRID_INDEX:
        out[f"probability[{i}]"] = float(dose.curve["probability"].iloc[i])
    return out


def _kaplan_meier(ctx: dict):
    from her2er_dash import survival

    km = survival.kaplan_meier(ctx["data"], TIME, EVENT, by="arm", conf_type="log-log")
    at_risk = km.at_risk(list(AT_RISK_TIMES))
    ctx["km"] = km
    return km, at_risk


def _km_values(result) -> dict[str, float]:
    km, at_risk = result
    out = {}
    for row in km.medians.itertuples(index=False):
        for column in ("median", "ci_low", "ci_high"):
            out[f"{column}[{row.group}]"] = float(getattr(row, column))
    for row in at_risk.itertuples(index=False):
        out[f"at_risk[{row.group}|{row.time:g}]"] = float(row.n_at_risk)
    return out


def _logrank(ctx: dict):
    from her2er_dash import survival

    return survival.logrank(ctx["data"], TIME, EVENT, "arm")


def _logrank_values(test) -> dict[str, float]:
    out = {"statistic": float(test.statistic)}
    for row in test.table.itertuples(index=False):
        out[f"expected[{row.group}]"] = float(row.expected)
    return out


def _cox(ctx: dict):
    from her2er_dash import survival

    return survival.cox(
        ctx["data"],
        TIME,
        EVENT,
        ["er_category", "arm", "age"],
        reference={"er_category": ER_CATEGORY_REF, "arm": ARM_REF},
    )


def _cox_values(fit) -> dict[str, float]:
    out = {**_term_values(fit.table), "lr_statistic": float(fit.lr_statistic)}
    for row in fit.ph_test.itertuples(index=False):
        out[f"zph_chisq[{row.term}]"] = float(row.chisq)
    return out


def _km_figure(ctx: dict):
    from her2er_dash import figures

    fig = figures.km_figure(ctx["km"], at_risk_times=list(AT_RISK_TIMES))
    return len(fig.to_json())


def _forest(outcome) -> Callable[[dict], object]:
    def compute(ctx: dict):
        from her2er_dash import subgroups

        return subgroups.forest(
            ctx["data"],
            exposure=EXPOSURE,
            subgroups=list(SUBGROUPS),
            outcome=outcome,
            reference=EXPOSURE_REF,
        )

    return compute


def _forest_values(table: pd.DataFrame) -> dict[str, float]:
    out = {}
    for row in table.itertuples(index=False):
        if row.subgroup == "Overall":
            out["estimate[Overall]"] = float(row.estimate)
            continue
        out[f"estimate[{row.subgroup}|{row.level}]"] = float(row.estimate)
        out[f"p_interaction[{row.subgroup}]"] = float(row.p_interaction)
    return out


def _meta(ctx: dict):
    from her2er_dash import meta

    return meta.by_study(
        ctx["data"],
        "study",
        analysis="pcr_or",
        exposure=EXPOSURE,
        reference=EXPOSURE_REF,
        method="REML",
    )


def _meta_values(result) -> dict[str, float]:
    return {
        "estimate": float(result.estimate),
        "se": float(result.se),
        "tau2": float(result.tau2),
        "q": float(result.q),
    }


TASKS: tuple[Task, ...] = (
    Task("classify_er", "Cohort", _classify, lambda r: {}, in_r=False),
    Task("filter_her2", "Response", _filter_her2, lambda r: {"n": float(r.n)}),
    Task("pcr_rates", "Response", _pcr_rates, _pcr_rates_values),
    Task("logistic", "Response", _logistic, _logistic_values),
    Task("er_dose_response", "Response", _dose_response, _dose_values),
    Task("kaplan_meier", "Survival", _kaplan_meier, _km_values),
    Task("logrank", "Survival", _logrank, _logrank_values),
    Task("cox_ph", "Survival", _cox, _cox_values),
    Task("km_figure", "Survival", _km_figure, lambda size: {}, in_r=False),
    Task("forest_pcr", "Subgroups", _forest("pcr"), _forest_values),
    Task("forest_efs", "Subgroups", _forest((TIME, EVENT)), _forest_values),
    Task("meta_by_study", "Evidence", _meta, _meta_values),
)
TASK_NAMES = tuple(t.name for t in TASKS)


@dataclass(frozen=True)
class OursRun:
    seconds: dict[str, float]
    values: dict[str, dict[str, float]]
    km_payload_bytes: int
    figure_payload_bytes: dict[str, int]


#: The figure each page draws from a task's result, built as the pages build them.
FIGURES: dict[str, Callable[[dict, dict], object]] = {
    "pcr_rates": lambda r, ctx: _figures().rates_figure(r["pcr_rates"], x="er_category",
                                                         color="arm"),
    "er_dose_response": lambda r, ctx: _figures().dose_response_figure(r["er_dose_response"]),
    "kaplan_meier": lambda r, ctx: _figures().km_figure(ctx["km"],
                                                         at_risk_times=list(AT_RISK_TIMES)),
    "forest_pcr": lambda r, ctx: _figures().forest_figure(r["forest_pcr"], measure="OR"),
    "forest_efs": lambda r, ctx: _figures().forest_figure(r["forest_efs"], measure="HR"),
    "meta_by_study": lambda r, ctx: _figures().meta_forest_figure(r["meta_by_study"]),
}  # fmt: skip


def _figures():
    from her2er_dash import figures

    return figures


def run_ours(cohort: pd.DataFrame, *, repeats: int, log: Log = _log) -> OursRun:
    """Run every task ``repeats`` times in page order; median seconds, the compared numbers and
    the JSON size of every page figure."""
    ctx: dict = {"cohort": cohort}
    seconds, values, results = {}, {}, {}
    for task in TASKS:
        times = []
        for _ in range(max(int(repeats), 1)):
            gc.collect()
            start = time.perf_counter()
            result = task.compute(ctx)
            times.append(time.perf_counter() - start)
        seconds[task.name] = median(times)
        values[task.name] = task.values(result)
        results[task.name] = result
        log(f"  ours {task.name:<18} {seconds[task.name]:9.4f} s")
    payloads = {name: len(build(results, ctx).to_json()) for name, build in FIGURES.items()}
    return OursRun(seconds, values, int(results["km_figure"]), payloads)


# ------------------------------------------------------------------------------------------------
# R
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RRun:
    seconds: dict[str, float]
    values: dict[str, dict[str, float]]
    version: str


def rscript() -> str | None:
    """Path of Rscript when R with survival and metafor is installed, else None."""
    exe = shutil.which("Rscript")
    if exe is None:
        return None
    probe = subprocess.run(
        [exe, "-e", "library(survival); library(metafor); cat(R.version.string)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return exe if probe.returncode == 0 else None


def _r_cache_path(csv: Path, repeats: int) -> Path:
    """R's output depends only on the script, the input CSV and the repeats: cache it by those."""
    digest = hashlib.sha256(R_SCRIPT.read_bytes()).hexdigest()[:12]
    return csv.with_name(f"{csv.stem}.r{repeats}.{digest}.{int(csv.stat().st_mtime)}.out.csv")


def run_r(
    csv: Path, n: int, *, repeats: int, reuse: bool = False, timeout: float = 7200
) -> RRun | None:
    """Run ``r_bench.R`` on the CSV; None when R is not installed.

    ``reuse=True`` reads a previous output of the same script on the same CSV instead (R's
    numbers and times do not depend on our code), so re-running the benchmark after a change to
    her2er_dash does not spend minutes re-timing R.
    """
    exe = rscript()
    if exe is None:
        return None
    cached = _r_cache_path(csv, repeats)
    if not (reuse and cached.exists()):
        tmp = cached.with_suffix(".tmp")
        run = subprocess.run(
            [exe, str(R_SCRIPT), str(csv), str(n), str(repeats), str(tmp)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if run.returncode != 0:
            raise RuntimeError(f"benchmarks/r_bench.R failed:\n{run.stderr[-3000:]}")
        tmp.replace(cached)
    table = pd.read_csv(cached, keep_default_na=False, na_values=["NA", "NaN"])
    seconds, values, version = {}, {}, ""
    for row in table.itertuples(index=False):
        if row.task == "_info":
            continue
        if row.key == "seconds":
            seconds[row.task] = float(row.value)
        else:
            values.setdefault(row.task, {})[row.key] = float(row.value)
    version_rows = table[(table["task"] == "_info") & (table["key"] == "version")]
    if len(version_rows):
        version = str(version_rows["value"].iloc[0])
    return RRun(seconds, values, version)


#: Justified exception to REL_TOL: a Cox likelihood-ratio statistic is the difference of two
#: partial log-likelihoods of magnitude ~1e6 at a million patients, each a float64 sum over a
#: million risk sets. Both programs (and a long-double recomputation) agree only to ~1e-6
#: absolute on that difference, which moves an interaction p-value by up to ~1e-4 relative.
LR_P_REL_TOL = 1e-4
LR_P_MIN_N = 500_000


def _close(ours: float, theirs: float, rel_tol: float = REL_TOL) -> tuple[bool, float]:
    diff = abs(ours - theirs)
    scale = max(abs(ours), abs(theirs))
    rel = diff / scale if scale > 0 else 0.0
    return (rel < rel_tol or diff < ABS_FLOOR), rel


def _tolerance(task: str, key: str, n: int | None) -> float:
    if task == "forest_efs" and key.startswith("p_interaction") and (n or 0) >= LR_P_MIN_N:
        return LR_P_REL_TOL
    return REL_TOL


def compare(
    ours: dict[str, dict[str, float]], theirs: dict[str, dict[str, float]], n: int | None = None
) -> pd.DataFrame:
    """One row per number R produced: ours, R's, relative difference and a status.

    status is "ok", "MISMATCH", "MISSING" (R has it, we do not) or "declined" (we return NaN where
    R gives a number: a subgroup level our forest refuses to estimate, e.g. separation).
    """
    rows = []
    for task, numbers in theirs.items():
        mine = ours.get(task, {})
        for key, r_value in numbers.items():
            if key not in mine:
                rows.append((task, key, math.nan, r_value, math.nan, "MISSING"))
                continue
            value = mine[key]
            if not math.isfinite(r_value) and not math.isfinite(value):
                rows.append((task, key, value, r_value, 0.0, "ok"))
            elif not math.isfinite(value):
                rows.append((task, key, value, r_value, math.nan, "declined"))
            else:
                ok, rel = _close(value, r_value, _tolerance(task, key, n))
                rows.append((task, key, value, r_value, rel, "ok" if ok else "MISMATCH"))
    columns = ["task", "key", "ours", "r", "rel_diff", "status"]
    return pd.DataFrame(rows, columns=columns)


def failures(agreement: pd.DataFrame) -> pd.DataFrame:
    return agreement[agreement["status"].isin(["MISMATCH", "MISSING"])]


# ------------------------------------------------------------------------------------------------
# One size, the table, the targets
# ------------------------------------------------------------------------------------------------


def run_size(
    n: int,
    *,
    repeats: int,
    use_r: bool = True,
    reuse_r: bool = False,
    r_repeats: int | None = None,
    log: Log = _log,
) -> dict:
    """Benchmark one cohort size: per-task rows, KM payload size and the agreement with R."""
    cohort = prepare(load_cohort(n, log=log))
    log(f"n = {n:,}: {len(cohort):,} patients; ours ({repeats} repeat(s))")
    ours = run_ours(cohort, repeats=repeats, log=log)
    r_run = None
    if use_r and rscript() is not None:
        csv = r_input_csv(n, cohort)
        del cohort
        gc.collect()
        r_repeats = repeats if r_repeats is None else r_repeats
        log(f"n = {n:,}: R ({r_repeats} repeat(s))")
        r_run = run_r(csv, n, repeats=r_repeats, reuse=reuse_r)
    rows = []
    for task in TASKS:
        r_s = r_run.seconds.get(task.name, math.nan) if r_run else math.nan
        ours_s = ours.seconds[task.name]
        rows.append(_row(task.name, task.page, n, ours_s, r_s if task.in_r else math.nan))
    agreement = compare(ours.values, r_run.values, n) if r_run else _empty_agreement()
    return {
        "n": n,
        "rows": rows,
        "pages": page_totals(rows),
        "km_payload_bytes": ours.km_payload_bytes,
        "figure_payload_bytes": ours.figure_payload_bytes,
        "agreement": agreement,
        "r_version": r_run.version if r_run else None,
        "ours_values": ours.values,
    }


def _empty_agreement() -> pd.DataFrame:
    return pd.DataFrame(columns=["task", "key", "ours", "r", "rel_diff", "status"])


def _row(task: str, page: str, n: int, ours_s: float, r_s: float) -> dict:
    ratio = ours_s / r_s if r_s and math.isfinite(r_s) and r_s > 0 else math.nan
    return {"task": task, "page": page, "n": n, "ours_s": ours_s, "r_s": r_s, "ratio": ratio}


def page_totals(rows: list[dict]) -> list[dict]:
    """Sum of the tasks of each page. The R total covers the tasks R does (not the figure); the
    ratio compares it with our time for those same tasks."""
    out = []
    for page in PAGES:
        mine = [r for r in rows if r["page"] == page]
        ours_total = sum(r["ours_s"] for r in mine)
        paired = [r for r in mine if math.isfinite(r["r_s"])]
        r_total = sum(r["r_s"] for r in paired) if paired else math.nan
        ours_paired = sum(r["ours_s"] for r in paired)
        row = _row(f"PAGE {page}", page, mine[0]["n"], ours_total, r_total)
        row["ratio"] = ours_paired / r_total if paired and r_total > 0 else math.nan
        out.append(row)
    return out


def format_table(sizes: list[dict]) -> str:
    """The one table: task, n, ours_s, R_s, ratio (ours/R), page totals after each size."""
    lines = [f"{'task':<22}{'n':>10}{'ours_s':>11}{'R_s':>11}{'ratio':>9}"]
    for size in sizes:
        for row in [*size["rows"], *size["pages"]]:
            lines.append(
                f"{row['task']:<22}{row['n']:>10,}{_fmt(row['ours_s'], 4):>11}"
                f"{_fmt(row['r_s'], 4):>11}{_fmt(row['ratio'], 3):>9}"
            )
        lines.append("")
    return "\n".join(lines)


def _fmt(value: float, digits: int) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _target(name: str, n: int | None, value: float, limit: float) -> dict:
    met = bool(math.isfinite(value) and value <= limit)
    return {"target": name, "n": n, "value": value, "limit": limit, "met": met}


def evaluate_targets(sizes: list[dict], peak_rss_mb: float | None, cold_start_s: float | None):
    """The issue's targets for the sizes that were run (1M and 100k rules only at those sizes)."""
    targets = []
    limits_1m = {"Response": 1.0, "Survival": 1.0, "Subgroups": 10.0}
    for size in sizes:
        n = size["n"]
        pages = {p["page"]: p for p in size["pages"]}
        if n >= 1_000_000:
            for page, limit in limits_1m.items():
                targets.append(_target(f"{page} page seconds", n, pages[page]["ours_s"], limit))
            for row in size["rows"]:
                if math.isfinite(row["r_s"]):
                    targets.append(_target(f"{row['task']} ours/R", n, row["ratio"], 0.5))
        if n == 100_000:
            for page in PAGES:
                targets.append(_target(f"{page} page seconds", n, pages[page]["ours_s"], 0.3))
        targets.append(_target("KM figure payload KB", n, size["km_payload_bytes"] / 1000, 500))
    if peak_rss_mb is not None:
        targets.append(_target("peak RSS MB (largest n)", None, peak_rss_mb, 1500))
    if cold_start_s is not None:
        targets.append(_target("app cold start seconds", None, cold_start_s, 3.0))
    return targets


# ------------------------------------------------------------------------------------------------
# Peak memory: a fresh process that holds the cohort through every page
# ------------------------------------------------------------------------------------------------


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    """This process's RSS high-water mark. VmHWM, because ru_maxrss survives fork + exec on Linux
    and would report the parent's peak; ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_probe(n: int) -> dict:
    """Load the cached cohort, run every task once, report RSS (run in its own process)."""
    baseline = _peak_rss_mb()
    cohort = prepare(load_cohort(n, log=lambda m: None))
    after_load = _rss_now_mb()
    peaks = {}
    ctx: dict = {"cohort": cohort}
    for task in TASKS:
        task.compute(ctx)
        peaks[task.name] = _peak_rss_mb()
    return {
        "n": n,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_after_load_mb": after_load,
        "rss_at_end_mb": _rss_now_mb(),
        "peak_before_load_mb": baseline,
        "peak_after_task_mb": peaks,
        "cohort_memory_mb": float(cohort.memory_usage(deep=True).sum() / 2**20),
    }


def measure_peak_rss(n: int) -> dict:
    """Run :func:`rss_probe` in a child process so that earlier sizes do not inflate the peak."""
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--rss-probe", str(n)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if run.returncode != 0:
        raise RuntimeError(f"RSS probe failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="runs per task (median reported)")
    parser.add_argument(
        "--r-repeats",
        type=int,
        default=None,
        help="runs per task in R (default: --repeats); R's subgroup loops take minutes at 1M",
    )
    parser.add_argument("--skip-app", action="store_true", help="do not measure app cold start")
    parser.add_argument("--no-r", action="store_true", help="do not run the R comparison")
    parser.add_argument(
        "--reuse-r",
        action="store_true",
        help="reuse R's cached output for the same r_bench.R, cohort and repeats",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--rss-probe", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _machine(r_version: str | None) -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "r": r_version,
    }


def _json_ready(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def _report_agreement(sizes: list[dict], log: Log) -> pd.DataFrame:
    frames = [s["agreement"].assign(n=s["n"]) for s in sizes if len(s["agreement"])]
    if not frames:
        log("R comparison: not run (Rscript with survival + metafor not found, or --no-r)")
        return _empty_agreement()
    agreement = pd.concat(frames, ignore_index=True)
    bad = failures(agreement)
    declined = agreement[agreement["status"] == "declined"]
    max_rel = float(agreement["rel_diff"].max(skipna=True))
    log(
        f"R comparison: {int((agreement['status'] == 'ok').sum())} numbers agree "
        f"(max relative difference {max_rel:.2e}); {len(declined)} declined by ours; "
        f"{len(bad)} disagree"
    )
    if len(bad):
        with pd.option_context("display.width", 200, "display.max_rows", 200):
            log("MISMATCHES (ours vs R):\n" + bad.to_string(index=False))
    return agreement


def main(argv: list[str] | None = None) -> int:
    from benchmarks import run_as_the_app_runs

    run_as_the_app_runs("benchmarks.run", argv)  # as her2er-explorer starts the app
    args = _parse(argv)
    if args.rss_probe is not None:
        print(json.dumps(rss_probe(args.rss_probe)))
        return 0
    sizes = [
        run_size(
            n,
            repeats=args.repeats,
            use_r=not args.no_r,
            reuse_r=args.reuse_r,
            r_repeats=args.r_repeats,
        )
        for n in sorted(args.sizes)
    ]
    print(format_table(sizes), flush=True)
    agreement = _report_agreement(sizes, _log)
    rss = measure_peak_rss(max(args.sizes))
    _log(f"peak RSS holding n = {rss['n']:,} through all pages: {rss['peak_rss_mb']:.0f} MB")
    for size in sizes:
        sizes_kb = ", ".join(f"{k} {v / 1000:.1f}" for k, v in size["figure_payload_bytes"].items())
        _log(f"figure JSON payloads at n = {size['n']:,} (KB): {sizes_kb}")
    cold = None
    if not args.skip_app:
        from benchmarks.coldstart import measure_ways

        cold = measure_ways()
        _log(f"app cold start (median of alternating runs): {cold['median_s']}")
    targets = evaluate_targets(sizes, rss["peak_rss_mb"], cold["seconds"] if cold else None)
    for t in targets:
        _log(f"  {'met   ' if t['met'] else 'MISSED'} {t['target']} (n={t['n']}): "
             f"{t['value']:.3f} <= {t['limit']}")
    report = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": _machine(next((s["r_version"] for s in sizes if s["r_version"]), None)),
        "config": {"sizes": sorted(args.sizes), "repeats": args.repeats,
                   "r_repeats": args.r_repeats or args.repeats, "seed": SEED,
                   "n_studies": N_STUDIES, "exposure": EXPOSURE, "subgroups": list(SUBGROUPS)},
        "rows": [r for s in sizes for r in s["rows"]],
        "pages": [p for s in sizes for p in s["pages"]],
        "km_payload_bytes": {str(s["n"]): s["km_payload_bytes"] for s in sizes},
        "figure_payload_bytes": {str(s["n"]): s["figure_payload_bytes"] for s in sizes},
        "peak_rss": rss,
        "cold_start": cold,
        "agreement": {
            "compared": int(len(agreement)),
            "max_rel_diff": float(agreement["rel_diff"].max(skipna=True)) if len(agreement) else None,
            "declined": int((agreement["status"] == "declined").sum()) if len(agreement) else 0,
            "failures": failures(agreement).to_dict("records") if len(agreement) else [],
        },
        "targets": targets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_json_ready(report), indent=2) + "\n")
    _log(f"wrote {args.out}")
    return 1 if len(agreement) and len(failures(agreement)) else 0


if __name__ == "__main__":
    sys.exit(main())
