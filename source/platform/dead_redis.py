"""A Redis that is not there, for the labs that break things on purpose: refused, or black-holed.

*Refused*: a client pointed at a loopback port nothing listens on, so connecting fails at once.
*Black-holed*: a client pointed at a listener that accepts and never answers a byte, so every
call waits for its timeout. Both fail fast (short timeouts, no retries of their own), so the
lab's code decides what a failure means. Lab 4 gives one to a learner's cache; Lab 5 gives one
to a publisher whose broker is "down". The app's real client (``backends.py``) is never touched:
everybody else keeps Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import weakref
from typing import Literal

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

OutageMode = Literal["refused", "black-holed"]
OUTAGE_MODES: tuple[OutageMode, ...] = ("refused", "black-holed")

#: A black hole holds at most this many connections at once (the rest are closed at once).
MAX_HELD_CONNECTIONS = 200


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_endpoint() -> str:
    """A ``redis://`` URL on loopback where nothing listens: a port the OS just handed out and took back."""
    return f"redis://127.0.0.1:{closed_port()}/0"


def unreachable_redis(port: int, *, timeout_s: float = 0.25) -> Redis:
    """A ``redis.asyncio.Redis`` for ``127.0.0.1:port`` that fails fast: short timeouts, no retries."""
    return Redis(
        host="127.0.0.1",
        port=port,
        decode_responses=True,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        max_connections=8,
    )


class BlackHole:
    """An asyncio TCP server that accepts connections and never answers a byte."""

    def __init__(self) -> None:
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.accepted = 0

    async def start(self, port: int = 0) -> BlackHole:
        self._server = await asyncio.start_server(self._swallow, "127.0.0.1", port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if len(self._writers) >= MAX_HELD_CONNECTIONS:
            writer.close()
            return
        self._writers.add(writer)
        try:
            while await reader.read(65536):  # read and drop everything until the client hangs up
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    @property
    def held(self) -> int:
        return len(self._writers)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


_holes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BlackHole] = weakref.WeakKeyDictionary()


async def shared_black_hole() -> BlackHole:
    """One black hole per event loop (per app process), started on first use."""
    loop = asyncio.get_running_loop()
    hole = _holes.get(loop)
    if hole is None:
        started = await BlackHole().start()
        hole = _holes.setdefault(loop, started)
        if hole is not started:  # another learner started one while we did: keep theirs
            await started.aclose()
    return hole


async def dead_redis(mode: OutageMode, *, timeout_s: float = 0.25) -> Redis:
    """A client for a Redis that refuses (``"refused"``) or never answers (``"black-holed"``); call it on the loop."""
    if mode == "refused":
        return unreachable_redis(closed_port(), timeout_s=timeout_s)
    hole = await shared_black_hole()
    return unreachable_redis(hole.port, timeout_s=timeout_s)
