"""Benchmark of her2er_dash against R on synthetic cohorts of 10k, 100k and 1M patients.

``python -m benchmarks.run`` (``make bench``) times the work each dashboard page triggers, runs the
same computations in R when ``Rscript`` is present, checks that both give the same numbers, and
writes ``benchmarks/results/latest.json``. See ``benchmarks/README.md``.
"""


def run_as_the_app_runs(module: str, argv: list[str] | None) -> None:
    """Restart this benchmark with the app's process settings (her2er_dash.cli.app_environment)
    when they are missing, so that it measures what a served app does; a no-op once they are set.
    numpy reads NUMPY_MADVISE_HUGEPAGE only at import, hence a fresh process rather than a toggle.
    """
    import os
    import sys

    from her2er_dash.cli import app_environment

    wanted = app_environment()
    if all(os.environ.get(k) == v for k, v in wanted.items()):
        return
    args = sys.argv[1:] if argv is None else argv
    os.execve(sys.executable, [sys.executable, "-m", module, *args], wanted)
