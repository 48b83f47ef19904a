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
import io
import json
import time

from streamlit.testing.v1 import AppTest

from benchmarks.run import ROOT, load_cohort

PAGES = ("2_Response.py", "3_Survival.py", "4_Subgroups.py", "5_Evidence.py", "1_Cohort.py")
#: One more sidebar criterion per page (cumulative, so every filter state is new to the caches).
FILTER_STEPS = (
    ("f_her2", ["positive"]),
    ("f_t", ["T1", "T2", "T3"]),
    ("f_n", ["N0", "N1", "N2"]),
    ("f_pr", ["negative", "positive"]),
    ("f_arm", ["Chemo + trastuzumab", "Chemo + trastuzumab + pertuzumab"]),
)
TIMEOUT = 900


def _timed(action) -> tuple[AppTest, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def measure(n: int) -> dict:
    frame = load_cohort(n, log=lambda message: None)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    upload = app.file_uploader(key="upload_files")
    app, load_s = _timed(
        lambda: upload.set_value(("registry.parquet", buffer.getvalue(), "application/octet-stream")).run()
    )
    errors = [e.value for e in app.error]
    pages = {}
    for page, (key, value) in zip(PAGES, FILTER_STEPS, strict=True):
        app, first_s = _timed(app.switch_page(f"pages/{page}").run)
        app, rerun_s = _timed(app.run)
        app, filter_s = _timed(app.sidebar.multiselect(key=key).set_value(value).run)
        errors += [e.value for e in app.error]
        name = page.split("_", 1)[1].removesuffix(".py")
        pages[name] = {"first_s": first_s, "rerun_s": rerun_s, "filter_change_s": filter_s,
                       "n_selected": app.sidebar.info[0].value.split(" of ")[0]}
    return {"n": n, "upload_and_load_s": load_s, "pages": pages, "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="cohort size (default 1M)")
    args = parser.parse_args(argv)
    from benchmarks import run_as_the_app_runs

    run_as_the_app_runs("benchmarks.app_pages", argv)  # as her2er-explorer starts the app
    report = measure(args.n)
    print(f"n = {report['n']:,}: upload + load {report['upload_and_load_s']:.2f} s")
    for page, times in report["pages"].items():
        print(f"  {page:<10} first visit {times['first_s']:6.2f} s   rerun {times['rerun_s']:5.2f} s"
              f"   after a filter change {times['filter_change_s']:5.2f} s ({times['n_selected']})")
    print(json.dumps(report))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
