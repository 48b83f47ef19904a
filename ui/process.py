"""The app's memory settings when it is started without its launcher (``streamlit run app.py``,
as Streamlit Community Cloud does).

The launcher (``her2er-explorer``, ``make run``/``serve``, ``deploy.serve``) sets them in the
environment before Python starts (``her2er_dash.cli.app_environment``); a plain ``streamlit run``
has none of them, so the first import of ``ui`` applies those that can still be set in a running
process, each only where the environment does not already decide it:

* glibc's mmap threshold, fixed at 1 MB (``mallopt(M_MMAP_THRESHOLD)``, mallopt(3); what
  ``MALLOC_MMAP_THRESHOLD_`` does at start-up): a freed column of a large cohort goes back to
  the system instead of staying in glibc's heap;
* glibc's trim threshold, at 32 MB (``mallopt(M_TRIM_THRESHOLD)``; ``MALLOC_TRIM_THRESHOLD_``):
  with the mmap threshold fixed, glibc no longer raises it from 128 KB, and the medium arrays of
  a model's Newton steps are returned and faulted in again at every step (her2er_dash.cli);
* Arrow's system memory pool (``pyarrow.set_memory_pool``), set only when that threshold is in
  force: Arrow's bundled mimalloc returns a freed Parquet read's pages late, by a varying amount,
  and without the threshold glibc's heap keeps them (benchmarks/README.md, seventh memory pass).

None changes a result; they change only when freed memory returns to the system. On a C
library other than glibc (macOS, musl) nothing is changed.

It also takes the objects alive at that first import out of the cycle collector's reach
(:func:`freeze_startup_objects`), under any launcher.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
from collections.abc import Mapping

from her2er_dash.cli import (
    FREEZE_ENV,
    MMAP_THRESHOLD,
    POOL_ENV,
    SETTINGS_ENV,
    THRESHOLD_ENV,
    TRIM_ENV,
    TRIM_THRESHOLD,
)

#: mallopt(3)'s parameter number for the mmap threshold (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
M_TRIM_THRESHOLD = -1


@functools.cache
def _glibc():
    """glibc loaded in this process, or None (another C library, or none found)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p  # glibc only: AttributeError elsewhere
        version = libc.gnu_get_libc_version()
    except (OSError, AttributeError):
        return None
    return libc if version else None


def apply_memory_settings(environ: Mapping[str, str] | None = None, libc=None) -> dict[str, str]:
    """Apply the settings the environment leaves open; returns what was set (for tests and logs).

    ``libc``: glibc's handle (default: found in this process; ``False`` means none).
    ``HER2ER_MEMORY_SETTINGS=0`` in the environment leaves both libraries at their defaults (for
    an operator comparing memory, as ``benchmarks/soak.py --compare allocator`` does).
    """
    environ = os.environ if environ is None else environ
    done: dict[str, str] = {}
    if environ.get(SETTINGS_ENV, "1") == "0":
        return done
    threshold_fixed = THRESHOLD_ENV in environ
    if not threshold_fixed:
        libc = _glibc() if libc is None else libc
        if libc and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1:
            threshold_fixed = True
            done[THRESHOLD_ENV] = str(MMAP_THRESHOLD)
    if threshold_fixed and TRIM_ENV not in environ:
        libc = _glibc() if libc is None else libc
        if libc and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1:
            done[TRIM_ENV] = str(TRIM_THRESHOLD)
    if threshold_fixed and POOL_ENV not in environ:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
        done[POOL_ENV] = "system"
    return done


def return_free_memory(libc=None) -> bool:
    """Give the C library's free heap pages back to the system (glibc's ``malloc_trim(0)``);
    returns whether it was done (nothing on another C library).

    Freed small blocks stay in glibc's heap, counted in the process's resident memory, until a
    later allocation reuses them: after the caches of 250 replayed sessions were emptied, a
    process held 311 MB, and 268 MB after this call (~5 ms for a 180 MB heap).
    """
    libc = _glibc() if libc is None else libc
    if not libc:
        return False
    libc.malloc_trim(0)
    return True


def freeze_startup_objects(environ: Mapping[str, str] | None = None) -> int:
    """Move every object alive now to the cycle collector's permanent generation (``gc.freeze``),
    once per process; returns how many were moved (0: not done, or done before).

    Called when ``ui`` is first imported, before any cohort is read or any session has data: what
    is alive then is the imported modules (pandas, plotly, Streamlit, ours: ~120,000 tracked
    objects) and the server itself, which all live as long as the process. A full collection
    walks every tracked object, so without the freeze each one cost 0.09-0.13 s on a page, and
    the allocations of a registry's filter change triggered one (benchmarks/README.md). Objects
    made later (sessions, cohorts, caches) stay in the ordinary generations and are collected as
    before, so nothing a user creates can be held by the freeze; a one-hour soak
    (``benchmarks/soak.py --compare freeze``) compared memory with and without it.
    """
    environ = os.environ if environ is None else environ
    if environ.get(FREEZE_ENV, "1") == "0" or gc.get_freeze_count():
        return 0
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
