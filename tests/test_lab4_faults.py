"""Redis going away is not an error for Lab 4's cache: refused, black-holed, stopped mid-run and
switched off by the learner → correct data from the database, no exception, a bounded delay,
and caching resumes by itself. Private Redis servers only: the shared one is never touched."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from source import Sandbox
from source.domain.dtos import UserUpdate
from source.labs.caching import actions, stampede
from source.labs.caching.cache import RedisCache, user_key
from source.labs.caching.dtos import CacheSettings
from source.labs.caching.metrics import CacheCounts, CacheMetrics
from source.labs.caching.sandbox_cache import SERVICE, cache_for, set_outage
from source.labs.caching.strategies import parse_workload, run_strategy_lab
from source.platform.dead_redis import BlackHole, closed_port, unreachable_redis
from source.platform.jobs import Progress
from source.services import users
from tests.conftest import unavailable
from tests.tcp_proxy import TcpProxy
from tests.test_lab4_cache import alex, counts
from tests.waiting import eventually

#: Far above the 0.25 s a cache call may take, far below a socket timeout (10 s in the app):
#: proves the wait is bounded by the cache, without timing the test.
BOUND_MS = 5_000
FAST = CacheSettings(op_timeout_s=0.25, cooldown_s=0.3)


class PrivateRedis:
    """A redis-server of our own on a free port, with nothing saved to disk."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            unavailable("redis-server is not installed")
        self.port = closed_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen([*command, "--daemonize", "no"], stdout=subprocess.DEVNULL)
        eventually(self.answers, "the private redis-server to answer PING")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def use_client(sandbox: Sandbox, client: Redis) -> RedisCache:
    """Make ``client`` this sandbox's cache client (the counters go with it)."""
    cache = RedisCache(client, FAST)
    sandbox.services[SERVICE] = cache
    return cache


def close(sandbox: Sandbox, cache: RedisCache) -> None:
    async def shut() -> None:
        await cache.aclose()
        await cache.client.aclose()

    sandbox.run(shut())


def test_refused_connections_fall_back_to_the_database(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    cache = use_client(sandbox, unreachable_redis(closed_port()))
    try:
        first = sandbox.run(actions.fetch_user(uid))
        second = sandbox.run(actions.fetch_user(uid))
        for fetched in (first, second):
            assert fetched.value is not None
            assert fetched.value.name == "Alex Smith"
            assert fetched.lookup.total_ms < BOUND_MS
        assert first.lookup.outcome == "error"
        assert second.lookup.outcome == "bypassed", "within the cool-down the cache is not even tried"
        status = sandbox.run(actions.status())
        assert (status.counts.errors, status.counts.bypassed) == (1, 1)
        assert not status.counts.from_redis, "Redis is down, so the counts are kept in process"
        assert status.counts.in_process == 2
        assert status.breaker in ("open", "probing")
    finally:
        close(sandbox, cache)


def test_black_holed_redis_costs_one_bounded_wait(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    hole = sandbox.run(BlackHole().start())
    # A client as patient as the app's own (10 s socket timeout): the cache's bound is what saves the read.
    cache = use_client(sandbox, Redis(host="127.0.0.1", port=hole.port, socket_timeout=10, decode_responses=True))
    try:
        first = sandbox.run(actions.fetch_user(uid))
        assert hole.accepted >= 1, "the client really connected and got no answer"
        assert first.value is not None
        assert first.value.name == "Alex Smith"
        assert first.lookup.outcome == "error"
        assert FAST.op_timeout_s * 1000 * 0.9 <= first.lookup.cache_ms < BOUND_MS
        second = sandbox.run(actions.fetch_user(uid))
        assert second.lookup.outcome == "bypassed"
        assert second.lookup.cache_ms == 0
    finally:
        close(sandbox, cache)
        sandbox.run(hole.aclose())


def test_redis_stopped_mid_run_then_back(sandbox: Sandbox, private_redis: PrivateRedis) -> None:
    uid = alex(sandbox)
    cache = use_client(
        sandbox, Redis(host="127.0.0.1", port=private_redis.port, socket_timeout=10, decode_responses=True)
    )
    try:
        assert sandbox.run(actions.fetch_user(uid)).lookup.outcome == "miss"
        assert sandbox.run(actions.fetch_user(uid)).lookup.outcome == "hit"
        private_redis.stop()
        down = [sandbox.run(actions.fetch_user(uid)) for _ in range(3)]
        for fetched in down:
            assert fetched.value is not None
            assert fetched.value.name == "Alex Smith"
            assert fetched.lookup.outcome in ("error", "bypassed")
            assert fetched.lookup.total_ms < BOUND_MS
        during = sandbox.run(actions.status()).counts
        assert not during.from_redis
        assert during.errors + during.bypassed == 3
        private_redis.start()  # same port, empty: a restarted server
        eventually(
            lambda: sandbox.run(actions.fetch_user(uid)).lookup.outcome in ("miss", "hit"),
            "a read that uses Redis again",
        )
        assert sandbox.run(actions.fetch_user(uid)).lookup.outcome == "hit", "caching resumed by itself"
        after = sandbox.run(actions.status())
        assert after.breaker == "closed"
        assert after.counts.from_redis
        assert after.counts.in_process == 0, "the counts kept in process reached Redis"
        assert after.counts.errors + after.counts.bypassed == 3
    finally:
        close(sandbox, cache)


@pytest.mark.parametrize("mode", ["refused", "black-holed"])
def test_learner_switch_breaks_only_their_cache_and_loses_no_invalidation(sandbox: Sandbox, mode: str) -> None:
    uid = alex(sandbox)
    sandbox.run(actions.configure(FAST))
    assert sandbox.run(actions.fetch_user(uid)).lookup.outcome == "miss"  # cached in the real Redis
    sandbox.run(set_outage(sandbox, mode))  # type: ignore[arg-type]
    served = sandbox.run(actions.fetch_user(uid))
    assert served.lookup.outcome == "error"
    assert served.value is not None
    sandbox.run(users.update_user(uid, UserUpdate(name="Renamed While Down")))  # its invalidation cannot reach Redis
    assert cache_for(sandbox).pending_invalidations == {
        cache_for(sandbox).key(user_key(uid)),
        cache_for(sandbox).key("cache:latest_score:" + uid),
    }
    while_down = sandbox.run(actions.fetch_user(uid))
    assert while_down.value is not None
    assert while_down.value.name == "Renamed While Down"
    status = sandbox.run(actions.status())
    assert status.outage == mode
    assert status.counts.from_redis, "the learner's counters still reach the real Redis"
    assert status.counts.errors >= 1
    sandbox.run(set_outage(sandbox, None))
    back = sandbox.run(actions.fetch_user(uid))
    assert back.value is not None
    assert back.value.name == "Renamed While Down", "the old cached name never comes back"
    assert not back.stale
    assert back.lookup.outcome == "miss"
    assert cache_for(sandbox).pending_invalidations == set()
    assert sandbox.run(actions.fetch_user(uid)).lookup.outcome == "hit"
    assert counts(sandbox).stale == 0


def test_stampede_protection_holds_while_redis_is_down(sandbox: Sandbox) -> None:
    """With Redis refusing, readers of one key still share one database read."""
    uid = alex(sandbox)
    sandbox.run(actions.configure(FAST))
    sandbox.run(set_outage(sandbox, "refused"))
    protected = sandbox.run(stampede.run_stampede(uid, 50, protection=True))
    assert protected.db_reads <= 2, protected
    assert protected.hits == 0
    unprotected = sandbox.run(stampede.run_stampede(uid, 50, protection=False))
    assert unprotected.db_reads >= 40, unprotected
    sandbox.run(set_outage(sandbox, None))


def test_strategy_lab_counts_the_operations_redis_failed(sandbox: Sandbox) -> None:
    """With Redis refusing, every cached read and write falls back to the database, and says so."""
    sandbox.run(set_outage(sandbox, "refused"))
    try:
        config = parse_workload(operations=40, keys=3, read_share=0.5, ttl_ms=60_000, seed=5)
        chosen = ("no cache", "write-through", "write-behind")
        run = sandbox.run(run_strategy_lab(config, Progress(), chosen), timeout=120)
    finally:
        sandbox.run(set_outage(sandbox, None))
    none, through, behind = run.results
    assert none.redis_failed == 0, "no cache, no Redis call to fail"
    for result in (through, behind):
        assert (result.redis_failed, result.hits, result.stale_reads) == (40, 0, 0), result


def test_counts_whose_reply_came_late_are_not_counted_twice(sandbox: Sandbox, private_redis: PrivateRedis) -> None:
    """Redis adds a batch of counts but its reply arrives after the cache's time limit: the batch
    is kept and sent again (Redis may not have it), and is never added, or reported, twice."""
    proxy = TcpProxy("127.0.0.1", private_redis.port)
    direct = Redis(host="127.0.0.1", port=private_redis.port, decode_responses=True)
    metrics = CacheMetrics(Redis(host="127.0.0.1", port=proxy.port, socket_timeout=10, decode_responses=True))
    metrics.timeout_s = FAST.op_timeout_s

    async def record(name: str) -> None:
        metrics.record(name)

    def stored() -> dict[bytes | str, bytes | str]:
        return sandbox.run(direct.hgetall("cache:stats"))

    def confirmed() -> bool:  # a busy machine may miss the time limit: a batch is then sent again
        return sandbox.run(metrics.flush())

    def miss_answered_late(misses: int) -> None:
        proxy.hold_replies()
        sandbox.run(record("misses"))
        assert not confirmed(), "no reply within the time limit: not confirmed"
        eventually(
            lambda: stored() == {"hits": "1", "misses": str(misses)}, "Redis to hold the late batch"
        )  # yet added
        proxy.restore()

    try:
        sandbox.run(record("hits"))
        eventually(confirmed, "the first batch to be confirmed")
        miss_answered_late(1)
        eventually(confirmed, "the late batch, sent again, to be confirmed")
        assert stored() == {"hits": "1", "misses": "1"}, "and not added twice"
        miss_answered_late(2)
        sandbox.run(direct.client_pause(30_000, all=False))  # writes wait, reads are still answered
        seen: list[CacheCounts] = []

        def read_from_redis() -> bool:  # the flush waits for writes in vain, the read is answered
            seen.append(sandbox.run(metrics.counts()))
            return seen[-1].from_redis

        try:
            eventually(read_from_redis, "a read of the counts answered by Redis")
        finally:
            sandbox.run(direct.client_unpause())
        assert (seen[-1].hits, seen[-1].misses, seen[-1].in_process) == (1, 2, 0), seen[-1]
        eventually(confirmed, "the second late batch to be confirmed")
        assert stored() == {"hits": "1", "misses": "2"}
    finally:
        sandbox.run(metrics.aclose())
        sandbox.run(metrics.client.aclose())
        sandbox.run(direct.aclose())
        proxy.close()
