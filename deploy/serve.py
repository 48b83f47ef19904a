"""``make serve``: HER2/ER Explorer's production launch on one machine.

Starts ``workers`` Streamlit processes (default: one per core; Python runs a script on one core at
a time, so one process cannot use a second core) with production settings, each on its own
loopback port, then HAProxy in front of them on ``address:port``, and stays in the foreground:

* **production settings** (:data:`PRODUCTION_FLAGS`): no file watcher (Streamlit's default
  watches every imported module's folder for each session, only to support editing the code
  while it runs: 0.14 CPU s of a 0.47 s Survival render) and no usage statistics;
  ``runner.postScriptGC`` (a full ``gc.collect()`` after every script run, another 0.14 s) is off
  by default after a one-hour soak showed memory as flat without it as with it
  (``benchmarks/README.md``; ``--post-script-gc on`` restores it);
* **session affinity**: HAProxy (``deploy/haproxy.cfg.template``) gives each browser a cookie
  naming its worker, so the session's websocket (``/_stcore/stream``), health checks and uploads
  (``/_stcore/upload_file/...``) all reach the process that holds the session in memory;
* **stopping cleanly**: Ctrl-C, SIGTERM or SIGHUP stops HAProxy, then every worker (SIGTERM, then
  SIGKILL after ``--grace`` seconds), and returns. Children also get SIGTERM from the kernel if the
  launcher itself is killed (``setpriv --pdeathsig``), so no worker outlives it;
* **the app opened ahead**: each worker (``streamlit run app.py``) imports the app's package as
  soon as it answers (``deploy/ahead.py``, started by the app as its server starts), and with
  ``HER2ER_PREWARM`` naming registries of the data folder (``all``, or comma-separated names)
  opens and classifies them too, so the first visitor does not wait for either;
* **supervision**: a worker that dies (e.g. killed for memory) is restarted on its port (at most
  :data:`MAX_RESTARTS` times in :data:`RESTART_WINDOW_S`; more means something is wrong, and the
  launcher stops with status 1). HAProxy's health check takes it out of rotation meanwhile.

Nothing is logged per request: HAProxy has no log target and the workers' banners are dropped;
warnings and errors of the workers go to stderr.

    python -m deploy.serve --port 8501 --workers 2      # = make serve PORT=8501 WORKERS=2

:class:`Deployment` is the same thing as a context manager, for the deployment test and the load
test (``benchmarks/loadtest.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from her2er_dash.cli import app_environment, new_memory_tmpdir

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).with_name("haproxy.cfg.template")
LOOPBACK = "127.0.0.1"
AFFINITY_COOKIE = "HER2ER_WORKER"
PRODUCTION_FLAGS = (
    "--server.headless", "true",
    "--server.fileWatcherType", "none",
    "--server.runOnSave", "false",
    "--browser.gatherUsageStats", "false",
)  # fmt: skip
MAX_RESTARTS = 5
RESTART_WINDOW_S = 300.0


def default_workers() -> int:
    """One worker per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def free_port(address: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def render_haproxy_config(*, bind: str, workers: list[tuple[str, int]], cookie: str = AFFINITY_COOKIE) -> str:
    """The HAProxy configuration for ``workers`` [(name, loopback port)], listening on ``bind``."""
    servers = "\n".join(f"    server {name} {LOOPBACK}:{port} cookie {name}" for name, port in workers)
    return string.Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        bind=bind, cookie=cookie, servers=servers
    )


def _with_parent_death_signal(command: list[str]) -> list[str]:
    """Make the kernel send SIGTERM to the child when the launcher dies, even by SIGKILL."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", *command] if setpriv else command


def _healthy(url: str, timeout: float = 2.0) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with opener.open(f"{url}/_stcore/health", timeout=timeout) as reply:
            return reply.status == 200
    except OSError:
        return False


def stop_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM the child's process group; SIGKILL it if it is still there after ``grace`` s."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    process.wait(timeout=5)


@dataclass
class Worker:
    name: str
    port: int
    process: subprocess.Popen | None = None
    restarts: deque = field(default_factory=deque)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


class Deployment:
    """HAProxy + N Streamlit workers, all children of this process (see the module docstring)."""

    def __init__(
        self,
        *,
        port: int = 8501,
        workers: int | None = None,
        address: str = LOOPBACK,
        post_script_gc: bool = False,
        haproxy: str = "haproxy",
        extra_args: tuple[str, ...] = (),
        worker_stderr=None,
        grace: float = 10.0,
    ) -> None:
        self.port, self.address, self.grace = port, address, grace
        self.post_script_gc = post_script_gc
        self.haproxy = shutil.which(haproxy) or haproxy
        self.extra_args = tuple(extra_args)
        self.worker_stderr = worker_stderr
        count = workers or default_workers()
        self.workers = [Worker(f"w{i + 1}", free_port()) for i in range(count)]
        self.proxy: subprocess.Popen | None = None
        self._config_dir: tempfile.TemporaryDirectory | None = None
        # Uploads over 1 MB are spooled by Streamlit's web server: keep that spool in memory.
        self._tmpdir = new_memory_tmpdir()
        # Workers share one cookie secret, so anything Streamlit signs in one verifies in another.
        self._cookie_secret = secrets.token_hex(32)

    @property
    def url(self) -> str:
        host = LOOPBACK if self.address in ("0.0.0.0", "") else self.address
        return f"http://{host}:{self.port}"

    def worker_command(self, worker: Worker) -> list[str]:
        return [
            sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
            "--server.address", LOOPBACK,
            "--server.port", str(worker.port),
            *PRODUCTION_FLAGS,
            "--runner.postScriptGC", "true" if self.post_script_gc else "false",
            *self.extra_args,
        ]  # fmt: skip

    def pids(self) -> list[int]:
        """Process ids of the proxy and the workers that are running now."""
        running = [w.process for w in self.workers if w.process is not None] + [self.proxy]
        return [p.pid for p in running if p is not None and p.poll() is None]

    # -- start ---------------------------------------------------------------------------------

    def _spawn_worker(self, worker: Worker) -> None:
        env = {**app_environment(tmpdir=self._tmpdir), "PYTHONUNBUFFERED": "1",
               "STREAMLIT_SERVER_COOKIE_SECRET": self._cookie_secret}
        worker.process = subprocess.Popen(
            _with_parent_death_signal(self.worker_command(worker)), cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.worker_stderr,
            start_new_session=True,
        )

    def _wait_workers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(self.workers)
        while waiting:
            for worker in list(waiting):
                if worker.process.poll() is not None:
                    raise RuntimeError(f"worker {worker.name} exited with status {worker.process.returncode}")
                if _healthy(worker.url):
                    waiting.remove(worker)
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"workers not healthy after {timeout:.0f} s: {[w.name for w in waiting]}")
            time.sleep(0.2)

    def write_proxy_config(self) -> Path:
        self._config_dir = tempfile.TemporaryDirectory(prefix="her2er-haproxy-")
        path = Path(self._config_dir.name) / "haproxy.cfg"
        path.write_text(render_haproxy_config(bind=f"{self.address}:{self.port}",
                                              workers=[(w.name, w.port) for w in self.workers]))
        return path

    def _start_proxy(self, timeout: float) -> None:
        config = self.write_proxy_config()
        check = subprocess.run([self.haproxy, "-c", "-q", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"HAProxy rejected the configuration:\n{check.stdout}{check.stderr}")
        self.proxy = subprocess.Popen(
            _with_parent_death_signal([self.haproxy, "-db", "-f", str(config)]),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.worker_stderr,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not _healthy(self.url):
            if self.proxy.poll() is not None:
                raise RuntimeError(f"HAProxy exited with status {self.proxy.returncode} "
                                   f"(is port {self.port} on {self.address} free?)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"HAProxy did not answer on {self.url} within {timeout:.0f} s")
            time.sleep(0.1)

    def start(self, timeout: float = 120.0) -> Deployment:
        if shutil.which(self.haproxy) is None:
            raise FileNotFoundError(f"{self.haproxy!r} not found: install HAProxy (apt-get install haproxy)")
        try:
            for worker in self.workers:
                self._spawn_worker(worker)
            self._wait_workers(timeout)
            self._start_proxy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    # -- run and stop --------------------------------------------------------------------------

    def check(self) -> None:
        """Restart workers that died; raise when the proxy died or a worker keeps dying."""
        if self.proxy is not None and self.proxy.poll() is not None:
            raise RuntimeError(f"HAProxy exited with status {self.proxy.returncode}")
        for worker in self.workers:
            if worker.process is None or worker.process.poll() is None:
                continue
            now = time.monotonic()
            while worker.restarts and now - worker.restarts[0] > RESTART_WINDOW_S:
                worker.restarts.popleft()
            if len(worker.restarts) >= MAX_RESTARTS:
                raise RuntimeError(f"worker {worker.name} died {MAX_RESTARTS + 1} times within "
                                   f"{RESTART_WINDOW_S:.0f} s (last status {worker.process.returncode})")
            print(f"serve: worker {worker.name} exited with status {worker.process.returncode}; restarting",
                  file=sys.stderr, flush=True)
            worker.restarts.append(now)
            self._spawn_worker(worker)

    def stop(self) -> None:
        """Stop the proxy first (no new requests), then the workers; wait for every child."""
        if self.proxy is not None:
            stop_group(self.proxy, self.grace)
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.process.pid, signal.SIGTERM)
        for worker in self.workers:
            if worker.process is not None:
                stop_group(worker.process, self.grace)
        if self._config_dir is not None:
            self._config_dir.cleanup()
            self._config_dir = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> Deployment:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Stop(Exception):
    pass


def _raise_stop(signum, frame) -> None:
    raise _Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8501),
                        help="port the proxy listens on (default $PORT or 8501)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS") or 0) or None,
                        help=f"Streamlit processes (default $WORKERS or one per core: {default_workers()})")
    parser.add_argument("--address", default=os.environ.get("ADDRESS", LOOPBACK),
                        help="address the proxy binds (default 127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--post-script-gc", choices=("on", "off"), default="off",
                        help="a full gc.collect() after every script run (Streamlit's default: on)")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds a child gets to stop before SIGKILL")
    args = parser.parse_args(argv)
    if args.workers is not None and not 1 <= args.workers <= 64:
        parser.error("--workers must be between 1 and 64")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    deployment = Deployment(port=args.port, workers=args.workers, address=args.address,
                            post_script_gc=args.post_script_gc == "on", grace=args.grace)
    try:
        deployment.start()
        workers = ", ".join(f"{w.name} {LOOPBACK}:{w.port}" for w in deployment.workers)
        print(f"HER2/ER Explorer: {deployment.url}  (HAProxy, session-affine, in front of "
              f"{len(deployment.workers)} Streamlit worker(s): {workers}; Ctrl-C stops)", flush=True)
        while True:
            time.sleep(0.5)
            deployment.check()
    except _Stop as stop:
        print(f"serve: {stop}, stopping", file=sys.stderr, flush=True)
        return 0
    except (RuntimeError, TimeoutError, FileNotFoundError) as exc:
        print(f"serve: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        deployment.stop()


if __name__ == "__main__":
    raise SystemExit(main())
