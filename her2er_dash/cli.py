"""``her2er-explorer``: start the HER2/ER Explorer app (installed by ``pip install her2er-dash``).

The analysis package never imports Streamlit; this launcher only finds the app's entry point and
starts ``streamlit run`` on it in a child process (the app itself then imports its own package as
soon as the server answers, so the first page does not wait for it: ``deploy/ahead.py``), with
the process settings the app is measured with:

* ``NUMPY_MADVISE_HUGEPAGE=0`` (numpy's documented switch, read when numpy is imported): numpy
  otherwise asks Linux for transparent huge pages for every array of 4 MB or more, and with the
  Debian/Ubuntu ``madvise`` defragmentation policy a fresh allocation can stall in memory
  compaction. On the benchmark machine one 68 MB row selection of a 1M-patient cohort took 166 ms
  with huge pages and 35 ms without (benchmarks/README.md). Only speed depends on it.
* ``MALLOC_MMAP_THRESHOLD_=1048576`` (glibc's documented switch, mallopt(3)): every allocation of
  1 MB or more (a column of a large cohort) gets its own mapping, returned to the system when it
  is freed. glibc otherwise raises that threshold after the first such free, so later columns
  come from the heap, whose freed pages stay in the process: with a 1M-patient upload visiting
  every page, peak RSS 1,754 MB without and 1,600 MB with it (benchmarks/README.md).
* ``MALLOC_TRIM_THRESHOLD_=33554432`` (glibc's documented switch, mallopt(3)): fixing the mmap
  threshold also fixes the heap's trim threshold at its 128 KB default, where glibc would
  otherwise let it grow with the mmap threshold (to twice it). Then every freed block at the top
  of the heap beyond 128 KB is returned at once and faulted in again by the next allocation:
  the many 0.2-1 MB arrays of a subgroup forest's Newton steps cost 57,000 page faults per
  forest at 100k patients (0.32-0.35 s), against 22,000 (0.23-0.27 s) with 32 MB, which keeps
  at most 32 MB of freed heap per allocator arena. Peak RSS of a 1M upload through every page:
  853 MB before, 857 MB with it (benchmarks/README.md).
* ``ARROW_DEFAULT_MEMORY_POOL=system`` (Arrow's documented switch, read when its default pool is
  first used): Arrow buffers (a Parquet upload's columns while it is read, Arrow-string patient
  IDs) come from glibc's malloc, so with the threshold above a freed column goes back to the
  system at once. Arrow's bundled mimalloc keeps freed pages for a while and returns them later,
  so how much of a 1M-patient Parquet read (~290 MB) was still held when the mapping's columns
  were built varied between runs: loading peak 727-945 MB with mimalloc, 657 MB every time with
  the system pool (benchmarks/README.md). Without the threshold the system pool is worse than
  mimalloc (glibc's heap keeps the freed columns), so the two are set together.
* the working directory is the app's folder, so its ``.streamlit/config.toml`` applies;
* Streamlit's file watcher is off (``--server.fileWatcherType none``) unless ``--watch`` is given
  (``make dev``): Streamlit watches the folder of every source file recursively, and a checkout's
  folder holds its ``.venv`` (3,066 of its 3,304 folders here), so watching cost ~1 s of every
  start and inotify work for every session; re-running on a code change only helps someone
  editing the code (benchmarks/README.md, "cold start");
* ``TMPDIR`` is a private folder in memory (``/dev/shm``, a tmpfs, where it exists): Streamlit's web
  server (Starlette's form parser) spools an upload larger than 1 MB to an unnamed temporary file
  before the app reads it, and that spool must not reach a disk (uploads never touch one).

Arguments after the command are passed to ``streamlit run`` (e.g. ``--server.port 8502``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
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


#: Allocations of at least this many bytes are mapped (and unmapped when freed) by glibc.
MMAP_THRESHOLD = 1024**2
#: Freed memory at the top of glibc's heap is returned to the system beyond this many bytes.
TRIM_THRESHOLD = 32 * 1024**2
#: Switches the app reads at its first import (ui/process.py); ``0`` turns one off: the freeze of
#: the objects alive then, and the allocator settings a plain ``streamlit run`` applies itself.
FREEZE_ENV = "HER2ER_GC_FREEZE"
SETTINGS_ENV = "HER2ER_MEMORY_SETTINGS"
#: The allocator variables :func:`app_environment` adds (described above).
THRESHOLD_ENV = "MALLOC_MMAP_THRESHOLD_"
TRIM_ENV = "MALLOC_TRIM_THRESHOLD_"
POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def app_environment(base: dict[str, str] | None = None, *, tmpdir: str | None = None) -> dict[str, str]:
    """The environment the app runs in: ``base`` (default: this process's) plus the settings
    above; ``tmpdir`` (see :func:`memory_tmpdir`) becomes ``TMPDIR``."""
    env = dict(os.environ if base is None else base)
    env.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    env.setdefault(THRESHOLD_ENV, str(MMAP_THRESHOLD))
    env.setdefault(TRIM_ENV, str(TRIM_THRESHOLD))
    env.setdefault(POOL_ENV, "system")
    if tmpdir is not None:
        env["TMPDIR"] = tmpdir
    return env


#: A memory-backed file system present on Linux.
SHM = Path("/dev/shm")


def is_tmpfs(path: Path, mounts: str | None = None) -> bool:
    """Whether ``path`` lies on a tmpfs (memory), from ``/proc/mounts`` (Linux)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return False
    resolved = str(path.resolve())
    best, kind = "", ""  # the longest mount point that holds the path decides
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1]
        holds = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if holds and len(point) > len(best):
            best, kind = point, fields[2]
    return kind == "tmpfs"


#: Memory folders are named ``her2er-explorer-<pid of their owner>-<random>``.
TMPDIR_PREFIX = "her2er-explorer-"


def new_memory_tmpdir() -> str | None:
    """A new private (0700) temporary folder in memory, or None where no writable tmpfs exists
    (then Streamlit's default temporary folder is used). Remove it with ``shutil.rmtree``.

    Folders left by an owner that was killed outright (SIGKILL, a power-off of the container
    leaves none) are removed first, so they cannot pile up in memory."""
    if not (SHM.is_dir() and os.access(SHM, os.W_OK) and is_tmpfs(SHM)):
        return None
    remove_orphaned_tmpdirs(SHM)
    return tempfile.mkdtemp(prefix=f"{TMPDIR_PREFIX}{os.getpid()}-", dir=SHM)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_orphaned_tmpdirs(parent: Path) -> list[Path]:
    """Remove this user's memory folders in ``parent`` whose owning process no longer runs."""
    removed = []
    for folder in parent.glob(f"{TMPDIR_PREFIX}*-*"):
        owner = folder.name[len(TMPDIR_PREFIX):].split("-", 1)[0]
        try:
            mine = folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.geteuid()
        except OSError:
            continue
        if mine and owner.isdigit() and not _running(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def memory_tmpdir() -> Iterator[str | None]:
    """:func:`new_memory_tmpdir` for the app's lifetime, removed afterwards."""
    folder = new_memory_tmpdir()
    try:
        yield folder
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


#: Streamlit's option naming the file watcher; without ``--watch`` the launcher sets it to ``none``.
WATCHER_OPTION = "--server.fileWatcherType"


def command(streamlit_args: list[str], *, watch: bool = False) -> list[str]:
    """The ``streamlit run`` command line for the app. The file watcher is off unless ``watch`` or
    the arguments name a watcher themselves (the user's choice wins)."""
    chosen = any(arg == WATCHER_OPTION or arg.startswith(WATCHER_OPTION + "=") for arg in streamlit_args)
    watcher = [] if watch or chosen else [WATCHER_OPTION, "none"]
    return [sys.executable, "-m", "streamlit", "run", str(app_dir() / "app.py"), *watcher, *streamlit_args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="her2er-explorer",
        description="Start the HER2/ER Explorer dashboard (Streamlit). Other arguments go to "
        "`streamlit run`, e.g. --server.port 8502.",
    )
    parser.add_argument("--print-command", action="store_true",
                        help="print the command and folder instead of starting the app")
    parser.add_argument("--watch", action="store_true",
                        help="re-run the app when its source files change (for editing the code)")
    known, rest = parser.parse_known_args(argv)
    cmd = command(rest, watch=known.watch)
    if known.print_command:
        settings = " ".join(f"{k}={v}" for k, v in app_environment({}).items())
        print(f"cd {app_dir()} && {settings} {' '.join(cmd)}")
        return 0
    with memory_tmpdir() as tmpdir:
        if tmpdir is None:
            print("her2er-explorer: no memory-backed /dev/shm here; uploads over 1 MB are spooled "
                  "by Streamlit's web server to the system temporary folder.", file=sys.stderr)
        return run_until_stopped(cmd, cwd=app_dir(), env=app_environment(tmpdir=tmpdir))


def run_until_stopped(cmd: list[str], *, cwd: Path, env: dict[str, str]) -> int:
    """Run the app and wait for it. SIGTERM (a service manager, ``kill``) is passed on to the app
    and waited for like Ctrl-C, so the caller's clean-up (the memory folder) still runs."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env)
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches the child too; exit quietly once it has stopped
        proc.wait()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover - `python -m her2er_dash.cli`
    raise SystemExit(main())
