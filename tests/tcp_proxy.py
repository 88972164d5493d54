"""A tiny loopback TCP proxy that a test can cut or black-hole, to make a server fail mid-session.

``cut()`` is a server that died: connections drop and new ones are refused. ``black_hole()``
is a server that hangs (a stopped process, a dead network path): connections are accepted
and kept open, but nothing goes through until ``restore()``, which delivers what was held.
``hold_replies()`` is a server whose answers come late: requests reach it (and take effect),
its replies wait until ``restore()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target until :meth:`cut` drops every connection."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self._flowing: asyncio.Event | None = None
        self._replying: asyncio.Event | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.port: int = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)

    async def _start(self) -> int:
        self._flowing, self._replying = asyncio.Event(), asyncio.Event()
        self._flowing.set()
        self._replying.set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await self._wait_flowing()  # a black hole accepts, then never answers
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, replies: bool) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    await self._wait_flowing()
                    if replies and self._replying is not None:
                        await self._replying.wait()
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

    async def _wait_flowing(self) -> None:
        if self._flowing is not None:
            await self._flowing.wait()

    def black_hole(self) -> None:
        """Keep accepting connections but pass nothing either way, like a server that hangs."""
        self._call(self._set_flowing, False)

    def hold_replies(self) -> None:
        """Pass requests to the server but hold its replies, like a server that answers late."""
        self._call(self._set_replying, False)

    def restore(self) -> None:
        """Let traffic through again after :meth:`black_hole` or :meth:`hold_replies` (held bytes arrive late)."""
        self._call(self._set_flowing, True)
        self._call(self._set_replying, True)

    async def _set_flowing(self, flowing: bool) -> None:
        if self._flowing is not None:
            (self._flowing.set if flowing else self._flowing.clear)()

    async def _set_replying(self, replying: bool) -> None:
        if self._replying is not None:
            (self._replying.set if replying else self._replying.clear)()

    def _call(self, action: Callable[[bool], Coroutine[Any, Any, None]], arg: bool) -> None:
        asyncio.run_coroutine_threadsafe(action(arg), self.loop).result(5)

    def cut(self) -> None:
        """Stop accepting and drop every open connection, like a server that died."""

        async def _cut() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.close()

        asyncio.run_coroutine_threadsafe(_cut(), self.loop).result(5)

    def close(self) -> None:
        self.restore()  # let held pipes end, so the loop stops with nothing waiting
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
