"""One Streamlit worker of ``make serve`` that opens registries ahead of their first user.

``python -m deploy.worker run app.py <options>`` is ``python -m streamlit run app.py <options>``
plus, when :data:`ui.registry.PREWARM_ENV` (``HER2ER_PREWARM``) names registries of the data
folder, a thread that waits until Streamlit's runtime exists and then opens and classifies each
of them under the default filter (``ui.registry.prewarm``), in the caches a session uses. The
first user who picks one then finds it ready instead of waiting while 10M patients are
classified and sorted (~30 s on the benchmark machine). Each worker does it for itself (a worker
holds its own registries), and reports each registry's time on stderr.

``deploy.serve`` starts workers this way only when ``HER2ER_PREWARM`` is set.
"""

from __future__ import annotations

import logging
import os
import runpy
import sys
import threading
import time

#: The environment variable naming the registries (as ``ui.registry.PREWARM_ENV``; repeated
#: here so that starting a worker does not import the app before Streamlit).
PREWARM_ENV = "HER2ER_PREWARM"
#: How long the thread waits for Streamlit's runtime before giving up.
RUNTIME_WAIT_S = 120.0
THREAD_NAME = "her2er-prewarm"
#: Streamlit's logger that warns of a thread without a session ("missing ScriptRunContext"):
#: true of the opening thread by design, so its warnings would only be noise in the log.
_CONTEXT_LOGGER = "streamlit.runtime.scriptrunner_utils.script_run_context"


def _not_from_the_opening_thread(record: logging.LogRecord) -> bool:
    return record.threadName != THREAD_NAME


def prewarm_when_running(names: str, *, wait_s: float = RUNTIME_WAIT_S) -> dict[str, float]:
    """Wait for Streamlit's runtime, then open and classify the registries ``names`` lists."""
    from streamlit import runtime

    deadline = time.monotonic() + wait_s
    while not runtime.exists():
        if time.monotonic() > deadline:
            print(f"worker {os.getpid()}: Streamlit did not start within {wait_s:.0f} s; "
                  "no registry opened ahead", file=sys.stderr, flush=True)
            return {}
        time.sleep(0.1)
    from ui import registry  # the app's own module, imported as a page would import it

    took = registry.prewarm(registry.prewarm_names(names))
    for name, seconds in took.items():
        print(f"worker {os.getpid()}: registry {name} opened ahead in {seconds:.1f} s",
              file=sys.stderr, flush=True)
    return took


def main(argv: list[str]) -> None:
    names = os.environ.get(PREWARM_ENV, "").strip()
    if names:
        logging.getLogger(_CONTEXT_LOGGER).addFilter(_not_from_the_opening_thread)
        threading.Thread(target=prewarm_when_running, args=(names,), name=THREAD_NAME,
                         daemon=True).start()
    sys.argv = ["streamlit", *argv]
    runpy.run_module("streamlit", run_name="__main__", alter_sys=True)


if __name__ == "__main__":  # pragma: no cover - the worker process of deploy.serve
    main(sys.argv[1:])
