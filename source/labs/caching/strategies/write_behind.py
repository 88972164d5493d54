"""Write-behind: a write is acknowledged once the cache has it; the database gets it later, in
batches, from a background flusher. Fast writes, fewer database round trips, and a window
in which the database (and anyone reading it) is behind what the client was told."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

#: The flusher writes what has queued up at least this often...
FLUSH_EVERY_S = 0.05
#: ...or as soon as this many keys are waiting.
FLUSH_BATCH = 50

Flush = Callable[[dict[int, int]], Awaitable[None]]


class WriteBehindQueue:
    """Pending writes by key (a newer write of the same key replaces the older one)."""

    def __init__(self, flush: Flush) -> None:
        self._flush = flush
        self.pending: dict[int, int] = {}
        self.max_pending = 0
        self.rows_written = 0
        self.batches = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def enqueue(self, key: int, version: int) -> None:
        self.pending[key] = version
        self.max_pending = max(self.max_pending, len(self.pending))
        if len(self.pending) >= FLUSH_BATCH:
            self._wake.set()

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_EVERY_S):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        batch, self.pending = self.pending, {}
        if batch:
            await self._flush(batch)
            self.rows_written += len(batch)
            self.batches += 1

    async def close(self) -> None:
        """Let the flusher finish its round, then write whatever is still queued."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def abort(self) -> None:
        """Stop at once (the run was cancelled): what is queued is dropped with it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
