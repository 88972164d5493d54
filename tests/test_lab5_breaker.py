"""Lab 5's breaker: an outage is not an event's failure; an unknown outcome goes again, never to the dead letter."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError
from sqlalchemy import select

from bench._common import free_port
from source import DomainEvent, Sandbox, get_session
from source.domain.models import new_id
from source.labs.outbox import actions
from source.labs.outbox.breaker import BrokerBreaker, is_outage, no_answer
from source.labs.outbox.faults import LostReply
from source.labs.outbox.jobs import breaker_of
from source.labs.outbox.options import publisher_options
from source.labs.outbox.publish import Unencodable
from source.labs.outbox.publisher import OutboxPublisher
from tests.lab5_support import backlog, running_redis, statuses, stream_events
from tests.waiting import eventually_async


def test_what_counts_as_an_outage_and_what_as_the_events_own_fault() -> None:
    refused = ResponseError("wrong number of arguments for 'publish' command")
    assert not is_outage(refused), "a refused message is the event's fault"
    assert not is_outage(Unencodable("its payload is not a JSON object"))
    for outage in (
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'"),
        ResponseError("MISCONF Redis is configured to save RDB snapshots"),
        RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."),
        TimeoutError(),
        LostReply("lost"),
    ):
        assert is_outage(outage), outage
    assert not no_answer(RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")), (
        "sent nothing"
    )
    assert no_answer(RedisConnectionError("Connection closed by server.")), "may have run: unknown"
    assert no_answer(TimeoutError())


def test_the_breaker_waits_longer_at_each_failure_and_closes_when_a_batch_goes_through() -> None:
    breaker = BrokerBreaker()
    assert breaker.describe(0) == "broker available"
    breaker.record_outage("ConnectionError: refused", base=1.0, cap=30.0)
    first = breaker.wait_s()
    assert breaker.is_open
    assert 0.9 < first <= 2.0
    breaker.record_outage("ConnectionError: refused", base=1.0, cap=30.0)
    breaker.record_outage("ConnectionError: refused", base=1.0, cap=30.0)
    assert breaker.wait_s() > 3.5, "1, 2, then 4 s (plus jitter): it backs off"
    assert re.fullmatch(
        r"broker unavailable since \d\d:\d\d:\d\d, 1,240 events waiting; next try in [\d.]+ s \(failure 3 of this "
        r"outage: ConnectionError: refused\)",
        breaker.describe(1240),
    )
    breaker.probe_answered()
    assert not breaker.is_open, "a probe was answered: the next batch may go"
    breaker.record_success()
    assert (breaker.is_open, breaker.failures, breaker.outages) == (False, 0, 1)


class _BusyBroker:
    """A broker whose every command is answered with an error that speaks for the broker (out of memory)."""

    def __init__(self) -> None:
        self.commands = 0

    def pipeline(self, transaction: bool = False) -> _BusyBroker:
        return self

    async def __aenter__(self) -> _BusyBroker:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    def publish(self, *_: Any) -> None:
        self.commands += 1

    def xadd(self, *_: Any, **__: Any) -> None:
        self.commands += 1

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        return [OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")] * self.commands

    async def ping(self) -> bool:
        return True


def test_a_broker_out_of_memory_is_an_outage_not_a_dead_letter(box: Sandbox) -> None:
    async def scenario() -> None:
        await backlog(10, aggregates=10)
        publisher = OutboxPublisher(box, publisher_options(max_attempts=1), broker=_BusyBroker())
        result = await publisher.publish_batch()
        assert (result.claimed, result.held, result.failed, result.dead_lettered) == (10, 10, 0, 0)
        assert publisher.breaker.is_open
        assert "OutOfMemoryError" in (publisher.breaker.reason or "")
        assert await statuses() == {"pending": 10}, "max_attempts is 1, and still nothing is dead-lettered"
        assert (await publisher.publish_batch()).broker_wait is not None, "the breaker holds every batch back"

    box.run(scenario())


def test_an_event_that_cannot_be_encoded_spends_its_own_tries_while_the_batch_goes(box: Sandbox) -> None:
    async def scenario() -> None:
        ids = await backlog(4, aggregates=4)
        bad = DomainEvent(
            id=new_id(), event_type="score.calculated", aggregate_type="AIRScore", aggregate_id="bad", payload="oops"
        )
        async with get_session() as session:  # another program wrote it: not through the repository's checks
            session.add(bad)
            await session.commit()
        publisher = OutboxPublisher(box, publisher_options(max_attempts=1))
        result = await publisher.publish_batch()
        assert (result.claimed, result.published, result.failed, result.dead_lettered) == (5, 4, 1, 1)
        assert not publisher.breaker.is_open
        async with get_session() as session:
            row = (await session.execute(select(DomainEvent).where(DomainEvent.id == bad.id))).scalar_one()
        assert row.status == "failed"
        assert "not a JSON object" in (row.last_error or "")
        assert {m["id"] for m in await stream_events(box.redis)} == set(ids)

    box.run(scenario())


def test_a_lost_reply_is_published_again_and_the_inbox_ignores_the_copies(box: Sandbox) -> None:
    """The page's fault: the batch was delivered, its answer lost; the page names the batch and the duplicates."""

    async def scenario() -> None:
        await actions.start_consumers()
        await backlog(6, aggregates=6)
        armed = await actions.lose_next_reply()
        assert "reply lost" in armed.text
        await actions.start_publisher(backoff_base=0.05, backoff_cap=0.2)
        await eventually_async(lambda: _published(6), "the batch to go again after its lost reply")
        await eventually_async(lambda: _effects(6), "each event's effect, once")
        delivered = Counter(m["id"] for m in await stream_events(box.redis))
        assert set(delivered.values()) == {2}, "delivered twice: once with the lost reply, once again"
        status = await eventually_async(lambda: _duplicates(6), "the inbox to ignore the six copies")
        assert status is not None
        assert status.metrics.failed == 0
        assert status.metrics.attempts == 0, "an unknown outcome spends no try"
        [said] = status.unanswered
        assert re.match(r"Batch of 6 event\(s\) by publisher-1 at \d\d:\d\d:\d\d had no answer \(LostReply: ", said)
        assert "the inbox then ignored 6 duplicate(s) of its events (6 of them reached the stream consumer)" in said
        assert sum(status.effects.values()) == 6
        await actions.stop_publisher()
        await actions.stop_consumers()

    box.run(scenario())


async def _published(n: int) -> bool:
    return (await statuses()).get("published", 0) >= n


async def _effects(n: int) -> bool:
    return sum((await actions.live_status()).effects.values()) >= n


async def _duplicates(n: int) -> actions.LiveStatus | None:
    status = await actions.live_status()
    return status if status.duplicates_ignored >= n else None


def test_a_frozen_redis_runs_the_timed_out_batch_later_and_the_batch_goes_again(box: Sandbox) -> None:
    """SIGSTOP: the batch's reply never comes, so it stays pending; on SIGCONT Redis delivers it, and the retry too."""
    with running_redis(free_port()) as server:

        async def scenario() -> None:
            ids = await backlog(20, aggregates=20)
            broker = Redis.from_url(server.url, decode_responses=True, socket_connect_timeout=0.5)
            options = publisher_options(max_events=50, max_attempts=1, publish_timeout=0.5, backoff_base=0.05)
            publisher = OutboxPublisher(box, options, broker=broker)
            await broker.ping()
            server.freeze()
            try:
                result = await publisher.publish_batch()
            finally:
                server.thaw()
            assert (result.claimed, result.held, result.failed) == (20, 20, 0)
            [batch] = publisher.breaker.unanswered
            assert set(batch.event_ids) == set(ids)
            await eventually_async(lambda: _stream_has(broker, 20), "the thawed Redis to run the buffered batch")
            assert await statuses() == {"pending": 20}, "the publisher could not know: still pending, no try spent"
            await eventually_async(lambda: _drained(publisher), "the batch to go again once the probe finds Redis")
            delivered = Counter(m["id"] for m in await stream_events(broker))
            assert delivered == Counter({i: 2 for i in ids}), "at-least-once: twice each, and never dead-lettered"
            assert await statuses() == {"published": 20}
            await broker.aclose()

        box.run(scenario(), timeout=120)


async def _stream_has(broker: Any, n: int) -> bool:
    return int(await broker.xlen("outbox:events")) >= n


async def _drained(publisher: OutboxPublisher) -> bool:
    await publisher.publish_batch()
    return (await statuses()).get("pending", 0) == 0


def test_setting_the_broker_back_probes_at_once(box: Sandbox) -> None:
    pending = 3

    async def scenario() -> None:
        await backlog(pending, aggregates=pending)
        await actions.set_broker_down(True)
        await actions.start_publisher(backoff_base=30.0, backoff_cap=60.0)  # a long pause between probes
        await eventually_async(lambda: _open(box), "the breaker to open")
        await actions.set_broker_down(False)
        await eventually_async(lambda: _published(pending), "the events to drain without waiting out the pause")
        await actions.stop_publisher()

    box.run(scenario(), timeout=60)


async def _open(box: Sandbox) -> bool:
    await asyncio.sleep(0)
    return breaker_of(box).is_open
