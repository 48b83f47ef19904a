"""A Streamlit client that speaks the browser's websocket protocol, without a browser.

The load test (``benchmarks/loadtest.py``) and the deployment test use it to open many real
Streamlit sessions cheaply: one asyncio task per session instead of one Chromium per user, so the
machine's cores serve the app rather than 30 browsers.

What a browser tab does, and this client repeats:

1. ``GET /_stcore/health`` (a session-affine proxy answers with its affinity cookie; the client
   keeps it, as a browser does, so every later request of the session reaches the same worker);
2. opens the websocket ``/_stcore/stream`` with the subprotocols ``streamlit`` and a placeholder
   token (the browser puts its XSRF token there; the server only reads it for signed-in users);
3. sends ``BackMsg.rerun_script`` with the page name (the URL path, e.g. ``Survival``), the query
   string, empty widget states and ``context_info`` (time zone, locale, URL, colour scheme);
4. reads ``ForwardMsg``s until ``script_finished`` is ``FINISHED_SUCCESSFULLY``: that is one render.
   Elements are inspected on the way: widget ids by user key (to change one later), exception
   elements and error alerts (counted as failures), the page's script hash (``navigation``);
5. a widget change re-sends ``rerun_script`` with the page's script hash, the changed widget's state
   and the hashes of the cacheable messages already received (the browser's message cache, so
   the server answers unchanged large elements with a reference).

Dependency note: the *benchmark* (not the app) depends on the protobuf classes that the streamlit
package ships (``streamlit.proto.*_pb2``). They are Streamlit's wire format, not a documented
Python API, so the client states the version it was checked against (``TESTED_STREAMLIT``; the
fidelity check in ``benchmarks/loadtest.py --fidelity`` compares it with a real Chromium session
message by message) and reports the installed version next to every result.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import streamlit
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

TESTED_STREAMLIT = "1.67.0"
SUBPROTOCOLS = ("streamlit", "PLACEHOLDER_AUTH_TOKEN")
FINISHED_OK = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_SUCCESSFULLY")
FINISHED_EARLY = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")
ERROR_ALERT = 1  # Alert.Format.ERROR
INFO_ALERT = 3  # Alert.Format.INFO
MAX_MESSAGE_BYTES = 64 * 2**20


class ProtocolError(RuntimeError):
    """The server answered in a way a browser would show as broken (or not at all)."""


@dataclass
class Render:
    """What one script run sent to the client."""

    seconds: float = 0.0
    messages: int = 0
    deltas: int = 0  # new elements, blocks and references to cached elements (not transient ones)
    delta_bytes: int = 0
    transient: int = 0  # spinners and empty placeholders (see is_transient)
    bytes: int = 0
    errors: list[str] = field(default_factory=list)  # exception elements and error alerts
    count_line: str = ""  # the sidebar's "n = … of … patients" (shows which filter was applied)


def is_transient(msg: ForwardMsg) -> bool:
    """Whether ``msg`` carries no page content: a transient element (Streamlit's spinners, shown
    only when a block outlasts a short delay, e.g. a cache miss under load) or an empty
    placeholder (sent or not depending on whether the element that replaces it follows before
    the next flush). Their number depends on timing, not on the page, so they are counted apart:
    two sessions of the same page then have the same deltas."""
    if msg.WhichOneof("type") != "delta":
        return False
    kind = msg.delta.WhichOneof("type")
    if kind == "new_transient":
        return True
    return kind == "new_element" and msg.delta.new_element.WhichOneof("type") in ("empty", "spinner")


@dataclass
class WidgetInfo:
    """A widget the page drew: its id (to send a new value) and its kind (multiselect...)."""

    id: str
    kind: str
    options: tuple[str, ...] = ()


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def element_errors(element) -> list[str]:
    """Exception elements and error alerts: what a user sees as a red box."""
    kind = element.WhichOneof("type")
    if kind == "exception":
        return [f"exception: {element.exception.type}: {element.exception.message[:200]}"]
    if kind == "alert" and element.alert.format == ERROR_ALERT:
        return [f"error box: {element.alert.body[:200]}"]
    return []


def _widget(element) -> tuple[str, WidgetInfo] | None:
    """(user key, widget) for a widget drawn with ``key=``, else None.

    Widget ids read ``$$ID-<hash>-<user key>`` (``None`` without a key), as Streamlit builds them.
    """
    kind = element.WhichOneof("type")
    proto = getattr(element, kind) if kind else None
    fields = proto.DESCRIPTOR.fields_by_name if hasattr(proto, "DESCRIPTOR") else {}
    parts = proto.id.split("-", 2) if "id" in fields else []
    if len(parts) != 3 or parts[2] == "None":
        return None
    options = tuple(proto.options) if "options" in fields else ()
    return parts[2], WidgetInfo(id=proto.id, kind=kind, options=options)


class Session:
    """One Streamlit session over one websocket (use ``async with Session(url) as s``)."""

    def __init__(self, base_url: str, *, timeout: float = 60.0, cookies: dict[str, str] | None = None,
                 timezone: str = "UTC", locale: str = "en-US") -> None:
        if not is_loopback(base_url):
            raise ValueError(f"the load-test client only talks to loopback addresses, not {base_url}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cookies = dict(cookies or {})
        self.timezone, self.locale = timezone, locale
        self.ws = None
        self.session_id = ""
        self.page_script_hash = ""
        self.query_string = ""
        self.widgets: dict[str, WidgetInfo] = {}
        self.cached_hashes: set[str] = set()
        self.connect_seconds = 0.0

    # -- connection ----------------------------------------------------------------------------

    async def __aenter__(self) -> Session:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def _get(self, path: str) -> tuple[int, str]:
        """A loopback GET that stores the cookies it receives (never through an HTTP proxy)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(self.base_url + path)
        if self.cookies:
            request.add_header("Cookie", self._cookie_header())
        with opener.open(request, timeout=self.timeout) as reply:
            for header in reply.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0].strip()
            return reply.status, reply.read().decode(errors="replace")

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        start = time.perf_counter()
        status, body = await asyncio.to_thread(self._get, "/_stcore/health")
        if status != 200 or body.strip() != "ok":
            raise ProtocolError(f"health check answered {status} {body[:80]!r}")
        headers = {"Cookie": self._cookie_header()} if self.cookies else None
        ws_url = "ws" + self.base_url.removeprefix("http") + "/_stcore/stream"
        self.ws = await asyncio.wait_for(
            connect(ws_url, subprotocols=list(SUBPROTOCOLS), origin=self.base_url, additional_headers=headers,
                    proxy=None, compression=None, max_size=MAX_MESSAGE_BYTES, open_timeout=self.timeout,
                    ping_interval=None),
            timeout=self.timeout,
        )
        if self.ws.subprotocol != "streamlit":
            raise ProtocolError(f"server chose subprotocol {self.ws.subprotocol!r}")
        self.connect_seconds = time.perf_counter() - start

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None

    # -- script runs ---------------------------------------------------------------------------

    def _context_info(self, page_name: str) -> ContextInfo:
        url = f"{self.base_url}/{page_name}" + (f"?{self.query_string}" if self.query_string else "")
        return ContextInfo(timezone=self.timezone, timezone_offset=0, locale=self.locale, url=url,
                           is_embedded=False, color_scheme="light")

    async def open_page(self, page_name: str, query_string: str = "") -> Render:
        """The first run of a page, as a browser opening ``/<page_name>?<query_string>``."""
        self.query_string = query_string
        state = ClientState(query_string=query_string, page_name=page_name, widget_states=WidgetStates(),
                            context_info=self._context_info(page_name))
        return await self._run(state)

    async def change_widgets(self, states: list[WidgetState]) -> Render:
        """Rerun the current page after the user changed ``states`` (as the browser sends them)."""
        if not self.page_script_hash:
            raise ProtocolError("no page has been run yet (no navigation message)")
        state = ClientState(query_string=self.query_string, page_script_hash=self.page_script_hash,
                            widget_states=WidgetStates(widgets=states), context_info=self._context_info(""),
                            cached_message_hashes=sorted(self.cached_hashes))
        return await self._run(state)

    def multiselect_state(self, key: str, values: list[str]) -> WidgetState:
        """The state a browser sends when the multiselect drawn with ``key=key`` is set to ``values``."""
        widget = self.widgets.get(key)
        if widget is None:
            raise ProtocolError(f"the page drew no widget with key {key!r}")
        state = WidgetState(id=widget.id)
        state.string_array_value.data.extend(values)
        return state

    async def _run(self, state: ClientState) -> Render:
        render = Render()
        start = time.perf_counter()
        await self.ws.send(BackMsg(rerun_script=state).SerializeToString())
        deadline = start + self.timeout
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise ProtocolError(f"no script_finished within {self.timeout:.0f} s")
            data = await asyncio.wait_for(self.ws.recv(decode=False), timeout=remaining)
            msg = ForwardMsg.FromString(data)
            render.messages += 1
            render.bytes += len(data)
            if self._handle(msg, data, render):
                render.seconds = time.perf_counter() - start
                return render

    def _handle(self, msg: ForwardMsg, data: bytes, render: Render) -> bool:
        """Account for one message; True when the run finished successfully."""
        kind = msg.WhichOneof("type")
        if kind in ("delta", "ref_hash"):
            self._delta(msg, data, render)
        elif kind == "new_session":
            self.session_id = msg.new_session.initialize.session_id or self.session_id
            self.page_script_hash = msg.new_session.page_script_hash or self.page_script_hash
        elif kind == "navigation":
            self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "page_not_found":
            render.errors.append(f"page not found: {msg.page_not_found.page_name}")
        elif kind == "script_finished":
            if msg.script_finished == FINISHED_OK:
                return True
            if msg.script_finished != FINISHED_EARLY:
                raise ProtocolError(f"script finished with status {msg.script_finished}")
        return False

    def _delta(self, msg: ForwardMsg, data: bytes, render: Render) -> None:
        if is_transient(msg):
            render.transient += 1
            return
        render.deltas += 1
        render.delta_bytes += len(data)
        if msg.metadata.cacheable and msg.hash:
            self.cached_hashes.add(msg.hash)
        if msg.WhichOneof("type") != "delta" or msg.delta.WhichOneof("type") != "new_element":
            return
        element = msg.delta.new_element
        render.errors.extend(element_errors(element))
        if (element.WhichOneof("type") == "alert" and element.alert.format == INFO_ALERT
                and element.alert.body.startswith("n = ") and not render.count_line):
            render.count_line = element.alert.body
        found = _widget(element)
        if found is not None:
            self.widgets[found[0]] = found[1]


def installed_streamlit() -> str:
    return streamlit.__version__
