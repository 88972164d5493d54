"""Status and live health: which backends are live, and whether they answer right now.

Which backends a process uses is decided once, at start-up (:class:`BackendStatus`); whether
they answer changes
minute by minute. Every page shows the latter, so a check must be cheap: ``SELECT 1`` and
``PING``, each bounded by a short timeout, and the answer is shared by every learner for a
few seconds. Nothing is remembered beyond that, so the status recovers by itself.

No page waits for a check: once there is an answer, a page gets the latest one at once while
the next check runs in the background (only the process's very first check is waited for).
A frozen Redis made every page wait up to :data:`HEALTH_TIMEOUT_S` each time the answer went
stale. A Redis that did not answer the check also opens its :class:`RedisBudget`, so no
learner's click waits for it either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from source.platform.redis_budget import budget_of

#: How long one check may wait for an answer, and how long its answer is reused (seconds).
HEALTH_TIMEOUT_S = 2.0
HEALTH_TTL_S = 5.0


@dataclass(frozen=True)
class BackendStatus:
    """What is live, for the sidebar: kind, where, and why a fallback happened."""

    database: str  # "PostgreSQL" or "SQLite"
    database_where: str
    database_note: str | None
    redis: str  # "Redis" or "fakeredis"
    redis_where: str
    redis_note: str | None
    #: Whether a URL was configured (then SQLite or fakeredis is a fallback, not a choice).
    database_configured: bool = False
    redis_configured: bool = False
    #: What was wrong with the configuration itself (a malformed URL, ignored options, budgets).
    config_notes: tuple[str, ...] = ()

    @property
    def is_embedded(self) -> bool:
        """Running on the embedded defaults because nothing else was configured."""
        return self.database == "SQLite" and self.redis == "fakeredis" and not self.configured

    @property
    def configured(self) -> bool:
        return self.database_configured or self.redis_configured


@dataclass(frozen=True)
class Health:
    """The answer of one round of checks."""

    database_ok: bool
    database_detail: str
    redis_ok: bool
    redis_detail: str
    checked_at: float  # time.time() of the check

    @property
    def ok(self) -> bool:
        return self.database_ok and self.redis_ok


class HealthCheck:
    """Checks the shared engine and the Redis client; one check at a time, answers cached."""

    def __init__(self, engine: AsyncEngine | None, redis: Any) -> None:
        self.engine = engine
        self.redis = redis
        self._last: Health | None = None
        self._running: asyncio.Task[Health] | None = None

    async def __call__(self) -> Health:
        """The latest answer at once (a new check starts when it is older than ``HEALTH_TTL_S``)."""
        if self._last is not None and time.time() - self._last.checked_at < HEALTH_TTL_S:
            return self._last
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().create_task(self._check())
        if self._last is not None:
            return self._last  # the check goes on in the background: the next page gets its answer
        # The very first check: several pages asking at once share it; a page that gives up does not cancel it.
        return await asyncio.shield(self._running)

    async def _check(self) -> Health:
        (db_ok, db_detail), (redis_ok, redis_detail) = await asyncio.gather(
            _probe(self._select_one), _probe(self.redis.ping)
        )
        if not redis_ok:  # no learner's click needs to find it out again
            budget_of(self.redis).failed(ConnectionError(redis_detail), confirmed=True)
        self._last = Health(db_ok, db_detail, redis_ok, redis_detail, time.time())
        return self._last

    async def _select_one(self) -> None:
        if self.engine is None:
            return  # a SQLite file per learner: nothing shared that could be down
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


_abandoned: set[asyncio.Task[Any]] = set()


async def _probe(check: Callable[[], Awaitable[Any]]) -> tuple[bool, str]:
    """Run ``check`` for at most ``HEALTH_TIMEOUT_S``.

    The answer comes back on time even if the check, once cancelled, needs longer to clean
    up (closing a connection to a server that hangs): that cleanup goes on in the background.
    """
    started = time.perf_counter()
    task = asyncio.ensure_future(check())
    done, _ = await asyncio.wait({task}, timeout=HEALTH_TIMEOUT_S)
    if not done:
        task.cancel()
        _abandoned.add(task)
        task.add_done_callback(_forget)
        return False, f"no answer within {HEALTH_TIMEOUT_S:g} s"
    if (exc := task.exception()) is not None:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
        return False, f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return True, f"answered in {(time.perf_counter() - started) * 1000:.0f} ms"


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved
