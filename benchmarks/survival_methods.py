"""Time the competing-risk and adjusted-curve methods at registry scale, beside R.

    python -m benchmarks.survival_methods --n 100000            # ours, and R when installed
    python -m benchmarks.survival_methods --n 100000 --no-r

The cohort is generated here (seeded; not app data): three groups, three covariates, death from
the cause of interest, a competing cause, censoring, times in days (some ties). Each task is timed
once per repeat with ``time.perf_counter`` after one warm-up call (median reported); R runs afterwards, on the same rows,
with ``proc.time()``. ``cmprsk::crr`` is quadratic in the number of patients, so R's Fine-Gray is
timed on the first ``--r-fine-gray-n`` rows only (reported as such). Results go to
``benchmarks/results/survival_methods.json``. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from her2er_dash import survival as sv

RESULTS = Path(__file__).resolve().parent / "results" / "survival_methods.json"

R_SCRIPT = r"""
suppressPackageStartupMessages({library(survival); library(cmprsk)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
n_fg <- as.integer(args[2])
timed <- function(expr) { t <- proc.time()[["elapsed"]]; force(expr); proc.time()[["elapsed"]] - t }
out <- c(
  cumulative_incidence = timed(cuminc(d$time, d$status, d$group)),
  iptw_kaplan_meier = timed({
    ps <- fitted(glm(exposed ~ age + grade + size, data = d, family = binomial))
    w <- ifelse(d$exposed == 1, mean(d$exposed) / ps, (1 - mean(d$exposed)) / (1 - ps))
    survfit(Surv(time, status == 1) ~ exposed, data = d, weights = w)
  }),
  fine_gray = timed({
    s <- d[seq_len(n_fg), ]
    crr(s$time, s$status, model.matrix(~ age + grade + size, s)[, -1])
  })
)
write.csv(data.frame(task = names(out), seconds = unname(out)), args[3], row.names = FALSE)
"""


def cohort(n: int, seed: int = 14) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 11, n).round(1)
    grade = rng.choice(["1", "2", "3"], n, p=[0.2, 0.4, 0.4])
    size = rng.gamma(2.0, 12.0, n).round(0)
    group = rng.choice(["A", "B", "C"], n)
    exposed = (rng.random(n) < 1 / (1 + np.exp(-(-0.5 + 0.04 * (age - 60) + 0.8 * (grade == "3"))))
               ).astype(int)  # fmt: skip
    lp = 0.02 * (age - 60) + 0.6 * (grade == "3") + 0.01 * size - 0.2 * exposed
    cancer = rng.exponential(3000 / np.exp(lp))
    other = rng.exponential(4000 / np.exp(0.05 * (age - 60)))
    follow = rng.uniform(365, 5000, n)
    times = np.stack([follow, cancer, other], axis=1)
    return pd.DataFrame({
        "time": np.ceil(times.min(axis=1)), "status": times.argmin(axis=1), "group": group,
        "age": age, "grade": grade, "size": size, "exposed": exposed,
        "event": (times.argmin(axis=1) == 1).astype(int),
        "treated": np.where(exposed == 1, "yes", "no"),
    })  # fmt: skip


def tasks(df: pd.DataFrame) -> dict:
    return {
        "cumulative_incidence": lambda: sv.cumulative_incidence(df, "time", "status", by="group"),
        "fine_gray": lambda: sv.fine_gray(df, "time", "status", ["age", "grade", "size"]),
        "iptw_kaplan_meier": lambda: sv.iptw_kaplan_meier(
            df, "time", "event", "treated", ["age", "grade", "size"], reference="no"
        ),
        "logrank_strata_fh": lambda: sv.logrank(
            df, "time", "event", "group", strata="grade", rho=1.0
        ),
    }


def time_ours(df: pd.DataFrame, repeats: int) -> dict[str, float]:
    out = {}
    for name, call in tasks(df).items():
        call()  # warm-up: the app has its imports done before a user asks for anything
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            runs.append(time.perf_counter() - start)
        out[name] = statistics.median(runs)
    return out


def time_r(df: pd.DataFrame, n_fine_gray: int) -> dict[str, float] | None:
    exe = shutil.which("Rscript")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        data, script, result = Path(tmp, "d.csv"), Path(tmp, "b.R"), Path(tmp, "r.csv")
        df.to_csv(data, index=False)
        script.write_text(R_SCRIPT)
        run = subprocess.run([exe, str(script), str(data), str(n_fine_gray), str(result)],
                             capture_output=True, text=True, timeout=3600)  # fmt: skip
        if run.returncode != 0:
            print(run.stderr[-2000:])
            return None
        table = pd.read_csv(result)
    return dict(zip(table["task"], table["seconds"], strict=True))


def main(argv: list[str] | None = None) -> None:
    from benchmarks import run_as_the_app_runs

    run_as_the_app_runs("benchmarks.survival_methods", argv)  # numpy settings of the served app
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--r-fine-gray-n", type=int, default=10_000)
    args = parser.parse_args(argv)
    df = cohort(args.n)
    ours = time_ours(df, args.repeats)
    theirs = None if args.no_r else time_r(df, min(args.r_fine_gray_n, args.n))
    rows = []
    for name, seconds in ours.items():
        r = (theirs or {}).get(name)
        note = f" (R on {min(args.r_fine_gray_n, args.n):,} rows)" if name == "fine_gray" and r else ""
        rows.append({"task": name, "ours_s": round(seconds, 4),
                     "r_s": None if r is None else round(r, 3), "note": note})  # fmt: skip
        print(f"{name:24s} ours {seconds:8.3f} s   R {'—' if r is None else f'{r:8.3f} s'}{note}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "n": args.n, "repeats": args.repeats, "machine": platform.platform(),
        "python": platform.python_version(), "tasks": rows,
    }, indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
