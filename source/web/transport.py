"""Replies without a 40 ms wait: ``TCP_NODELAY`` on every learner's websocket.

Streamlit 1.67 binds its listening socket itself, as ``socket.socket(family)``: the socket's
``proto`` is 0, the sockets it accepts inherit that, and asyncio turns Nagle's algorithm off only
for sockets whose ``proto`` is ``IPPROTO_TCP`` (``asyncio.base_events._set_nodelay``). So a small
reply (a click's few ForwardMsgs) waits in the kernel until the browser acknowledges the previous
one, and a browser delays that acknowledgement by up to 40 ms: every click was answered about
40 ms late, whatever the server's own time. uvicorn's pre-bound sockets share the trait (uvicorn
issue #3149); ``docs/upstream-tcp-nodelay.md`` is the report for Streamlit, with the measurement.

Until Streamlit creates its socket as TCP (or sets the option itself), the app sets ``TCP_NODELAY``
on each learner's connection the first time their script runs: on the server's own event loop,
on the transport whose peer is this session's websocket client. What the socket reports afterwards
goes to the server's log (``--logger.level=info``).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import streamlit as st
from streamlit.logger import get_logger
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

log = get_logger(__name__)

#: Session-state key: this session's connection has been seen to (a reconnect is a new session).
DONE_KEY = "plab_tcp_nodelay"
#: What the server's log says for a connection that now sends at once.
SET_TEXT = "TCP_NODELAY on this learner's connection: 1"


def send_replies_at_once() -> None:
    """Ask the server's loop to set ``TCP_NODELAY`` on this session's websocket, once per session."""
    if DONE_KEY in st.session_state:
        return
    st.session_state[DONE_KEY] = True
    ctx = get_script_run_ctx()
    sessions = getattr(Runtime.instance(), "_session_mgr", None) if Runtime.exists() else None
    if ctx is None or sessions is None:
        return  # not served over a websocket (AppTest, bare mode)
    info = sessions.get_active_session_info(ctx.session_id)
    client = getattr(info, "client", None)
    websocket, sender = getattr(client, "_websocket", None), getattr(client, "_sender_task", None)
    if websocket is None or not isinstance(sender, asyncio.Task):
        log.warning("TCP_NODELAY not set: this Streamlit version's session client is not the one this code knows")
        return
    peer = tuple(websocket.scope.get("client") or ())
    sender.get_loop().call_soon_threadsafe(_set_nodelay, sender.get_loop(), peer)


def _set_nodelay(loop: asyncio.AbstractEventLoop, peer: tuple[Any, ...]) -> None:
    """On the server's loop: find the transport whose peer is ``peer`` and switch Nagle's algorithm off."""
    transports = getattr(loop, "_transports", {})  # asyncio's selector loops keep fd -> transport
    for transport in list(transports.values()):
        sock: Any = transport.get_extra_info("socket") if transport is not None else None
        name = transport.get_extra_info("peername") if sock is not None else None
        if name is None or tuple(name[:2]) != peer or sock.family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            log.info(
                "TCP_NODELAY on this learner's connection: %s", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            )
        except OSError as exc:
            log.warning("TCP_NODELAY not set: the socket refused it (%s)", exc)
        return
    log.warning("TCP_NODELAY not set: no connection from %s on the server's loop", peer)
