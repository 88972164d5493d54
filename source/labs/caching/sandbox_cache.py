"""Each learner's cache: one :class:`RedisCache` per sandbox, its settings, its "Redis is down"
switch, and the best-effort invalidation that write paths call after they commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from source.labs.caching.cache import RedisCache, latest_score_key, user_key
from source.platform.context import current_sandbox
from source.platform.dead_redis import OutageMode, dead_redis
from source.platform.sandbox import Sandbox

SERVICE = "lab4.cache"
OUTAGE = "lab4.outage"


@dataclass
class Outage:
    """A learner's own switch: their cache talks to a dead endpoint instead of Redis."""

    mode: OutageMode
    client: Redis


def _client_and_prefix(sandbox: Sandbox) -> tuple[Any, str]:
    """The sandbox's Redis client, and the prefix our keys need on it.

    A namespaced client (one with a ``namespace``) prefixes every key itself, so logical
    names go in as they are; on a plain shared client, the sandbox's own prefix keeps one
    learner's keys apart from another's.
    """
    client = sandbox.redis
    return client, "" if hasattr(client, "namespace") else sandbox.key_prefix


def cache_for(sandbox: Sandbox) -> RedisCache:
    """This sandbox's cache, made on first use and stopped with the sandbox."""
    return sandbox.service(SERVICE, _new_cache, lambda cache: _stop(cache, sandbox))


def _new_cache(sandbox: Sandbox) -> RedisCache:
    """The sandbox's cache: its calls, its counters' too, share the click's Redis budget of the sandbox."""
    client, prefix = _client_and_prefix(sandbox)
    return RedisCache(client, prefix=prefix, metrics_client=client, budget=sandbox.redis_budget)


async def _stop(cache: RedisCache, sandbox: Sandbox) -> None:
    await cache.aclose()
    outage = outage_of(sandbox)
    sandbox.services.pop(OUTAGE, None)
    if outage is not None:
        await outage.client.aclose()


def outage_of(sandbox: Sandbox) -> Outage | None:
    """The learner's outage switch, if it is on."""
    return sandbox.services.get(OUTAGE)


async def set_outage(sandbox: Sandbox, mode: OutageMode | None) -> RedisCache:
    """Route this learner's cache to a dead endpoint (``mode``) or back to Redis (``None``).

    Counters keep going to the real Redis (a learner's switch breaks only their cache
    reads and writes, so the figures survive it); a real outage keeps them in process. The
    dead endpoint's failures are the learner's own: they go through the cache's breaker only,
    never through the budget every learner on the real Redis shares.
    """
    cache = cache_for(sandbox)
    old = outage_of(sandbox)
    if (old.mode if old else None) == mode:
        return cache
    if mode is None:
        cache.client, cache.budget = _client_and_prefix(sandbox)[0], sandbox.redis_budget
        sandbox.services.pop(OUTAGE, None)
    else:
        client = await dead_redis(mode, timeout_s=cache.settings.op_timeout_s)
        cache.client, cache.budget = client, None
        sandbox.services[OUTAGE] = Outage(mode, client)
    cache.breaker.reset()
    if old is not None:
        await old.client.aclose()
    return cache


async def invalidate_user(user_id: str) -> bool:
    """After a committed write: drop the user's cached profile and latest score.

    Best effort and bounded in time: a Redis outage never fails the database write that
    already happened. What could not be deleted is remembered, and deleted before the
    cache serves anything again.
    """
    with contextlib.suppress(Exception):
        cache = cache_for(current_sandbox())
        async with asyncio.timeout(2 * cache.settings.op_timeout_s):
            return await cache.invalidate(user_key(user_id), latest_score_key(user_id))
    return False


_client_caches: weakref.WeakKeyDictionary[Any, RedisCache] = weakref.WeakKeyDictionary()


def default_cache(client: Any) -> RedisCache:
    """The cache a :class:`CachedUserRepository` uses when it is given only a client.

    Inside a sandbox, with the sandbox's own client, that is the sandbox's cache (so its
    counters are the learner's). Anywhere else, such as a notebook with its own client, it
    is one cache per client, so counters and locks outlive each repository.
    """
    with contextlib.suppress(LookupError, RuntimeError):  # no sandbox, or no running loop for a default one
        sandbox = current_sandbox()
        own = sandbox.redis
        same_namespace = hasattr(client, "namespace") and getattr(client, "prefix", None) == getattr(own, "prefix", "")
        if client is own or same_namespace:
            return cache_for(sandbox)
    cache = _client_caches.get(client)
    if cache is None:
        cache = _client_caches[client] = RedisCache(client)
    return cache
