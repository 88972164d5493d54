"""Read-through caching over any ``redis.asyncio.Redis``: look in Redis, else load from the
database and store the answer with a TTL. Redis failing only makes a read slower, never wrong.

This is the engine under :class:`~source.labs.caching.repository.CachedUserRepository`. It
keeps what must outlive one repository (which lives as long as one session): the
counters, the circuit breaker, the stampede locks, invalidations that could not be
delivered yet, and early refreshes running in the background.

Every call to Redis goes through the breaker with a timeout (:func:`~source.labs.caching.breaker.guarded`),
and, when it goes to the sandbox's own Redis, through the click's shared Redis budget: a Redis
that fails makes a write fall back, never fail. An invalidation counts as done only when Redis
confirmed the delete; until then its keys are *pending*, and deleted before the cache serves
them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from pydantic import BaseModel
from redis.exceptions import LockError

from source.labs.caching.breaker import Breaker, CacheUnavailable, guarded
from source.labs.caching.dtos import CacheSettings, decode, encode
from source.labs.caching.early_refresh import EarlyRefresh
from source.labs.caching.lookup import Loader, Lookup, M, Read, ms_since, timed
from source.labs.caching.metrics import CacheMetrics
from source.labs.caching.single_flight import KeyLocks, poll_delays
from source.platform.redis_budget import RedisBudget

#: How many keys remember the TTL they were written with (the TTL bars show "x s left of y s").
TTLS_REMEMBERED = 2000
#: How long deleting every cached user may take (a few SCAN pages) before Redis counts as not answering.
FORGET_TIMEOUT_S = 5.0


# -- the cache's logical key names: a namespaced client (or the cache's prefix) places them in a sandbox --
def user_key(user_id: str) -> str:
    return f"cache:user:{user_id}"


def latest_score_key(user_id: str) -> str:
    return f"cache:latest_score:{user_id}"


def px(ttl_s: float) -> int:
    """A TTL in whole milliseconds, at least 1 (``SET ... PX`` refuses 0)."""
    return max(1, round(ttl_s * 1000))


class RedisCache:
    """Read-through caching of Pydantic DTOs, with counters, a breaker and single flight.

    A key prefix over a Redis client, every call guarded by the breaker; the read path
    (read-through, single flight, early refresh) and the writes that keep it honest
    (write-through, invalidation kept until Redis answers).
    """

    def __init__(
        self,
        client: Any,
        settings: CacheSettings | None = None,
        *,
        prefix: str = "",
        metrics_client: Any = None,
        stats_key: str = "cache:stats",
        budget: RedisBudget | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.settings = settings or CacheSettings()
        self.breaker = Breaker(self.settings.cooldown_s)
        #: The click's shared Redis budget, while ``client`` is the sandbox's own Redis (None otherwise).
        self.budget = budget
        #: Keys whose invalidation Redis has not confirmed: deleted before the cache serves again.
        self.pending_invalidations: set[str] = set()
        #: Deletes Redis confirmed, numbered; and the number of the last one that took each key.
        self.deletes_confirmed = 0
        self._taken: dict[str, int] = {}
        #: The TTL (s) each key was last written with, so a page can say how much of it is left.
        self.written_ttl_s: dict[str, float] = {}
        self.metrics = CacheMetrics(
            metrics_client if metrics_client is not None else client, prefix + stats_key, budget=budget
        )
        self.locks = KeyLocks()
        self.early = EarlyRefresh()

    def key(self, logical: str) -> str:
        """The Redis key for a logical name (a namespaced client adds its own prefix on top)."""
        return self.prefix + logical

    def configure(self, settings: CacheSettings) -> None:
        self.settings = settings
        self.breaker.cooldown_s = settings.cooldown_s
        self.metrics.timeout_s = settings.op_timeout_s

    async def _call(self, op: Callable[[], Awaitable[Any]]) -> Any:
        return await guarded(self.breaker, self.settings.op_timeout_s, op, self.budget)

    # -- the read path ---------------------------------------------------------------------
    async def read_through(
        self, logical: str, model: type[M], loader: Loader[M], ttl_s: float, refresher: Loader[M] | None = None
    ) -> tuple[M | None, Lookup]:
        """The cached value of ``logical``, or ``loader()``'s answer stored for ``ttl_s`` seconds."""
        read = Read(logical, self.key(logical), time.perf_counter())
        try:
            if self.settings.early_refresh or self.pending_invalidations:
                raw, pttl = await self._call(lambda: self._fetch(read.key))
            else:  # the hot path: one GET, nothing else on the way
                raw, pttl = (
                    await guarded(
                        self.breaker, self.settings.op_timeout_s, partial(self.client.get, read.key), self.budget
                    ),
                    None,
                )
        except CacheUnavailable as exc:
            read.cache_ms = 0.0 if exc.bypassed else ms_since(read.started)
            read.failure = "bypassed" if exc.bypassed else "error"
            read.reason = exc.reason
            raw = pttl = None
        else:
            read.cache_ms = ms_since(read.started)
        if raw is not None:
            value = decode(model, raw)
            if value is not None:
                if refresher is not None and self.settings.early_refresh and pttl is not None:
                    self._maybe_refresh(read, pttl, ttl_s, refresher)
                return value, read.finish(self.metrics, "hit")
            read.repaired = True  # written by an older version of the code, or damaged: a miss that repairs itself
        if not self.settings.stampede_protection:
            if read.failure:
                value, db_ms = await timed(loader)
            else:
                value, db_ms = await self._load_and_store(read, loader, ttl_s)
            return value, read.finish(self.metrics, read.failure or "miss", db_ms)
        return await self._single_flight(read, model, loader, ttl_s)

    async def _single_flight(
        self, read: Read, model: type[M], loader: Loader[M], ttl_s: float
    ) -> tuple[M | None, Lookup]:
        """One database read per key however many readers missed it together."""
        async with self.locks.hold(read.key) as flight:
            if flight.waited:  # another reader of this process loaded it while we queued
                found = None if read.failure else await self._look_again(read.key, model)
                if found is not None:
                    return found, read.finish(self.metrics, "hit", waited=True)
                if flight.slot.loaded:  # Redis is failing: take what that reader got from the database
                    return flight.slot.value, read.finish(self.metrics, read.failure or "miss", waited=True)
            if read.failure:
                value, db_ms = await timed(loader)
                flight.share(value)
                return value, read.finish(self.metrics, read.failure, db_ms)
            value, lookup = await self._load_once_across_processes(read, model, loader, ttl_s)
            flight.share(value)
            return value, lookup

    async def _fetch(self, key: str) -> tuple[Any, int | None]:
        if self.pending_invalidations:
            await self._deliver_invalidations()
        if not self.settings.early_refresh:
            return await self.client.get(key), None
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            raw, pttl = await pipe.execute()
        return raw, int(pttl)

    async def _look_again(self, key: str, model: type[M]) -> M | None:
        try:
            raw = await self._call(lambda: self.client.get(key))
        except CacheUnavailable:
            return None
        return decode(model, raw) if raw is not None else None

    async def _load_once_across_processes(
        self, read: Read, model: type[M], loader: Loader[M], ttl_s: float
    ) -> tuple[M | None, Lookup]:
        lock = self._lock(read.logical)
        try:
            got = bool(await self._call(lock.acquire))
        except CacheUnavailable:  # Redis failed between the lookup and now: just load
            value, db_ms = await timed(loader)
            return value, read.finish(self.metrics, "miss", db_ms)
        if got:
            try:
                value, db_ms = await self._load_and_store(read, loader, ttl_s)
            finally:
                with contextlib.suppress(CacheUnavailable, LockError):
                    await self._call(lock.release)
            return value, read.finish(self.metrics, "miss", db_ms)
        # Another process is loading this key: wait for its answer to appear in Redis.
        for delay in poll_delays(self.settings.lock_ttl_s):
            await asyncio.sleep(delay)
            found = await self._look_again(read.key, model)
            if found is not None:
                return found, read.finish(self.metrics, "hit", waited=True)
        value, db_ms = await self._load_and_store(read, loader, ttl_s)  # it never came: load it ourselves
        return value, read.finish(self.metrics, "miss", db_ms, waited=True)

    async def _load_and_store(self, read: Read, loader: Loader[M], ttl_s: float) -> tuple[M | None, float]:
        value, db_ms = await timed(loader)
        with contextlib.suppress(CacheUnavailable):  # not storing only costs the next reader a miss
            if value is not None:
                await self._set(read.key, value, ttl_s)
            elif read.repaired:
                await self._call(lambda: self.client.delete(read.key))
        return value, db_ms

    def _lock(self, logical: str) -> Any:
        """The cross-process lock for one key: ``SET lock:<key> <token> NX PX <lock_ttl>``."""
        return self.client.lock(
            self.key("lock:" + logical),
            timeout=self.settings.lock_ttl_s,
            blocking=False,
            thread_local=False,  # the token must not live in a thread-local: one thread runs every coroutine
        )

    def _maybe_refresh(self, read: Read, pttl_ms: int, ttl_s: float, refresher: Loader[M]) -> None:
        if 0 <= pttl_ms < self.settings.early_refresh_share * ttl_s * 1000:
            self.early.start(read.key, self._refresh(read, refresher, ttl_s))

    async def _refresh(self, read: Read, refresher: Loader[M], ttl_s: float) -> None:
        lock = self._lock(read.logical)
        try:
            if not await self._call(lock.acquire):
                return  # another process is refreshing it
        except CacheUnavailable:
            return
        try:
            value = await refresher()
            if value is not None:
                await self._set(read.key, value, ttl_s)
                self.metrics.record("refreshes")
        except Exception:  # noqa: BLE001, S110 - a failed refresh leaves the old value to expire as usual
            pass
        finally:
            with contextlib.suppress(CacheUnavailable, LockError):
                await self._call(lock.release)

    async def _set(self, key: str, value: BaseModel, ttl_s: float) -> None:
        await self._call(lambda: self.client.set(key, encode(value), px=px(ttl_s)))
        self.written_ttl_s.pop(key, None)  # newest last: the oldest are forgotten first
        self.written_ttl_s[key] = ttl_s
        while len(self.written_ttl_s) > TTLS_REMEMBERED:
            del self.written_ttl_s[next(iter(self.written_ttl_s))]

    # -- the write side ----------------------------------------------------------------------
    async def store(self, logical: str, value: BaseModel, ttl_s: float) -> bool:
        """Write-through: put the new value in the cache. If Redis fails, invalidate instead."""
        key = self.key(logical)
        try:
            await self._set(key, value, ttl_s)
            return True
        except CacheUnavailable:
            self.pending_invalidations.add(key)  # the old value must not be served when Redis is back
            return False

    async def invalidate(self, *logicals: str) -> bool:
        """Delete cached values that a write made stale; True only when Redis confirmed the delete.

        Never raises. The keys are pending from the start and stop being pending only when
        Redis confirmed: a delete that failed, timed out, or was cancelled on the way (the
        reply of a frozen Redis may never come) leaves them pending, never "done".
        """
        keys = [self.key(k) for k in logicals]
        self.pending_invalidations.update(keys)
        try:
            await self._call(lambda: self.client.delete(*keys))
        except BaseException as exc:
            self.pending_invalidations.update(keys)  # again: a delete confirmed meanwhile may have cleared them
            if isinstance(exc, CacheUnavailable):
                return False
            raise
        self._confirm(keys)
        return True

    def _confirm(self, keys: list[str]) -> None:
        """Redis confirmed the delete of ``keys``: no longer pending, and taken after every earlier mark."""
        self.pending_invalidations.difference_update(keys)
        self.deletes_confirmed += 1
        for key in keys:
            self._taken[key] = self.deletes_confirmed
            self.written_ttl_s.pop(key, None)

    def taken_since(self, mark: int, *logicals: str) -> bool:
        """Whether Redis confirmed deleting every key in ``logicals`` after ``mark`` (a past ``deletes_confirmed``)."""
        return all(self._taken.get(self.key(k), -1) > mark for k in logicals)

    async def _deliver_invalidations(self) -> None:
        keys = sorted(self.pending_invalidations)
        await self.client.delete(*keys)
        self._confirm(keys)

    async def forget_users(self) -> int:
        """Delete every cached user and latest score (one ``SCAN`` page at a time); returns how many went.

        Raises :class:`CacheUnavailable` when Redis does not answer: nothing is then said to be cold.
        """

        async def unlink_all() -> int:
            gone = 0
            for pattern in (user_key("*"), latest_score_key("*")):
                names = [name async for name in self.client.scan_iter(match=self.key(pattern), count=500)]
                if names:
                    gone += int(await self.client.unlink(*names))
            return gone

        gone = await guarded(self.breaker, max(self.settings.op_timeout_s, FORGET_TIMEOUT_S), unlink_all, self.budget)
        self.pending_invalidations.clear()  # every cached user is gone: nothing stale is left to delete
        self.written_ttl_s.clear()
        return gone

    async def peek(self, logical: str) -> tuple[str | None, int | None]:
        """The raw cached text and its remaining TTL in ms, without counting a read."""
        key = self.key(logical)

        async def both() -> tuple[Any, Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.pttl(key)
                raw, pttl = await pipe.execute()
            return raw, pttl

        raw, pttl = await self._call(both)
        text = raw.decode() if isinstance(raw, bytes) else raw
        return text, (int(pttl) if raw is not None and int(pttl) >= 0 else None)

    async def aclose(self) -> None:
        await self.early.aclose()
        await self.metrics.aclose()
