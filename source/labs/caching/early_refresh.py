"""Early refresh (cashews calls it ``early``): a hot key is reloaded in the background shortly
before it expires, so its readers keep getting hits instead of one of them waiting on the
database when the TTL runs out.

A hit that finds less than ``early_refresh_share`` of the TTL left starts one refresh for
that key (never two at once in a process; a short Redis lock keeps other processes out);
the reader itself is answered from the cache straight away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


class EarlyRefresh:
    """The background refreshes running now, one per key at most."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[None]] = {}
        self.started = 0

    def start(self, key: str, refresh: Coroutine[Any, Any, None]) -> bool:
        """Start ``refresh`` unless ``key`` is already being refreshed; returns whether it started."""
        if key in self._running:
            refresh.close()
            return False
        task = asyncio.get_running_loop().create_task(refresh)
        self._running[key] = task
        task.add_done_callback(lambda _: self._running.pop(key, None))
        self.started += 1
        return True

    def running(self) -> int:
        return len(self._running)

    async def wait_idle(self) -> None:
        """Wait until every refresh started so far has finished (tests and benchmarks)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def aclose(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
