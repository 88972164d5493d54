"""A stampede on one cold key: many concurrent readers, and how many of them reached the database."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from source.domain.errors import InvalidInput
from source.instruments.query_log import capture_queries
from source.labs.caching.keys import user_key
from source.labs.caching.lookup import Lookup
from source.labs.caching.repository import CachedUserRepository
from source.labs.caching.sandbox_cache import cache_for
from source.labs.caching.start_line import LinedUpCache, StartLine
from source.platform.context import current_sandbox
from source.platform.session import get_session

MAX_STAMPEDE = 100


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


async def run_stampede(user_id: str, readers: int, protection: bool) -> StampedeResult:
    """``readers`` concurrent cold reads of one user; the database reads are counted in SQL."""
    if not 1 <= readers <= MAX_STAMPEDE:
        raise InvalidInput(f"Choose between 1 and {MAX_STAMPEDE} concurrent readers.")
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
