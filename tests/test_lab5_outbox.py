"""Lab 5's outbox on both backends: atomic writes, exactly-once publishing, dead letter, bad input."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, text

from source import (
    AIRScore,
    DomainEvent,
    DomainEventRepository,
    InvalidInput,
    NotFound,
    Sandbox,
    calculate_and_store_airscore,
    event_publisher,
    get_session,
)
from source.domain.dtos import UserCreate, UserUpdate, parse
from source.instruments.query_log import capture_queries
from source.labs.outbox import actions, dead_letter, retention
from source.labs.outbox.claim import begin_claim, claim_statement
from source.labs.outbox.consumers import Feed, listen_pubsub
from source.labs.outbox.faults import Faults, InjectedFailure, SimulatedCrash
from source.labs.outbox.metrics import outbox_metrics
from source.labs.outbox.options import publisher_options
from source.labs.outbox.publisher import BatchResult, OutboxPublisher
from source.labs.outbox.writes import complete_assessment
from source.services.samples import create_sample_assessment
from source.services.users import create_user, update_user
from tests.lab5_support import (
    a_user,
    backlog,
    count,
    first_order_by_aggregate,
    statuses,
    stream_events,
)
from tests.waiting import eventually_async


def test_a_failure_before_commit_leaves_neither_the_score_nor_the_event(box: Sandbox) -> None:
    async def scenario() -> None:
        user_id = await a_user()
        with pytest.raises(InjectedFailure):
            await calculate_and_store_airscore(user_id, "SW_ENG", fail_before_commit=True)
        assert await count(DomainEvent.event_type == "score.calculated") == 0
        assert await _scores() == 0
        score, event = await calculate_and_store_airscore(user_id, "Data_Engineer")
        assert await _scores() == 1
        async with get_session() as session:
            stored = await session.get(DomainEvent, event.id)
            assert stored is not None
            assert (stored.status, stored.aggregate_id, stored.payload["air_score_id"]) == (
                "pending",
                score.id,
                score.id,
            )

    box.run(scenario())


def test_recording_a_score_says_what_was_committed_or_rolled_back(box: Sandbox) -> None:
    async def scenario() -> None:
        user_id = await a_user()
        rolled = await actions.record_score(user_id, "SW_ENG", fail_before_commit=True)
        assert rolled.kind == "error"
        assert "neither the score nor its event exists" in rolled.text
        assert rolled.detail is not None
        assert "scores 0 → 0" in rolled.detail, rolled.detail
        events = re.search(r"events (\d+) → (\d+)", rolled.detail)
        assert events is not None
        assert events.group(1) == events.group(2), "the event's INSERT was rolled back with the score's"
        committed = await actions.record_score(user_id, "SW_ENG")
        assert committed.kind == "success"
        ids = re.fullmatch(r"Score `(\S+)` and its pending event `(\S+)` committed\.", committed.text)
        assert ids is not None, committed.text
        async with get_session() as session:
            score = await session.get(AIRScore, ids.group(1))
            event = await session.get(DomainEvent, ids.group(2))
        assert score is not None
        assert event is not None
        assert (event.status, event.aggregate_id) == ("pending", score.id)
        with pytest.raises(InvalidInput, match="occupation code"):
            await actions.record_score(user_id, " ")  # refused before any INSERT: not a rollback to report

    box.run(scenario())


async def _scores() -> int:
    from sqlalchemy import func, select

    async with get_session() as session:
        return int(await session.scalar(select(func.count()).select_from(AIRScore)) or 0)


def test_one_run_publishes_every_pending_event_exactly_once_in_aggregate_order(box: Sandbox) -> None:
    async def scenario() -> None:
        ids = await backlog(300, aggregates=30)
        feed, stop, ready = Feed(1000), asyncio.Event(), asyncio.Event()
        listener = asyncio.create_task(listen_pubsub(box.redis, feed, stop, ready))
        await ready.wait()
        stats = await event_publisher(interval_seconds=0, max_events=50)
        assert stats.published == 300
        assert await statuses() == {"published": 300}
        messages = await stream_events(box.redis)
        assert Counter(m["id"] for m in messages) == Counter(ids), "each event exactly once on the stream"
        for sequences in first_order_by_aggregate(messages).values():
            assert sequences == sorted(sequences)
        await eventually_async(lambda: _heard(feed, 300), "the subscriber to hear all 300 events")
        stop.set()
        await listener
        assert Counter(d.event_id for d in feed.recent) == Counter(ids), "each event heard once on Pub/Sub"

    box.run(scenario())


async def _heard(feed: Feed, n: int) -> bool:
    return len(feed.recent) >= n


def test_mark_as_published_is_one_real_update(box: Sandbox) -> None:
    async def scenario() -> None:
        await backlog(40, aggregates=40)
        async with get_session() as session:
            repo = DomainEventRepository(session)
            pending = await repo.get_pending_events(limit=25)
            assert len(pending) == 25
            async with capture_queries(box.engine) as log:
                changed = await repo.mark_as_published([e.id for e in pending])
        assert changed == 25
        updates = [s for s in log.statements if s.upper().startswith("UPDATE")]
        assert len(updates) == 1, log.statements
        assert await statuses() == {"pending": 15, "published": 25}

    box.run(scenario())


def test_dead_letter_after_max_attempts_and_requeue(box: Sandbox) -> None:
    """An event the broker refuses spends its tries with a backoff between them, then waits in the dead letter."""

    async def scenario() -> None:
        [event_id] = await backlog(1, aggregates=1)
        options = publisher_options(max_attempts=2, backoff_base=0.5, backoff_cap=1.0)
        publisher = OutboxPublisher(box, options, faults=Faults(refused={event_id}))
        first = await publisher.publish_batch()
        assert (first.claimed, first.failed, first.dead_lettered, first.held) == (1, 1, 0, 0)
        async with get_session() as session:
            row = await session.get(DomainEvent, event_id)
            assert row is not None
            assert row.attempts == 1
            assert row.next_attempt_at is not None
            assert row.last_error
            assert "wrong number of arguments" in row.last_error, "the broker's own refusal, stored with the event"
        assert not publisher.breaker.is_open, "a refused message is the event's fault, not an outage"
        assert (await publisher.publish_batch()).claimed == 0, "not claimable during its backoff"
        second = await eventually_async(lambda: _claim(publisher), "its backoff (0.5 to 1 s) to pass")
        assert second is not None
        assert second.dead_lettered == 1
        assert await statuses() == {"failed": 1}
        assert (await outbox_metrics()).failed == 1
        assert await dead_letter.requeue(event_id) == event_id
        publisher.faults.refused.clear()  # what made the broker refuse it was fixed
        assert (await publisher.publish_batch()).published == 1
        assert await statuses() == {"published": 1}
        with pytest.raises(InvalidInput, match="published, not failed"):
            await dead_letter.requeue(event_id)

    box.run(scenario())


async def _claim(publisher: OutboxPublisher) -> BatchResult | None:
    """One batch, if it claimed something (``None`` while every event waits for its backoff)."""
    result = await publisher.publish_batch()
    return result if result.claimed else None


def test_bad_input_gets_a_clear_message_and_loses_nothing(box: Sandbox) -> None:
    async def scenario() -> None:
        user_id = await a_user()
        await calculate_and_store_airscore(user_id)
        with pytest.raises(NotFound, match="No event has the id"):
            await dead_letter.requeue("0f8c1a52-0000-4000-8000-000000000000")
        with pytest.raises(InvalidInput, match="is not an event id"):
            await dead_letter.requeue("not-an-id")
        for payload in ({"when": object()}, ["a", "list"], {"x": float("nan")}, {"big": "x" * 20_000}):
            async with get_session() as session:
                with pytest.raises(InvalidInput):
                    await DomainEventRepository(session).record("score.calculated", "AIRScore", "a-1", payload)
        with pytest.raises(InvalidInput, match="channel"):
            async with get_session() as session:
                await DomainEventRepository(session).record("bad type!", "AIRScore", "a-1", {})
        for window in (-1, 31 * 24 * 3600, "soon"):
            with pytest.raises(InvalidInput, match="retention window"):
                await retention.cleanup_published(window)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="max events"):
            publisher_options(max_events=0)
        with pytest.raises(InvalidInput):
            await calculate_and_store_airscore(user_id, "x" * 21)
        with pytest.raises(NotFound):
            await calculate_and_store_airscore("0f8c1a52-0000-4000-8000-000000000000")
        assert await statuses() == {"pending": 1}, "the one good event is still there, untouched"

    box.run(scenario())


def test_retention_removes_only_old_published_events(box: Sandbox) -> None:
    async def scenario() -> None:
        await backlog(10, aggregates=10)
        publisher = OutboxPublisher(box, publisher_options(max_events=6))
        await publisher.publish_batch()
        assert await retention.cleanup_published(3600) == 0, "published a moment ago: inside the window"
        assert await retention.cleanup_published(0) == 6
        assert await statuses() == {"pending": 4}

    box.run(scenario())


def test_user_and_assessment_writes_record_their_events(box: Sandbox) -> None:
    async def scenario() -> None:
        created = await create_user(parse(UserCreate, email="ada@innovateai.com", name="Ada"))
        same = parse(UserUpdate, name="Ada")
        await update_user(created.id, same)
        assert await count(DomainEvent.event_type == "user.updated") == 0, "no change, no event"
        await update_user(created.id, parse(UserUpdate, name="Ada Lovelace"))
        assessment = await create_sample_assessment(created.id, status="in_progress")
        await complete_assessment(assessment.id)
        with pytest.raises(InvalidInput, match="already completed"):
            await complete_assessment(assessment.id)
        async with get_session() as session:
            pending = await DomainEventRepository(session).get_pending_events()
        assert [(e.event_type, e.aggregate_id) for e in pending] == [
            ("user.created", created.id),
            ("user.updated", created.id),
            ("assessment.completed", assessment.id),
        ]

    box.run(scenario())


def test_two_publishers_at_once_never_publish_an_event_twice(box: Sandbox) -> None:
    """PostgreSQL: SKIP LOCKED lets them share the work. SQLite: BEGIN IMMEDIATE makes them take turns."""

    async def scenario() -> None:
        ids = await backlog(600, aggregates=60)
        options = publisher_options(max_events=40)
        publishers = [OutboxPublisher(box, options, name=f"p{i}") for i in range(2)]
        done = await asyncio.gather(*(p.drain() for p in publishers))
        assert sum(done) == 600
        messages = await stream_events(box.redis)
        assert Counter(m["id"] for m in messages) == Counter(ids)
        for sequences in first_order_by_aggregate(messages).values():
            assert sequences == sorted(sequences)

    box.run(scenario())


def test_a_drain_keeps_one_connection_for_its_batches_and_a_crash_leaves_its_batch_pending(box: Sandbox) -> None:
    """The pool lends a drain one connection, not one per batch (on PostgreSQL each loan costs a ping)."""
    checkouts: list[int] = []

    def lent(*_: object) -> None:
        checkouts.append(1)

    async def scenario() -> None:
        await backlog(400, aggregates=400)  # one event each: every batch claims a full 50
        crashing = OutboxPublisher(box, publisher_options(max_events=50), faults=Faults(crash_next=1))
        with pytest.raises(SimulatedCrash):
            await crashing.drain()
        assert await statuses() == {"pending": 400}, "the crashed batch was rolled back: nothing marked"
        checkouts.clear()
        publisher = OutboxPublisher(box, publisher_options(max_events=50))
        assert await publisher.drain() == 400
        assert publisher.stats.batches == 8
        assert len(checkouts) == 1, f"{len(checkouts)} connections lent for 9 claims"
        assert await statuses() == {"published": 400}

    event.listen(box.engine.sync_engine, "checkout", lent)
    try:
        box.run(scenario())
    finally:
        event.remove(box.engine.sync_engine, "checkout", lent)


def test_a_claim_held_past_its_lease_is_ended_and_another_publisher_takes_its_rows(box: Sandbox) -> None:
    """PostgreSQL: the claim sets its own lease (no round trip of its own); a frozen publisher loses its claim."""
    if box.dialect != "postgresql":
        pytest.skip("SQLite has no row locks to lease: its publishers take turns on the database's write lock")

    async def scenario() -> None:
        ids = await backlog(10, aggregates=10)
        other = OutboxPublisher(box, publisher_options(max_events=10))
        frozen = await box.engine.connect()
        try:
            await begin_claim(frozen)
            claim = claim_statement("postgresql", 10, lease_seconds=1)
            held = (await frozen.execute(claim, {"now": datetime.now(UTC)})).all()
            assert sorted(r.id for r in held) == sorted(ids)
            lease = (await frozen.execute(text("SHOW idle_in_transaction_session_timeout"))).scalar_one()
            assert lease == "1s", "the claim set its lease for its transaction"
            assert (await other.publish_batch()).claimed == 0, "the frozen claim's rows are locked: skipped"

            async def taken() -> int:
                return (await other.publish_batch()).published

            assert await eventually_async(taken, "the server to end the claim idle past its lease") == 10
        finally:
            await frozen.invalidate()  # the server ended its session
            await frozen.close()
        assert await statuses() == {"published": 10}

    box.run(scenario())
