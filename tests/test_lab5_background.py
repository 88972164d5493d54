"""Lab 5's background publisher and consumers in a sandbox: crashes, duplicates, nobody listening."""

from __future__ import annotations

import pytest

from source import InvalidInput, Sandbox
from source.labs.outbox import control
from source.labs.outbox.runner import SERVICE_KEY, outbox_service
from tests.lab5_support import a_user, backlog, statuses, wait_until


async def _effects_total() -> int:
    return sum((await control.live_status()).effects.values())


def test_crash_after_publish_redelivers_and_the_inbox_applies_the_effect_once(box: Sandbox) -> None:
    async def scenario() -> None:
        user_id = await a_user()
        await control.start_consumers()
        await control.crash_next_batch()
        await control.start_publisher()
        _, event_id = await control.record_score(user_id, "SW_ENG")
        await wait_until(lambda: _published(1))
        await wait_until(lambda: _stream_outcomes(event_id, {"applied", "duplicate (ignored)"}), within=30)
        status = await control.live_status()
        assert status.crashes == 1
        assert status.restarts == 1
        assert status.effects == {"score.calculated": 1}, "delivered twice, applied once"
        heard = [d for d in outbox_service().feed.recent if d.via == "pubsub" and d.event_id == event_id]
        assert len(heard) == 2, "the subscriber heard it twice: at-least-once"
        assert await control.stop_publisher() is True
        await control.stop_consumers()

    box.run(scenario())


async def _published(n: int) -> bool:
    return (await statuses()).get("published", 0) >= n


async def _stream_outcomes(event_id: str, wanted: set[str]) -> bool:
    seen = {d.outcome for d in outbox_service().feed.recent if d.via == "stream" and d.event_id == event_id}
    return wanted <= seen


def test_nobody_listening_pubsub_loses_it_and_the_stream_keeps_it(box: Sandbox) -> None:
    async def scenario() -> None:
        report = await control.publish_with_nobody_listening()
        assert report.subscribers_reached == 0
        assert report.in_stream
        await control.start_consumers()  # a subscriber arriving now hears nothing of it
        await wait_until(lambda: _stream_outcomes(report.event_id, {"applied"}))
        assert not [d for d in outbox_service().feed.recent if d.via == "pubsub"]
        assert await _effects_total() == 1
        with pytest.raises(InvalidInput, match="Stop the consumers first"):
            await control.publish_with_nobody_listening()
        await control.stop_consumers()

    box.run(scenario())


def test_a_dead_consumers_entries_are_taken_over_with_xautoclaim(box: Sandbox) -> None:
    async def scenario() -> None:
        await control.start_consumers()
        await control.crash_consumer_before_ack()
        await control.start_publisher()
        ids = await backlog(3, aggregates=3)
        outbox_service().nudge()
        await wait_until(lambda: _taken_over(ids), within=30)
        await wait_until(lambda: _nothing_pending(box))
        assert await _effects_total() == 3, "the successor found the dead one's entries in the inbox: no second effect"
        consumer = outbox_service().stream_consumer
        assert consumer is not None
        assert consumer.name == "consumer-2"
        await control.stop_publisher()
        await control.stop_consumers()

    box.run(scenario())


async def _taken_over(ids: list[str]) -> bool:
    """At least one entry the dead consumer held came back to its successor through XAUTOCLAIM."""
    feed = outbox_service().feed.recent
    return any(d.event_id in ids and d.outcome in ("duplicate (ignored)", "taken over, applied") for d in feed)


async def _nothing_pending(box: Sandbox) -> bool:
    """Every stream entry acknowledged: none left in a (dead) consumer's hands."""
    return int((await box.redis.xpending("outbox:events", "projector"))["pending"]) == 0


def test_starting_twice_is_refused_and_a_reset_stops_everything(box: Sandbox) -> None:
    async def scenario() -> None:
        await control.start_publisher()
        with pytest.raises(InvalidInput, match="already running"):
            await control.start_publisher()
        await control.start_consumers()
        with pytest.raises(InvalidInput, match="already listening"):
            await control.start_consumers()
        with pytest.raises(InvalidInput, match="between 1 and"):
            await outbox_service().start_publisher(9)
        return None

    box.run(scenario())
    service = box.services[SERVICE_KEY]
    tasks = [*service._tasks, *service._consumer_tasks]
    box.run(box.reset())
    assert all(t.done() for t in tasks), "reset stopped the publisher and the consumers first"
    assert SERVICE_KEY not in box.services


def test_the_broker_down_keeps_events_pending_then_they_drain(box: Sandbox) -> None:
    async def scenario() -> None:
        user_id = await a_user()
        await control.set_broker_down(True)
        await control.start_publisher(backoff_base=0.05, backoff_cap=0.2, max_attempts=20)
        await control.record_score(user_id, "SW_ENG")
        await wait_until(lambda: _attempts_at_least(2))
        assert (await statuses()) == {"pending": 1}
        await control.set_broker_down(False)
        await wait_until(lambda: _published(1))
        status = await control.live_status()
        assert status.broker_failures >= 2
        assert status.metrics.pending == 0
        await control.stop_publisher()

    box.run(scenario())


async def _attempts_at_least(n: int) -> bool:
    return (await control.live_status()).metrics.attempts >= n


def test_a_broker_that_never_returns_ends_in_the_dead_letter(box: Sandbox) -> None:
    async def scenario() -> None:
        await backlog(5, aggregates=5)
        outbox_service().faults.broker_down = True
        await control.start_publisher(max_attempts=3, backoff_base=0.01, backoff_cap=0.05)
        await wait_until(lambda: _failed(5))
        status = await control.live_status()
        assert status.metrics.pending == 0
        assert status.dead_lettered == 5
        assert status.last_error
        assert "Connection" in status.last_error
        await control.stop_publisher()

    box.run(scenario())


async def _failed(n: int) -> bool:
    return (await statuses()).get("failed", 0) >= n
