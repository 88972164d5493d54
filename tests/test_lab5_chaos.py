"""Lab 5 under chaos: nothing lost, no dead letter, no aggregate out of order, each effect exactly once.

Three publisher processes, one killed mid-batch; Redis restarted, frozen, and away for longer than
the publisher's whole retry budget; all while events keep being written.

The broker is a private ``redis-server`` on a port of its own (started, stopped, frozen by this test, never the
shared one), persistent (an append-only file) so that its restart keeps the stream: what a restart *without*
persistence loses is the lab's own fault, measured in ``test_lab5_consumers``. PostgreSQL only: the point is
several publishers at once, and SQLite has one writer.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select

from bench._common import free_port
from source import DomainEvent, Sandbox, get_session
from source.domain.models import new_id
from source.labs.outbox.consumers import Feed, Link, StreamConsumer, consumer_client, stay_connected
from source.labs.outbox.inbox import Inbox
from source.platform.redis_namespace import NamespacedRedis
from tests.conftest import ROOT
from tests.lab5_chaos_publisher import OPTIONS
from tests.lab5_support import first_order_by_aggregate, running_redis, statuses
from tests.waiting import eventually

SCRIPT = ROOT / "tests" / "lab5_chaos_publisher.py"
PREFIX = "plab:chaos:"
AGGREGATES = 300
#: At least this many events, written while the faults happen (the writer goes on until the last fault is over).
AT_LEAST = 2_000
#: How long Redis stays frozen, and away (longer than the publisher's whole retry budget), in seconds.
FREEZE_S = 5.0
OUTAGE_S = max(3.0, 4 * OPTIONS.retry_budget_s())
#: Between two faults, the drain must have moved on by this many events.
PROGRESS = 150


@dataclass
class Listeners:
    """What runs on the test's loop: the writer, the lab's stream consumer, and an independent subscriber."""

    written: int = 0
    heard: list[dict[str, Any]] = field(default_factory=list)
    stop_writing: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    link: Link = field(default_factory=lambda: Link("stream"))
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def write_events(state: Listeners) -> None:
    """A dozen events every 40 ms over 300 aggregates, each written in its own transaction, until told to stop."""
    draw = random.Random(16)  # noqa: S311 - a reproducible spread over the aggregates
    while not state.stop.is_set() and not (state.stop_writing.is_set() and state.written >= AT_LEAST):
        rows = [
            DomainEvent(
                id=new_id(),
                event_type="score.calculated",
                aggregate_type="AIRScore",
                aggregate_id=f"agg-{draw.randrange(AGGREGATES)}",
                payload={"n": state.written + i},
            )
            for i in range(12)
        ]
        async with get_session() as session:
            session.add_all(rows)
            await session.commit()
        state.written += len(rows)
        await asyncio.sleep(0.04)


async def subscribe(url: str, state: Listeners, ready: asyncio.Event) -> None:
    """An independent subscriber (plain redis-py, none of the lab's code): every message, in arrival order."""
    while not state.stop.is_set():
        client = Redis.from_url(url, decode_responses=True, socket_timeout=2)
        try:
            pubsub = client.pubsub()
            await pubsub.psubscribe(PREFIX + "events:*")
            ready.set()
            while not state.stop.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is not None:
                    state.heard.append(json.loads(message["data"]))
        except (RedisError, OSError):
            await asyncio.sleep(0.1)  # Redis restarted or froze: subscribe again
        finally:
            await client.aclose()


async def start_listeners(url: str, state: Listeners) -> None:
    broker = NamespacedRedis(Redis.from_url(url, decode_responses=True), PREFIX)
    client = consumer_client(broker)
    consumer = StreamConsumer(client, Feed(50), inbox=Inbox(client), link=state.link)
    ready = asyncio.Event()
    state.tasks = [
        asyncio.create_task(stay_connected(state.link, lambda: consumer.run(state.stop), state.stop)),
        asyncio.create_task(subscribe(url, state, ready)),
        asyncio.create_task(write_events(state)),
    ]
    await asyncio.wait_for(ready.wait(), 30)


async def stop_listeners(state: Listeners) -> None:
    state.stop.set()
    await asyncio.wait_for(asyncio.gather(*state.tasks), 60)


def publisher(url: str, schema: str, redis_url: str, name: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), url, schema, redis_url, name, *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ended(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Stop a publisher (SIGTERM: it finishes its batch) and read its counters; one that was killed has none."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    lines = out.strip().splitlines()
    return (
        json.loads(lines[-1]) if lines and proc.returncode == 0 else {"returncode": proc.returncode, "err": err[-800:]}
    )


def published(box: Sandbox) -> int:
    return box.run(statuses()).get("published", 0)


def moved_on(box: Sandbox, what: str) -> None:
    """Wait until the drain has published :data:`PROGRESS` more events than now."""
    start = published(box)
    eventually(lambda: published(box) >= start + PROGRESS, f"the drain to move on after {what}")


async def stream_messages(url: str) -> list[dict[str, Any]]:
    client: Any = Redis.from_url(url, decode_responses=True)
    try:
        return [json.loads(fields["message"]) for _, fields in await client.xrange(PREFIX + "outbox:events")]
    finally:
        await client.aclose()


async def effects(url: str) -> int:
    client = NamespacedRedis(Redis.from_url(url, decode_responses=True), PREFIX)
    try:
        return sum((await Inbox(client).effects()).values())
    finally:
        await client.connection_pool.disconnect()


async def all_events() -> list[Any]:
    async with get_session() as session:
        columns = (DomainEvent.id, DomainEvent.status, DomainEvent.attempts, DomainEvent.aggregate_id)
        return list((await session.execute(select(*columns).order_by(DomainEvent.sequence))).all())


async def total() -> int:
    async with get_session() as session:
        return int(await session.scalar(select(func.count()).select_from(DomainEvent)) or 0)


def test_chaos_loses_nothing_keeps_order_and_applies_each_effect_once(  # noqa: PLR0915 - one story, told in order
    box: Sandbox, backends: Any, tmp_path: Path
) -> None:
    if box.schema is None:
        pytest.skip("PostgreSQL only: several publisher processes at once, and SQLite has one writer")
    database_url = backends.settings.database_url
    with running_redis(free_port(), persistent=True) as server:
        state = Listeners()
        box.run(start_listeners(server.url, state))
        marker = tmp_path / "victim-hangs"
        procs = [
            publisher(
                database_url, box.schema, server.url, "publisher-1", "--hang-after", "3", "--marker", str(marker)
            ),
            publisher(database_url, box.schema, server.url, "publisher-2"),
            publisher(database_url, box.schema, server.url, "publisher-3"),
        ]
        began = time.monotonic()
        try:
            # 1. A publisher dies mid-batch: its batch was published, never marked; its claim is let go.
            eventually(marker.exists, "publisher-1 to hang after publishing its third batch, before marking it")
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(10)
            moved_on(box, "the kill")
            # 2. Redis restarts (it keeps its data: an append-only file).
            server.down()
            server.up()
            moved_on(box, "the restart")
            # 3. Redis freezes: it accepts every command and answers none, then runs them all when thawed.
            server.freeze()
            time.sleep(FREEZE_S)  # the fault itself lasts this long
            server.thaw()
            moved_on(box, "the freeze")
            # 4. Redis is away for longer than the publisher's whole retry budget.
            server.down()
            time.sleep(OUTAGE_S)  # the fault itself lasts this long
            server.up()
            moved_on(box, "the long outage")
            state.stop_writing.set()
            eventually(lambda: state.tasks[2].done(), "the writer to write its last events")
            written = box.run(total())
            assert written >= AT_LEAST
            eventually(lambda: published(box) == written, f"all {written} events to be published")
            eventually(lambda: box.run(effects(server.url)) >= written, "the consumer to apply every effect")
        finally:
            counters = [ended(proc) for proc in procs]
            box.run(stop_listeners(state))
        took = time.monotonic() - began

        rows = box.run(all_events())
        messages = box.run(stream_messages(server.url))
        applied = box.run(effects(server.url))

    assert {r.status for r in rows} == {"published"}, "0 lost: every event published"
    assert all(r.attempts == 0 for r in rows), "0 dead letters, 0 tries spent: every failure was the broker's"
    on_stream = Counter(m["id"] for m in messages)
    assert set(on_stream) == {r.id for r in rows}, "0 lost: every event on the stream"
    assert sum(on_stream.values()) > len(rows), "the killed publisher's batch (at least) arrived twice"
    for aggregate, sequences in first_order_by_aggregate(messages).items():
        assert sequences == sorted(sequences), f"{aggregate}: out of order on the stream"
    for aggregate, sequences in first_order_by_aggregate(state.heard).items():
        assert sequences == sorted(sequences), f"{aggregate}: out of order as the independent subscriber heard it"
    assert len({m["id"] for m in state.heard}) > len(rows) // 2, "the subscriber heard the drain (not only silence)"
    assert applied == len(rows), "each effect exactly once, duplicates dropped by the inbox"
    assert state.link.reconnections >= 2, "the stream consumer came back after the restart and the outage"
    assert counters[0]["returncode"] == -signal.SIGKILL, "publisher-1 was killed mid-batch"
    survivors = counters[1:]
    assert all("outages" in c for c in survivors), survivors
    assert sum(c["outages"] for c in survivors) >= 2, "the breaker opened: the outages were seen, and waited out"
    assert sum(c["unanswered"] for c in survivors) >= 1, "the frozen Redis left a batch without an answer"
    assert sum(c["dead_lettered"] for c in survivors) == 0
    assert took < 120, f"the story took {took:.0f} s"
