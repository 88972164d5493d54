"""Lab 5's consumers stay: they reconnect when Redis restarts and re-create a lost group.

And the lab's "Redis restarts without persistence" counts what such a restart takes from the stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from bench._common import free_port
from source import Sandbox
from source.labs.outbox import actions
from source.labs.outbox.consumers import (
    Feed,
    Link,
    StreamConsumer,
    consumer_client,
    listen_pubsub,
    stay_connected,
)
from source.labs.outbox.inbox import Inbox
from source.labs.outbox.jobs import ConsumersRunner, feed_of
from source.labs.outbox.options import publisher_options
from source.labs.outbox.publisher import OutboxPublisher
from tests.lab5_support import backlog, running_redis, statuses
from tests.waiting import eventually_async


def test_consumers_reconnect_after_a_redis_restart_and_recreate_the_lost_group(box: Sandbox) -> None:
    """A real redis-server without persistence, restarted under the consumers: they come back, and say so."""
    with running_redis(free_port()) as server:

        async def scenario() -> None:
            broker = Redis.from_url(server.url, decode_responses=True)
            client = consumer_client(broker)
            feed, stop = Feed(1000), asyncio.Event()
            listening, reading = Link("Pub/Sub"), Link("stream")
            consumer = StreamConsumer(client, feed, inbox=Inbox(client), link=reading)
            subscribed = asyncio.Event()

            async def subscriber() -> None:
                await listen_pubsub(client, feed, stop, subscribed, listening)

            both = [
                asyncio.create_task(stay_connected(listening, subscriber, stop)),
                asyncio.create_task(stay_connected(reading, lambda: consumer.run(stop), stop)),
            ]
            await asyncio.wait_for(subscribed.wait(), 30)
            publisher = OutboxPublisher(box, publisher_options(max_events=50), broker=broker)
            await backlog(20, aggregates=20)
            await publisher.drain()
            await eventually_async(lambda: _applied(broker, 20), "the first 20 events applied")

            server.down()  # a restart of a Redis that keeps nothing: the stream and its group go
            await eventually_async(lambda: _all_reconnecting(listening, reading), "both consumers to notice")
            assert listening.down_since is not None
            assert "reconnecting since" in listening.describe()
            server.up()
            await eventually_async(lambda: _all_listening(listening, reading), "both consumers to be back")
            assert listening.reconnections >= 1
            assert reading.reconnections >= 1
            assert "reconnection(s)" in reading.describe()

            await backlog(10, aggregates=10)
            await eventually_async(lambda: _drained(publisher), "the publisher to reach the restarted broker")
            await eventually_async(lambda: _applied(broker, 10), "the 10 new events applied after the restart")
            assert reading.groups_recreated == 1, "the group was gone with the stream: created again"
            await eventually_async(lambda: _heard(feed, 30), "the subscriber to hear the new events too")
            stop.set()
            await asyncio.wait_for(asyncio.gather(*both), 30)
            assert (listening.state, reading.state) == ("stopped", "stopped")
            await client.connection_pool.disconnect()
            await broker.aclose()

        box.run(scenario(), timeout=120)


async def _applied(redis: Any, n: int) -> bool:
    return sum((await Inbox(redis).effects()).values()) >= n


async def _all_reconnecting(*links: Link) -> bool:
    return all(link.state == "reconnecting" for link in links)


async def _all_listening(*links: Link) -> bool:
    return all(link.state == "listening" for link in links)


async def _drained(publisher: OutboxPublisher) -> bool:
    await publisher.drain()
    return (await statuses()).get("pending", 0) == 0


async def _heard(feed: Feed, n: int) -> bool:
    return sum(1 for d in feed.recent if d.via == "pubsub") >= n


def test_stop_ends_a_consumer_that_is_reconnecting(box: Sandbox) -> None:
    async def scenario() -> None:
        dead = Redis(host="127.0.0.1", port=free_port(), decode_responses=True)
        client = consumer_client(dead)
        link, stop = Link("Pub/Sub"), asyncio.Event()

        async def subscriber() -> None:
            await listen_pubsub(client, Feed(), stop, link=link)

        task = asyncio.create_task(stay_connected(link, subscriber, stop))
        await eventually_async(lambda: _tries(link, 2), "two failed connections")
        assert link.state == "reconnecting"
        stop.set()
        await asyncio.wait_for(task, 10)
        assert link.state == "stopped"
        await client.connection_pool.disconnect()

    box.run(scenario())


async def _tries(link: Link, n: int) -> bool:
    return link.failures >= n


def test_redis_restarts_without_persistence_counts_what_the_stream_lost(box: Sandbox) -> None:
    """The lab's fault on the learner's own stream: unread entries are counted, the consumers reconnect."""

    async def scenario() -> None:
        await backlog(12, aggregates=12)
        await OutboxPublisher(box, publisher_options(max_events=50)).drain()  # nobody listens: the stream keeps them
        said = await actions.restart_redis_without_persistence()
        assert said.kind == "warning"
        assert "It held 12 entries: **12 never read**" in said.text, said.text
        assert "Start the consumers" in said.text
        assert int(await box.redis.xlen("outbox:events")) == 0
        status = await actions.live_status()
        assert any("the stream lost 12 entries, 12 of them never read" in line for line in status.stream_losses)

        await actions.start_consumers()
        await backlog(3, aggregates=3)
        await OutboxPublisher(box, publisher_options(max_events=50)).drain()
        await eventually_async(lambda: _effects(box, 3), "the consumers to apply the 3 new events")
        said = await actions.restart_redis_without_persistence()
        assert "**0 never read**" in said.text, "everything was applied: nothing unread was lost"
        assert "The consumers lost 2 connection(s) and reconnect" in said.text
        runner = ConsumersRunner.of(box)
        await eventually_async(lambda: _reconnected(runner), "both consumers to reconnect")
        await backlog(2, aggregates=2)
        await OutboxPublisher(box, publisher_options(max_events=50)).drain()
        await eventually_async(lambda: _effects(box, 5), "the 2 events after the restart applied")
        status = await actions.live_status()
        assert status.reconnections >= 2
        assert any("group re-created 1×" in line for line in status.consumer_links), status.consumer_links
        assert "consumers listening" in status.summary()
        assert [d for d in feed_of(box).recent if d.outcome == "applied"], "the stream consumer works after it"
        await actions.stop_consumers()

    box.run(scenario())


async def _effects(box: Sandbox, n: int) -> bool:
    return sum((await actions.live_status()).effects.values()) >= n


async def _reconnected(runner: ConsumersRunner) -> bool:
    return all(link.reconnections >= 1 and link.state == "listening" for link in runner.links)


def test_starting_the_consumers_with_redis_away_says_so(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """The subscriber keeps trying; the start gives up after its wait and says why, in a sentence."""
    from source.labs.outbox import jobs

    monkeypatch.setattr(jobs, "SUBSCRIBE_TIMEOUT_S", 0.5)
    dead = Redis(host="127.0.0.1", port=free_port(), decode_responses=True)
    monkeypatch.setattr(jobs, "consumer_client", lambda _redis: consumer_client(dead))

    async def scenario() -> None:
        with pytest.raises(Exception, match=r"not subscribed within 0\.5 s"):
            await actions.start_consumers()
        await ConsumersRunner.of(box).stop_and_wait()

    box.run(scenario())
