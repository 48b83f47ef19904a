"""``her2er-explorer``: start the HER2/ER Explorer app (installed by ``pip install her2er-dash``).

The analysis package never imports Streamlit; this launcher only finds the app's entry point and
starts ``python -m streamlit run`` on it in a child process, with the process settings the app is
measured with:

* ``NUMPY_MADVISE_HUGEPAGE=0`` (numpy's documented switch, read when numpy is imported): numpy
  otherwise asks Linux for transparent huge pages for every array of 4 MB or more, and with the
  Debian/Ubuntu ``madvise`` defragmentation policy a fresh allocation can stall in memory
  compaction. On the benchmark machine one 68 MB row selection of a 1M-patient cohort took 166 ms
  with huge pages and 35 ms without (benchmarks/README.md). Only speed depends on it.
* the working directory is the app's folder, so its ``.streamlit/config.toml`` applies.

Arguments after the command are passed to ``streamlit run`` (e.g. ``--server.port 8502``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

#: Folder name of the app inside an installed wheel (see pyproject.toml, force-include).
INSTALLED_APP = "her2er_explorer_app"


def app_dir() -> Path:
    """The folder holding ``app.py``: the installed copy, else the repository root."""
    site = Path(__file__).resolve().parent.parent
    for candidate in (site / INSTALLED_APP, site):
        if (candidate / "app.py").is_file() and (candidate / "pages").is_dir():
            return candidate
    raise SystemExit(
        "her2er-explorer: the app files (app.py, pages/) were not found next to the her2er_dash "
        f"package in {site}. Reinstall with `pip install her2er-dash` or run from a clone."
    )


def app_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the app runs in: ``base`` (default: this process's) plus the settings above."""
    env = dict(os.environ if base is None else base)
    env.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    return env


def command(streamlit_args: list[str]) -> list[str]:
    """The ``streamlit run`` command line for the app."""
    return [sys.executable, "-m", "streamlit", "run", str(app_dir() / "app.py"), *streamlit_args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="her2er-explorer",
        description="Start the HER2/ER Explorer dashboard (Streamlit). Other arguments go to "
        "`streamlit run`, e.g. --server.port 8502.",
    )
    parser.add_argument("--print-command", action="store_true",
                        help="print the command and folder instead of starting the app")
    known, rest = parser.parse_known_args(argv)
    cmd = command(rest)
    if known.print_command:
        print(f"cd {app_dir()} && NUMPY_MADVISE_HUGEPAGE=0 {' '.join(cmd)}")
        return 0
    try:
        return subprocess.call(cmd, cwd=app_dir(), env=app_environment())
    except KeyboardInterrupt:  # Ctrl-C reaches the child too; exit quietly once it has stopped
        return 130


if __name__ == "__main__":  # pragma: no cover - `python -m her2er_dash.cli`
    raise SystemExit(main())
