"""How the lab's Redis clients are built: over a URL, on the process's in-process server, or failing fast."""

from __future__ import annotations

import functools

import fakeredis
import redis.asyncio as aioredis

from source.platform.connect import PROBE_TIMEOUT, REDIS_SOCKET_TIMEOUT_S


def redis_client(url: str) -> aioredis.Redis:
    """A client for the Redis at ``url``: connecting and every answer are bounded."""
    return aioredis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=REDIS_SOCKET_TIMEOUT_S
    )


@functools.cache
def _process_fake_server() -> fakeredis.FakeServer:
    """One in-process Redis server per process, so every loop's client sees the same keys."""
    return fakeredis.FakeServer()


def process_fake_redis() -> fakeredis.FakeAsyncRedis:
    """A fakeredis client on the process's one in-process server."""
    return fakeredis.FakeAsyncRedis(server=_process_fake_server(), decode_responses=True)
