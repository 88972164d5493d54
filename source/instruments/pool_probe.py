"""Probing a connection pool: its counters read at one instant, sampled over time, and its openings timed.

SQLAlchemy's ``QueuePool`` keeps four counters (size, idle, lent out, overflow). A
:class:`PoolProbe` attached to an engine reads them every few milliseconds while some work
runs, and times every *new* connection the engine opens, from asking the driver until it
is open. Nothing here is estimated: every figure is a counter read or a clock difference.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class PoolStatus:
    """The four counters SQLAlchemy's ``QueuePool`` keeps, read at one instant."""

    pool_class: str
    size: int
    checked_in: int
    checked_out: int
    overflow: int

    @property
    def opened(self) -> int:
        """Connections open right now (idle in the pool plus lent out)."""
        return self.checked_in + self.checked_out


def pool_status(engine: AsyncEngine) -> PoolStatus | None:
    """Read the pool's counters now; call it on the event loop that owns the pool.

    ``overflow`` starts at ``-size``: SQLAlchemy counts every connection it opens, so
    ``-3`` means three of the pool's places have not been opened yet, and a positive
    number means that many extra connections beyond ``pool_size`` are open now.
    Returns ``None`` for pools without these counters (``NullPool``, ``StaticPool``).
    """
    pool: Any = engine.pool
    if not all(hasattr(pool, name) for name in ("size", "checkedin", "checkedout", "overflow")):
        return None
    return PoolStatus(
        pool_class=type(pool).__name__,
        size=pool.size(),
        checked_in=pool.checkedin(),
        checked_out=pool.checkedout(),
        overflow=pool.overflow(),
    )


async def read_pool_status(engine: AsyncEngine) -> PoolStatus | None:
    """:func:`pool_status` as a coroutine, so a page can run it on the loop that owns the pool."""
    return pool_status(engine)


@dataclass(frozen=True)
class PoolSample:
    """One reading of a pool, taken while work ran."""

    t_ms: float  # since the probe started sampling
    checked_out: int  # connections lent out right now
    overflow_in_use: int  # how many extra connections beyond pool_size are open
    waiting: int  # requests that asked for a connection and do not hold one yet


@dataclass
class PoolProbe:
    """Watches one engine: connection openings timed and counted, the pool sampled over time.

    ``waiting`` tells the probe how many callers are queued for a connection right now (the
    pool does not count them itself); it is read with every sample, and when a connection
    is closed, to tell a pool that closes connections while callers wait.
    """

    waiting: Callable[[], int] = lambda: 0
    connect_ms: list[float] = field(default_factory=list)  # per new connection: asked → open
    opened: int = 0  # connections opened in all
    open_now: int = 0  # connections open at this moment
    closed_while_queued: int = 0  # connections closed while somebody waited for one
    timeline: list[PoolSample] = field(default_factory=list)
    status: PoolStatus | None = None  # the last reading
    started: float = field(default_factory=time.perf_counter)  # samples are timed from here

    def attach(self, engine: AsyncEngine) -> None:
        """Time every new connection ``engine`` opens, and count the ones open right now.

        ``do_connect`` fires just before SQLAlchemy asks the driver for a new connection and
        the pool's ``connect`` event just after it is open, both with the same connection
        record: the gap between them is what opening that one connection cost. A pool that
        reuses its connections fires them only for the few it opens.
        """
        asked: dict[int, float] = {}

        def before(dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
            asked[id(record)] = time.perf_counter()

        def opened(dbapi_connection: Any, record: Any) -> None:
            began = asked.pop(id(record), None)
            if began is not None:
                self.connect_ms.append((time.perf_counter() - began) * 1000)
            self.opened += 1
            self.open_now += 1

        def closed(*_: Any) -> None:
            if self.waiting() > 0:
                self.closed_while_queued += 1
            self.open_now -= 1

        event.listen(engine.sync_engine, "do_connect", before)
        event.listen(engine.sync_engine, "connect", opened)
        event.listen(engine.sync_engine, "close", closed)
        event.listen(engine.sync_engine, "close_detached", closed)

    def read(self, engine: AsyncEngine) -> PoolSample:
        """One reading of the pool now. For ``NullPool``, which keeps no counters, the
        connections open at that moment stand in for "checked out" (each caller holds the one it opened)."""
        status = pool_status(engine)
        self.status = status
        return PoolSample(
            t_ms=(time.perf_counter() - self.started) * 1000,
            checked_out=status.checked_out if status else self.open_now,
            overflow_in_use=max(status.overflow, 0) if status else 0,
            waiting=self.waiting(),
        )

    def record(self, engine: AsyncEngine) -> None:
        """Read the pool and keep the reading if anything changed since the last one."""
        sample = self.read(engine)
        last = self.timeline[-1] if self.timeline else None
        if last is None or (last.checked_out, last.overflow_in_use, last.waiting) != (
            sample.checked_out,
            sample.overflow_in_use,
            sample.waiting,
        ):
            self.timeline.append(sample)

    async def sample(self, engine: AsyncEngine, every_s: float) -> None:
        """Read the pool every ``every_s`` seconds until cancelled, keeping the readings that changed."""
        while True:
            self.record(engine)
            await asyncio.sleep(every_s)
