"""A browser's side of Streamlit's websocket protocol, without the browser: send clicks, read what a run drew.

Streamlit's front end talks to the server over one websocket (``/_stcore/stream``): it sends
``BackMsg`` protobufs and receives ``ForwardMsg`` protobufs. A click is a ``rerun_script``
BackMsg whose ``ClientState`` carries the address's query string, the page's script hash, the
widget states (values, plus ``trigger_value`` for the button clicked) and, for a widget drawn
inside an ``st.fragment``, that fragment's id. The server answers with the run's messages:
``new_session``, deltas (the elements drawn), ``page_info_changed`` when ``st.query_params``
changed, ``navigation`` naming the page, and ``script_finished`` at the end.

:class:`Session` keeps what the front end keeps between runs (query string, page hash, widget
ids by key with their fragment, committed widget values, the message cache) and records what
each run drew that a reader would look at. It renders nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

#: A run that ended normally (a whole page or one fragment).
FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
ALERT_ERROR, ALERT_SUCCESS = 1, 4  # streamlit.proto.Alert_pb2.Alert.Format


@dataclass
class Widget:
    """What a click needs to know about a widget: its id and the fragment (if any) that drew it."""

    id: str
    fragment_id: str
    disabled: bool = False


@dataclass
class Run:
    """What one script run drew that a learner would read."""

    status: int | None = None
    alerts: list[tuple[int, str]] = field(default_factory=list)  # (Alert.Format, body)
    texts: list[str] = field(default_factory=list)  # markdown bodies (st.markdown, st.caption, …)
    options: dict[str, list[str]] = field(default_factory=dict)  # a select widget's options, by key
    exceptions: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # headings, metrics ("label: value") and progress bars' texts
    kinds: list[str] = field(default_factory=list)  # every element drawn, by its type (``plotly_chart``, …)
    fragment: str = ""  # the fragment this run was scoped to ("": the whole page)
    images: list[str] = field(default_factory=list)  # the addresses st.image drew (``/media/…``)

    def successes(self) -> list[str]:
        return [body for kind, body in self.alerts if kind == ALERT_SUCCESS]

    def errors(self) -> list[str]:
        return [body for kind, body in self.alerts if kind == ALERT_ERROR]


def widget_key(widget_id: str) -> str | None:
    """The key a widget was given (``$$ID-<hash>-<key>``), or None for a widget without one."""
    prefix, _, rest = widget_id.partition("-")
    return (rest.partition("-")[2] or None) if prefix == "$$ID" else None


class Session:
    """One browser tab's websocket session with a Streamlit server, at one page's address."""

    def __init__(self, url: str, page: str, timeout: float) -> None:
        self.ws_url = url.replace("http://", "ws://", 1) + "/_stcore/stream"
        self.page, self.page_url, self.timeout = page, f"{url}/{page}", timeout
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.query = ""  # the address's query string, as the server last set it
        self.page_hash = ""  # the page's script hash, once the server has named it
        self.widgets: dict[str, Widget] = {}  # by key
        self.values: dict[str, WidgetState] = {}  # committed values, by widget id (the front end's widget state)
        self.cache: dict[str, ForwardMsg] = {}  # the front end's message cache, by hash
        self.run = Run()
        self.finished = asyncio.Event()
        self.closed: str | None = None
        self.received_bytes = 0  # what the server sent: the websocket's payload bytes, and its messages
        self.received_messages = 0
        self.auto_reruns: dict[str, float] = {}  # fragments drawn with run_every: id -> seconds between reruns

    async def open(self, query: str = "") -> Run:
        """Connect, and run the page as a browser opening its address (with ``?query``) does."""
        self.query = query
        self.ws = await connect(
            self.ws_url, subprotocols=[Subprotocol("streamlit")], max_size=None, open_timeout=self.timeout
        )
        self.reader = asyncio.create_task(self._read())
        return await self.rerun([])

    @property
    def served_by(self) -> str:
        """Which process accepted this websocket, as a load balancer names it (``X-Served-By``), or ''."""
        response = self.ws.response if self.ws is not None else None
        return (response.headers.get("X-Served-By") or "") if response is not None else ""

    async def click(self, key: str, typed: Mapping[str, str | float] | None = None) -> Run:
        """Click the button (or a form's submit button) ``key``, after typing ``typed`` (key: text, or a number).

        As the front end does: the typed values join the committed ones, every committed value
        is sent with the button's trigger, and the rerun is scoped to the button's fragment.
        """
        for name, value in (typed or {}).items():
            widget_id = self.widgets[name].id
            if isinstance(value, str):
                self.values[widget_id] = WidgetState(id=widget_id, string_value=value)
            else:  # a number input (the lab's whole-number inputs are float inputs too)
                self.values[widget_id] = WidgetState(id=widget_id, double_value=float(value))
        button = self.widgets[key]
        trigger = WidgetState(id=button.id, trigger_value=True)
        return await self.rerun([*self.values.values(), trigger], button.fragment_id)

    async def rerun(self, widgets: list[WidgetState], fragment_id: str = "", auto: bool = False) -> Run:
        """Send one ``rerun_script`` BackMsg and wait until the run it started has finished.

        ``auto``: the rerun a browser's timer sends for a fragment drawn with ``run_every``.
        """
        if self.ws is None or self.closed:
            raise ConnectionError(self.closed or "not connected")
        message = BackMsg()
        state = message.rerun_script
        state.query_string = self.query
        if self.page_hash:
            state.page_script_hash = self.page_hash
        else:
            state.page_name = self.page  # the first run: the page comes from the address's path
        state.widget_states.widgets.extend(widgets)
        state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        state.cached_message_hashes.extend(self.cache)
        state.context_info.CopyFrom(
            ContextInfo(timezone="UTC", timezone_offset=0, locale="en-GB", url=self.page_url, color_scheme="light")
        )
        self.run, self.finished = Run(fragment=fragment_id), asyncio.Event()
        await self.ws.send(message.SerializeToString())
        await asyncio.wait_for(self.finished.wait(), self.timeout)
        if self.closed:
            raise ConnectionError(self.closed)
        return self.run

    async def tick(self, fragment_id: str) -> Run:
        """What a browser's timer does for a ``run_every`` fragment: rerun it, with the widgets' values."""
        return await self.rerun(list(self.values.values()), fragment_id, auto=True)

    async def wait_idle(self) -> None:
        """Wait (bounded) for a run still going, so that the next click starts clean."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.finished.wait(), self.timeout)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.reader, 5)

    # -- what the server sends ----------------------------------------------------------------
    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                self.received_bytes += len(raw)
                self.received_messages += 1
                if isinstance(raw, bytes):
                    self._handle(ForwardMsg.FromString(raw))
        except Exception as exc:  # noqa: BLE001 - recorded; the next click reports it
            self.closed = f"{type(exc).__name__}: {exc}"
        else:
            self.closed = "the server closed the websocket"
        self.finished.set()

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":  # a message this session said it had cached
            msg = self.cache[msg.ref_hash]
            kind = msg.WhichOneof("type")
        elif msg.metadata.cacheable:
            self.cache[msg.hash] = msg
        if kind == "new_session" and not msg.metadata.run.fragment_ids:
            self.auto_reruns.clear()  # a whole-page run draws its timed fragments again, or not at all
        elif kind == "navigation":
            self.page_hash = msg.navigation.page_script_hash
        elif kind == "auto_rerun":
            self.auto_reruns[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                self.auto_reruns.pop(fragment_id, None)
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element, msg.delta.fragment_id)
        elif kind == "session_event" and msg.session_event.HasField("script_compilation_exception"):
            self.run.exceptions.append(msg.session_event.script_compilation_exception.message)
        elif kind == "script_finished" and msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            self.run.status = msg.script_finished
            self.finished.set()

    def _element(self, element: Any, fragment_id: str) -> None:
        kind = element.WhichOneof("type")
        body = getattr(element, kind)
        self.run.kinds.append(kind)
        if kind == "heading":
            self.run.labels.append(body.body)
        elif kind == "metric":
            self.run.labels.append(f"{body.label}: {body.body}")
        elif kind == "progress":
            self.run.labels.append(body.text)
        if kind == "alert":
            self.run.alerts.append((body.format, body.body))
        elif kind == "markdown":
            self.run.texts.append(body.body)
        elif kind == "exception":
            self.run.exceptions.append(f"{body.type}: {body.message}")
        elif kind == "imgs":
            self.run.images.extend(image.url for image in body.imgs)
        key = widget_key(getattr(body, "id", ""))
        if key is None:
            return
        self.widgets[key] = Widget(body.id, fragment_id, bool(getattr(body, "disabled", False)))
        if kind in ("selectbox", "radio", "multiselect"):
            self.run.options[key] = list(body.options)
        if kind == "text_input" and body.set_value and body.id in self.values:  # the server set it (cleared a form)
            self.values[body.id] = WidgetState(id=body.id, string_value=body.value)
