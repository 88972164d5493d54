"""How one cached read went: the read in progress, timed part by part, and the Lookup it ends as."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel

from source.labs.caching.metrics import CacheMetrics, ReadOutcome, ReadSample

M = TypeVar("M", bound=BaseModel)
Loader = Callable[[], Awaitable[M | None]]


@dataclass(frozen=True, slots=True)
class Lookup:
    """How one cached read went: where the answer came from and what each part cost."""

    outcome: ReadOutcome
    cache_ms: float
    db_ms: float
    total_ms: float
    waited: bool = False
    repaired: bool = False
    reason: str | None = None
    #: This read in the cache's window of reads (the audit marks it there when it was stale).
    sample: ReadSample | None = field(default=None, compare=False, repr=False)

    @property
    def from_cache(self) -> bool:
        return self.outcome == "hit"


_COUNTER = {"hit": "hits", "miss": "misses", "bypassed": "bypassed", "error": "errors"}


@dataclass(slots=True)
class Read:
    """One read in progress."""

    logical: str
    key: str
    started: float
    cache_ms: float = 0.0
    repaired: bool = False
    failure: ReadOutcome | None = None  # "error" or "bypassed" when Redis could not be asked
    reason: str | None = None

    def finish(
        self, metrics: CacheMetrics, outcome: ReadOutcome, db_ms: float = 0.0, *, waited: bool = False
    ) -> Lookup:
        """Count the read and time it in ``metrics``, and say how it went."""
        total = ms_since(self.started)
        record = metrics.record
        record(_COUNTER[outcome])
        if waited:
            record("waited")
        if self.repaired:
            record("repaired")
        sample = ReadSample(outcome, self.cache_ms, db_ms, total)
        metrics.sample(sample)
        return Lookup(outcome, self.cache_ms, db_ms, total, waited, self.repaired, self.reason, sample)


async def timed(loader: Loader[M]) -> tuple[M | None, float]:
    """``loader()``'s answer and how long it took (ms)."""
    started = time.perf_counter()
    value = await loader()
    return value, ms_since(started)


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
