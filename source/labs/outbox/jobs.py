"""Lab 5's publisher and consumers as background jobs of the learner's sandbox (see :mod:`source.platform.jobs`).

A page never runs them on its own thread: it starts a job and returns at once; the job keeps
working between reruns, and the page reads its progress. The publisher job runs 1 to 4
publisher loops until it is stopped; they share one breaker on the broker, so an outage makes
all of them wait. The consumers job runs a Pub/Sub subscriber and a Stream consumer until it
is stopped, each reconnecting when Redis goes away. A reset or a release of the sandbox stops
both first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from source.domain.errors import InvalidInput, LabError
from source.labs.outbox import record
from source.labs.outbox.breaker import BrokerBreaker
from source.labs.outbox.consumers import (
    Feed,
    Link,
    StreamConsumer,
    StreamLoss,
    consumer_client,
    listen_pubsub,
    stay_connected,
)
from source.labs.outbox.faults import Faults, SimulatedCrash
from source.labs.outbox.inbox import Inbox
from source.labs.outbox.options import PublisherOptions
from source.labs.outbox.publisher import OutboxPublisher
from source.platform.errors import explain
from source.platform.jobs import Job, JobRunner, Progress
from source.platform.sandbox import STOP_TIMEOUT_S, Sandbox

#: How long an idle publisher waits before looking again, unless a new event wakes it.
IDLE_WAIT_S = 0.5
#: While the breaker is open, the loops look at it at least this often (a probe may be due).
BREAKER_LOOK_S = 0.05
#: After Stop, the batch in flight has this long to finish; then it is cancelled (its transaction rolls back).
GRACE_S = min(3.0, STOP_TIMEOUT_S * 0.6)
MAX_PUBLISHERS = 4
#: How long starting the consumers waits for the subscriber to be subscribed (seconds).
SUBSCRIBE_TIMEOUT_S = 5.0


def faults_of(sandbox: Sandbox) -> Faults:
    """The sandbox's faults (broker down, crashes): the page flips them, every publisher loop reads them."""
    return sandbox.service("outbox.faults", lambda _: Faults(), Faults.aclose)


def breaker_of(sandbox: Sandbox) -> BrokerBreaker:
    """The sandbox's breaker on the broker: every publisher loop of the sandbox waits on it during an outage."""
    return sandbox.service("outbox.breaker", lambda _: BrokerBreaker())


def feed_of(sandbox: Sandbox) -> Feed:
    """The sandbox's live feed of deliveries; it outlives one start of the consumers."""
    return sandbox.service("outbox.feed", lambda _: Feed())


# -- the publisher ---------------------------------------------------------------------------
@dataclass
class PublisherRun:
    """One start of the publisher: its loops, the options they share, and what happened to them."""

    publishers: list[OutboxPublisher]
    options: PublisherOptions
    started_at: float = field(default_factory=time.monotonic)
    #: Loops that "crashed" (a simulated crash) and were started again, as a supervisor would.
    restarts: int = 0
    #: The last failure outside the broker (the database), cleared by the next batch that works.
    loop_error: str | None = None

    @property
    def published(self) -> int:
        return sum(p.stats.published for p in self.publishers)

    def describe(self) -> str:
        """The progress bar's detail: what the loops published so far, and how many loops run."""
        return f"{self.published:,} events published by {len(self.publishers)} publisher loop(s)"


class PublisherRunner(JobRunner[PublisherRun]):
    """A sandbox's publisher: one set of 1 to 4 loops at a time, running until it is stopped."""

    service = "outbox.publisher"
    busy_text = "The publisher is already running in your sandbox: stop it first to start it again."
    stopping_text = "Stopping: the batch in flight finishes (published and marked), or is rolled back…"
    time_limit_s = None
    grace_s = GRACE_S

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox)
        #: The running start, or the last one (its counters stay on the page after a stop).
        self.current: PublisherRun | None = None
        self._wake: asyncio.Event | None = None

    def start(self, count: int, options: PublisherOptions) -> Job[PublisherRun]:
        """Start ``count`` publisher loops in the background. Refused while they are running."""
        if not 1 <= count <= MAX_PUBLISHERS:
            raise InvalidInput(f"Run between 1 and {MAX_PUBLISHERS} publishers at once.")
        if self.running() is not None and self.current is not None:
            since = time.monotonic() - self.current.started_at
            raise InvalidInput(
                f"The publisher is already running in your sandbox (for {since:.0f} s). "
                "One sandbox runs one set of publishers: stop it first to start it again."
            )
        faults, breaker = faults_of(self.sandbox), breaker_of(self.sandbox)
        names = [f"publisher-{i + 1}" for i in range(count)]
        loops = [OutboxPublisher(self.sandbox, options, faults=faults, breaker=breaker, name=n) for n in names]
        run = PublisherRun(loops, options)
        wake = asyncio.Event()
        job = self.launch(lambda progress: publish_until_stopped(run, progress, wake))
        self.current, self._wake = run, wake
        return job

    def nudge(self) -> None:
        """A new event was written: wake an idle publisher now instead of at its next look (call on the loop)."""
        if self._wake is not None:
            self._wake.set()

    def stopped_note(self, job: Job[PublisherRun]) -> str:
        return "The publisher was stopped; the batch it had in flight was rolled back and stays pending."


async def publish_until_stopped(run: PublisherRun, progress: Progress, wake: asyncio.Event) -> PublisherRun:
    """Every loop of ``run``, side by side, until Stop; each one finishes the batch it is in."""
    progress.begin("Publishing", unit="events")
    progress.detail = run.describe
    async with asyncio.TaskGroup() as loops:
        for publisher in run.publishers:
            loops.create_task(publish_loop(publisher, run, progress, wake), name=publisher.name)
    return run


async def publish_loop(publisher: OutboxPublisher, run: PublisherRun, progress: Progress, wake: asyncio.Event) -> None:
    """Batch after batch; when nothing is due, wait (a new event wakes it early). Stop ends it between batches.

    While the broker is unavailable the breaker says how long to wait: the loop claims nothing meanwhile.
    """
    while not progress.stopping:
        try:
            result = await record.timed_batch(publisher)  # publish_batch(), timed for the class view
        except SimulatedCrash:
            run.restarts += 1  # as a supervisor would: start it again; its batch was rolled back
            continue
        except Exception as exc:  # noqa: BLE001 - the database went away: say so, wait, try again
            run.loop_error = explain(exc)
            await _idle(wake, 2 * IDLE_WAIT_S)
            continue
        run.loop_error = None
        progress.done += result.published
        if result.broker_wait is not None or result.held:
            await _idle(wake, max(publisher.breaker.wait_s(), BREAKER_LOOK_S))
        elif result.claimed == 0 or result.failed:
            await _idle(wake, IDLE_WAIT_S)


async def _idle(wake: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
    wake.clear()


# -- the consumers ---------------------------------------------------------------------------
@dataclass
class _StopPressed:
    """A job's Stop, as the consumer loops watch it (they ask ``is_set()`` between reads)."""

    progress: Progress

    def is_set(self) -> bool:
        return self.progress.stopping


class ConsumersRunner(JobRunner[None]):
    """A sandbox's consumers: a Pub/Sub subscriber and a Stream consumer, listening until they are stopped."""

    service = "outbox.consumers"
    busy_text = "The subscriber and the stream consumer are already listening in your sandbox."
    stopping_text = "Stopping the consumers: each finishes the message it is handling…"
    time_limit_s = None
    grace_s = GRACE_S

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox)
        #: The stream consumer of the running (or last) start: the "dies before XACK" fault arms it.
        self.stream_consumer: StreamConsumer | None = None
        #: How the subscriber's and the stream consumer's connections are doing (listening, reconnecting).
        self.links: list[Link] = []
        #: What each "Redis restarts without persistence" took from the stream.
        self.losses: list[StreamLoss] = []

    async def start(self) -> Job[None]:
        """Start both; return once the subscriber is subscribed (from then on PUBLISH reaches it). On the loop."""
        redis, feed, subscribed = consumer_client(self.sandbox.redis), feed_of(self.sandbox), asyncio.Event()
        listening, reading = Link("Pub/Sub"), Link("stream")
        consumer = StreamConsumer(redis, feed, inbox=Inbox(redis), link=reading)
        try:
            job = self.launch(lambda progress: consume(redis, consumer, feed, progress, subscribed, listening))
        except BaseException:
            await redis.connection_pool.disconnect()
            raise
        self.stream_consumer, self.links = consumer, [listening, reading]
        await _until_subscribed(job, subscribed)
        return job

    def drop_connections(self) -> int:
        """Take the consumers' connections away, as a restart of Redis does; returns how many were open."""
        dropped = 0
        for link in self.links if self.running() is not None else []:
            if link.state == "listening":
                link.drop()
                dropped += 1
        return dropped

    def failed_note(self, exc: BaseException) -> str:
        return "The consumers stopped: " + super().failed_note(exc)


async def consume(
    redis: Any, consumer: StreamConsumer, feed: Feed, progress: Progress, subscribed: asyncio.Event, listening: Link
) -> None:
    """The subscriber and the stream consumer side by side until Stop, each reconnecting when Redis goes away.

    Only an error that is not Redis going away (a bug) ends both, with its reason.
    """
    progress.begin("Listening")
    progress.detail = lambda: f"{sum(feed.counts.values()):,} deliveries so far"
    stop = _StopPressed(progress)

    async def subscriber() -> None:
        await listen_pubsub(redis, feed, stop, subscribed, listening)

    try:
        async with asyncio.TaskGroup() as both:
            both.create_task(stay_connected(listening, subscriber, stop), name="pubsub")
            both.create_task(stay_connected(consumer.link, lambda: consumer.run(stop), stop), name="stream")
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    finally:
        await redis.connection_pool.disconnect()  # the consumers' own connections (see consumer_client)


async def _until_subscribed(job: Job[None], subscribed: asyncio.Event) -> None:
    """Wait until the job's subscriber is subscribed; if the job ends or hangs first, say why."""
    ended = job.future
    if not isinstance(ended, asyncio.Task):  # launched from another thread: nothing here to wait on
        raise RuntimeError("Start the consumers on the app's event loop (await ConsumersRunner.start()).")
    waiting = asyncio.ensure_future(subscribed.wait())
    await asyncio.wait({waiting, ended}, timeout=SUBSCRIBE_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if subscribed.is_set():
        return
    if ended.done() and not ended.cancelled() and (error := ended.exception()) is not None:
        raise LabError("The consumers could not start: " + explain(error))
    job.stop()
    raise LabError(f"The subscriber was not subscribed within {SUBSCRIBE_TIMEOUT_S:g} s; the consumers were stopped.")
