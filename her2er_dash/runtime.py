"""Process settings for serving registry-sized cohorts (call explicitly; importing changes nothing).

On Linux numpy asks the kernel for transparent huge pages for every array of 4 MB or more. Where
the kernel's huge-page defragmentation policy is ``madvise`` (the Debian/Ubuntu default), a
fresh allocation can then stall in direct memory compaction. The dashboard allocates fresh
arrays on every filter change (the selected rows of a 1M-patient cohort are ~90 MB), and on the
benchmark machine one 68 MB row selection took 166 ms with huge pages and 35 ms without
(benchmarks/README.md). The app and the benchmark therefore turn the advice off at start-up;
notebooks may do the same. numpy's documented equivalent is ``NUMPY_MADVISE_HUGEPAGE=0`` in the
environment before numpy is imported.
"""

from __future__ import annotations

import numpy as np


def avoid_hugepage_stalls() -> bool:
    """Stop numpy advising huge pages for new arrays in this process.

    Returns True when the setting was changed, False when numpy offers no such switch (other
    platforms or versions) or it was already off. Speed only: no result depends on it.
    """
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    toggle = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if toggle is None:
        return False
    return bool(toggle(False))
