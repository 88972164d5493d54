"""A start line for the stampede demo: no reader loads the key until every reader has looked it up.

A stampede is many readers finding one key cold at the same moment. Started together, they
still run one after another on the event loop, and on a busy machine a late reader could look
the key up after an early one had already loaded and cached it: that reader finds a hit, and
the stampede is smaller than it says. Here a reader that missed waits (a bounded time) until
every reader has looked the key up, then the loads go ahead, with or without protection.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from source.labs.caching.cache import RedisCache

#: The longest a reader waits at the start line (far more than looking a key up ever takes).
START_LINE_S = 10.0


class StartLine:
    """Everyone is in when each reader has either missed (and waits here) or finished its read.

    The caller counts every reader in when its read is over: one that waited here is counted
    twice, but only after the line opened, since until then it is still waiting.
    """

    def __init__(self, readers: int) -> None:
        self.readers = readers
        self.counted = 0
        self._all_in = asyncio.Event()

    def count_in(self) -> None:
        self.counted += 1
        if self.counted >= self.readers:
            self._all_in.set()

    async def wait(self) -> None:
        """A reader that missed: count it in, then wait for the others (never past the bound)."""
        self.count_in()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_LINE_S):
                await self._all_in.wait()


class LinedUpCache(RedisCache):
    """The stampede's cache: a reader that missed waits at ``line`` before going to the database."""

    def __init__(self, *args: Any, line: StartLine, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = line

    async def _single_flight(self, *args: Any, **kwargs: Any) -> Any:  # a miss, with protection
        await self.line.wait()
        return await super()._single_flight(*args, **kwargs)

    async def _load_and_store(self, *args: Any, **kwargs: Any) -> Any:
        if not self.settings.stampede_protection:  # a miss, without protection
            await self.line.wait()
        return await super()._load_and_store(*args, **kwargs)
