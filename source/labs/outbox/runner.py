"""The publisher and the consumers as background tasks on the app's event loop, one set per sandbox.

A page never runs them on its own thread: it asks the loop to start them and returns at
once; the tasks keep working between reruns and the page reads their progress. The service
lives in ``sandbox.services`` and registers its own stop with ``sandbox.on_stop``, so a
reset or a release stops it before the data it works on goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from source.domain.errors import InvalidInput
from source.labs.outbox import record
from source.labs.outbox.consumers import Feed, StreamConsumer, listen_pubsub
from source.labs.outbox.faults import Faults, SimulatedCrash
from source.labs.outbox.options import PublisherOptions
from source.labs.outbox.publisher import OutboxPublisher
from source.platform.context import current_sandbox
from source.platform.errors import explain
from source.platform.sandbox import STOP_TIMEOUT_S, Sandbox

SERVICE_KEY = "outbox"
#: How long an idle publisher waits before looking again, unless a new event wakes it.
IDLE_WAIT_S = 0.5
#: A stop waits this long for the current batch to finish, then cancels it (its transaction rolls back).
GRACE_S = min(3.0, STOP_TIMEOUT_S * 0.6)
MAX_PUBLISHERS = 4


class OutboxService:
    """One sandbox's background publisher(s) and consumers, their faults and their live feed."""

    def __init__(self, sandbox: Sandbox, options: PublisherOptions | None = None) -> None:
        self.sandbox = sandbox
        self.options = options or PublisherOptions()
        self.faults = Faults()
        self.feed = Feed()
        self.publishers: list[OutboxPublisher] = []
        self.stream_consumer: StreamConsumer | None = None
        self.started_at: float | None = None
        self.restarts = 0  # publishers that "crashed" and were started again
        self.loop_error: str | None = None  # the last failure outside the broker (the database)
        self._tasks: list[asyncio.Task[None]] = []
        self._consumer_tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._consumers_stop = asyncio.Event()
        self._wake = asyncio.Event()

    # -- the publisher ---------------------------------------------------------------
    @property
    def publisher_running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    async def start_publisher(self, count: int = 1, options: PublisherOptions | None = None) -> None:
        """Start ``count`` publishers in the background. Refused while they are running."""
        if not 1 <= count <= MAX_PUBLISHERS:
            raise InvalidInput(f"Run between 1 and {MAX_PUBLISHERS} publishers at once.")
        if self.publisher_running:
            since = time.monotonic() - (self.started_at or time.monotonic())
            raise InvalidInput(
                f"The publisher is already running in your sandbox (for {since:.0f} s). "
                "One sandbox runs one set of publishers: stop it first to start it again."
            )
        self.options = options or self.options
        self._stop = asyncio.Event()
        self.publishers = [
            OutboxPublisher(self.sandbox, self.options, faults=self.faults, name=f"publisher-{i + 1}")
            for i in range(count)
        ]
        self._tasks = [asyncio.create_task(self._publish_loop(p), name=p.name) for p in self.publishers]
        self.started_at = time.monotonic()

    async def _publish_loop(self, publisher: OutboxPublisher) -> None:
        """Batch after batch; when nothing is due, wait (a new event or a stop wakes it early)."""
        while not self._stop.is_set():
            try:
                result = await record.timed_batch(publisher)  # publish_batch(), timed for the class view
            except SimulatedCrash:
                self.restarts += 1  # as a supervisor would: start it again; its batch was rolled back
                continue
            except Exception as exc:  # noqa: BLE001 - the database went away: say so, wait, try again
                self.loop_error = explain(exc)
                await self._idle(2 * IDLE_WAIT_S)
                continue
            self.loop_error = None
            if result.claimed == 0 or result.failed:
                await self._idle(IDLE_WAIT_S)

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    def nudge(self) -> None:
        """A new event was written: wake an idle publisher now instead of at its next look."""
        self._wake.set()

    async def stop_publisher(self) -> bool:
        """Stop gracefully: the batch in flight finishes (published and marked) or, past the
        grace period, is cancelled and rolled back. True if every publisher finished on its own."""
        self._stop.set()
        self._wake.set()
        graceful = await _finish(self._tasks, GRACE_S)
        self._tasks = []
        self.started_at = None
        return graceful

    # -- the consumers ---------------------------------------------------------------
    @property
    def consumers_running(self) -> bool:
        return any(not t.done() for t in self._consumer_tasks)

    async def start_consumers(self) -> None:
        """Start a Pub/Sub subscriber and a Stream consumer. Refused while they are running."""
        if self.consumers_running:
            raise InvalidInput("The subscriber and the stream consumer are already listening in your sandbox.")
        redis = self.sandbox.redis
        self._consumers_stop = asyncio.Event()
        ready = asyncio.Event()
        self.stream_consumer = StreamConsumer(redis, self.feed)
        self._consumer_tasks = [
            asyncio.create_task(listen_pubsub(redis, self.feed, self._consumers_stop, ready), name="pubsub"),
            asyncio.create_task(self.stream_consumer.run(self._consumers_stop), name="stream"),
        ]
        async with asyncio.timeout(5):
            await ready.wait()  # subscribed: from now on PUBLISH reaches this subscriber

    async def stop_consumers(self) -> None:
        self._consumers_stop.set()
        await _finish(self._consumer_tasks, GRACE_S)
        self._consumer_tasks = []

    async def stop(self) -> None:
        """Everything, as ``sandbox.on_stop`` asks before a reset or a release."""
        await self.stop_publisher()
        await self.stop_consumers()
        await self.faults.aclose()


async def _finish(tasks: list[asyncio.Task[Any]], grace: float) -> bool:
    """Let ``tasks`` end within ``grace`` seconds, then cancel what is left. True if none was cancelled."""
    if not tasks:
        return True
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=grace)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never seen
    return not pending


def outbox_service(sandbox: Sandbox | None = None) -> OutboxService:
    """This sandbox's service, made on first use (call it on the app's loop)."""
    sandbox = sandbox or current_sandbox()
    service = sandbox.services.get(SERVICE_KEY)
    if not isinstance(service, OutboxService):
        service = sandbox.services[SERVICE_KEY] = OutboxService(sandbox)
        sandbox.on_stop(service.stop)
    return service
