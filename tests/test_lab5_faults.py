"""Lab 5 under faults: random broker failures and crashes, concurrent publishers, Redis stopped mid-drain."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from sqlalchemy import select

from bench._common import free_port
from source import DomainEvent, Sandbox, get_session
from source.labs.outbox.consumers import Feed, StreamConsumer
from source.labs.outbox.faults import Faults, SimulatedCrash
from source.labs.outbox.inbox import Inbox
from source.labs.outbox.options import publisher_options
from source.labs.outbox.publisher import OutboxPublisher
from source.platform.dead_redis import unreachable_redis
from tests.lab5_support import (
    backlog,
    first_order_by_aggregate,
    private_redis,
    run_until_drained,
    statuses,
    stream_events,
)
from tests.waiting import eventually_async


def test_random_broker_failures_and_crashes_lose_nothing_and_apply_each_effect_once(box: Sandbox) -> None:
    async def scenario() -> None:
        ids = await backlog(2000, aggregates=200)
        poisoned = set(ids[200:205])  # the second event of five aggregates: the broker refuses their message
        options = publisher_options(max_events=100, max_attempts=3, backoff_base=0.002, backoff_cap=0.01)
        faults = Faults(broker_failure_rate=0.2, crash_rate=0.15, refused=set(poisoned), rng=random.Random(20261123))  # noqa: S311 - a reproducible fault schedule
        publisher = OutboxPublisher(box, options, faults=faults)
        stop = asyncio.Event()
        consumer = StreamConsumer(box.redis, Feed(10), inbox=Inbox(box.redis))
        consuming = asyncio.create_task(consumer.run(stop))
        crashes: list[int] = []
        await run_until_drained(publisher, crashes)

        async with get_session() as session:
            rows = (
                await session.execute(
                    select(DomainEvent.id, DomainEvent.status, DomainEvent.attempts, DomainEvent.aggregate_id)
                )
            ).all()
        failed = {r.id for r in rows if r.status == "failed"}
        assert failed == poisoned, "only the events the broker refused are dead letters: no outage made one"
        assert all(r.attempts == options.max_attempts for r in rows if r.status == "failed"), "failed only when out"
        assert all(r.attempts == 0 for r in rows if r.status != "failed"), "the broker's outages spent no try"
        blocked = {r.aggregate_id for r in rows if r.id in poisoned}
        behind = {r.id for r in rows if r.status == "pending"}
        assert behind == {
            r.id for r in rows if r.aggregate_id in blocked and r.id not in poisoned and r.status == "pending"
        }
        assert len(behind) == 5 * 8, "each poisoned event holds back the 8 later events of its aggregate"
        published = {r.id for r in rows if r.status == "published"}
        assert published | failed | behind == set(ids)

        messages = await stream_events(box.redis)
        delivered = Counter(m["id"] for m in messages)
        assert set(delivered) == published, "every published event delivered at least once, no failed one"
        assert len(crashes) > 0
        assert publisher.stats.broker_failures > 0
        assert sum(delivered.values()) > len(published), "crashes between publish and mark redelivered some"
        for sequences in first_order_by_aggregate(messages).values():
            assert sequences == sorted(sequences), "per-aggregate order held"

        inbox = Inbox(box.redis)
        await eventually_async(lambda: _effects_reach(inbox, len(published)), "the consumer to apply every effect")
        stop.set()
        await consuming
        assert sum((await inbox.effects()).values()) == len(published), "each effect exactly once"

    box.run(scenario(), timeout=240)


async def _effects_reach(inbox: Inbox, n: int) -> bool:
    return sum((await inbox.effects()).values()) >= n


def test_three_publishers_at_once_never_publish_an_event_twice(box: Sandbox) -> None:
    if box.schema is None:
        pytest.skip("SQLite has one writer at a time: its publishers take turns (see the two-publisher test)")

    async def scenario() -> None:
        ids = await backlog(3000, aggregates=300)
        options = publisher_options(max_events=50)
        publishers = [OutboxPublisher(box, options, name=f"publisher-{i}") for i in range(3)]
        crashes: list[int] = []
        await asyncio.gather(*(run_until_drained(p, crashes) for p in publishers))
        messages = await stream_events(box.redis)
        assert Counter(m["id"] for m in messages) == Counter(ids), "each event exactly once"
        for sequences in first_order_by_aggregate(messages).values():
            assert sequences == sorted(sequences)
        worked = [p.stats.published for p in publishers]
        assert sum(worked) == 3000
        assert sum(1 for n in worked if n > 0) >= 2, f"SKIP LOCKED let them share the work: {worked}"

    box.run(scenario(), timeout=240)


def test_redis_stopped_mid_drain_then_everything_is_published_after_it_returns(box: Sandbox) -> None:
    port = free_port()
    with private_redis(port) as switch:
        broker = unreachable_redis(port, timeout_s=0.5)
        options = publisher_options(max_events=50, max_attempts=2, backoff_base=0.05, backoff_cap=0.5, stream=False)
        publisher = OutboxPublisher(box, options, broker=broker)

        async def seed() -> None:
            await backlog(3000, aggregates=3000)

        box.run(seed())
        future = box.submit(run_until_drained(publisher, []))
        box.run(eventually_async(lambda: _published_between(1, 2000), "the drain to publish its first events"))
        switch(False)  # the broker goes away mid-drain
        box.run(eventually_async(lambda: _failures(publisher, 3), "three failed tries of the broker once it stopped"))
        assert publisher.breaker.is_open
        assert (box.run(statuses())).get("pending", 0) > 0
        switch(True)  # and comes back
        future.result(timeout=120)
        assert box.run(statuses()) == {"published": 3000}, "no dead letter, although the outage outlived 2 tries"
        assert publisher.stats.broker_failures >= 1
        assert not publisher.breaker.is_open
        box.run(broker.aclose())


async def _published_between(low: int, high: int) -> bool:
    n = (await statuses()).get("published", 0)
    if n > high:
        raise AssertionError("the drain finished before the broker could be stopped: seed more events")
    return n >= low


async def _failures(publisher: OutboxPublisher, n: int) -> bool:
    return publisher.breaker.failures >= n


def test_a_drain_records_for_the_class_what_the_learners_faults_did(box: Sandbox) -> None:
    """The class plot shows each drain's rate beside what its faults did: held, crashed, dead-lettered."""
    from source.labs.outbox import record
    from source.learning import measurements

    async def scenario() -> dict[str, float]:
        ids = await backlog(100, aggregates=10)
        options = publisher_options(max_events=40, max_attempts=1, backoff_base=0.002, backoff_cap=0.01)
        faults = Faults(broker_down=True, crash_next=1, refused={ids[0]})  # ids[0]: agg-0's first event
        publisher = OutboxPublisher(box, options, faults=faults)
        held = (await record.timed_batch(publisher)).held
        assert held == 10, "the broker is away: the batch (each aggregate's next event) is held"
        faults.broker_down = False
        while not await measurements.load(box, "lab5"):  # a supervisor, until the drain is recorded
            try:
                result = await record.timed_batch(publisher)
            except SimulatedCrash:
                continue
            if result.broker_wait is not None:
                await asyncio.sleep(publisher.breaker.wait_s())
        run = measurements.latest_run(await measurements.load(box, "lab5"), "lab5") or {}
        return {name: m.value for name, m in run.items()}

    values = box.run(scenario(), timeout=120)
    assert values["held"] == 10
    assert values["crashed"] == 1, "one batch published and crashed before marking"
    assert values["dead_lettered"] == 1, "the event the broker refused"
    assert values["published"] == 100 - 10, "everything but agg-0's ten events (the refused one, and nine behind it)"
