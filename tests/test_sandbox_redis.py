"""Each sandbox's Redis is confined to its own prefix by the client, not by the lab's care, and every key of it
expires unless its sandbox is alive to renew it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import pytest
from redis.exceptions import RedisError

from source import Backends, Sandbox
from source.labs.caching import actions
from source.labs.caching.sandbox_cache import cache_for
from source.learning import measurements, progress
from tests.conftest import REDIS_URL, ROOT, settings_for, unavailable
from tests.waiting import eventually


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


# -- every key expires unless its sandbox is alive to renew it ------------------------------------------------
async def _lab_keys(sb: Sandbox) -> None:
    """What the labs and the learning layer write: a cached read and its counters, progress, a measurement."""
    uid = (await actions.add_samples()).ids[0]
    await actions.fetch_user(uid)
    await cache_for(sb).metrics.flush()
    await progress.visit(sb, "lab4")
    await measurements.record(sb, "lab4", "probe", 1.0, "ms")


def _expiries(backends: Backends, box: Sandbox) -> dict[str, int]:
    """Every key under the sandbox's prefix and its remaining TTL in ms (-1: none), read past the namespace."""

    async def read() -> dict[str, int]:
        names = [k async for k in backends.redis.scan_iter(match=box.key_prefix + "*")]
        return {name.removeprefix(box.key_prefix): int(await backends.redis.pttl(name)) for name in names}

    return backends.runtime.run(read())


def test_every_key_a_sandbox_holds_carries_an_expiry(backends: Backends) -> None:
    box = backends.open_sandbox()
    try:
        box.run(_work(box))
        box.run(_lab_keys(box))
        expiries = _expiries(backends, box)
        assert {"events", "hits", "leaderboard", "profile:1", "cache:stats", "measurements"} <= set(expiries)
        no_expiry = sorted(name for name, ttl in expiries.items() if ttl < 0)
        assert no_expiry == [], "a key without an expiry outlives a process that dies"
        lease_ms = box.lease.lease_s * 1000
        assert all(0 < ttl <= lease_ms for ttl in expiries.values()), expiries
        assert expiries["cache:user:1"] <= 60_000, "a TTL the lab chose is kept"
    finally:
        backends.release(box)


def test_a_live_sandbox_keeps_its_keys_and_nobody_renewing_them_lets_them_go(backend_kind: str) -> None:
    b = Backends.build(replace(settings_for(backend_kind), sweep_interval_s=0.1))
    try:
        box = b.open_sandbox()
        box.lease.lease_s = 1.0  # a short lease, so the test sees it run out
        box.run(box.lease.renew())
        box.run(_work(box))
        box.run(_lab_keys(box))
        written = _expiries(b, box)
        leased = {name for name, ttl in written.items() if ttl <= 1000}
        own_ttl = set(written) - leased  # a cached user, the counters' batch numbers: TTLs the lab chose
        assert {"events", "hits", "profile:1", "cache:stats", "measurements"} <= leased
        first_deadline = box.lease.issued[-1]
        eventually(lambda: time.time() * 1000 > first_deadline + 500, "the first deadline to pass")
        assert set(_expiries(b, box)) == set(written), "the housekeeping renewed them while the sandbox lives"
        assert box.lease.renewals >= 2
        b.housekeeping.stop()  # nobody renews any more: as if the process had died
        eventually(lambda: set(_expiries(b, box)) == own_ttl, "every leased key of the sandbox to expire")
        assert all(ttl > 0 for ttl in _expiries(b, box).values()), "the rest go at the end of their own TTL"
    finally:
        b.close()
        b.runtime.stop()


CHILD = """
import json, sys, time
from source import Backends, Settings
from tests.test_sandbox_redis import _lab_keys, _work

b = Backends.build(Settings(redis_url=sys.argv[1], sweep_interval_s=0.1))
boxes = [b.open_sandbox() for _ in range(5)]
for box in boxes:
    box.lease.lease_s = float(sys.argv[2])
    box.run(box.lease.renew())
    box.run(_work(box))
    box.run(_lab_keys(box))
print(json.dumps({"prefixes": [x.key_prefix for x in boxes], "folders": [str(x.directory) for x in boxes],
                  "deadline": max(x.lease.issued[-1] for x in boxes)}), flush=True)
time.sleep(600)
"""


@pytest.mark.services
def test_a_process_killed_with_sigkill_leaves_no_keys_behind() -> None:
    """Five sandboxes in a process of their own, ``kill -9``: every one of their keys expires by itself."""
    import redis

    if _real_redis_problem():
        unavailable(f"Redis at {REDIS_URL} is unreachable")
    direct = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, REDIS_URL, "1.5"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    made: dict[str, Any] = {}
    try:
        assert child.stdout is not None
        made = json.loads(child.stdout.readline())

        def keys() -> list[str]:
            return [k for prefix in made["prefixes"] for k in direct.scan_iter(match=prefix + "*")]

        held = {k: int(direct.pttl(k)) for k in keys()}
        assert len(held) >= 5 * 8, held
        assert all(ttl > 0 for ttl in held.values()), "every key carries an expiry"
        own_ttl = {k for k, ttl in held.items() if ttl > 1500}  # TTLs the lab chose (a cached user: an hour)
        eventually(lambda: time.time() * 1000 > made["deadline"] + 500, "the first deadline to pass")
        assert set(keys()) == set(held), "renewed while the process lives"
        child.kill()  # SIGKILL: no release, no cleanup of any kind
        child.wait(timeout=30)
        eventually(lambda: set(keys()) == own_ttl, "every leased key of the killed process's sandboxes to expire")
        assert all(direct.pttl(k) > 0 for k in own_ttl), "the rest go at the end of the TTL the lab gave them"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        for folder in made.get("folders", []):
            shutil.rmtree(folder, ignore_errors=True)
        for prefix in made.get("prefixes", []):  # what the test leaves would go in an hour; it goes now
            if left := list(direct.scan_iter(match=prefix + "*")):
                direct.delete(*left)
        direct.close()


def _real_redis_problem() -> str | None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return str(exc)
    finally:
        client.close()
    return None
