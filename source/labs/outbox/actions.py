"""What Lab 5's buttons do, one coroutine each, in the learner's sandbox; and the course's :func:`event_publisher`.

Each action returns what the learner reads: a sentence, or an :class:`Outcome` when the kind
of news depends on what happened (a rollback is not a commit). Starting the publisher or the
consumers starts a background job (``jobs.py``) and returns at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, select

from source.domain.errors import InvalidInput
from source.domain.events import DomainEventRepository
from source.domain.models import AIRScore, DomainEvent, EventType
from source.labs.outbox import consumers, dead_letter, history, metrics, record, retention, writes
from source.labs.outbox.consumers import Delivery
from source.labs.outbox.faults import InjectedFailure
from source.labs.outbox.history import ClaimPlan
from source.labs.outbox.inbox import Inbox
from source.labs.outbox.jobs import BREAKER_LOOK_S, ConsumersRunner, PublisherRunner, breaker_of, faults_of, feed_of
from source.labs.outbox.metrics import OutboxMetrics, outbox_metrics
from source.labs.outbox.options import PublisherOptions, publisher_options
from source.labs.outbox.publish import STREAM
from source.labs.outbox.publisher import OutboxPublisher, PublisherStats
from source.platform.context import current_sandbox
from source.platform.outcome import Outcome
from source.platform.sandbox import Sandbox
from source.platform.session import get_session
from source.services import users
from source.services.samples import create_sample_assessment, create_sample_users


async def event_publisher(interval_seconds: float = 2, max_events: int = 5, **options: Any) -> PublisherStats:
    """The course's publisher loop, for real: drain the outbox to Redis, return once nothing is left to publish.

    It never sleeps while events are claimable. When none is (the outbox is empty, or what is
    left waits for its backoff) it sleeps ``interval_seconds``; while the broker is unavailable
    it waits as long as its breaker says, spending no event's tries, and goes on when the
    broker is back. Once nothing publishable is pending it takes one last look after a sleep
    (an event may be on its way) and returns its counters. Events waiting behind a dead letter
    do not keep it running: they wait for someone to requeue or skip the dead letter.
    """
    if not 0 <= interval_seconds <= 60:
        raise InvalidInput("interval_seconds must be between 0 and 60.")
    publisher = OutboxPublisher(current_sandbox(), publisher_options(max_events=max_events, **options))
    looked_again = False
    async with publisher.holding_a_connection():  # one connection for every batch, not a checkout each
        while True:
            result = await record.timed_batch(publisher)  # publish_batch(), timed for the class view
            if result.broker_wait is not None or result.held:
                await asyncio.sleep(max(publisher.breaker.wait_s(), BREAKER_LOOK_S))  # the broker is away: wait
                looked_again = False
                continue
            if result.claimed:
                looked_again = False
                continue
            if await publisher.publishable() == 0:
                if looked_again:
                    return publisher.stats
                looked_again = True
            await asyncio.sleep(interval_seconds)


# -- 1. The write -----------------------------------------------------------------------------
async def users_to_score() -> dict[str, str]:
    """The sandbox's users, ``id → "name · email"``, for the page's picker."""
    return {u.id: f"{u.name} · {u.email}" for u in await users.list_users()}


async def add_samples() -> str:
    await create_sample_users()
    return "Alex Smith and Jane Doe are in your sandbox: pick one to score."


def _nudge() -> None:
    """Wake the background publisher, if it idles: a new event waits."""
    PublisherRunner.of(current_sandbox()).nudge()


async def _count_scores_and_events() -> tuple[int, int]:
    async with get_session() as session:
        scores = await session.scalar(select(func.count()).select_from(AIRScore))
        events = await session.scalar(select(func.count()).select_from(DomainEvent))
    return int(scores or 0), int(events or 0)


async def record_score(user_id: str, occupation_code: str, fail_before_commit: bool = False) -> Outcome:
    """A score and its event in one transaction; with the fault, both INSERTs run and the rollback removes both.

    Only the injected failure is reported as a rollback; any other error (an unknown user, an
    empty occupation code) is raised as it is, since no INSERT ran for it to undo.
    """
    before = await _count_scores_and_events()
    try:
        score, event = await writes.calculate_and_store_airscore(
            user_id, occupation_code, fail_before_commit=fail_before_commit
        )
    except InjectedFailure as failure:
        after = await _count_scores_and_events()
        counted = (
            f"Counted in your sandbox before and after: scores {before[0]} → {after[0]}, events {before[1]} → "
            f"{after[1]}. Both INSERTs ran; the rollback removed both."
        )
        return Outcome(str(failure), "error", detail=counted)
    _nudge()
    return Outcome(f"Score `{score.id}` and its pending event `{event.id}` committed.")


async def calculate_many(user_id: str, count: int) -> str:
    with current_sandbox().heavy("outbox.bulk_writes", "Writing them"):
        written = await writes.calculate_many_scores(user_id, count)
    _nudge()
    return f"{written} scores and {written} pending events committed."


async def complete_sample_assessment(user_id: str) -> str:
    """An in-progress assessment for this user, then completed: ``assessment.completed`` is recorded."""
    assessment = await create_sample_assessment(user_id, status="in_progress")
    _, event = await writes.complete_assessment(assessment.id)
    _nudge()
    return f"Assessment completed; event `{event.id}` is pending."


# -- 2. Publisher and consumers ---------------------------------------------------------------
async def start_publisher(publishers: int = 1, **options: Any) -> str:
    """Start ``publishers`` loops in the background with these options (the defaults if none)."""
    chosen = publisher_options(**options)
    PublisherRunner.of(current_sandbox()).start(publishers, chosen)
    return (
        f"Publishing in the background: {publishers} publisher loop(s), at most {chosen.max_events} events "
        "per batch. The panel below follows them."
    )


async def stop_publisher() -> Outcome:
    """Stop gracefully: the batch in flight finishes (published and marked) or, past the grace period,
    is cancelled and rolled back."""
    runner = PublisherRunner.of(current_sandbox())
    if runner.running() is None:
        return Outcome("The publisher is not running.", "info")
    runner.nudge()  # an idle loop notices Stop now, not at its next look
    if await runner.stop_and_wait():
        return Outcome("Stopped after finishing its batch.")
    return Outcome("Stopped; its batch was rolled back and stays pending.", "warning")


async def start_consumers() -> str:
    await ConsumersRunner.of(current_sandbox()).start()
    return "Listening: a Pub/Sub subscriber and a Stream consumer."


async def stop_consumers() -> Outcome:
    runner = ConsumersRunner.of(current_sandbox())
    if runner.running() is None:
        return Outcome("Nobody was listening.", "info")
    await runner.stop_and_wait()
    return Outcome("Nobody listens now: Pub/Sub messages reach no one; the Stream keeps them.")


# -- 3. Faults ----------------------------------------------------------------------------------
def broker_is_down(sandbox: Sandbox) -> bool:
    """Whether the publisher is routed to the dead address now (the page's toggle follows it)."""
    return faults_of(sandbox).broker_down


async def set_broker_down(down: bool) -> Outcome:
    """Route the publisher to an address where nothing listens (or back to the real Redis)."""
    box = current_sandbox()
    faults_of(box).broker_down = down
    if not down:
        breaker_of(box).retry_at = 0.0  # you know it is back: probe at once rather than at the end of a backoff
    _nudge()
    if down:
        return Outcome(
            "The broker is down for your publisher: the breaker opens, its events stay pending and spend no try; "
            "it probes the broker with a growing pause.",
            "warning",
        )
    return Outcome("The broker is back: the next probe finds it, and what is pending drains in order.")


def _arm_publisher(fault: Literal["lose_replies", "crash_next"]) -> tuple[int, bool]:
    """Arm one more of the publisher's ``fault``: how many are armed now, and whether a publisher runs to meet them."""
    box = current_sandbox()
    faults = faults_of(box)
    armed = int(getattr(faults, fault)) + 1
    setattr(faults, fault, armed)
    _nudge()
    return armed, PublisherRunner.of(box).running() is not None


async def lose_next_reply() -> Outcome:
    """The next batch reaches Redis and is delivered, and its answer is lost: the publisher cannot know."""
    _, running = _arm_publisher("lose_replies")
    where = "" if running else " (start the publisher to see it happen)"
    return Outcome(
        f"Armed{where}: the next batch will be delivered and its reply lost. The publisher does not know what "
        "happened, so the batch stays pending and goes again: the inbox drops the copies.",
        "info",
    )


async def poison_event(user_id: str | None) -> Outcome:
    """Three events of one aggregate; the broker refuses the first one's message every time it is sent."""
    if user_id is None:
        raise InvalidInput("Add the sample users in section 1 first: the poisoned events recommend them a pathway.")
    box = current_sandbox()
    first, *later = await writes.recommend_pathway_steps(user_id, 3)
    faults_of(box).refused.add(first)
    _nudge()
    return Outcome(
        f"Event `{first}` is poisoned: the broker refuses its message. It spends its tries, then waits in the dead "
        f"letter; the {len(later)} later events of its aggregate wait behind it until you requeue or skip it.",
        "info",
    )


async def restart_redis_without_persistence() -> Outcome:
    """What a restart of a Redis that keeps nothing on disk does to your stream, measured: it and its group are gone."""
    box = current_sandbox()
    runner = ConsumersRunner.of(box)
    loss = await consumers.lose_stream(box.redis)
    runner.losses.append(loss)
    dropped = runner.drop_connections()
    after = (
        f"The consumers lost {dropped} connection(s) and reconnect; the stream consumer creates its group again."
        if dropped
        else "Start the consumers: the stream consumer creates its group again."
    )
    return Outcome(
        f"Your stream is gone, as after a restart without persistence. It held {loss.entries:,} entries: "
        f"**{loss.unread:,} never read** by the consumers (their effect will never happen, and the outbox table says "
        f"they were published), {loss.unacknowledged:,} read but not acknowledged. {after}",
        "warning" if loss.unread else "info",
    )


async def crash_next_batch() -> Outcome:
    """The next batch is published, then the publisher 'dies' before marking it."""
    armed, running = _arm_publisher("crash_next")
    where = "the running publisher" if running else "the publisher (start it to see it happen)"
    return Outcome(f"Armed: {armed} batch(es) of {where} will be published but not marked.", "info")


async def crash_consumer_before_ack() -> Outcome:
    """The stream consumer applies its next batch and 'dies' before XACK; a successor takes over."""
    runner = ConsumersRunner.of(current_sandbox())
    consumer = runner.stream_consumer
    if consumer is None or runner.running() is None:
        raise InvalidInput("Start the consumers first: there is no stream consumer to crash.")
    consumer.crash_before_ack = True
    return Outcome(
        f"Armed: `{consumer.name}` will apply its next batch and die before `XACK`. Its entries stay pending "
        f"in the group until its successor takes them over after {consumers.CLAIM_IDLE_MS / 1000:g} s idle.",
        "info",
    )


async def publish_with_nobody_listening() -> Outcome:
    """One event published while no subscriber listens: PUBLISH reaches 0, the Stream keeps it."""
    box = current_sandbox()
    publishing = PublisherRunner.of(box)
    if ConsumersRunner.of(box).running() is not None:
        raise InvalidInput("Stop the consumers first: this experiment needs nobody to be listening.")
    if publishing.running() is not None:
        raise InvalidInput("Stop the background publisher first, so this experiment publishes its own event.")
    async with get_session() as session:
        event = await DomainEventRepository(session).record(
            EventType.BATCH_COMPLETED, "Batch", "nobody-listening", {"note": "published while nobody listens"}
        )
        await session.commit()
    options = publishing.current.options if publishing.current else PublisherOptions()
    publisher = OutboxPublisher(box, options.model_copy(update={"stream": True}))
    await publisher.drain()
    recent = await box.redis.xrevrange(STREAM, count=options.max_events + 10) or []
    kept = any((fields or {}).get("id") == event.id for _, fields in recent)
    length = int(await box.redis.xlen(STREAM))
    return Outcome(
        f"`PUBLISH` reached **{publisher.stats.receivers}** subscribers: Pub/Sub dropped it. The Stream "
        f"{'**kept** it' if kept else 'lost it'} ({length} entries): start the consumers and the stream "
        "consumer reads it.",
        "info",
    )


# -- 4. The table -------------------------------------------------------------------------------
async def event_table(status: str, limit: int = 50) -> list[dict[str, Any]]:
    """Up to ``limit`` rows of one status, as the page's table shows them (without the payload)."""
    return [row.model_dump(exclude={"payload"}) for row in await metrics.list_events(status, limit)]


async def requeue(event_id: str) -> str:
    """Back in the queue in its own place: it goes out before the later events of its aggregate."""
    requeued = await dead_letter.requeue(event_id or "")
    refused = faults_of(current_sandbox()).refused
    lifted = requeued in refused
    refused.discard(requeued)  # you fixed what the broker refused (the lab lifts its fault)
    _nudge()
    return f"Requeued `{requeued}`" + (": the broker accepts its message now." if lifted else ".")


async def requeue_all() -> str:
    requeued = await dead_letter.requeue_all_failed()
    faults_of(current_sandbox()).refused.clear()
    _nudge()
    return f"{requeued} event(s) back in the queue."


async def skip(event_id: str) -> str:
    """Give up on one dead letter for good: the events waiting behind it go."""
    skipped = await dead_letter.skip(event_id or "")
    _nudge()
    return f"Skipped `{skipped}`: it will never be published; the events of its aggregate behind it go now."


async def clean_up(keep_s: int) -> str:
    deleted = await retention.cleanup_published(keep_s)
    return f"Deleted {deleted} published event(s) older than {keep_s} s."


# -- 5. History ---------------------------------------------------------------------------------
async def explain_claim() -> ClaimPlan:
    """The claim under EXPLAIN on your table as it is now (kept beside the previous one)."""
    return await history.explain_claim(current_sandbox())


def claim_plans(sandbox: Sandbox) -> list[ClaimPlan]:
    """The last plans of the claim, oldest first, for the page to show side by side."""
    return list(history.plans_of(sandbox))


async def add_history(events: int) -> str:
    box = current_sandbox()
    with box.heavy("outbox.history", "Writing the history"):
        added = await history.add_history(box, events)
    return f"{added:,} events written and marked published, as a drain leaves them: explain the claim again."


# -- The live panel -----------------------------------------------------------------------------
@dataclass
class LiveStatus:
    """Everything the page's live panel shows, read in one call."""

    metrics: OutboxMetrics
    publisher_running: bool
    publishers: int
    consumers_running: bool
    broker_down: bool
    #: The breaker's state in one sentence ("broker unavailable since 10:42:07, 1,240 events waiting").
    broker: str
    broker_unavailable: bool
    published: int
    rate: float
    broker_failures: int
    dead_lettered: int
    unheard: int
    crashes: int
    restarts: int
    last_error: str | None
    loop_error: str | None
    #: Why the publisher or the consumers ended by themselves, if they did.
    failed_jobs: list[str]
    effects: dict[str, int]
    #: Deliveries the inbox ignored because their event id was applied already.
    duplicates_ignored: int
    #: The last batches whose reply never came, each with what became of its copies.
    unanswered: list[str]
    #: How the subscriber and the stream consumer are connected ("stream: reconnecting since …").
    consumer_links: list[str]
    reconnecting: bool
    reconnections: int
    #: What each "Redis restarts without persistence" took from the stream.
    stream_losses: list[str]
    stream_length: int
    feed_counts: dict[str, int]
    feed: list[Delivery] = field(default_factory=list)
    #: Drains this process has recorded for the sandbox: the knowledge check's numbers change when it grows.
    drains_recorded: int = 0

    def summary(self) -> str:
        running = f"{self.publishers} publisher(s) running" if self.publisher_running else "publisher stopped"
        listening = "nobody listening"
        if self.consumers_running:
            listening = "consumers reconnecting" if self.reconnecting else "consumers listening"
        broker = "🔴 broker DOWN (dead address)" if self.broker_down else "🟢 broker up"
        links = "".join(f" · {link}" for link in self.consumer_links) if not self.reconnecting else ""
        return (
            f"{running} · {listening} · {broker} · broker failures {self.broker_failures} · "
            f"crashes {self.crashes} (restarted {self.restarts}) · published to nobody {self.unheard} · "
            f"stream length {self.stream_length}{links}"
        )

    def problems(self) -> list[str]:
        return [p for p in (self.last_error, self.loop_error, *self.failed_jobs) if p]

    def notices(self) -> list[Outcome]:
        """What the panel must say out loud, most urgent first: the broker away, batches without an answer,
        what the stream lost, consumers reconnecting, the last failures."""
        said = [Outcome("🔴 " + self.broker, "error")] if self.broker_unavailable else []
        said += [Outcome(line, "warning") for line in (*self.unanswered, *self.stream_losses)]
        if self.reconnecting:
            said.append(Outcome("Consumers · " + " · ".join(self.consumer_links), "warning"))
        return said + [Outcome(f"Last failure: {problem}", "warning") for problem in self.problems()]

    def feed_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "via": d.via,
                "type": d.event_type,
                "event": d.event_id[:8],
                "aggregate": d.aggregate_id[:8],
                "sequence": d.sequence,
                "outcome": d.outcome,
                "at": d.at.strftime("%H:%M:%S.%f")[:-3],
            }
            for d in self.feed
        ]


async def _unanswered(box: Sandbox, inbox: Inbox, kept: int = 3) -> list[str]:
    """A sentence per recent batch without an answer: what happened to it, and the copies the inbox dropped."""
    said = []
    for batch in list(breaker_of(box).unanswered)[-kept:][::-1]:
        copies = await inbox.deliveries(batch.event_ids)
        dropped = sum(max(0, n - 1) for n in copies)
        said.append(
            f"Batch of {batch.events} event(s) by {batch.publisher} at {batch.at.astimezone():%H:%M:%S} had no "
            f"answer ({batch.reason}). It stayed pending and went again; the inbox then ignored {dropped} "
            f"duplicate(s) of its events ({sum(1 for n in copies if n):,} of them reached the stream consumer)."
        )
    return said


def _losses(runner: ConsumersRunner) -> list[str]:
    return [
        f"{loss.at.astimezone():%H:%M:%S} · Redis restarted without persistence: the stream lost {loss.entries:,} "
        f"entries, {loss.unread:,} of them never read (their effect will never happen)."
        for loss in runner.losses[-3:]
    ]


async def live_status(feed_size: int = 15) -> LiveStatus:
    box = current_sandbox()
    publishing, consuming = PublisherRunner.of(box), ConsumersRunner.of(box)
    run, faults, feed, breaker = publishing.current, faults_of(box), feed_of(box), breaker_of(box)
    stats = [p.stats for p in run.publishers] if run else []
    publisher_running = publishing.running() is not None
    consumers_running = consuming.running() is not None
    links = consuming.links if consumers_running else []
    found = await outbox_metrics()
    inbox = Inbox(box.redis)
    return LiveStatus(
        metrics=found,
        publisher_running=publisher_running,
        publishers=len(stats) if publisher_running else 0,
        consumers_running=consumers_running,
        broker_down=faults.broker_down,
        broker=breaker.describe(found.pending),
        broker_unavailable=breaker.opened_at is not None,
        published=sum(s.published for s in stats),
        rate=sum(s.rate() for s in stats),
        broker_failures=sum(s.broker_failures for s in stats),
        dead_lettered=sum(s.dead_lettered for s in stats),
        unheard=sum(s.unheard for s in stats),
        crashes=faults.crashes,
        restarts=run.restarts if run else 0,
        last_error=next((s.last_error for s in stats if s.last_error), None),
        loop_error=run.loop_error if run else None,
        failed_jobs=[r.last_note for r in (publishing, consuming) if r.last_failed and r.last_note],
        effects=await inbox.effects(),
        duplicates_ignored=await inbox.duplicates(),
        unanswered=await _unanswered(box, inbox),
        consumer_links=[link.describe() for link in links],
        reconnecting=any(link.state == "reconnecting" for link in links),
        reconnections=sum(link.reconnections for link in links),
        stream_losses=_losses(consuming),
        stream_length=int(await box.redis.xlen(STREAM)),
        feed_counts=dict(feed.counts),
        feed=list(feed.recent)[-feed_size:][::-1],
        drains_recorded=record.drains_recorded(box),
    )
