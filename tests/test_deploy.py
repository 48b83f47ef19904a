"""``make serve`` (deploy/serve.py): HAProxy + Streamlit workers on loopback, affine, stopped cleanly.

The launcher runs as ``make serve`` does (``python -m deploy.serve``, its own process) on a free
loopback port. Through the proxy: the health endpoint answers and hands out the affinity cookie;
two websocket sessions (the real Streamlit protocol, ``benchmarks/st_protocol.py``) land on two
different workers, and each session's file upload reaches the worker that holds the session only
with the session's own cookie. Then the launcher is stopped as an operator would (Ctrl-C =
SIGINT, SIGTERM) or killed outright (SIGKILL), and no process it started may remain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from benchmarks.st_protocol import Session
from deploy.serve import AFFINITY_COOKIE, render_haproxy_config
from her2er_dash import cli
from tests.browser_utils import ROOT, free_port, process_tree

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None,
    reason="HAProxy is not installed (apt-get install haproxy; .ci/run installs it)",
)
READY = re.compile(r"HER2/ER Explorer: (http://127\.0\.0\.1:\d+) .*worker\(s\): (.*); Ctrl-C stops")
STARTUP_S = 120


class Launched:
    """``python -m deploy.serve`` in its own session, its output collected in memory."""

    def __init__(self, workers: int, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deploy.serve", "--port", str(self.port), "--workers", str(workers),
             "--grace", "5"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.url, self.workers = self._wait_ready()

    def _drain(self) -> None:
        for line in iter(self.process.stdout.readline, ""):
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def _wait_ready(self) -> tuple[str, dict[str, str]]:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := READY.search(line):
                    workers = dict(item.split(" ") for item in match.group(2).split(", "))
                    return match.group(1), workers
            if self.process.poll() is not None:
                raise AssertionError(f"launcher exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.2)
        self.kill()
        raise AssertionError(f"launcher not ready after {STARTUP_S} s:\n{self.output()}")

    def descendants(self) -> list[int]:
        return process_tree(self.process.pid)[1:]

    def kill(self) -> None:
        """Last-resort clean-up of everything this test started."""
        for pid in [self.process.pid, *self.descendants()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _alive(pid: int) -> bool:
    """True when ``pid`` is a running process (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _get(url: str, cookies: dict[str, str] | None = None) -> tuple[int, str, list[str]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url)
    if cookies:
        request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
    with opener.open(request, timeout=30) as reply:
        return reply.status, reply.read().decode(), reply.headers.get_all("Set-Cookie") or []


def _upload(base_url: str, session_id: str, cookies: dict[str, str]) -> int:
    """PUT a tiny file into ``session_id``'s upload area, as the browser's file uploader does."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="probe.csv"\r\n'
            "Content-Type: text/csv\r\n\r\npatient_id\r\n1\r\n"
            f"--{boundary}--\r\n").encode()
    request = urllib.request.Request(
        f"{base_url}/_stcore/upload_file/{session_id}/{uuid.uuid4().hex}", data=body, method="PUT",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                 "X-Xsrftoken": cookies["_streamlit_xsrf"],
                 "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


async def _two_sessions(url: str) -> list[dict]:
    """Open two sessions one after the other, both kept open; check each one's routing."""
    sessions = []
    try:
        for _ in range(2):
            session = Session(url, timeout=90)
            await session.connect()
            sessions.append(session)
            render = await session.open_page("Survival", "cohort=synthetic")
            assert render.errors == []
        a, b = sessions
        results = []
        for own, other in ((a, b), (b, a)):
            swapped = {**own.cookies, AFFINITY_COOKIE: other.cookies[AFFINITY_COOKIE]}
            # The websocket still works after the uploads: the same session, the same worker.
            results.append({
                "worker": own.cookies[AFFINITY_COOKIE],
                "upload_own_cookie": await asyncio.to_thread(_upload, url, own.session_id, own.cookies),
                "upload_other_cookie": await asyncio.to_thread(_upload, url, own.session_id, swapped),
            })
            rerun = await own.change_widgets([own.multiselect_state("f_her2", ["positive"])])
            results[-1]["rerun_errors"] = rerun.errors
            results[-1]["rerun_count"] = rerun.count_line
        return results
    finally:
        for session in sessions:
            await session.close()


@pytest.mark.slow
def test_serve_routes_each_session_to_one_worker_and_stops_on_ctrl_c():
    launched = Launched(workers=2)
    try:
        assert set(launched.workers) == {"w1", "w2"}
        status, body, set_cookies = _get(f"{launched.url}/_stcore/health")
        assert (status, body) == (200, "ok")
        assert any(c.startswith(f"{AFFINITY_COOKIE}=") and "HttpOnly" in c for c in set_cookies)

        children = launched.descendants()
        commands = [_cmdline(p) for p in children]
        workers = [c for c in commands if "-m streamlit run" in c]
        assert len(workers) == 2, commands
        assert all("--server.fileWatcherType none" in c and "--server.address 127.0.0.1" in c for c in workers)
        assert sum("haproxy" in c for c in commands) == 1, commands
        worker_tmpdirs = {_environ(p).get("TMPDIR") for p, c in zip(children, commands, strict=True)
                          if "-m streamlit run" in c}
        if cli.is_tmpfs(Path("/dev/shm")):
            # Streamlit spools uploads over 1 MB to TMPDIR: one private folder in memory for all.
            (tmpdir,) = worker_tmpdirs
            assert tmpdir.startswith("/dev/shm/her2er-explorer-")

        results = asyncio.run(_two_sessions(launched.url))
        assert {r["worker"] for r in results} == {"w1", "w2"}, "the two sessions should be spread over both"
        for r in results:
            # Through the proxy, the session's own cookie reaches the worker holding the session
            # (upload accepted); the other worker's cookie reaches a worker that does not know it.
            assert r["upload_own_cookie"] == 204, r
            assert r["upload_other_cookie"] == 400, r
            assert r["rerun_errors"] == [], r
            assert r["rerun_count"].startswith("n = "), r

        launched.process.send_signal(signal.SIGINT)  # what Ctrl-C delivers to the foreground launcher
        assert launched.process.wait(timeout=60) == 0, launched.output()
        assert _wait_gone(children, timeout=5) == []
        assert "SIGINT, stopping" in launched.output()
        assert not any(Path(t).exists() for t in worker_tmpdirs if t), "the memory folder is removed"
        with pytest.raises(urllib.error.URLError, match="refused"):
            _get(f"{launched.url}/_stcore/health")
    finally:
        if launched.process.poll() is None:
            launched.kill()


def test_each_worker_opens_the_named_registries_before_their_first_user(tmp_path):
    from her2er_dash import simulate

    simulate.trial(3000, seed=5, n_studies=2).to_parquet(tmp_path / "trial.parquet", index=False)
    launched = Launched(workers=2, env={"HER2ER_DATA_DIR": str(tmp_path), "HER2ER_PREWARM": "all"})
    try:
        workers = [c for c in map(_cmdline, launched.descendants()) if " run " in c]
        assert len(workers) == 2
        assert all("-m streamlit run" in c for c in workers), workers
        opened = re.compile(r"worker \d+: registry trial\.parquet opened ahead in [\d.]+ s")
        deadline = time.monotonic() + 60
        while len(opened.findall(launched.output())) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(opened.findall(launched.output())) == 2, launched.output()
        assert "missing ScriptRunContext" not in launched.output()
        assert _get(f"{launched.url}/_stcore/health")[:2] == (200, "ok")
    finally:
        launched.process.send_signal(signal.SIGTERM)
        launched.process.wait(timeout=60)


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_no_process_outlives_the_launcher(sig):
    launched = Launched(workers=1)
    try:
        children = launched.descendants()
        assert len(children) == 2, [_cmdline(p) for p in children]
        assert _get(f"{launched.url}/_stcore/health")[:2] == (200, "ok")
        launched.process.send_signal(sig)
        code = launched.process.wait(timeout=60)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), launched.output()
        # After SIGKILL the kernel's parent-death signal stops the children (setpriv --pdeathsig).
        assert _wait_gone(children, timeout=30) == [], [_cmdline(p) for p in children]
    finally:
        if launched.process.poll() is None:
            launched.kill()


def test_proxy_config_is_valid_and_affine(tmp_path):
    text = render_haproxy_config(bind="127.0.0.1:8501", workers=[("w1", 8601), ("w2", 8602)])
    assert f"cookie {AFFINITY_COOKIE} insert indirect nocache httponly" in text
    assert "server w1 127.0.0.1:8601 cookie w1" in text
    assert "server w2 127.0.0.1:8602 cookie w2" in text
    assert "\n    log " not in text  # URLs carry filter values: requests are not logged
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    check = subprocess.run(["haproxy", "-c", "-q", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_compose_proxy_config_is_valid():
    config = ROOT / "deploy" / "compose" / "haproxy.cfg"
    check = subprocess.run(["haproxy", "-c", "-q", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    text = config.read_text()
    assert f"cookie {AFFINITY_COOKIE}_LB insert indirect nocache" in text
