"""The app opened ahead of its first visitor, in every server process that runs it.

``app.py`` is a Streamlit ``st.App`` whose lifespan (what Streamlit's server runs as it starts)
calls :func:`start`. Every way of starting the app goes through it: ``streamlit run app.py``
(Streamlit Community Cloud, a deployed copy), the launcher (``her2er-explorer``, ``make run``) and
each worker of ``make serve``. :func:`start` begins one thread that, as soon as the server
answers its health check, imports the app's own package (``ui``: pandas, plotly and the
analysis package) and the modules its first page imports (``ui.analysis.FIRST_PAGE_MODULES``),
then opens the bundled default cohort under the default filter
(``ui.analysis.open_default_view``). Without it the first visitor's script run does both and
waits for them (0.7-0.9 s for the import on the benchmark machine, most of it pandas, and
0.2-0.3 s for the cohort and the first figure), while the browser had been loading the frontend
for ~1 s with the server idle. The import starts only once the server answers, because before
that it would compete with the server's own start for the interpreter (the server then became
ready later: benchmarks/README.md, "cold start").

When :data:`PREWARM_ENV` (``HER2ER_PREWARM``) names registries of the data folder, the same
thread then opens and classifies each of them under the default filter
(``ui.registry.prewarm``), in the caches a session uses. The first user who picks one then
finds it ready instead of waiting while 10M patients are classified and sorted (~30 s on the
benchmark machine). Each process does it for itself (a worker holds its own registries), and
reports each registry's time on stderr.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
import urllib.request
from collections.abc import Callable

#: The environment variable naming the registries (as ``ui.registry.PREWARM_ENV``; repeated
#: here so that the server's start does not import the app).
PREWARM_ENV = "HER2ER_PREWARM"
#: How long the thread waits for the server to answer before it opens the app anyway.
SERVER_WAIT_S = 120.0
#: How long after importing the app the thread waits before opening the default view. A browser
#: sent to the server as soon as it answers is then connected (its first page opens the view
#: itself), and the opening never competes with the server sending it the frontend: done at
#: once, a visitor arriving with the server's first answer saw the page 0.1-0.2 s later
#: (median of 6-8 alternating starts, 3 runs; benchmarks/README.md).
DEFAULT_VIEW_DELAY_S = 2.0
THREAD_NAME = "her2er-open-ahead"
#: Streamlit's logger that warns of a thread without a session ("missing ScriptRunContext"):
#: true of the opening thread by design, so its warnings would only be noise in the log.
_CONTEXT_LOGGER = "streamlit.runtime.scriptrunner_utils.script_run_context"


def _not_from_the_opening_thread(record: logging.LogRecord) -> bool:
    return record.threadName != THREAD_NAME


def server_answers() -> bool:
    """Whether this process's Streamlit server answers its health check (on loopback when it
    listens on every address)."""
    import streamlit as st
    from streamlit import runtime

    if not runtime.exists():  # (then the options hold the command line's: read them only now)
        return False
    address = st.get_option("server.address") or "127.0.0.1"
    host = "127.0.0.1" if address in ("0.0.0.0", "::") else address
    url = f"http://{host}:{st.get_option('server.port')}/_stcore/health"
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return reply.status == 200
    except OSError:
        return False


def visitor_connected() -> bool:
    """Whether a browser session is connected to this process's server. Its own first script
    run then opens the default view, and doing it here as well would only compete with it."""
    from streamlit import runtime

    return runtime.exists() and (
        runtime.get_instance().state == runtime.RuntimeState.ONE_OR_MORE_SESSIONS_CONNECTED
    )


def open_ahead(names: str, *, answering: Callable[[], bool] = server_answers,
               visited: Callable[[], bool] = visitor_connected,
               wait_s: float = SERVER_WAIT_S, poll_s: float = 0.05,
               view_delay_s: float = DEFAULT_VIEW_DELAY_S) -> dict[str, float]:
    """Wait until the server answers (at most ``wait_s``), import the app's package, after
    ``view_delay_s`` open the default view unless a visitor is connected by then, then open and
    classify the registries ``names`` lists (see the module docstring). Returns each registry's
    seconds."""
    deadline = time.monotonic() + wait_s
    while not answering():
        if time.monotonic() > deadline:
            print(f"worker {os.getpid()}: the server did not answer within {wait_s:.0f} s; "
                  "opening the app anyway", file=sys.stderr, flush=True)
            break
        time.sleep(poll_s)
    import ui  # the app's package, imported as the first page would import it

    try:
        ui.analysis.import_first_page_modules()  # a visitor or not: its first run needs them
        time.sleep(view_delay_s)
        if not visited():
            ui.analysis.open_default_view()
    except Exception as exc:  # noqa: BLE001 - only a head start: a visitor then opens it as usual
        print(f"worker {os.getpid()}: the default cohort was not opened ahead: {exc}",
              file=sys.stderr, flush=True)
    if not names:
        return {}
    from ui import registry

    took = registry.prewarm(registry.prewarm_names(names))
    for name, seconds in took.items():
        print(f"worker {os.getpid()}: registry {name} opened ahead in {seconds:.1f} s",
              file=sys.stderr, flush=True)
    return took


@functools.cache  # one thread per process, whoever asks
def start() -> threading.Thread:
    """Start the opening thread (:func:`open_ahead` with the registries :data:`PREWARM_ENV`
    names), once per process; returns it. Called by ``app.py`` when the server starts."""
    logging.getLogger(_CONTEXT_LOGGER).addFilter(_not_from_the_opening_thread)
    names = os.environ.get(PREWARM_ENV, "").strip()
    thread = threading.Thread(target=open_ahead, args=(names,), name=THREAD_NAME, daemon=True)
    thread.start()
    return thread
