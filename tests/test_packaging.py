"""The project as an installable package: metadata in step, a wheel that works outside the repo.

The wheel test builds the wheel with the installed hatchling (no network), installs it into a
fresh venv that borrows this venv's third-party packages, and then works from an empty folder, so
that nothing can be found through the repository by accident.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
import time
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from her2er_dash import __version__

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement_lines(path: Path) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("-r")]


def test_requirements_txt_lists_exactly_the_package_dependencies():
    # Community Cloud installs requirements.txt; pip install installs pyproject's list.
    assert _requirement_lines(ROOT / "requirements.txt") == PYPROJECT["project"]["dependencies"]


def test_requirements_dev_lists_exactly_the_dev_extra():
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert _requirement_lines(ROOT / "requirements-dev.txt") == dev


def test_linter_is_pinned_so_lint_results_cannot_drift():
    ruff = [r for r in PYPROJECT["project"]["optional-dependencies"]["dev"] if r.startswith("ruff")]
    assert len(ruff) == 1
    assert re.fullmatch(r"ruff==[\d.]+", ruff[0])


def test_lock_pins_every_direct_requirement_within_its_range():
    from packaging.requirements import Requirement

    locked = dict(
        re.match(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", line).groups()
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if re.match(r"^[A-Za-z0-9_.\-]+==", line)
    )
    locked = {name.lower().replace("_", "-"): version for name, version in locked.items()}
    direct = PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]
    for line in direct:
        requirement = Requirement(line)
        name = requirement.name.lower().replace("_", "-")
        assert name in locked, f"{name} is not pinned in requirements.lock (run `make lock`)"
        assert requirement.specifier.contains(locked[name], prereleases=True), (name, locked[name])


def test_one_version_number():
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert "version" not in PYPROJECT["project"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_licence_file_is_shipped_and_named():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert PYPROJECT["project"]["license"] == "MIT"


def test_launcher_sets_the_measured_process_settings():
    from her2er_dash import cli

    env = cli.app_environment({"PATH": "/bin"})
    assert env["NUMPY_MADVISE_HUGEPAGE"] == "0"
    assert env["MALLOC_MMAP_THRESHOLD_"] == "1048576"
    assert env["MALLOC_TRIM_THRESHOLD_"] == "33554432"
    assert env["ARROW_DEFAULT_MEMORY_POOL"] == "system"
    assert cli.app_environment({"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"})[
        "ARROW_DEFAULT_MEMORY_POOL"] == "mimalloc"  # an operator's choice is kept
    assert cli.app_environment({"NUMPY_MADVISE_HUGEPAGE": "1"})["NUMPY_MADVISE_HUGEPAGE"] == "1"
    app = str(cli.app_dir() / "app.py")
    assert cli.command(["--server.port", "1"])[1:] == [
        "-m", "streamlit", "run", app, "--server.fileWatcherType", "none", "--server.port", "1"]
    assert (cli.app_dir() / "deploy" / "ahead.py").is_file()  # the app imports it as it starts


def test_launcher_turns_the_file_watcher_off_unless_asked_for_or_chosen():
    from her2er_dash import cli

    app = str(cli.app_dir() / "app.py")
    assert cli.command([], watch=True)[-1] == app
    assert cli.command(["--server.fileWatcherType", "poll"])[-3:] == [app, "--server.fileWatcherType", "poll"]
    assert cli.command(["--server.fileWatcherType=auto"])[-2:] == [app, "--server.fileWatcherType=auto"]
    printed = subprocess.run(
        [sys.executable, "-m", "her2er_dash.cli", "--print-command", "--watch"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    assert "fileWatcherType" not in printed


def _run_opening(code: str) -> list[str]:
    """Run ``code`` after importing deploy.ahead in a fresh interpreter (so ``ui`` is not yet
    imported), from the repository root; its printed lines."""
    run = subprocess.run([sys.executable, "-c", "import sys; from deploy import ahead\n" + code],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.split() + [run.stderr]


def test_opening_imports_the_app_once_the_server_answers():
    # Not before: importing pandas while the server starts made it ready later.
    *printed, _ = _run_opening(
        "calls = []\n"
        "def answering():\n"
        "    calls.append('ui' in sys.modules)\n"
        "    return len(calls) == 3\n"
        "ahead.open_ahead('', answering=answering, poll_s=0, view_delay_s=0)\n"
        "print(calls, 'ui' in sys.modules, 'pandas' in sys.modules)"
    )
    assert printed == ["[False,", "False,", "False]", "True", "True"]


def test_opening_opens_the_default_cohort_ahead():
    # In the caches a visitor's first page reads: the cohort classified and selected under the
    # default filter, and the modules of its figures and downloads imported.
    *printed, stderr = _run_opening(
        "ahead.open_ahead('', answering=lambda: True, visited=lambda: False, poll_s=0,\n"
        "                  view_delay_s=0)\n"
        "import ui\n"
        "keys = {k[:2] for k, _ in ui.FRAME_CACHE.entries()}\n"
        "print(('filtered', 'bundled:' + ui.view.DEFAULT_COHORT) in keys,\n"
        "      'her2er_dash.export' in sys.modules, 'plotly.graph_objs._figure' in sys.modules,\n"
        "      'streamlit.emojis' in sys.modules)"  # Streamlit's pattern for non-ASCII alerts
    )
    assert printed == ["True", "True", "True", "True"], stderr
    assert "not opened ahead" not in stderr


def test_opening_leaves_the_default_cohort_to_a_visitor_already_connected():
    # ... but still imports the modules of the visitor's first page
    *printed, _ = _run_opening(
        "ahead.open_ahead('', answering=lambda: True, visited=lambda: True, poll_s=0,\n"
        "                  view_delay_s=0)\n"
        "import ui\n"
        "print(len(ui.FRAME_CACHE.entries()), 'pandas' in sys.modules,\n"
        "      all(m in sys.modules for m in ui.analysis.FIRST_PAGE_MODULES))"
    )
    assert printed == ["0", "True", "True"]


def test_the_modules_imported_ahead_are_all_the_default_page_imports():
    # What the default page's first run imports of the app beyond `import ui`: the opening thread
    # imports it ahead (ui.analysis.FIRST_PAGE_MODULES), so the list must not fall behind the page.
    *printed, stderr = _run_opening(
        "import json\n"
        "from streamlit.testing.v1 import AppTest\n"
        "import ui\n"
        "ui.analysis.import_first_page_modules()\n"
        "before = set(sys.modules)\n"
        "at = AppTest.from_file('app.py', default_timeout=120)\n"
        "at.run()\n"
        "assert not at.exception, at.exception\n"
        "mine = ('her2er_dash', 'ui', 'ui_mapping', 'deploy')\n"
        "print(json.dumps(sorted(m for m in set(sys.modules) - before\n"
        "                        if m.split('.')[0] in mine)).replace(' ', ''))"
    )
    assert printed == ["[]"], (printed, stderr[-2000:])


def test_opening_opens_the_app_even_if_the_server_never_answers():
    *printed, stderr = _run_opening(
        "ahead.open_ahead('', answering=lambda: False, wait_s=0, poll_s=0, view_delay_s=0)\n"
        "print('ui' in sys.modules)"
    )
    assert printed == ["True"]
    assert "did not answer within 0 s; opening the app anyway" in stderr


def test_the_opening_thread_starts_once_per_process_with_the_registries_named(monkeypatch):
    # app.py's lifespan calls ahead.start(); a second call (another lifespan run by a test
    # harness) must not open everything twice.
    from deploy import ahead

    calls = []
    monkeypatch.setattr(ahead, "open_ahead", lambda names: calls.append(names))
    monkeypatch.setenv(ahead.PREWARM_ENV, " trial.parquet ")
    ahead.start.cache_clear()
    try:
        first = ahead.start()
        assert ahead.start() is first
        first.join(timeout=10)
    finally:
        ahead.start.cache_clear()
    assert first.name == ahead.THREAD_NAME
    assert first.daemon
    assert calls == ["trial.parquet"]


_FIRST_PAGE_MODULES = """
import json, sys
from pathlib import Path
from streamlit.testing.v1 import AppTest

at = AppTest.from_file(str(Path("app.py").resolve()), default_timeout=120)
at.run()
assert not at.exception, at.exception
here = Path.cwd().resolve()
loaded = {Path(m.__file__).resolve() for m in list(sys.modules.values())
          if getattr(m, "__file__", None)}
print(json.dumps(sorted(str(f) for f in loaded if f.is_relative_to(here))))
"""


def test_the_image_writes_the_bytecode_of_every_module_the_first_page_imports(tmp_path):
    """The Dockerfile compiles the app at build time, because its user cannot write /app: every
    module of the app that the default page imports must be covered, or each worker compiles
    it again at every start. Run here as the RUN line runs, in a copy of the tracked files."""
    import json

    from benchmarks.coldstart import APP_SOURCES, tracked_copy

    (run_line,) = [line for line in (ROOT / "Dockerfile").read_text().splitlines()
                   if line.startswith("RUN python -m compileall")]
    arguments = run_line.split()[4:]  # after "RUN python -m compileall"
    assert tuple(a for a in arguments if not a.startswith("-")) == APP_SOURCES
    app = tracked_copy(tmp_path / "app")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # as the image's user: nothing written at run time
    subprocess.run([sys.executable, "-m", "compileall", *arguments], cwd=app, env=env,
                   check=True, capture_output=True)
    probe = subprocess.run([sys.executable, "-c", _FIRST_PAGE_MODULES], cwd=app, env=env,
                           check=True, capture_output=True, text=True)
    imported = [Path(f) for f in json.loads(probe.stdout.strip().splitlines()[-1])]
    assert len(imported) > 30  # ui, her2er_dash's modules... (not an empty probe)
    assert {f.relative_to(app.resolve()).parts[0] for f in imported} <= set(APP_SOURCES)
    uncompiled = [f for f in imported if not Path(importlib.util.cache_from_source(f)).exists()]
    assert not uncompiled


@pytest.mark.parametrize("launcher", [
    pytest.param([sys.executable, "-m", "her2er_dash.cli"], id="make-run"),
    # Community Cloud's way; without the app's lifespan it loaded pandas only for a visitor
    pytest.param([sys.executable, "-m", "streamlit", "run", "app.py"], id="plain-streamlit-run"),
])
def test_started_app_is_imported_before_its_first_visitor(launcher):
    """Started with nobody visiting: the app process soon holds pandas (its shared libraries
    mapped), then opens the default view without an error."""
    from tests.browser_utils import process_tree, streamlit_server

    with streamlit_server(launcher=launcher) as server:
        deadline = time.monotonic() + 60
        while True:
            maps = []
            for pid in process_tree(server.process.pid):
                with contextlib.suppress(OSError):
                    maps.append(Path(f"/proc/{pid}/maps").read_text())
            if any("pandas/_libs" in m for m in maps) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert any("pandas/_libs" in m for m in maps), "the app was not imported ahead"
        from deploy.ahead import DEFAULT_VIEW_DELAY_S

        time.sleep(DEFAULT_VIEW_DELAY_S + 1.5)  # then it opens the default view (no visitor)
        assert "Traceback" not in server.output()
        assert "not opened ahead" not in server.output()


# --------------------------------------------------------------------------------------------
# The wheel, installed outside the repository
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling", reason="hatchling builds the wheel (pip install hatchling)")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (built,) = out.glob("her2er_dash-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed by pip; third-party packages come from this venv
    (a .pth file), so no network is needed."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    Path(site, "borrowed.pth").write_text("\n".join(ours) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, text=True, cwd=env_dir)
    return env_dir


def _outside_repo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def test_wheel_carries_the_data_and_the_app(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "her2er_dash/data/published_trials.csv" in names
    assert "her2er_dash/data/README.md" in names
    assert {"her2er_dash/data/ispy1.csv.gz", "her2er_dash/data/ispy2.csv.gz",
            "her2er_dash/data/curated_neoadjuvant.csv.gz"} <= names  # the real bundled cohorts
    # every module beside app.py (ui, ui_mapping...) travels with it: the pages import them
    app_modules = {f"her2er_explorer_app/{p.name}" for p in ROOT.glob("*.py")}
    app_modules |= {f"her2er_explorer_app/ui/{p.name}" for p in (ROOT / "ui").glob("*.py")}
    # and the module app.py starts as its server starts (the app opened ahead)
    app_modules |= {"her2er_explorer_app/deploy/__init__.py", "her2er_explorer_app/deploy/ahead.py"}
    assert {"her2er_explorer_app/app.py", "her2er_explorer_app/.streamlit/config.toml",
            "her2er_explorer_app/ui/favicon.svg", *app_modules} <= names, app_modules - names
    assert any(n.startswith("her2er_explorer_app/pages/") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert f"Version: {__version__}" in text
    assert "License-Expression: MIT" in text
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "her2er-explorer = her2er_dash.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_package_loads_bundled_data_outside_the_repo(installed: Path, tmp_path: Path):
    code = (
        "import her2er_dash, pathlib; from her2er_dash import datasets;"
        "keys = list(datasets.list_bundled()['key']);"
        "loaded = {k: len(datasets.bundled(k).data) for k in keys};"
        "print(pathlib.Path(her2er_dash.__file__).parent); print(loaded)"
    )
    run = subprocess.run([str(installed / "bin" / "python"), "-c", code], cwd=tmp_path,
                         env=_outside_repo_env(), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    package_dir, loaded = run.stdout.strip().splitlines()
    assert not Path(package_dir).is_relative_to(ROOT)  # the installed copy, not the repo
    assert "'published'" in loaded
    for real in ("'ispy1': 221", "'ispy2': 987", "'curated_neoadjuvant': 1280"):
        assert real in loaded


def test_console_command_serves_the_app(installed: Path, tmp_path: Path):
    from tests.browser_utils import (
        _loopback_get,
        browser_skip_reason,
        error_texts,
        launch_kwargs,
        sidebar_count,
        streamlit_server,
    )

    launcher = [str(installed / "bin" / "her2er-explorer")]
    with streamlit_server(launcher=launcher, cwd=tmp_path,
                          env_overrides={"PYTHONNOUSERSITE": "1", "PYTHONPATH": ""}) as server:
        assert "<title>" in _loopback_get(server.url, timeout=10)  # the front end is served
        if browser_skip_reason() is None:  # and the app itself runs: its sidebar count appears
            from playwright.sync_api import sync_playwright

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(**launch_kwargs())
                try:
                    page = browser.new_page()
                    page.goto(server.url)
                    assert sidebar_count(page).startswith("n = ")
                    assert not error_texts(page)
                finally:
                    browser.close()
        assert "Traceback" not in server.output()


def test_uploads_are_spooled_in_memory_by_the_launchers():
    # Starlette spools an upload over 1 MB to an unnamed temporary file: the launchers point
    # TMPDIR at a private folder on a tmpfs, so that spool stays in memory.
    from her2er_dash import cli

    mounts = "sysfs /sys sysfs rw 0 0\ntmpfs /dev/shm tmpfs rw 0 0\n/dev/sda1 / ext4 rw 0 0\n"
    assert cli.is_tmpfs(Path("/dev/shm"), mounts)
    assert not cli.is_tmpfs(Path("/tmp"), mounts)
    assert cli.app_environment({}, tmpdir="/dev/shm/x")["TMPDIR"] == "/dev/shm/x"
    with cli.memory_tmpdir() as folder:
        if folder is None:
            pytest.skip("no writable tmpfs at /dev/shm on this machine")
        assert cli.is_tmpfs(Path(folder))
        assert (os.stat(folder).st_mode & 0o777) == 0o700
    assert not Path(folder).exists()  # removed when the app stops


def test_memory_folders_of_a_killed_launcher_are_removed_at_the_next_start(tmp_path):
    from her2er_dash import cli

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    orphan = tmp_path / f"{cli.TMPDIR_PREFIX}{ended.pid}-abc"
    alive = tmp_path / f"{cli.TMPDIR_PREFIX}{os.getpid()}-def"
    other = tmp_path / "her2er-explorer-notes"
    for folder in (orphan, alive, other):
        folder.mkdir()
    (orphan / "spool").write_bytes(b"x")
    assert cli.remove_orphaned_tmpdirs(tmp_path) == [orphan]
    assert not orphan.exists()
    assert alive.is_dir()
    assert other.is_dir()



def test_sigterm_to_the_launcher_stops_the_app_and_removes_its_memory_folder():
    import signal
    import time
    import urllib.request

    from her2er_dash import cli
    from tests.browser_utils import free_port, process_tree

    port = free_port()
    launcher = subprocess.Popen(
        [sys.executable, "-m", "her2er_dash.cli", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app did not start"
                time.sleep(0.2)
        children = process_tree(launcher.pid)[1:]
        assert children, "the launcher runs the app as a child"
        folders = list(cli.SHM.glob(f"{cli.TMPDIR_PREFIX}{launcher.pid}-*"))
        assert len(folders) == (1 if cli.is_tmpfs(cli.SHM) else 0)
        launcher.send_signal(signal.SIGTERM)  # to the launcher alone, as `kill PID` does
        launcher.wait(timeout=30)
        assert not any(Path(f"/proc/{pid}").exists() for pid in children)
        assert not any(folder.exists() for folder in folders)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
