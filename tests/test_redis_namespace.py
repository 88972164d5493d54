"""A namespaced Redis client keeps each sandbox's keys and channels under its own prefix, on fakeredis and Redis."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.exceptions import RedisError, ResponseError

from source.platform.redis_lease import KeyLease
from source.platform.redis_namespace import (
    ALLOWED_COMMANDS,
    KeyNamespace,
    NamespacedPipeline,
    NamespacedPubSub,
    NamespacedRedis,
    NamespaceError,
    delete_namespace,
    trust_script,
)
from tests.waiting import eventually_async

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("PLAB_REQUIRE_SERVICES") == "1"


@functools.cache
def _redis_problem() -> str | None:
    """Why the real Redis cannot be used, or None if it answers."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


# ---------------------------------------------------------------------------------------------
# A tiny harness: one event loop per test, one shared client per loop (as the app builds one per
# process), sandboxes with random prefixes, and a cleanup that does not rely on the code under test.
# ---------------------------------------------------------------------------------------------
@dataclass
class Lab:
    shared: aioredis.Redis
    isolated: bool  # a fresh fakeredis server: nothing but this test's keys in it
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    prefixes: list[str] = field(default_factory=list)
    raw_keys_made: list[str] = field(default_factory=list)

    def sandbox(self) -> NamespacedRedis:
        prefix = f"plab:{secrets.token_hex(6)}:"
        self.prefixes.append(prefix)
        return NamespacedRedis(self.shared, prefix)

    async def raw_scan(self, match: str = "*") -> list[Any]:
        return [name async for name in self.shared.scan_iter(match=match, count=1000)]

    async def cleanup(self) -> None:
        doomed = [*self.raw_keys_made]
        for prefix in self.prefixes:
            doomed += await self.raw_scan(prefix + "*")
        if doomed:
            await self.shared.delete(*doomed)


Scenario = Callable[[Lab], Awaitable[None]]


@dataclass
class Backend:
    name: str

    def run(self, scenario: Scenario, *, decode_responses: bool = True, protocol: int | None = None) -> None:
        async def main() -> None:
            extra: dict[str, Any] = {} if protocol is None else {"protocol": protocol}
            shared: aioredis.Redis
            if self.name == "fakeredis":
                shared = fakeredis.FakeAsyncRedis(
                    server=fakeredis.FakeServer(), decode_responses=decode_responses, **extra
                )
            else:
                shared = aioredis.Redis.from_url(REDIS_URL, decode_responses=decode_responses, **extra)
            lab = Lab(shared, isolated=self.name == "fakeredis")
            try:
                await scenario(lab)
            finally:
                await lab.cleanup()
                await shared.aclose()

        asyncio.run(main())


def _backend(name: str) -> Backend:
    """The backend, or a skip with the reason (a failure where PLAB_REQUIRE_SERVICES=1 promises Redis)."""
    if name == "redis" and (problem := _redis_problem()):
        reason = f"Redis at {REDIS_URL} is unreachable ({problem})"
        if REQUIRE_SERVICES:
            pytest.fail(f"PLAB_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return Backend(name)


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.services)])
def backend(request: pytest.FixtureRequest) -> Backend:
    return _backend(str(request.param))


# ---------------------------------------------------------------------------------------------
# Isolation, one key at a time
# ---------------------------------------------------------------------------------------------
def test_same_logical_key_in_two_sandboxes_is_two_keys(backend: Backend) -> None:
    async def scenario(lab: Lab) -> None:
        alice, bob = lab.sandbox(), lab.sandbox()
        assert isinstance(alice, aioredis.Redis)
        assert alice.connection_pool is lab.shared.connection_pool  # no sockets of its own

        name = f"greeting:{lab.token}"
        await alice.set(name, "hello from alice")
        await bob.set(name, "hello from bob")
        assert await alice.get(name) == "hello from alice"
        assert await bob.get(name) == "hello from bob"
        # What the server really holds: two keys, each under its owner's prefix, none bare.
        assert await lab.shared.get(alice.prefix + name) == "hello from alice"
        assert await lab.shared.get(bob.prefix + name) == "hello from bob"
        assert await lab.shared.exists(name) == 0

        # NX sees only its own sandbox: bob's key does not stop alice, alice's own does.
        assert await alice.set(f"claim:{lab.token}", "a", nx=True)
        assert await bob.set(f"claim:{lab.token}", "b", nx=True)
        assert await alice.set(f"claim:{lab.token}", "again", nx=True) is None
        assert await alice.delete(name, f"claim:{lab.token}") == 2
        assert await bob.get(name) == "hello from bob"

        # A namespace inside a namespace nests the prefixes; a dedicated-connection twin keeps them.
        inner = NamespacedRedis(alice, "cache:")
        assert inner.prefix == alice.prefix + "cache:"
        await inner.set(name, "inner")
        assert await alice.get(f"cache:{name}") == "inner"
        twin = alice.client()
        try:
            assert twin.prefix == alice.prefix
            assert await twin.get(f"cache:{name}") == "inner"
        finally:
            await twin.aclose()

        # Closing a sandbox's client leaves the shared pool working for everybody else.
        await alice.aclose()
        assert await lab.shared.ping()
        assert await bob.get(name) == "hello from bob"

    backend.run(scenario)


# ---------------------------------------------------------------------------------------------
# Several sandboxes at once, every data type: afterwards the raw keyspace is checked
# ---------------------------------------------------------------------------------------------
async def _strings(ns: NamespacedRedis, t: str, me: str) -> set[str]:
    session, flash, visits, temp = f"session:{t}", f"flash:{t}", f"visits:{t}", f"temp:{t}"
    assert await ns.set(session, me, ex=60)
    assert await ns.set(session, "not me", nx=True) is None
    assert await ns.get(session) == me
    assert 0 < await ns.ttl(session) <= 60
    assert await ns.set(flash, "saved", px=50_000)
    assert 0 < await ns.pttl(flash) <= 50_000
    assert await ns.incr(visits) == 1
    assert await ns.incrby(visits, 5) == 6
    assert await ns.decr(visits) == 5
    assert await ns.incrbyfloat(visits, 0.5) == 5.5
    assert await ns.mget([session, visits, f"missing:{t}"]) == [me, "5.5", None]
    assert await ns.expire(visits, 100)
    assert await ns.pexpire(visits, 100_000)
    assert await ns.persist(visits)
    assert await ns.ttl(visits) == -1
    assert await ns.exists(session, visits, f"missing:{t}") == 2
    assert await ns.type(session) == "string"
    await ns.set(temp, 1)
    assert await ns.delete(temp) == 1
    await ns.set(temp, 1)
    assert await ns.unlink(temp) == 1
    return {session, flash, visits}


async def _hash(ns: NamespacedRedis, t: str, me: str) -> set[str]:
    user = f"user:{t}"
    assert await ns.hset(user, mapping={"name": me, "score": 1, "plan": "free"}) == 3
    assert await ns.hget(user, "name") == me
    assert await ns.hincrby(user, "score", 41) == 42
    assert await ns.hgetall(user) == {"name": me, "score": "42", "plan": "free"}
    assert await ns.hmget(user, ["name", "nope"]) == [me, None]
    assert await ns.hexists(user, "plan")
    assert await ns.hdel(user, "plan") == 1
    assert await ns.hlen(user) == 2
    assert sorted(await ns.hkeys(user)) == ["name", "score"]
    assert sorted(await ns.hvals(user)) == sorted([me, "42"])
    return {user}


async def _sorted_set(ns: NamespacedRedis, t: str, me: str) -> set[str]:
    board = f"board:{t}"
    assert await ns.zadd(board, {"alex": 10, "jane": 20, "sam": 5, me: 1}) == 4
    assert await ns.zincrby(board, 15, "alex") == 25.0
    assert await ns.zscore(board, "alex") == 25.0
    assert await ns.zrank(board, me) == 0
    assert await ns.zrevrank(board, "alex") == 0
    assert await ns.zrem(board, "sam") == 1
    assert await ns.zrange(board, 0, -1, withscores=True) == [(me, 1.0), ("jane", 20.0), ("alex", 25.0)]
    assert await ns.zrange(board, 0, 0, desc=True) == ["alex"]
    assert await ns.zrange(board, 10, 30, byscore=True) == ["jane", "alex"]
    assert await ns.zrevrange(board, 0, 1) == ["alex", "jane"]
    assert await ns.zcard(board) == 3
    assert await ns.zcount(board, 0, 20) == 2
    return {board}


async def _list_and_set(ns: NamespacedRedis, t: str, me: str) -> set[str]:
    events, tags = f"events:{t}", f"tags:{t}"
    assert await ns.lpush(events, "b", "a") == 2
    assert await ns.rpush(events, "c", "d", me) == 5
    assert await ns.lrange(events, 0, -1) == ["a", "b", "c", "d", me]
    assert await ns.ltrim(events, 0, 3)
    assert await ns.llen(events) == 4
    assert await ns.lpop(events) == "a"
    assert await ns.rpop(events) == "d"
    assert await ns.lindex(events, 0) == "b"
    assert await ns.sadd(tags, "x", "y", me) == 3
    assert await ns.sismember(tags, me)
    assert await ns.srem(tags, "x") == 1
    assert await ns.smembers(tags) == {"y", me}
    assert await ns.scard(tags) == 2
    return {events, tags}


async def _stream(ns: NamespacedRedis, t: str, me: str) -> set[str]:
    orders = f"orders:{t}"
    ids = [await ns.xadd(orders, {"n": i, "who": me}) for i in range(4)]
    assert await ns.xlen(orders) == 4
    # (redis-py types stream replies for every protocol at once; these are the default shapes)
    forward: Any = await ns.xrange(orders)
    assert forward[0] == (ids[0], {"n": "0", "who": me})
    backward: Any = await ns.xrevrange(orders, count=1)
    assert [entry_id for entry_id, _ in backward] == [ids[3]]
    read: Any = await ns.xread({orders: "0"}, count=10)
    assert [name for name, _ in read] == [orders]  # no prefix on the way back

    assert await ns.xgroup_create(orders, "workers", id="0")
    assert await ns.xgroup_createconsumer(orders, "workers", "alice") == 1
    delivered: Any = await ns.xreadgroup("workers", "alice", {orders: ">"}, count=3)
    assert [name for name, _ in delivered] == [orders]
    entries = delivered[0][1]
    assert [entry_id for entry_id, _ in entries] == ids[:3]
    assert await ns.xack(orders, "workers", ids[0]) == 1

    summary: Any = await ns.xpending(orders, "workers")
    assert summary["pending"] == 2
    assert summary["consumers"] == [{"name": "alice", "pending": 2}]
    detail: Any = await ns.xpending_range(orders, "workers", min="-", max="+", count=10)
    assert [(row["message_id"], row["consumer"]) for row in detail] == [(ids[1], "alice"), (ids[2], "alice")]

    # alice "crashed": bob takes over her entries
    autoclaimed: Any = await ns.xautoclaim(orders, "workers", "bob", min_idle_time=0, start_id="0-0", count=1)
    _next_id, claimed, _deleted = autoclaimed
    assert [entry_id for entry_id, _ in claimed] == [ids[1]]
    taken: Any = await ns.xclaim(orders, "workers", "bob", 0, [ids[2]])
    assert [entry_id for entry_id, _ in taken] == [ids[2]]
    groups: Any = await ns.xinfo_groups(orders)
    assert [(g["name"], g["pending"]) for g in groups] == [("workers", 2)]
    info: Any = await ns.xinfo_stream(orders)
    assert info["length"] == 4

    assert await ns.xdel(orders, ids[3]) == 1
    assert await ns.xtrim(orders, maxlen=2, approximate=False) == 1
    assert await ns.xlen(orders) == 2
    assert await ns.xgroup_create(orders, "spare", id="$")
    assert await ns.xgroup_destroy(orders, "spare") == 1
    assert await ns.xgroup_delconsumer(orders, "workers", "alice") == 0  # bob holds everything now
    return {orders}


async def _pipelines(ns: NamespacedRedis, t: str, me: str) -> set[str]:
    cart, items, count, stock = f"cart:{t}", f"cart-items:{t}", f"cart-count:{t}", f"stock:{t}"
    pipe = ns.pipeline(transaction=True)
    assert isinstance(pipe, NamespacedPipeline)
    pipe.set(cart, me)
    pipe.hset(items, mapping={"book": 2})
    pipe.incr(count)
    pipe.get(cart)
    assert await pipe.execute() == [True, 1, 1, me]

    async with ns.pipeline(transaction=False) as batch:
        batch.exists(cart, items, count)
        batch.scan(0, match=f"cart*{t}", count=1000)
        exists, (_cursor, names) = await batch.execute()
    assert exists == 3
    assert set(names) <= {cart, items, count}
    assert all(not name.startswith("plab:") for name in names)

    # Optimistic locking: WATCH runs commands at once (the pipeline's other path), then MULTI/EXEC.
    await ns.set(stock, 10)

    async def take_one(pipe: Any) -> None:
        left = int(await pipe.get(stock))
        pipe.multi()
        pipe.set(stock, left - 1)

    assert await ns.transaction(take_one, stock) == [True]
    assert await ns.get(stock) == "9"
    return {cart, items, count, stock}


async def _pubsub(ns: NamespacedRedis, t: str, me: str, everyone_subscribed: asyncio.Barrier) -> None:
    channel = f"news:{t}"
    pubsub = ns.pubsub(ignore_subscribe_messages=True)
    assert isinstance(pubsub, NamespacedPubSub)
    try:
        await pubsub.subscribe(channel)
        await pubsub.psubscribe("news:*")
        assert set(pubsub.channels) == {channel}  # bookkeeping uses the names the lab chose
        assert set(pubsub.patterns) == {"news:*"}
        await everyone_subscribed.wait()  # every sandbox listens on "news:<token>" now

        # Reached: this sandbox's subscription and its pattern. Nobody else's.
        assert await ns.publish(channel, me) == 2
        received: list[tuple[str, Any, Any, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(received) < 2 and loop.time() < deadline:
            message = await pubsub.get_message(timeout=0.5)
            if message is not None:
                received.append((message["type"], message["channel"], message["pattern"], message["data"]))
        await everyone_subscribed.wait()  # everybody has published: anything leaked would be here by now
        while (message := await pubsub.get_message(timeout=0.05)) is not None:
            received.append((message["type"], message["channel"], message["pattern"], message["data"]))
        assert sorted(received, key=str) == sorted(
            [("message", channel, None, me), ("pmessage", channel, "news:*", me)], key=str
        )
        await pubsub.unsubscribe()
        await pubsub.punsubscribe()
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # (unannotated in redis-py)


async def _lock(ns: NamespacedRedis, shared: aioredis.Redis, t: str, everyone_holds: asyncio.Barrier) -> None:
    name = f"lock:{t}"
    lock = ns.lock(name, timeout=5, blocking_timeout=2)
    assert isinstance(lock, Lock)
    assert await lock.acquire()
    try:
        assert await shared.exists(ns.prefix + name) == 1  # the lock's key is under the prefix
        assert await shared.exists(name) == 0
        await everyone_holds.wait()  # every sandbox holds "the same" lock at once: each its own
        assert await lock.owned()
        rival = ns.lock(name, timeout=5, blocking_timeout=0.05)
        assert not await rival.acquire()  # in the same sandbox, it is taken
        assert await lock.extend(2)
        assert await lock.reacquire()
    finally:
        await lock.release()
    assert await ns.exists(name) == 0


async def _everything(
    lab: Lab, ns: NamespacedRedis, pubsub_barrier: asyncio.Barrier, lock_barrier: asyncio.Barrier
) -> set[str]:
    t, me = lab.token, ns.prefix  # every sandbox writes the same names; the values say whose they are
    made: set[str] = set()
    for step in (_strings, _hash, _sorted_set, _list_and_set, _stream, _pipelines):
        made |= await step(ns, t, me)
    await _pubsub(ns, t, me, pubsub_barrier)
    await _lock(ns, lab.shared, t, lock_barrier)
    return made


def test_concurrent_sandboxes_keep_every_key_under_their_own_prefix(backend: Backend) -> None:
    async def scenario(lab: Lab) -> None:
        sandboxes = [lab.sandbox() for _ in range(3)]
        pubsub_barrier, lock_barrier = asyncio.Barrier(len(sandboxes)), asyncio.Barrier(len(sandboxes))
        made = await asyncio.gather(*(_everything(lab, ns, pubsub_barrier, lock_barrier) for ns in sandboxes))

        logical = made[0]
        assert all(names == logical for names in made)
        expected = {ns.prefix + name for ns in sandboxes for name in logical}
        # Every key this test created anywhere carries the token: all of them are under their
        # owner's prefix, and every owner has all of its keys.
        assert set(await lab.raw_scan(f"*{lab.token}*")) == expected
        if lab.isolated:  # a fresh server: nothing else may exist at all
            assert set(await lab.raw_scan()) == expected

        for ns in sandboxes:
            names = [name async for name in ns.scan_iter(count=7)]  # several SCAN pages
            assert sorted(set(names)) == sorted(logical)  # no prefix, nobody else's keys
            carts = {name async for name in ns.scan_iter(match="cart*")}
            assert carts == {f"cart:{lab.token}", f"cart-items:{lab.token}", f"cart-count:{lab.token}"}
            assert await ns.get(f"session:{lab.token}") == ns.prefix  # its own value survived the others

    backend.run(scenario)


# ---------------------------------------------------------------------------------------------
# Refused commands
# ---------------------------------------------------------------------------------------------
FORBIDDEN: list[tuple[Any, ...]] = [
    ("FLUSHDB",),
    ("FLUSHALL",),
    ("KEYS", "*"),
    ("CONFIG GET", "*"),
    ("CONFIG", "SET", "maxmemory", "1"),
    ("RANDOMKEY",),
    ("SELECT", 1),
    ("RENAME", "a", "b"),
    ("SORT", "a", "BY", "nosort", "GET", "*"),
    ("OBJECT", "ENCODING", "a"),
    ("SCRIPT FLUSH",),
    ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f', function() return 1 end)"),
    ("EVAL", "return redis.call('FLUSHDB')", 0),  # a script can reach any key: only trusted ones run
    ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 0),
    ("SSUBSCRIBE", "news"),
]


def test_refusals_are_decided_before_any_io() -> None:
    namespace = KeyNamespace("plab:0123456789ab:")
    for command in FORBIDDEN:
        with pytest.raises(NamespaceError, match="not allowed in a sandbox"):
            namespace.rewrite(command)
    assert issubclass(NamespaceError, RedisError)
    with pytest.raises(NamespaceError, match="not allowed in a sandbox"):
        namespace.rewrite(("PUBLISH", "news", "hi"), pubsub=True)  # a Pub/Sub connection only subscribes
    with pytest.raises(ValueError, match="glob"):
        KeyNamespace("plab:*:")  # a pattern prefix would match other sandboxes' keys


def test_forbidden_commands_raise_and_touch_nothing(backend: Backend) -> None:
    async def scenario(lab: Lab) -> None:
        mine, theirs = lab.sandbox(), lab.sandbox()
        await mine.set(f"mine:{lab.token}", "1")
        await theirs.hset(f"theirs:{lab.token}", "f", "v")
        # First prove, without I/O, that each of these is refused: only then is it safe to try
        # them for real against a shared Redis.
        for command in [*FORBIDDEN, ("FLUSHDB",), ("FLUSHALL",), ("KEYS", "*"), ("RANDOMKEY",), ("SCRIPT FLUSH",)]:
            with pytest.raises(NamespaceError):
                mine.namespace.rewrite(command)
        before = set(await lab.raw_scan(f"*{lab.token}*"))
        size_before = await lab.shared.dbsize()
        attempts: list[Callable[[], Awaitable[Any]]] = [
            mine.flushdb,
            mine.flushall,
            lambda: mine.keys("*"),
            lambda: mine.config_get("*"),
            mine.randomkey,
            lambda: mine.eval("return redis.call('DEL', 'x')", 0),
            mine.script_flush,
            *(functools.partial(mine.execute_command, *command) for command in FORBIDDEN),
        ]
        for attempt in attempts:
            with pytest.raises(NamespaceError, match="not allowed in a sandbox"):
                await attempt()

        # In a pipeline the refusal comes when the command is queued, so nothing of the batch is sent.
        async with mine.pipeline() as pipe:  # leaving the block resets it: the queue is dropped unsent
            pipe.set(f"queued:{lab.token}", "1")
            with pytest.raises(NamespaceError, match="FLUSHDB is not allowed"):
                pipe.flushdb()
        with pytest.raises(NamespaceError):
            mine.monitor()

        assert set(await lab.raw_scan(f"*{lab.token}*")) == before
        assert await mine.get(f"mine:{lab.token}") == "1"
        assert await theirs.hget(f"theirs:{lab.token}", "f") == "v"
        if lab.isolated:
            assert await lab.shared.dbsize() == size_before

    backend.run(scenario)


# ---------------------------------------------------------------------------------------------
# Deleting one sandbox's keys
# ---------------------------------------------------------------------------------------------
def test_drop_all_removes_only_its_own_keys(backend: Backend) -> None:
    async def scenario(lab: Lab) -> None:
        leaving, staying = lab.sandbox(), lab.sandbox()
        async with leaving.pipeline(transaction=False) as pipe:
            for i in range(1200):
                pipe.set(f"k{i}:{lab.token}", i) if i % 3 else pipe.hset(f"h{i}:{lab.token}", "f", i)
            await pipe.execute()
        await leaving.xadd(f"stream:{lab.token}", {"a": 1})
        async with staying.pipeline(transaction=False) as pipe:
            for i in range(300):
                pipe.set(f"k{i}:{lab.token}", i)
            await pipe.execute()
        # Looks like the leaving sandbox's prefix, but is not under it.
        lookalike = leaving.prefix.rstrip(":") + f"-{lab.token}"
        lab.raw_keys_made.append(lookalike)
        await lab.shared.set(lookalike, "not a sandbox key")

        assert await leaving.drop_all(batch=200) == 1201
        assert await lab.raw_scan(leaving.prefix + "*") == []
        assert len(await lab.raw_scan(staying.prefix + "*")) == 300
        assert await lab.shared.get(lookalike) == "not a sandbox key"

        assert await delete_namespace(lab.shared, staying.prefix) == 300
        assert await lab.raw_scan(staying.prefix + "*") == []
        assert await lab.shared.get(lookalike) == "not a sandbox key"

    backend.run(scenario)


# ---------------------------------------------------------------------------------------------
# Bytes and RESP3 reply shapes
# ---------------------------------------------------------------------------------------------
def test_bytes_clients_get_names_back_without_the_prefix(backend: Backend) -> None:
    async def scenario(lab: Lab) -> None:
        ns = lab.sandbox()
        key = b"bin:\xff:" + lab.token.encode()
        await ns.set(key, b"\x00\x01")
        assert await ns.get(key) == b"\x00\x01"
        assert await lab.shared.get(ns.prefix.encode() + key) == b"\x00\x01"
        assert [name async for name in ns.scan_iter()] == [key]

        stream = f"s:{lab.token}"
        await ns.xadd(stream, {"a": 1})
        read: Any = await ns.xread({stream: "0"})
        assert [name for name, _ in read] == [stream.encode()]

        pubsub = ns.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(b"ch:" + lab.token.encode())
            assert await ns.publish(b"ch:" + lab.token.encode(), b"hi") == 1
            message = None
            for _ in range(20):
                message = await pubsub.get_message(timeout=0.25)
                if message is not None:
                    break
            assert message is not None
            assert message["channel"] == b"ch:" + lab.token.encode()
            assert message["data"] == b"hi"
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # (unannotated in redis-py)

    backend.run(scenario, decode_responses=False)


def test_resp3_shapes_are_unprefixed_too(backend: Backend) -> None:
    async def scenario(lab: Lab) -> None:
        ns = lab.sandbox()
        stream = f"s:{lab.token}"
        entry = await ns.xadd(stream, {"a": "1"})
        await ns.xgroup_create(stream, "g", id="0")
        read = await ns.xreadgroup("g", "c", {stream: ">"})
        assert isinstance(read, dict)
        assert list(read) == [stream]
        assert list(await ns.xread({stream: "0"})) == [stream]
        assert await ns.xack(stream, "g", entry) == 1

    backend.run(scenario, protocol=3)


@pytest.mark.services
def test_resp3_push_handler_sees_channels_without_the_prefix() -> None:
    """Real Redis only: fakeredis ignores push_handler_func and returns the messages from get_message."""
    backend = _backend("redis")

    async def scenario(lab: Lab) -> None:
        ns = lab.sandbox()
        pushed: list[Any] = []

        async def on_push(response: Any) -> None:
            pushed.append(response)

        channel = f"ch:{lab.token}"
        pubsub = ns.pubsub(push_handler_func=on_push)
        try:
            await pubsub.subscribe(channel)
            assert await ns.publish(channel, "hi") == 1
            for _ in range(20):
                if len(pushed) == 2:
                    break
                await pubsub.get_message(timeout=0.1)
            assert pushed == [["subscribe", channel, 1], ["message", channel, "hi"]]
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # (unannotated in redis-py)

    backend.run(scenario, protocol=3)


# ---------------------------------------------------------------------------------------------
# The table against the server: Redis's own COMMAND GETKEYS says which arguments are keys
# ---------------------------------------------------------------------------------------------
SAMPLES: dict[str, tuple[Any, ...]] = {
    "PING": ("PING",),
    "ECHO": ("ECHO", "hi"),
    "DEL": ("DEL", "a", "b"),
    "UNLINK": ("UNLINK", "a", "b"),
    "EXISTS": ("EXISTS", "a", "b"),
    "TOUCH": ("TOUCH", "a", "b"),
    "TYPE": ("TYPE", "a"),
    "EXPIRE": ("EXPIRE", "a", 10),
    "PEXPIRE": ("PEXPIRE", "a", 10),
    "EXPIREAT": ("EXPIREAT", "a", 10),
    "PEXPIREAT": ("PEXPIREAT", "a", 10),
    "TTL": ("TTL", "a"),
    "PTTL": ("PTTL", "a"),
    "PERSIST": ("PERSIST", "a"),
    "SCAN": ("SCAN", 0, "MATCH", "a*", "COUNT", 10),
    "GET": ("GET", "a"),
    "SET": ("SET", "a", "v", "EX", 10, "GET"),
    "SETNX": ("SETNX", "a", "v"),
    "SETEX": ("SETEX", "a", 10, "v"),
    "PSETEX": ("PSETEX", "a", 10, "v"),
    "GETSET": ("GETSET", "a", "v"),
    "GETDEL": ("GETDEL", "a"),
    "GETEX": ("GETEX", "a", "PERSIST"),
    "APPEND": ("APPEND", "a", "v"),
    "STRLEN": ("STRLEN", "a"),
    "INCR": ("INCR", "a"),
    "INCRBY": ("INCRBY", "a", 2),
    "INCRBYFLOAT": ("INCRBYFLOAT", "a", 0.5),
    "DECR": ("DECR", "a"),
    "DECRBY": ("DECRBY", "a", 2),
    "MGET": ("MGET", "a", "b", "c"),
    "MSET": ("MSET", "a", "1", "b", "2"),
    "MSETNX": ("MSETNX", "a", "1", "b", "2"),
    "HSET": ("HSET", "a", "f", "v", "g", "w"),
    "HSETNX": ("HSETNX", "a", "f", "v"),
    "HMSET": ("HMSET", "a", "f", "v"),
    "HGET": ("HGET", "a", "f"),
    "HMGET": ("HMGET", "a", "f", "g"),
    "HGETALL": ("HGETALL", "a"),
    "HDEL": ("HDEL", "a", "f", "g"),
    "HINCRBY": ("HINCRBY", "a", "f", 1),
    "HINCRBYFLOAT": ("HINCRBYFLOAT", "a", "f", 0.5),
    "HLEN": ("HLEN", "a"),
    "HEXISTS": ("HEXISTS", "a", "f"),
    "HKEYS": ("HKEYS", "a"),
    "HVALS": ("HVALS", "a"),
    "HSTRLEN": ("HSTRLEN", "a", "f"),
    "ZADD": ("ZADD", "a", "NX", 1, "m", 2, "n"),
    "ZINCRBY": ("ZINCRBY", "a", 1, "m"),
    "ZSCORE": ("ZSCORE", "a", "m"),
    "ZMSCORE": ("ZMSCORE", "a", "m", "n"),
    "ZRANK": ("ZRANK", "a", "m"),
    "ZREVRANK": ("ZREVRANK", "a", "m"),
    "ZRANGE": ("ZRANGE", "a", 0, 10, "BYSCORE", "REV", "WITHSCORES"),
    "ZREVRANGE": ("ZREVRANGE", "a", 0, -1, "WITHSCORES"),
    "ZRANGEBYSCORE": ("ZRANGEBYSCORE", "a", 0, 10),
    "ZREVRANGEBYSCORE": ("ZREVRANGEBYSCORE", "a", 10, 0),
    "ZCARD": ("ZCARD", "a"),
    "ZREM": ("ZREM", "a", "m", "n"),
    "ZCOUNT": ("ZCOUNT", "a", 0, 10),
    "ZPOPMIN": ("ZPOPMIN", "a", 2),
    "ZPOPMAX": ("ZPOPMAX", "a", 2),
    "LPUSH": ("LPUSH", "a", "x", "y"),
    "RPUSH": ("RPUSH", "a", "x", "y"),
    "LRANGE": ("LRANGE", "a", 0, -1),
    "LTRIM": ("LTRIM", "a", 0, 1),
    "LLEN": ("LLEN", "a"),
    "LPOP": ("LPOP", "a", 2),
    "RPOP": ("RPOP", "a"),
    "LINDEX": ("LINDEX", "a", 0),
    "LREM": ("LREM", "a", 0, "x"),
    "LSET": ("LSET", "a", 0, "x"),
    "SADD": ("SADD", "a", "x", "y"),
    "SMEMBERS": ("SMEMBERS", "a"),
    "SISMEMBER": ("SISMEMBER", "a", "x"),
    "SMISMEMBER": ("SMISMEMBER", "a", "x", "y"),
    "SREM": ("SREM", "a", "x"),
    "SCARD": ("SCARD", "a"),
    "XADD": ("XADD", "a", "MAXLEN", "~", 10, "*", "f", "v"),
    "XLEN": ("XLEN", "a"),
    "XRANGE": ("XRANGE", "a", "-", "+", "COUNT", 2),
    "XREVRANGE": ("XREVRANGE", "a", "+", "-"),
    "XACK": ("XACK", "a", "g", "1-0", "2-0"),
    "XPENDING": ("XPENDING", "a", "g", "IDLE", 10, "-", "+", 10, "c"),
    "XAUTOCLAIM": ("XAUTOCLAIM", "a", "g", "c", 0, "0-0", "COUNT", 5, "JUSTID"),
    "XCLAIM": ("XCLAIM", "a", "g", "c", 0, "1-0", "2-0"),
    "XTRIM": ("XTRIM", "a", "MAXLEN", 10),
    "XDEL": ("XDEL", "a", "1-0"),
    "XGROUP CREATE": ("XGROUP", "CREATE", "a", "g", "$", "MKSTREAM"),
    "XGROUP DESTROY": ("XGROUP", "DESTROY", "a", "g"),
    "XGROUP CREATECONSUMER": ("XGROUP", "CREATECONSUMER", "a", "g", "c"),
    "XGROUP DELCONSUMER": ("XGROUP", "DELCONSUMER", "a", "g", "c"),
    "XGROUP SETID": ("XGROUP", "SETID", "a", "g", "0"),
    "XINFO GROUPS": ("XINFO", "GROUPS", "a"),
    "XINFO STREAM": ("XINFO", "STREAM", "a", "FULL"),
    "XINFO CONSUMERS": ("XINFO", "CONSUMERS", "a", "g"),
    "XREAD": ("XREAD", "COUNT", 2, "BLOCK", 0, "STREAMS", "a", "b", "0", "0"),
    "XREADGROUP": ("XREADGROUP", "GROUP", "g", "c", "COUNT", 2, "NOACK", "STREAMS", "a", "b", ">", ">"),
    "PUBLISH": ("PUBLISH", "news", "hi"),
    "WATCH": ("WATCH", "a", "b"),
    "UNWATCH": ("UNWATCH",),
    "DISCARD": ("DISCARD",),
    "EVAL": ("EVAL", Lock.LUA_RELEASE_SCRIPT, 2, "a", "b", "arg"),
    "EVAL_RO": ("EVAL_RO", Lock.LUA_RELEASE_SCRIPT, 1, "a", "arg"),
    "EVALSHA": ("EVALSHA", "<lock release sha>", 2, "a", "b", "arg"),
    "EVALSHA_RO": ("EVALSHA_RO", "<lock release sha>", 1, "a", "arg"),
    "FCALL": ("FCALL", "f", 2, "a", "b", "arg"),
    "FCALL_RO": ("FCALL_RO", "f", 1, "a", "arg"),
    "SCRIPT LOAD": ("SCRIPT", "LOAD", Lock.LUA_RELEASE_SCRIPT),
    "SCRIPT EXISTS": ("SCRIPT", "EXISTS", "abc"),
}
# Channels and SCAN patterns get the prefix too, but the server does not call them keys.
NOT_KEYS = {"PUBLISH", "SCAN"}


def _lock_release_sha() -> str:
    return hashlib.sha1(Lock.LUA_RELEASE_SCRIPT.encode(), usedforsecurity=False).hexdigest()


def _sample(name: str) -> tuple[Any, ...]:
    return tuple(_lock_release_sha() if arg == "<lock release sha>" else arg for arg in SAMPLES[name])


def test_every_allowed_command_has_a_sample() -> None:
    assert set(SAMPLES) == set(ALLOWED_COMMANDS)


def test_scan_match_and_channels_are_confined() -> None:
    namespace = KeyNamespace("plab:0123456789ab:")
    assert namespace.rewrite(_sample("SCAN"))[1] == ["SCAN", 0, "MATCH", "plab:0123456789ab:a*", "COUNT", 10]
    assert namespace.rewrite(("SCAN", 0))[1] == ["SCAN", 0, "MATCH", "plab:0123456789ab:*"]
    assert namespace.rewrite(_sample("PUBLISH"))[1] == ["PUBLISH", "plab:0123456789ab:news", "hi"]
    assert namespace.rewrite(("XGROUP CREATE", "s", "g", "$"))[1] == ["XGROUP CREATE", "plab:0123456789ab:s", "g", "$"]
    assert namespace.rewrite(("PSUBSCRIBE", "news:*"), pubsub=True)[1] == ["PSUBSCRIBE", "plab:0123456789ab:news:*"]


@pytest.mark.services
def test_key_positions_agree_with_the_server() -> None:
    """Real Redis only: fakeredis has no COMMAND GETKEYS."""
    backend = _backend("redis")

    async def scenario(lab: Lab) -> None:
        namespace = KeyNamespace("plab:0123456789ab:")
        disagreements = []
        for name in sorted(SAMPLES.keys() - NOT_KEYS):
            sample = _sample(name)
            server_keys: list[Any] = []
            if len(sample) > 1:  # (GETKEYS wants arguments; a bare PING has none to be keys)
                try:
                    server_keys = await lab.shared.command_getkeys(*sample)
                except ResponseError as exc:
                    if "no key arguments" not in str(exc):
                        raise
            _, rewritten = namespace.rewrite(sample)
            ours = [namespace.strip(new) for old, new in zip(sample, rewritten, strict=True) if old != new]
            if [str(key) for key in ours] != [str(key) for key in server_keys]:
                disagreements.append((name, ours, server_keys))
        assert disagreements == []

    backend.run(scenario)


# ---------------------------------------------------------------------------------------------
# The lease: every key a sandbox may leave without an expiry gets one
# ---------------------------------------------------------------------------------------------
LEASE_SCRIPT = "redis.call('HSET', KEYS[1], 'f', ARGV[1]) return 1"


def _leased(lab: Lab, lease_s: float = 600.0) -> tuple[NamespacedRedis, KeyLease]:
    lease = KeyLease(lease_s)
    box = NamespacedRedis(lab.shared, f"plab:{secrets.token_hex(6)}:", lease=lease)
    lease.client = box.without_lease()
    lab.prefixes.append(box.prefix)
    return box, lease


async def _expiry(lab: Lab, box: NamespacedRedis, name: str) -> int:
    """The key's absolute expiry in ms (-1: none), read past the namespace."""
    return int(await lab.shared.pexpiretime(box.prefix + name))


def test_a_leased_namespace_gives_every_key_it_may_leave_without_an_expiry_the_lease(backend: Backend) -> None:
    trust_script(LEASE_SCRIPT)

    async def scenario(lab: Lab) -> None:
        box, lease = _leased(lab)
        await box.set("plain", "1")
        await box.hset("hash", "f", "1")
        await box.rpush("list", "a")
        await box.sadd("set", "a")
        await box.zadd("zset", {"a": 1.0})
        await box.xadd("stream", {"a": "1"})
        await box.incr("counter")
        await box.xgroup_create("grouped", "g", id="0", mkstream=True)
        await box.register_script(LEASE_SCRIPT)(keys=["scripted"], args=["1"])
        async with box.pipeline(transaction=True) as pipe:
            pipe.hset("piped", "f", "1")
            pipe.set("own-ttl", "1", px=50_000)
            pipe.hget("piped", "f")
            assert await pipe.execute() == [1, True, "1"], "no reply of the lease's own commands"
        single = box.client()
        await single.set("single", "1")
        await single.aclose()
        for name in ("plain", "hash", "list", "set", "zset", "stream", "counter", "grouped", "scripted", "piped"):
            assert await _expiry(lab, box, name) == lease.deadline_ms, name
        assert await _expiry(lab, box, "single") == lease.deadline_ms
        own = await box.pttl("own-ttl")
        assert 0 < own <= 50_000, "a TTL the lab chose is never touched"
        await box.set("ex", "1", ex=30)
        assert 0 < await box.pttl("ex") <= 30_000
        await box.persist("plain")  # taking the expiry away gives the lease back
        assert await _expiry(lab, box, "plain") == lease.deadline_ms
        with pytest.raises(ResponseError, match="WRONGTYPE"):  # a refused command raises as it always did
            await box.hset("plain", "f", "1")
        bare = lab.sandbox()  # no lease: keys live until deleted, as before
        await bare.set("forever", "1")
        assert await bare.ttl("forever") == -1

    backend.run(scenario)


def test_renewing_moves_the_leased_keys_and_leaves_the_labs_own_ttls(backend: Backend) -> None:
    async def scenario(lab: Lab) -> None:
        box, lease = _leased(lab, lease_s=600.0)
        first = lease.deadline_ms
        await box.hset("progress", "f", "1")
        await box.set("cached", "1", px=120_000)
        cached_at = await _expiry(lab, box, "cached")
        await lab.shared.set(box.prefix + "written-past-the-client", "1")  # a key with no expiry at all
        lease.lease_s = 900.0
        renewed = await lease.renew()
        assert renewed == 2, "the leased key and the key without an expiry"
        assert lease.deadline_ms > first
        assert await _expiry(lab, box, "progress") == lease.deadline_ms
        assert await _expiry(lab, box, "written-past-the-client") == lease.deadline_ms
        assert await _expiry(lab, box, "cached") == cached_at, "the lab's own TTL is not the lease's"
        await lab.shared.set(box.prefix + "late", "1")
        await lab.shared.pexpireat(box.prefix + "late", first)  # as a write with the old deadline left it
        await lease.renew()
        assert await _expiry(lab, box, "late") == lease.deadline_ms, "an earlier deadline is still the lease's"

    backend.run(scenario)


def test_keys_expire_when_nobody_renews_the_lease(backend: Backend) -> None:
    async def scenario(lab: Lab) -> None:
        box, _ = _leased(lab, lease_s=0.5)
        await box.hset("progress", "f", "1")
        await box.xadd("events", {"a": "1"})
        await box.set("forgotten", "1")

        async def gone() -> bool:
            return not await lab.raw_scan(box.prefix + "*")

        await eventually_async(gone, "the keys of a sandbox nobody renews to expire")

    backend.run(scenario)
