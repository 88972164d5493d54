"""Each sandbox's Redis is confined to its own prefix by the client, not by the lab's care."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import RedisError

from source import Backends, Sandbox


async def _work(sb: Sandbox) -> None:
    """What a lab does in Redis: cache entries with a TTL, a hash, a leaderboard, a stream, Pub/Sub."""
    r = sb.redis
    await r.set("cache:user:1", "{}", ex=60)
    await r.hset("profile:1", mapping={"name": "Alex", "sandbox": sb.id})
    await r.zadd("leaderboard", {"alex": 85.5, "jane": 91.0})
    await r.xadd("events", {"type": "score.calculated"})
    async with r.pipeline(transaction=True) as pipe:
        pipe.incr("hits")
        pipe.incr("hits")
        await pipe.execute()
    await r.publish("events:score.calculated", "{}")


async def _raw_keys(backends: Backends, boxes: list[Sandbox]) -> list[str]:
    """Every key the shared client sees under these sandboxes' prefixes, read without any namespace."""
    prefixes = tuple(box.key_prefix for box in boxes)
    return [k async for k in backends.redis.scan_iter(match="plab:*") if k.startswith(prefixes)]


def test_keys_of_concurrent_sandboxes_stay_under_their_owners_prefix(backends: Backends) -> None:
    boxes = [backends.open_sandbox() for _ in range(4)]
    try:

        async def everyone() -> None:
            await asyncio.gather(*(box.bind(_work(box)) for box in boxes))

        backends.runtime.run(everyone())

        async def raw_keys() -> list[str]:
            prefixes = tuple(box.key_prefix for box in boxes)
            return [k async for k in backends.redis.scan_iter(match="plab:*") if k.startswith(prefixes)]

        keys = backends.runtime.run(raw_keys())
        for box in boxes:
            mine = sorted(k.removeprefix(box.key_prefix) for k in keys if k.startswith(box.key_prefix))
            assert mine == ["cache:user:1", "events", "hits", "leaderboard", "profile:1"], box
            assert box.run(box.redis.get("hits")) == "2", "each sandbox counted only its own hits"
            assert box.run(box.redis.hget("profile:1", "sandbox")) == box.id
    finally:
        for box in boxes:
            backends.release(box)

    async def left() -> list[str]:
        return [
            k
            async for k in backends.redis.scan_iter(match="plab:*")
            if k.startswith(tuple(b.key_prefix for b in boxes))
        ]

    assert backends.runtime.run(left()) == [], "a released sandbox leaves no key behind"


def test_a_command_that_could_reach_other_sandboxes_is_refused(sandbox: Sandbox) -> None:
    sandbox.run(sandbox.redis.set("mine", "1"))
    with pytest.raises(RedisError, match="not allowed in a sandbox"):
        sandbox.run(sandbox.redis.flushdb())
    with pytest.raises(RedisError, match="not allowed in a sandbox"):
        sandbox.run(sandbox.redis.keys("*"))
    assert sandbox.run(sandbox.redis.get("mine")) == "1", "nothing was flushed"
