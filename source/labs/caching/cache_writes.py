"""The cache's write side: write-through, invalidation, and deletes Redis missed, kept until it answers.

Every call to Redis goes through the breaker with a timeout (:func:`~source.labs.caching.breaker.guarded`),
so a Redis that fails makes a write fall back, never fail: a value that could not be written or
deleted is remembered, and deleted before the cache serves that key again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from source.labs.caching.breaker import Breaker, CacheUnavailable, guarded
from source.labs.caching.dtos import CacheSettings, encode


class CacheWrites:
    """A key prefix over a Redis client, every call guarded by a breaker, and the writes that keep it honest."""

    def __init__(self, client: Any, settings: CacheSettings, prefix: str = "") -> None:
        self.client = client
        self.prefix = prefix
        self.settings = settings
        self.breaker = Breaker(settings.cooldown_s)
        #: Keys whose invalidation Redis did not receive: deleted before the cache serves again.
        self.pending_invalidations: set[str] = set()

    def key(self, logical: str) -> str:
        """The Redis key for a logical name (a namespaced client adds its own prefix on top)."""
        return self.prefix + logical

    async def _call(self, op: Callable[[], Awaitable[Any]]) -> Any:
        return await guarded(self.breaker, self.settings.op_timeout_s, op)

    async def store(self, logical: str, value: BaseModel, ttl_s: float) -> bool:
        """Write-through: put the new value in the cache. If Redis fails, invalidate instead."""
        key = self.key(logical)
        try:
            await self._call(lambda: self.client.set(key, encode(value), px=px(ttl_s)))
            return True
        except CacheUnavailable:
            self.pending_invalidations.add(key)  # the old value must not be served when Redis is back
            return False

    async def invalidate(self, *logicals: str) -> bool:
        """Delete cached values that a write made stale. Never raises; remembers what failed."""
        keys = [self.key(k) for k in logicals]
        try:
            await self._call(lambda: self.client.delete(*keys))
            return True
        except CacheUnavailable:
            self.pending_invalidations.update(keys)
            return False

    async def _deliver_invalidations(self) -> None:
        keys = sorted(self.pending_invalidations)
        await self.client.delete(*keys)
        self.pending_invalidations.difference_update(keys)

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


def px(ttl_s: float) -> int:
    """A TTL in whole milliseconds, at least 1 (``SET ... PX`` refuses 0)."""
    return max(1, round(ttl_s * 1000))
