"""Uploaded data stays in one session's memory: no file on disk, nothing in logs, nothing shared.

Every uploaded cell carries a random marker string. After the upload has flowed through the
mapping, Response and Survival pages we check that

* no file appeared or changed under the working tree, $HOME or the temp directory (snapshots of
  paths + mtimes + sizes; bytecode and test caches are ignored; more paths can be ignored with
  HER2ER_PRIVACY_IGNORE on a shared machine where other programs write there meanwhile);
* in the AppTest run, no file was even opened for writing (a Python audit hook sees every open);
* no log record (every logger at DEBUG) and nothing on stdout/stderr contains the marker;
* the same holds for a real ``streamlit run`` server driven by Chromium (server output is kept
  in memory by tests/browser_utils.py, never in a log file);
* a second, concurrent session sees neither the upload nor the first session's filters or results;
* .streamlit/config.toml keeps usage statistics off, an upload limit and XSRF protection on.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import time
import tomllib
import uuid
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from her2er_dash import datasets, simulate
from tests import browser_utils as bu
from tests.apptest_helpers import goto, run_app, sidebar_count

# Streamlit caches are process-wide: every test starts from empty ones.
pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")

ROOT = bu.ROOT
N_UPLOADED = 300

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _marked_csv(marker: str) -> bytes:
    """A small trial whose IDs, study names and free-text notes all carry ``marker``."""
    df = simulate.trial(n=N_UPLOADED, seed=23)
    frame = pd.DataFrame(
        {
            "Patient ID": [f"{marker}-{i:04d}" for i in range(len(df))],
            "Study": [f"{marker}-study-{s}" for s in df["study"]],
            "ER %": df["er_percent"],
            "HER2 status": df["her2_status"].map({"positive": "Pos", "negative": "Neg"}),
            "Treatment arm": df["arm"],
            "Age at diagnosis": df["age"],
            "pCR": df["pcr"],
            "EFS_months": df["efs_months"],
            "EFS_status": df["efs_event"],
            "Notes": [f"free text {marker}" for _ in range(len(df))],
        }
    )
    return frame.to_csv(index=False).encode()


def _new_marker() -> str:
    return f"PRIVMARK{uuid.uuid4().hex}"


def _upload_name(marker: str) -> str:
    return f"cohort_{marker[-8:]}.csv"


class WriteRecorder:
    """Records file-system writes seen by a Python audit hook while ``active``.

    Audit hooks cannot be removed, so one recorder is installed per process and switched on and
    off around the code under test.
    """

    _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    _EVENTS = {"os.rename", "os.replace", "os.mkdir", "os.link", "os.symlink", "os.truncate",
               "shutil.copyfile", "shutil.move", "tempfile.mkstemp", "tempfile.mkdtemp"}

    def __init__(self) -> None:
        self.active = False
        self.writes: list[tuple[str, str]] = []

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None))[:3]
            writing = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & self._WRITE_FLAGS)
            if writing and isinstance(path, (str, bytes, os.PathLike)):
                self._keep(event, os.fsdecode(path))
        elif event in self._EVENTS:
            self._keep(event, " ".join(str(a) for a in args))

    def _keep(self, event: str, what: str) -> None:
        if "__pycache__" in what or what.startswith(("/dev/", "/proc/")):
            return  # bytecode compiled on first import; device and proc files are not storage
        self.writes.append((event, what))


_RECORDER = WriteRecorder()
sys.addaudithook(_RECORDER)


@pytest.fixture
def write_recorder():
    _RECORDER.writes.clear()
    yield _RECORDER
    _RECORDER.active = False


@pytest.fixture
def all_logs(caplog, monkeypatch):
    """Every record of every logger at DEBUG, including Streamlit's own non-propagating loggers.

    Streamlit loggers do not propagate to the root logger, and new ones are created as modules are
    imported, so the capture handler is added to the existing ones and to every one created later.
    """
    from streamlit import logger as st_logger

    caplog.set_level(logging.DEBUG)
    levels = {name: lg.level for name, lg in st_logger._loggers.items()}
    monkeypatch.setattr(st_logger, "_global_log_level", logging.DEBUG)
    original_get_logger = st_logger.get_logger

    def capturing_get_logger(name: str) -> logging.Logger:
        lg = original_get_logger(name)
        lg.setLevel(logging.DEBUG)
        if caplog.handler not in lg.handlers:
            lg.addHandler(caplog.handler)
        return lg

    monkeypatch.setattr(st_logger, "get_logger", capturing_get_logger)
    for name in list(st_logger._loggers):
        capturing_get_logger(name)
    yield caplog
    for name, lg in st_logger._loggers.items():
        lg.removeHandler(caplog.handler)
        lg.setLevel(levels.get(name, logging.WARNING))
        # Streamlit re-creates its stream handlers when AppTest loads the config, binding them to
        # the stderr that capfd has just closed: point them back at the live stderr.
        for handler in lg.handlers:
            if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False):
                handler.stream = sys.stderr  # setStream() would flush the closed stream


def _screen_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [str(opt) for box in at.selectbox for opt in box.options]
    parts += [df.value.to_csv() for df in at.dataframe]
    return "\n".join(str(p) for p in parts)


def _upload(at: AppTest, marker: str) -> AppTest:
    uploader = at.file_uploader(key="upload_files")
    return uploader.set_value((_upload_name(marker), _marked_csv(marker), "text/csv")).run()


# --------------------------------------------------------------------------------------------
# (a) AppTest: no file, no log line
# --------------------------------------------------------------------------------------------


def test_an_upload_leaves_no_file_and_no_log_line(all_logs, capfd, write_recorder, tmp_path,
                                                  monkeypatch):
    """The app runs in this process with its own empty HOME and temp directory, so "no new file"
    is exact there even while other programs write to the machine's /tmp; the repository must stay
    unchanged; the audit hook sees no file opened for writing anywhere; and no file under the real
    home or temp directory modified meanwhile may contain the uploaded marker."""
    marker = _new_marker()
    at = run_app()  # warm up first: imports and bundled-cohort caches are not the upload's doing
    real_home, real_tmp = Path.home(), Path(tempfile.gettempdir())
    private_home, private_tmp = tmp_path / "home", tmp_path / "tmp"
    private_home.mkdir()
    private_tmp.mkdir()
    monkeypatch.setenv("HOME", str(private_home))
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    watched = [bu.ROOT, private_home, private_tmp]
    ignore = bu.privacy_ignores()
    before = bu.snapshot(watched, ignore)
    started = time.time()

    write_recorder.active = True
    at = _upload(at, marker)
    assert not at.exception, [e.value for e in at.exception]
    assert sidebar_count(at).startswith(f"n = {N_UPLOADED} of {N_UPLOADED}"), sidebar_count(at)
    for page in ("2_Response.py", "3_Survival.py", "4_Subgroups.py", "7_Subsets.py", "6_Methods.py"):
        at = goto(at, page)
        assert not at.exception, (page, [e.value for e in at.exception])
    assert marker in _screen_text(at) or marker[-8:] in _screen_text(at)  # the upload was in use
    write_recorder.active = False

    assert write_recorder.writes == [], f"files opened for writing during the upload: {write_recorder.writes}"
    changed = bu.new_or_changed(before, bu.snapshot(watched, ignore))
    # The private HOME and temp directory must stay empty. In the repository, other test
    # processes (pytest-xdist workers) may write at the same time: there, this process's own
    # writes are caught by write_recorder above, and no file may hold the uploaded values.
    private = [c for c in changed if not Path(c).is_relative_to(bu.ROOT)]
    assert private == [], f"files created or changed during the upload: {private}"
    in_repo = [c for c in changed if Path(c).is_relative_to(bu.ROOT)]
    holding = [c for c in in_repo if Path(c).is_file() and marker.encode() in Path(c).read_bytes()]
    assert holding == [], f"repository files holding the uploaded values: {holding}"
    leaked = _files_containing(marker, [real_home, real_tmp], since=started)
    assert leaked == [], f"files holding the uploaded values: {leaked}"

    # The capture itself works: a canary through Streamlit's own logger is seen.
    from streamlit.logger import get_logger

    get_logger("streamlit.privacy_canary").debug("canary-%s", marker[-6:])
    assert f"canary-{marker[-6:]}" in all_logs.text
    captured = capfd.readouterr()
    for where, text in (("log records", all_logs.text), ("stdout", captured.out), ("stderr", captured.err)):
        assert marker not in text, f"a cell value reached the {where}"


def test_the_write_recorder_sees_writes(write_recorder, tmp_path):
    # Guards the test above against a recorder that can never fail: a real write must be seen.
    write_recorder.active = True
    (tmp_path / "probe.txt").write_text("x")
    write_recorder.active = False
    assert any("probe.txt" in what for _, what in write_recorder.writes)


# --------------------------------------------------------------------------------------------
# (b) The real server and browser: no file, nothing in the server's output
# --------------------------------------------------------------------------------------------


def _browser_ignores() -> list[str]:
    # Chromium's own profile and Playwright's artefacts are the user's browser, not the app.
    import tempfile

    tmp = Path(tempfile.gettempdir())
    return [str(tmp / "playwright_chromiumdev_profile-"), str(tmp / "playwright-artifacts-"),
            *bu.privacy_ignores()]


@pytest.mark.browser
@pytest.mark.slow
def test_a_browser_upload_leaves_no_file_and_no_server_output(tmp_path):
    """The server gets its own empty HOME and TMPDIR, so "no new file" is exact there even on a
    busy machine; the repository must stay unchanged; and no file anywhere under the real home or
    temp directory may contain the uploaded marker."""
    bu.require_browser()
    from playwright.sync_api import sync_playwright

    marker = _new_marker()
    pages = bu.app_pages()
    server_home, server_tmp = tmp_path / "home", tmp_path / "tmp"
    server_home.mkdir()
    server_tmp.mkdir()
    overrides = {"HOME": str(server_home), "TMPDIR": str(server_tmp)}
    with bu.streamlit_server(env_overrides=overrides) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(**bu.launch_kwargs())
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server.url, wait_until="domcontentloaded")
            bu.wait_for_page(page, pages[0].heading, 90_000)
            started = time.time()
            before_home = sorted(p.relative_to(server_home) for p in server_home.rglob("*"))
            before_repo = bu.snapshot([bu.ROOT], _browser_ignores())
            payload = {"name": _upload_name(marker), "mimeType": "text/csv", "buffer": _marked_csv(marker)}
            page.locator(".st-key-upload_files input[type=file]").set_input_files(payload)
            page.wait_for_function(
                "([sel, n]) => Array.from(document.querySelectorAll(sel))"
                ".some(e => e.innerText.startsWith(`n = ${n} of ${n}`))",
                arg=[bu.COUNT_SELECTOR, str(N_UPLOADED)], timeout=90_000,
            )
            for path in ("Response", "Survival"):
                bu.open_page_by_link(page, bu.find_page(pages, path), 90_000)
                assert re.match(rf"n = {N_UPLOADED} of {N_UPLOADED}", bu.sidebar_count(page))
            repo_changed = bu.new_or_changed(before_repo, bu.snapshot([bu.ROOT], _browser_ignores()))
        finally:
            browser.close()
    assert list(server_tmp.rglob("*")) == [], "the server wrote into its temp directory"
    after_home = sorted(p.relative_to(server_home) for p in server_home.rglob("*"))
    assert after_home == before_home, "the server wrote into its home directory during the upload"
    assert repo_changed == [], f"files created or changed in the repository: {repo_changed}"
    leaked = _files_containing(marker, [Path.home(), Path(tempfile.gettempdir())], since=started)
    assert leaked == [], f"files holding the uploaded values: {leaked}"
    output = server.output()
    assert "You can now view your Streamlit app" in output  # the output really was captured
    assert marker not in output, "a cell value reached the server's stdout/stderr"


def _files_containing(marker: str, roots: list[Path], *, since: float) -> list[str]:
    """Files modified since ``since`` under ``roots`` whose bytes contain ``marker``."""
    needle = marker.encode()
    found = []
    for root in roots:
        # os.walk skips folders that vanish while it reads (e.g. R's session temp folders of
        # other test processes): rglob would raise FileNotFoundError on them.
        for folder, _, names in os.walk(root, onerror=lambda _error: None):
            for name in names:
                path = Path(folder, name)
                try:
                    if path.is_file() and path.stat().st_mtime >= since and needle in path.read_bytes():
                        found.append(str(path))
                except OSError:
                    continue
    return found


# --------------------------------------------------------------------------------------------
# (c) Two concurrent sessions
# --------------------------------------------------------------------------------------------


def test_a_second_session_sees_nothing_of_the_first():
    marker = _new_marker()
    first, second = run_app(), run_app()
    default_count = sidebar_count(second)
    second = goto(second, "2_Response.py")
    second_rates = second.dataframe[0].value.copy()

    first = _upload(first, marker)
    token = first.sidebar.selectbox(key="cohort").value
    assert token.startswith("upload:"), token
    first = goto(first, "2_Response.py")
    first.sidebar.multiselect(key="f_her2").set_value(["positive"]).run()
    assert sidebar_count(first).startswith("n = ")
    assert sidebar_count(first) != default_count

    second = second.run()  # the other user keeps working while the first one uploads
    assert "_uploads" not in second.session_state or not second.session_state["_uploads"]
    assert all(not str(o).startswith("Uploaded") for o in second.sidebar.selectbox(key="cohort").options)
    assert second.sidebar.multiselect(key="f_her2").value == []
    assert sidebar_count(second) == default_count
    pd.testing.assert_frame_equal(second.dataframe[0].value, second_rates)
    assert marker not in _screen_text(second)

    # Even knowing the first session's cache token, a third session cannot reach its data.
    third = goto(run_app(cohort=token), "2_Response.py")
    assert not third.exception
    assert third.sidebar.selectbox(key="cohort").value == datasets.DEFAULT_BUNDLE
    assert sidebar_count(third) == default_count
    pd.testing.assert_frame_equal(third.dataframe[0].value, second_rates)
    assert marker not in _screen_text(third)


# --------------------------------------------------------------------------------------------
# (d) Server configuration
# --------------------------------------------------------------------------------------------


def test_server_config_is_private_by_default():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["browser"]["gatherUsageStats"] is False
    assert 1 <= config["server"]["maxUploadSize"] <= 1024  # megabytes, stated explicitly
    assert config["server"]["enableXsrfProtection"] is True
