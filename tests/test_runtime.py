"""her2er_dash.runtime: process settings for large cohorts."""

from __future__ import annotations

import numpy as np


def test_avoiding_hugepage_stalls_switches_numpy_off_once():
    from her2er_dash.runtime import avoid_hugepage_stalls

    avoid_hugepage_stalls()
    assert avoid_hugepage_stalls() is False  # already off: nothing left to change
    core = getattr(np, "_core", None)
    if core is not None and hasattr(core.multiarray, "_get_madvise_hugepage"):
        assert core.multiarray._get_madvise_hugepage() is False
