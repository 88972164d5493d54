"""What the Lab 5 page (or a notebook) calls: each function runs on the app's loop in one sandbox.

Also the course's entry point, :func:`event_publisher`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from source.domain.errors import InvalidInput
from source.domain.events import DomainEventRepository
from source.domain.models import AIRScore, DomainEvent, EventType
from source.labs.outbox import record
from source.labs.outbox.consumers import Delivery
from source.labs.outbox.faults import InjectedFailure
from source.labs.outbox.inbox import Inbox
from source.labs.outbox.metrics import OutboxMetrics, outbox_metrics
from source.labs.outbox.options import PublisherOptions, publisher_options
from source.labs.outbox.publish import STREAM
from source.labs.outbox.publisher import OutboxPublisher, PublisherStats
from source.labs.outbox.runner import outbox_service
from source.labs.outbox.writes import calculate_and_store_airscore, complete_assessment
from source.platform.context import current_sandbox
from source.platform.session import get_session
from source.services.samples import create_sample_assessment


async def event_publisher(interval_seconds: float = 2, max_events: int = 5, **options: Any) -> PublisherStats:
    """The course's publisher loop, for real: drain the outbox to Redis, return once nothing is pending.

    It never sleeps while events are claimable. When none is (the outbox is empty, or what is
    left waits for its backoff) it sleeps ``interval_seconds``; once nothing at all is pending
    it takes one last look after a sleep (an event may be on its way) and returns its counters.
    """
    if not 0 <= interval_seconds <= 60:
        raise InvalidInput("interval_seconds must be between 0 and 60.")
    publisher = OutboxPublisher(current_sandbox(), publisher_options(max_events=max_events, **options))
    looked_again = False
    while True:
        if (await record.timed_batch(publisher)).claimed:  # publish_batch(), timed for the class view
            looked_again = False
            continue
        if await publisher.pending() == 0:
            if looked_again:
                return publisher.stats
            looked_again = True
        await asyncio.sleep(interval_seconds)


async def record_score(user_id: str, occupation_code: str, fail_before_commit: bool = False) -> tuple[str, str]:
    """A score and its event (or, with the fault, neither); wakes the background publisher."""
    score, event = await calculate_and_store_airscore(user_id, occupation_code, fail_before_commit=fail_before_commit)
    outbox_service().nudge()
    return score.id, event.id


@dataclass(frozen=True)
class RollbackReport:
    """The injected failure before COMMIT, and both tables counted before and after it."""

    failure: str
    scores: tuple[int, int]
    events: tuple[int, int]


async def _count_scores_and_events() -> tuple[int, int]:
    async with get_session() as session:
        scores = await session.scalar(select(func.count()).select_from(AIRScore))
        events = await session.scalar(select(func.count()).select_from(DomainEvent))
    return int(scores or 0), int(events or 0)


async def record_score_expecting_rollback(user_id: str, occupation_code: str) -> RollbackReport:
    """Both INSERTs run, then the injected failure stops the COMMIT: count what is left.

    Only the injected failure is reported as a rollback; any other error (an unknown user,
    an empty occupation code) is raised as it is, since no INSERT ran for it to undo.
    """
    before = await _count_scores_and_events()
    try:
        await calculate_and_store_airscore(user_id, occupation_code, fail_before_commit=True)
    except InjectedFailure as failure:
        after = await _count_scores_and_events()
        return RollbackReport(str(failure), (before[0], after[0]), (before[1], after[1]))
    raise RuntimeError("The injected failure did not happen: the score was committed.")


async def complete_sample_assessment(user_id: str) -> str:
    """An in-progress assessment for this user, then completed: ``assessment.completed`` is recorded."""
    assessment = await create_sample_assessment(user_id, status="in_progress")
    _, event = await complete_assessment(assessment.id)
    outbox_service().nudge()
    return event.id


async def start_publisher(publishers: int = 1, **options: Any) -> None:
    await outbox_service().start_publisher(publishers, publisher_options(**options) if options else None)


async def stop_publisher() -> bool:
    return await outbox_service().stop_publisher()


async def start_consumers() -> None:
    await outbox_service().start_consumers()


async def stop_consumers() -> None:
    await outbox_service().stop_consumers()


async def set_broker_down(down: bool) -> None:
    """Route the publisher to an address where nothing listens (or back to the real Redis)."""
    service = outbox_service()
    service.faults.broker_down = down
    service.nudge()


async def crash_next_batch() -> tuple[int, bool]:
    """The next batch is published, then the publisher 'dies' before marking it.

    Returns how many crashes are armed and whether a publisher is running to meet them.
    """
    service = outbox_service()
    service.faults.crash_next += 1
    service.nudge()
    return service.faults.crash_next, service.publisher_running


async def crash_consumer_before_ack() -> None:
    """The stream consumer applies its next batch and 'dies' before XACK; a successor takes over."""
    consumer = outbox_service().stream_consumer
    if consumer is None or not outbox_service().consumers_running:
        raise InvalidInput("Start the consumers first: there is no stream consumer to crash.")
    consumer.crash_before_ack = True


@dataclass
class LiveStatus:
    """Everything the page's live panel shows, read in one call."""

    metrics: OutboxMetrics
    options: PublisherOptions
    publisher_running: bool
    publishers: int
    consumers_running: bool
    broker_down: bool
    published: int
    rate: float
    broker_failures: int
    dead_lettered: int
    unheard: int
    crashes: int
    restarts: int
    last_error: str | None
    loop_error: str | None
    effects: dict[str, int]
    stream_length: int
    feed_counts: dict[str, int]
    feed: list[Delivery] = field(default_factory=list)


async def live_status(feed_size: int = 15) -> LiveStatus:
    service = outbox_service()
    stats = [p.stats for p in service.publishers]
    redis = service.sandbox.redis
    return LiveStatus(
        metrics=await outbox_metrics(),
        options=service.options,
        publisher_running=service.publisher_running,
        publishers=len(service.publishers) if service.publisher_running else 0,
        consumers_running=service.consumers_running,
        broker_down=service.faults.broker_down,
        published=sum(s.published for s in stats),
        rate=sum(s.rate() for s in stats),
        broker_failures=sum(s.broker_failures for s in stats),
        dead_lettered=sum(s.dead_lettered for s in stats),
        unheard=sum(s.unheard for s in stats),
        crashes=service.faults.crashes,
        restarts=service.restarts,
        last_error=next((s.last_error for s in stats if s.last_error), None),
        loop_error=service.loop_error,
        effects=await Inbox(redis).effects(),
        stream_length=int(await redis.xlen(STREAM)),
        feed_counts=dict(service.feed.counts),
        feed=list(service.feed.recent)[-feed_size:][::-1],
    )


@dataclass(frozen=True)
class NobodyListening:
    event_id: str
    subscribers_reached: int  # summed over every PUBLISH of the drain
    in_stream: bool
    stream_length: int


async def publish_with_nobody_listening() -> NobodyListening:
    """One event published while no subscriber listens: PUBLISH reaches 0, the Stream keeps it."""
    service = outbox_service()
    if service.consumers_running:
        raise InvalidInput("Stop the consumers first: this experiment needs nobody to be listening.")
    if service.publisher_running:
        raise InvalidInput("Stop the background publisher first, so this experiment publishes its own event.")
    async with get_session() as session:
        event = await DomainEventRepository(session).record(
            EventType.BATCH_COMPLETED, "Batch", "nobody-listening", {"note": "published while nobody listens"}
        )
        await session.commit()
    publisher = OutboxPublisher(current_sandbox(), service.options.model_copy(update={"stream": True}))
    await publisher.drain()
    redis = current_sandbox().redis
    recent = await redis.xrevrange(STREAM, count=service.options.max_events + 10) or []
    in_stream = any((fields or {}).get("id") == event.id for _, fields in recent)
    return NobodyListening(event.id, publisher.stats.receivers, in_stream, int(await redis.xlen(STREAM)))
