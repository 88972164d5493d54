"""Lab 5's publisher and consumers as background jobs: crashes, duplicates, nobody listening, Stop, reset."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from source import InvalidInput, LabError, Sandbox
from source.labs.outbox import actions, publish
from source.labs.outbox import publisher as publisher_module
from source.labs.outbox.jobs import ConsumersRunner, PublisherRunner, breaker_of, feed_of
from source.labs.outbox.metrics import list_events
from source.labs.outbox.options import PublisherOptions, publisher_options
from source.platform.outcome import Outcome
from tests.lab5_support import a_user, backlog, statuses, stream_events
from tests.waiting import eventually_async

GRACEFUL = Outcome("Stopped after finishing its batch.")


async def _effects_total() -> int:
    return sum((await actions.live_status()).effects.values())


def test_crash_after_publish_redelivers_and_the_inbox_applies_the_effect_once(box: Sandbox) -> None:
    async def scenario() -> None:
        user_id = await a_user()
        await actions.start_consumers()
        await actions.crash_next_batch()
        await actions.start_publisher()
        said = await actions.record_score(user_id, "SW_ENG")
        named = re.search(r"pending event `(\S+)`", said.text)
        assert named is not None, said.text
        event_id = named.group(1)
        await eventually_async(lambda: _published(1), "the event to be published after the crash")
        await eventually_async(
            lambda: _stream_outcomes(box, event_id, {"applied", "duplicate (ignored)"}),
            "the stream consumer to apply it, then ignore its redelivery",
        )
        status = await actions.live_status()
        assert status.crashes == 1
        assert status.restarts == 1
        assert status.effects == {"score.calculated": 1}, "delivered twice, applied once"
        heard = [d for d in feed_of(box).recent if d.via == "pubsub" and d.event_id == event_id]
        assert len(heard) == 2, "the subscriber heard it twice: at-least-once"
        assert await actions.stop_publisher() == GRACEFUL
        await actions.stop_consumers()

    box.run(scenario())


async def _published(n: int) -> bool:
    return (await statuses()).get("published", 0) >= n


async def _stream_outcomes(box: Sandbox, event_id: str, wanted: set[str]) -> bool:
    seen = {d.outcome for d in feed_of(box).recent if d.via == "stream" and d.event_id == event_id}
    return wanted <= seen


def test_nobody_listening_pubsub_loses_it_and_the_stream_keeps_it(box: Sandbox) -> None:
    async def scenario() -> None:
        report = await actions.publish_with_nobody_listening()
        assert "`PUBLISH` reached **0** subscribers" in report.text
        assert "**kept** it" in report.text
        [event] = await list_events("published")
        await actions.start_consumers()  # a subscriber arriving now hears nothing of it
        await eventually_async(lambda: _stream_outcomes(box, event.id, {"applied"}), "the stream consumer to read it")
        assert not [d for d in feed_of(box).recent if d.via == "pubsub"]
        assert await _effects_total() == 1
        with pytest.raises(InvalidInput, match="Stop the consumers first"):
            await actions.publish_with_nobody_listening()
        await actions.stop_consumers()

    box.run(scenario())


def test_a_dead_consumers_entries_are_taken_over_with_xautoclaim(box: Sandbox) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidInput, match="Start the consumers first"):
            await actions.crash_consumer_before_ack()
        await actions.start_consumers()
        armed = await actions.crash_consumer_before_ack()
        assert armed.kind == "info"
        assert "`consumer-1` will apply its next batch and die before `XACK`" in armed.text
        await actions.start_publisher()
        ids = await backlog(3, aggregates=3)
        PublisherRunner.of(box).nudge()
        await eventually_async(lambda: _taken_over(box, ids), "a successor to take the dead consumer's entries over")
        await eventually_async(lambda: _nothing_pending(box), "every stream entry to be acknowledged")
        assert await _effects_total() == 3, "the successor found the dead one's entries in the inbox: no second effect"
        consumer = ConsumersRunner.of(box).stream_consumer
        assert consumer is not None
        assert consumer.name == "consumer-2"
        await actions.stop_publisher()
        await actions.stop_consumers()

    box.run(scenario())


async def _taken_over(box: Sandbox, ids: list[str]) -> bool:
    """At least one entry the dead consumer held came back to its successor through XAUTOCLAIM."""
    feed = feed_of(box).recent
    return any(d.event_id in ids and d.outcome in ("duplicate (ignored)", "taken over, applied") for d in feed)


async def _nothing_pending(box: Sandbox) -> bool:
    """Every stream entry acknowledged: none left in a (dead) consumer's hands."""
    return int((await box.redis.xpending("outbox:events", "projector"))["pending"]) == 0


def test_starting_twice_is_refused_with_a_sentence(box: Sandbox) -> None:
    async def scenario() -> None:
        await actions.start_publisher()
        with pytest.raises(InvalidInput, match="already running"):
            await actions.start_publisher()
        await actions.start_consumers()
        with pytest.raises(LabError, match="already listening"):
            await actions.start_consumers()
        await actions.stop_publisher()
        with pytest.raises(InvalidInput, match="between 1 and"):
            await actions.start_publisher(9)
        assert await actions.stop_publisher() == Outcome("The publisher is not running.", "info")
        await actions.stop_consumers()
        assert await actions.stop_consumers() == Outcome("Nobody was listening.", "info")

    box.run(scenario())


def test_a_reset_stops_the_publisher_and_the_consumers_first(box: Sandbox) -> None:
    async def scenario() -> None:
        await backlog(20, aggregates=20)
        await actions.start_consumers()
        await actions.start_publisher()
        await eventually_async(lambda: _published(20), "the publisher to drain the backlog")

    box.run(scenario())
    jobs = [PublisherRunner.of(box).job, ConsumersRunner.of(box).job]
    assert all(job is not None and job.running for job in jobs), "both run in the background between calls"
    box.run(box.reset())
    assert all(job is not None and not job.running for job in jobs), "reset stopped the publisher and the consumers"
    assert PublisherRunner.service not in box.services
    assert ConsumersRunner.service not in box.services
    status = box.run(actions.live_status())
    assert (status.publisher_running, status.consumers_running) == (False, False), "a fresh sandbox runs nothing"


def _slow_send(monkeypatch: pytest.MonkeyPatch, hold_s: float) -> asyncio.Event:
    """Every batch's PUBLISH waits ``hold_s`` first; the event is set as soon as a batch is in flight."""
    in_flight = asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> list[int | BaseException]:
        in_flight.set()
        await asyncio.sleep(hold_s)
        return await publish.send(*args, **kwargs)

    monkeypatch.setattr(publisher_module, "send", held)
    return in_flight


def test_stop_lets_the_batch_in_flight_finish_published_and_marked(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        await backlog(30, aggregates=30)
        in_flight = _slow_send(monkeypatch, 0.5)
        await actions.start_publisher(max_events=10)
        await asyncio.wait_for(in_flight.wait(), 60)
        assert await actions.stop_publisher() == GRACEFUL
        assert await statuses() == {"published": 10, "pending": 20}, "the batch in flight, and nothing after it"
        sent = {m["id"] for m in await stream_events(box.redis)}
        marked = {row.id for row in await list_events("published")}
        assert sent == marked, "nothing half-done: every event sent is marked published, and only those"
        runner = PublisherRunner.of(box)
        assert runner.running() is None
        assert runner.last is not None
        assert runner.last.published == 10
        assert runner.last_note is None, "it ended by itself: no 'stopped' note"

    box.run(scenario())


def test_stop_past_the_grace_period_cancels_the_batch_and_it_rolls_back(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PublisherRunner, "grace_s", 0.2)

    async def scenario() -> None:
        await backlog(10, aggregates=10)
        in_flight = _slow_send(monkeypatch, 3600)
        await actions.start_publisher(max_events=10)
        await asyncio.wait_for(in_flight.wait(), 60)
        said = await actions.stop_publisher()
        assert said == Outcome("Stopped; its batch was rolled back and stays pending.", "warning")
        assert await statuses() == {"pending": 10}, "the claim's transaction rolled back: nothing marked"
        assert await stream_events(box.redis) == [], "cancelled before PUBLISH: nothing sent"
        runner = PublisherRunner.of(box)
        assert runner.running() is None
        assert (
            runner.last_note
            == "The publisher was stopped; the batch it had in flight was rolled back and stays pending."
        )

    box.run(scenario())


def test_the_broker_down_keeps_events_pending_then_they_drain(box: Sandbox) -> None:
    async def scenario() -> None:
        user_id = await a_user()
        assert (await actions.set_broker_down(True)).kind == "warning"
        assert actions.broker_is_down(box)
        await actions.start_publisher(backoff_base=0.05, backoff_cap=0.2, max_attempts=20)
        await actions.record_score(user_id, "SW_ENG")
        await eventually_async(lambda: _broker_failures_at_least(box, 2), "two failed tries of the broker")
        assert (await statuses()) == {"pending": 1}
        status = await actions.live_status()
        assert status.broker_unavailable
        assert "broker unavailable since" in status.broker
        assert "1 events waiting" in status.broker
        assert status.metrics.attempts == 0, "an outage spends none of the event's tries"
        await actions.set_broker_down(False)
        await eventually_async(lambda: _published(1), "the event to drain once the broker is back")
        status = await actions.live_status()
        assert status.broker_failures >= 1
        assert status.metrics.pending == 0
        assert not status.broker_unavailable
        assert status.broker == "broker available"
        assert "1 publisher(s) running" in status.summary()
        await actions.stop_publisher()

    box.run(scenario())


async def _broker_failures_at_least(box: Sandbox, n: int) -> bool:
    return breaker_of(box).failures >= n


def test_a_broker_that_never_returns_dead_letters_nothing(box: Sandbox) -> None:
    """An outage longer than every try's backoff together: the events wait, none is dead-lettered."""

    async def scenario() -> None:
        await backlog(5, aggregates=5)
        await actions.set_broker_down(True)
        await actions.start_publisher(max_attempts=3, backoff_base=0.01, backoff_cap=0.05)
        budget = publisher_options(max_attempts=3, backoff_base=0.01, backoff_cap=0.05).retry_budget_s()
        began = asyncio.get_running_loop().time()
        await eventually_async(
            lambda: _outage_outlived(box, began, 4 * budget, 3 * 3), "the outage to outlive the tries' whole budget"
        )
        status = await actions.live_status()
        assert status.metrics.pending == 5
        assert status.metrics.failed == 0
        assert status.metrics.attempts == 0
        assert status.dead_lettered == 0
        assert "5 events waiting" in status.broker
        assert status.last_error
        assert "Connection" in status.last_error
        await actions.stop_publisher()

    box.run(scenario())


async def _outage_outlived(box: Sandbox, began: float, seconds: float, failures: int) -> bool:
    outlived = asyncio.get_running_loop().time() - began > seconds
    return outlived and breaker_of(box).failures >= failures


def test_a_poisoned_event_is_dead_lettered_and_holds_its_aggregate_back(box: Sandbox) -> None:
    async def scenario() -> None:
        user_id = await a_user()
        await actions.start_publisher(max_attempts=2, backoff_base=0.01, backoff_cap=0.05)
        said = await actions.poison_event(user_id)
        poisoned = re.search(r"Event `(\S+)` is poisoned", said.text)
        assert poisoned is not None, said.text
        await eventually_async(lambda: _failed(1), "the poisoned event to land in the dead letter")
        status = await actions.live_status()
        assert status.metrics.behind_dead_letter == 2
        assert not status.broker_unavailable, "a refused message is not an outage"
        waiting = [row.waiting for row in await list_events("pending")]
        assert waiting == ["waiting behind a dead letter"] * 2
        assert (await actions.requeue(poisoned.group(1))).endswith("the broker accepts its message now.")
        await eventually_async(lambda: _published(3), "the requeued event, then the two behind it")
        order = [m["payload"]["step"] for m in await stream_events(box.redis) if m["type"] == "pathway.recommended"]
        assert order == [1, 2, 3], "the requeued event went out first: its aggregate's order held"
        await actions.stop_publisher()

    box.run(scenario())


async def _failed(n: int) -> bool:
    return (await statuses()).get("failed", 0) >= n


def test_the_publisher_job_reports_its_progress(box: Sandbox) -> None:
    async def scenario() -> None:
        await backlog(12, aggregates=12)
        job = PublisherRunner.of(box).start(2, PublisherOptions(max_events=5))
        await eventually_async(lambda: _published(12), "the two loops to drain the backlog")
        await eventually_async(lambda: _done(job.progress.done, 12), "the progress to count every event")
        assert job.progress.describe() == "Publishing · 12 events published by 2 publisher loop(s)"
        await actions.stop_publisher()

    box.run(scenario())


async def _done(done: int, n: int) -> bool:
    return done >= n
