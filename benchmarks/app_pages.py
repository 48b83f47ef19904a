"""The whole app at registry scale: upload a synthetic cohort, then time every page.

Complements ``benchmarks.run`` (which times the analysis work alone) with what a user waits for
in the app: Streamlit's script reruns, widget options, caching and figure building included. It
drives the app in-process with Streamlit's AppTest (no browser), uploads the benchmark's cached
n-patient cohort as Parquet, and reports per page: the first visit (analyses computed; the first
page also pays one-time imports), a rerun with nothing changed (what a click costs once results
are cached), and a rerun after one more sidebar filter criterion (everything recomputed).

    python -m benchmarks.app_pages --n 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import time

from streamlit.testing.v1 import AppTest

from benchmarks.run import ROOT

PAGES = ("2_Response.py", "3_Survival.py", "4_Subgroups.py", "5_Evidence.py", "1_Cohort.py")
#: One more sidebar criterion per page (cumulative, so every filter state is new to the caches).
FILTER_STEPS = (
    ("f_her2", ["positive"]),
    ("f_t", ["T1", "T2", "T3"]),
    ("f_n", ["N0", "N1", "N2"]),
    ("f_pr", ["negative", "positive"]),
    ("f_arm", ["Chemo + trastuzumab", "Chemo + trastuzumab + pertuzumab"]),
)
#: Visited after the timed pages (no filter step), so that the memory peak covers every page.
OTHER_PAGES = ("7_Subsets.py", "6_Methods.py")
TIMEOUT = 900


def _status_mb(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process, in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Peaks:
    """The process's peak RSS per stage and over the whole run.

    Linux resets ``VmHWM`` to the current RSS when "5" is written to ``/proc/self/clear_refs``
    (Linux >= 4.0), so each stage (a page's visits) gets its own peak; the whole run's peak is
    the largest of them. Where the reset is not allowed, stages report the running peak.
    """

    def __init__(self):
        self.overall = _status_mb("VmHWM")

    def stage(self) -> float:
        """The peak since the previous call, which starts the next stage."""
        peak = _status_mb("VmHWM")
        self.overall = max(self.overall, peak)
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass
        return peak


def _timed(action) -> tuple[AppTest, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def _upload_bytes(n: int) -> bytes:
    """The cached cohort as Parquet bytes (read from the cache file: no frame is kept)."""
    from benchmarks.run import cohort_path

    if not cohort_path(n).exists():  # simulated and cached in a child, so no frame stays here
        import subprocess
        import sys

        code = f"from benchmarks.run import load_cohort; load_cohort({int(n)})"
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return cohort_path(n).read_bytes()


def measure(n: int) -> dict:
    payload = _upload_bytes(n)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    peaks = Peaks()
    rss = {"before_upload_mb": _status_mb("VmRSS"), "peak_before_upload_mb": peaks.stage()}
    app.file_uploader(key="upload_files").set_value(
        ("registry.parquet", payload, "application/octet-stream"))
    del payload  # the uploader holds the bytes now, as a browser upload would
    app, load_s = _timed(app.run)
    rss["after_upload_mb"] = _status_mb("VmRSS")
    rss["peak_of_upload_mb"] = peaks.stage()
    rss["peak_after_upload_mb"] = peaks.overall
    errors = [e.value for e in app.error] + [e.value for e in app.exception]
    pages = {}
    for page, (key, value) in zip(PAGES, FILTER_STEPS, strict=True):
        app, first_s = _timed(app.switch_page(f"pages/{page}").run)
        app, rerun_s = _timed(app.run)
        app, filter_s = _timed(app.sidebar.multiselect(key=key).set_value(value).run)
        errors += [e.value for e in app.error] + [e.value for e in app.exception]
        name = page.split("_", 1)[1].removesuffix(".py")
        pages[name] = {"first_s": first_s, "rerun_s": rerun_s, "filter_change_s": filter_s,
                       "n_selected": app.sidebar.info[0].value.split(" of ")[0],
                       "rss_mb": _status_mb("VmRSS"), "page_peak_mb": peaks.stage(),
                       "peak_mb": peaks.overall}
    for page in OTHER_PAGES:
        app, first_s = _timed(app.switch_page(f"pages/{page}").run)
        errors += [e.value for e in app.error] + [e.value for e in app.exception]
        name = page.split("_", 1)[1].removesuffix(".py")
        pages[name] = {"first_s": first_s, "rss_mb": _status_mb("VmRSS"),
                       "page_peak_mb": peaks.stage(), "peak_mb": peaks.overall}
    peaks.stage()
    rss["peak_mb"] = peaks.overall
    rss["at_end_mb"] = _status_mb("VmRSS")
    return {"n": n, "upload_and_load_s": load_s, "pages": pages, "rss": rss, "errors": errors,
            "load_average": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="cohort size (default 1M)")
    args = parser.parse_args(argv)
    from benchmarks import run_as_the_app_runs

    run_as_the_app_runs("benchmarks.app_pages", argv)  # as her2er-explorer starts the app
    load_before = os.getloadavg()
    report = measure(args.n)
    report["load_average_before"] = load_before
    print(f"n = {report['n']:,}: upload + load {report['upload_and_load_s']:.2f} s "
          f"(load average before {load_before[0]:.2f}, after {report['load_average'][0]:.2f})")
    for page, times in report["pages"].items():
        line = f"  {page:<10} first visit {times['first_s']:6.2f} s"
        if "rerun_s" in times:
            line += (f"   rerun {times['rerun_s']:5.2f} s   after a filter change "
                     f"{times['filter_change_s']:5.2f} s ({times['n_selected']})")
        print(f"{line}   RSS {times['rss_mb']:5.0f} MB, peak on the page "
              f"{times['page_peak_mb']:5.0f} MB, so far {times['peak_mb']:5.0f} MB")
    rss = report["rss"]
    print(f"peak RSS {rss['peak_mb']:.0f} MB (before the upload {rss['before_upload_mb']:.0f} MB, "
          f"after it {rss['after_upload_mb']:.0f} MB, peak while loading {rss['peak_of_upload_mb']:.0f} MB)")
    print(json.dumps(report))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
