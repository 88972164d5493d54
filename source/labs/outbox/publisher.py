"""The outbox publisher: claim a batch, publish it, mark it published, in one transaction.

One batch is one transaction: the claim locks the rows (or, on SQLite, the database), the
pipeline hands every event to Redis, and only after Redis accepted them does one UPDATE mark
them published; then COMMIT. If the process dies between the broker's answer and the commit,
the rows were never marked and the next claim publishes them again: delivery is
*at-least-once*, and consumers dedupe on the event id.

What went wrong decides what happens to the events:

- **the broker is unavailable** (unreachable, silent, out of memory…): an outage, nobody's
  fault in the batch. The transaction rolls back, the events stay pending with their tries
  untouched, and the breaker (``breaker``) makes every loop of this publisher wait as a whole;
- **no reply came** (a timeout, a connection lost mid-pipeline): an *unknown* outcome, the
  broker may have delivered the batch. Same as above: pending, published again later;
- **the broker refused one message**, or its payload cannot be encoded: the event's own
  fault. In the same transaction it gets attempts + 1 and a backoff, or the dead letter when
  its attempts ran out; and while it waits there, its aggregate's later events wait too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from source.domain.events import mark_published_statement
from source.domain.models import DomainEvent
from source.labs.outbox.breaker import OUTAGE_ERRORS, BrokerBreaker, UnansweredBatch, is_outage, no_answer
from source.labs.outbox.claim import begin_claim, claim_statement, publishable_statement, record_failure, status_is
from source.labs.outbox.faults import Faults
from source.labs.outbox.options import PublisherOptions
from source.labs.outbox.publish import send
from source.platform.sandbox import Sandbox

#: The window the publish rate is measured over (seconds).
RATE_WINDOW_S = 5.0


@dataclass(frozen=True)
class BatchResult:
    """What one claim-publish-mark round did."""

    claimed: int = 0
    published: int = 0
    #: Failed by their own fault (refused, not encodable): attempts + 1, or the dead letter.
    failed: int = 0
    dead_lettered: int = 0
    #: Left pending, tries untouched, because the broker was unavailable (or did not answer).
    held: int = 0
    unheard: int = 0  # published, but PUBLISH reached no subscriber
    receivers: int = 0  # subscribers reached, summed over the batch's PUBLISH replies
    error: str | None = None
    #: The breaker is open: nothing was claimed; the next probe is this many seconds away.
    broker_wait: float | None = None


@dataclass
class PublisherStats:
    """Counters kept in memory while a publisher runs (the outbox table keeps the rest)."""

    batches: int = 0
    published: int = 0
    #: Batches the broker did not take (unavailable, or no answer): none of them spent a try.
    broker_failures: int = 0
    #: Events that failed by their own fault (each spent a try), and those dead-lettered.
    refused: int = 0
    dead_lettered: int = 0
    unheard: int = 0
    receivers: int = 0
    last_error: str | None = None
    _recent: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, result: BatchResult) -> None:
        if not result.claimed:
            return  # nothing was due, or the breaker kept it from claiming: not a batch
        self.batches += 1
        self.published += result.published
        self.refused += result.failed
        self.dead_lettered += result.dead_lettered
        self.unheard += result.unheard
        self.receivers += result.receivers
        if result.held:
            self.broker_failures += 1
        if result.error:
            self.last_error = result.error
        now = time.monotonic()
        self._recent.append((now, result.published))
        while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
            self._recent.popleft()

    def rate(self) -> float:
        """Events published per second over the last :data:`RATE_WINDOW_S` seconds."""
        now = time.monotonic()
        recent = sum(n for t, n in self._recent if t >= now - RATE_WINDOW_S)
        return recent / RATE_WINDOW_S


class OutboxPublisher:
    """Publishes one sandbox's outbox to Redis. Several may run at once (see ``claim``)."""

    def __init__(
        self,
        sandbox: Sandbox,
        options: PublisherOptions | None = None,
        *,
        broker: Any = None,
        faults: Faults | None = None,
        breaker: BrokerBreaker | None = None,
        name: str | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.options = options or PublisherOptions()
        self.broker = broker if broker is not None else sandbox.redis
        self.faults = faults or Faults()
        #: Shared by the loops of one publisher service, so an outage makes all of them wait.
        self.breaker = breaker or BrokerBreaker()
        self.name = name or f"publisher-{uuid.uuid4().hex[:6]}"
        self.stats = PublisherStats()
        dialect = sandbox.engine.dialect.name
        self._claim = claim_statement(dialect, self.options.max_events, self.options.lease_seconds)
        self._mark = mark_published_statement(dialect)
        #: While :meth:`holding_a_connection`: batches share one connection, opened by the first.
        self._holding = False
        self._held: AsyncConnection | None = None

    @asynccontextmanager
    async def holding_a_connection(self) -> AsyncIterator[None]:
        """Run the batches inside on one connection, as a dedicated worker does.

        Each batch on its own takes a connection from the pool and gives it back, and on
        PostgreSQL the pool checks every connection it lends with a round trip (``pool_pre_ping``,
        so that a restarted server costs no learner an error): one more round trip per batch.
        """
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            if self._held is not None:
                held, self._held = self._held, None
                await asyncio.shield(held.close())

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        """The batch's connection: the held one, or one from the pool for this batch alone."""
        if not self._holding:
            async with self.sandbox.engine.connect() as conn:
                yield conn
            return
        if self._held is None:
            self._held = await self.sandbox.engine.connect()
        try:
            yield self._held
        except BaseException:
            # As the pool would on its return: roll back what the batch left open. The next
            # batch takes a fresh connection (this one may be what failed).
            held, self._held = self._held, None
            await asyncio.shield(held.close())
            raise

    async def publish_batch(self) -> BatchResult:
        """Claim up to ``max_events`` due events, publish them, mark them: one transaction.

        While the breaker is open nothing is claimed (``broker_wait`` says for how long).
        """
        if self.breaker.is_open and not await self._broker_is_back():
            return BatchResult(broker_wait=self.breaker.wait_s())
        result = await self._claim_publish_mark()
        if result.held:
            self.breaker.record_outage(result.error or "", self.options.backoff_base, self.options.backoff_cap)
        elif self.breaker.opened_at is not None:
            self.breaker.record_success()  # a batch went through (or none was due): the broker is back
        self.stats.add(result)
        return result

    async def _claim_publish_mark(self) -> BatchResult:
        options = self.options
        now = datetime.now(UTC)
        lease_until = now + timedelta(seconds=options.lease_seconds)
        async with self._connection() as conn:
            await begin_claim(conn)
            rows = (await conn.execute(self._claim, {"now": now})).all()
            if not rows:
                await conn.rollback()
                return BatchResult()
            broker = self.faults.broker_for_batch(self.broker)
            try:
                async with asyncio.timeout(options.publish_timeout):
                    outcome = await send(
                        broker,
                        rows,
                        stream=options.stream,
                        stream_maxlen=options.stream_maxlen,
                        refused=self.faults.refused,
                    )
                    self.faults.after_send()  # the lab's "reply lost": as if the answer never came
            except OUTAGE_ERRORS as exc:
                await conn.rollback()  # nothing marked, no try spent: the whole batch waits for the broker
                return self._no_batch(rows, exc)
            self.faults.after_publish()  # a crash here rolls the whole transaction back
            sent, own, held = [], [], []
            for row, result in zip(rows, outcome, strict=True):
                if isinstance(result, int):
                    sent.append(row)
                elif is_outage(result):
                    held.append((row, result))  # the broker cannot take writes now (out of memory…): stays pending
                else:
                    own.append((row, describe_broker_error(result)))  # refused, or not encodable: its own fault
            if sent:
                ids = [row.id for row in sent]
                await conn.execute(self._mark, {"ids": ids, "publisher": self.name, "lease_until": lease_until})
            dead = await record_failure(conn, own, options, (self.name, lease_until)) if own else 0
            await conn.commit()
        return BatchResult(
            claimed=len(rows),
            published=len(sent),
            failed=len(own),
            dead_lettered=dead,
            held=len(held),
            unheard=sum(1 for r in outcome if isinstance(r, int) and r == 0),
            receivers=sum(r for r in outcome if isinstance(r, int)),
            error=describe_broker_error(held[0][1]) if held else (own[0][1] if own else None),
        )

    def _no_batch(self, rows: list[Any], exc: BaseException) -> BatchResult:
        """The broker did not take the batch; if its outcome is unknown, remember it for the page."""
        error = describe_broker_error(exc)
        if no_answer(exc):
            ids = tuple(str(row.id) for row in rows)
            self.breaker.record_unanswered(UnansweredBatch(self.name, datetime.now(UTC), ids, error))
        return BatchResult(claimed=len(rows), held=len(rows), error=error)

    async def _broker_is_back(self) -> bool:
        """When the breaker lets a probe through: one ``PING``; True if the broker answered."""
        if not self.breaker.due():
            return False
        broker = self.faults.broker_for_batch(self.broker)
        try:
            async with asyncio.timeout(self.options.publish_timeout):
                await broker.ping()
        except OUTAGE_ERRORS as exc:
            self.breaker.record_outage(describe_broker_error(exc), self.options.backoff_base, self.options.backoff_cap)
            return False
        self.breaker.probe_answered()
        return True

    async def drain(self, max_batches: int | None = None) -> int:
        """Publish batch after batch until nothing is claimable; returns how many were published."""
        published = 0
        batches = 0
        async with self.holding_a_connection():
            while max_batches is None or batches < max_batches:
                result = await self.publish_batch()
                batches += 1
                published += result.published
                if result.claimed == 0:
                    break
        return published

    async def pending(self) -> int:
        """How many events are still pending (due, waiting for their backoff, or behind a dead letter)."""
        async with self.sandbox.engine.connect() as conn:
            query = select(func.count()).select_from(DomainEvent).where(status_is(DomainEvent.status, "pending"))
            return int((await conn.execute(query)).scalar_one())

    async def publishable(self) -> int:
        """How many pending events will go out without anyone's help: not those behind a dead letter."""
        async with self.sandbox.engine.connect() as conn:
            return int((await conn.execute(publishable_statement())).scalar_one())


def describe_broker_error(exc: BaseException) -> str:
    """One line about why the broker did not take the batch (stored as ``last_error``)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "the broker did not answer within the publish timeout"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:480] if text else type(exc).__name__
