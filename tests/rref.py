"""Reference values from R, live when Rscript is present, from stored golden files otherwise.

Each comparison has an R script in ``tests/r/<name>.R``. The script is run as
``Rscript tests/r/<name>.R <input_dir> <output_dir>``: it reads the CSV files that the test wrote
to ``input_dir`` and writes one CSV per result table to ``output_dir`` (full precision,
``write.csv(..., row.names = FALSE)`` after ``options(digits = 15)``).

Golden copies of those outputs live in ``tests/golden/<name>/``. When Rscript exists the test
recomputes them live and compares against the live numbers (and, with ``HER2ER_UPDATE_GOLDEN=1``,
refreshes the stored copies); without R it compares against the stored copies, so a machine
without R still checks every number.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

TESTS = Path(__file__).resolve().parent
R_DIR = TESTS / "r"
GOLDEN_DIR = TESTS / "golden"
#: Set to 1 to compare with the stored copies even where R is installed: the runs at the lowest
#: and latest dependency versions (scripts/test_versions.sh) check our numbers against the same
#: R output that the main run has just recomputed live, without running R three times.
STORED_ONLY_ENV = "HER2ER_R_STORED"


DEFAULT_R_PACKAGES = ("survival", "metafor")


@cache
def rscript(packages: tuple[str, ...] = DEFAULT_R_PACKAGES) -> str | None:
    """Path of Rscript when R and ``packages`` are installed, else None."""
    exe = shutil.which("Rscript")
    if exe is None:
        return None
    loads = "; ".join(f"library({p})" for p in packages)
    probe = subprocess.run([exe, "-e", loads], capture_output=True, text=True)
    return exe if probe.returncode == 0 else None


def r_reference(
    name: str, inputs: dict[str, pd.DataFrame], *, packages: tuple[str, ...] = DEFAULT_R_PACKAGES,
    inputs_depend_on_versions: bool = False,
) -> dict[str, pd.DataFrame]:
    """Result tables of ``tests/r/<name>.R`` on ``inputs`` (live R, or the stored golden copy).

    ``packages`` are the R packages the script loads (e.g. ``("cmprsk",)``); without them the
    stored golden copy is used, as without R. ``inputs_depend_on_versions``: the inputs are
    drawn by our code (e.g. multiple imputations), so other numpy/pandas versions give other
    inputs; R then always runs live where it is installed (the stored copy fits only the inputs
    it was made from).
    """
    golden = GOLDEN_DIR / name
    exe = rscript(tuple(packages))
    if os.environ.get(STORED_ONLY_ENV) == "1" and golden.is_dir() and not inputs_depend_on_versions:
        exe = None  # R's numbers were checked live in this CI run already (see STORED_ONLY_ENV)
    if exe is None:
        if not golden.is_dir():
            pytest.skip(f"Rscript with {', '.join(packages)} not installed and no golden copy "
                        f"for {name}")
        return _read_dir(golden)
    with tempfile.TemporaryDirectory() as tmp:
        in_dir, out_dir = Path(tmp, "in"), Path(tmp, "out")
        in_dir.mkdir()
        out_dir.mkdir()
        for table, frame in inputs.items():
            frame.to_csv(in_dir / f"{table}.csv", index=False)
        run = subprocess.run(
            [exe, str(R_DIR / f"{name}.R"), str(in_dir), str(out_dir)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if run.returncode != 0:
            raise AssertionError(f"R script {name}.R failed:\n{run.stderr[-3000:]}")
        if os.environ.get("HER2ER_UPDATE_GOLDEN") == "1" or not golden.is_dir():
            shutil.rmtree(golden, ignore_errors=True)
            shutil.copytree(out_dir, golden)
        return _read_dir(out_dir)


def _read_dir(folder: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_csv(p) for p in sorted(folder.glob("*.csv"))}
