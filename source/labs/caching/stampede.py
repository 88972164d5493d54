"""A stampede on one cold key: many concurrent readers, and how many of them reached the database.

A stampede is many readers finding one key cold at the same moment. Started together, they
still run one after another on the event loop, and on a busy machine a late reader could look
the key up after an early one had already loaded and cached it: that reader finds a hit, and
the stampede is smaller than it says. So the readers line up at a :class:`StartLine`: a reader
that missed waits (a bounded time) until every reader has looked the key up, then the loads go
ahead, with or without protection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from source.domain.errors import InvalidInput
from source.instruments.query_log import capture_queries
from source.labs.caching.cache import RedisCache, user_key
from source.labs.caching.lookup import Lookup
from source.labs.caching.repository import CachedUserRepository
from source.labs.caching.sandbox_cache import cache_for
from source.platform.context import current_sandbox
from source.platform.jobs import Progress
from source.platform.outcome import Outcome
from source.platform.session import get_session

MAX_STAMPEDE = 100
#: The longest a reader waits at the start line (far more than looking a key up ever takes).
START_LINE_S = 10.0


@dataclass(frozen=True)
class StampedeResult:
    readers: int
    protection: bool
    db_reads: int
    hits: int
    misses: int
    waited: int
    other: int
    wall_ms: float
    #: Readers whose lookup found the key cold (a miss, or a hit only after waiting for a load).
    cold: int

    def message(self) -> str:
        """What the page says about this run."""
        failed = f", {self.other} without the cache (Redis failed)" if self.other else ""
        return (
            f"{self.readers} readers, {self.cold} of them finding the key cold → **{self.db_reads} database "
            f"read(s)** ({self.misses} misses, {self.hits} hits, {self.waited} waited{failed}) "
            f"in {self.wall_ms:.0f} ms."
        )

    def outcome(self) -> Outcome:
        """The message, as a warning when some readers went without the cache (Redis failed)."""
        return Outcome(self.message(), "warning" if self.other else "success")


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


def check_readers(readers: int) -> int:
    """``readers`` if the lab allows that many at once; else a sentence saying how many it does."""
    if not 1 <= readers <= MAX_STAMPEDE:
        raise InvalidInput(f"Choose between 1 and {MAX_STAMPEDE} concurrent readers.")
    return readers


async def run_stampede(
    user_id: str, readers: int, protection: bool, progress: Progress | None = None
) -> StampedeResult:
    """``readers`` concurrent cold reads of one user; the database reads are counted in SQL."""
    check_readers(readers)
    progress = progress or Progress()
    progress.begin("Readers answered", readers)
    sandbox = current_sandbox()
    base = cache_for(sandbox)
    line = StartLine(readers)  # nobody loads before every reader has looked the key up
    cache = LinedUpCache(
        base.client,
        base.settings.model_copy(update={"stampede_protection": protection, "early_refresh": False}),
        prefix=base.prefix,
        metrics_client=base.metrics.client,
        line=line,
    )
    await cache.invalidate(user_key(user_id))  # make the key cold

    async def one_reader() -> Lookup | None:
        async with get_session() as session:
            repo = CachedUserRepository(session, cache.client, cache=cache)
            try:
                await repo.get_by_id_cached(user_id)
            finally:
                line.count_in()
                progress.done += 1
            return repo.last

    try:
        async with capture_queries(sandbox.engine) as log:
            started = time.perf_counter()
            lookups = [lk for lk in await asyncio.gather(*(one_reader() for _ in range(readers))) if lk]
            wall_ms = (time.perf_counter() - started) * 1000
    finally:
        await cache.metrics.flush()
        await cache.aclose()
    db_reads = sum(1 for s in log.statements if s.startswith("SELECT") and " FROM " in s and "users" in s)
    outcomes = [lk.outcome for lk in lookups]
    return StampedeResult(
        readers=readers,
        protection=protection,
        db_reads=db_reads,
        hits=outcomes.count("hit"),
        misses=outcomes.count("miss"),
        waited=sum(1 for lk in lookups if lk.waited),
        other=len(outcomes) - outcomes.count("hit") - outcomes.count("miss"),
        wall_ms=wall_ms,
        cold=sum(1 for lk in lookups if lk.outcome == "miss" or (lk.outcome == "hit" and lk.waited)),
    )
