"""One asyncio event loop per process, on a daemon thread, that every async client lives on.

Streamlit runs each page script synchronously, on a fresh thread per rerun. Calling
``asyncio.run()`` on every rerun creates a new loop each time, and an asyncpg connection
or a redis.asyncio client made on an earlier loop then fails ("attached to a different
loop", "Event loop is closed"). So the lab keeps exactly one loop alive for the whole
process, builds every engine and client *on* it, and pages hand coroutines to it with
:meth:`AsyncRuntime.run`, waiting for the answer like an ordinary function call.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from source.platform.errors import PageWaitTimeout

T = TypeVar("T")

#: How long a page waits for one call before giving up (seconds).
DEFAULT_TIMEOUT = 60.0


class AsyncRuntime:
    """A background event loop with a blocking ``run`` for synchronous callers."""

    def __init__(self, name: str = "persistence-lab-loop", *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if loop is not None:
            # A loop somebody else runs (a notebook's, or asyncio.run's): no thread of our own,
            # and stop() leaves it alone.
            self.loop = loop
            self._thread = threading.current_thread()
            self._owned = False
            return
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._owned = True
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule ``coro`` on the loop and return a future to poll (for progress bars)."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("AsyncRuntime.submit() called from its own loop: await the coroutine instead")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
        """Run ``coro`` on the loop and block until it finishes (or ``timeout`` passes).

        A wait that runs out cancels the coroutine and raises :class:`PageWaitTimeout`; a
        ``TimeoutError`` the coroutine raised itself (a driver that gave up) passes as it is.
        """
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except TimeoutError:
            if future.done():
                raise
            future.cancel()
            raise PageWaitTimeout(timeout) from None

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def stop(self) -> None:
        """Cancel what still runs, then stop and close the loop (a failed start, tests, benchmarks).

        A loop somebody else runs (a notebook's) is left alone.
        """
        if not self._owned or self.loop.is_closed():
            return
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_cancel_all_tasks(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


async def _cancel_all_tasks() -> None:
    """Cancel every other task on this loop and give them a moment to finish their cleanup."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=3)
