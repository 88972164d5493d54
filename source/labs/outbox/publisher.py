"""The outbox publisher: claim a batch, publish it, mark it published, in one transaction.

One batch is one transaction: the claim locks the rows (or, on SQLite, the database), the
pipeline hands every event to Redis, and only after Redis accepted them does one UPDATE mark
them published; then COMMIT. If the process dies between the broker's answer and the commit,
the rows were never marked and the next claim publishes them again: delivery is
*at-least-once*, and consumers dedupe on the event id. If Redis fails, the same transaction
records attempts + 1 and a backoff for each event, or dead-letters it when attempts ran out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import func, select

from source.domain.events import mark_published_statement
from source.domain.models import DomainEvent
from source.labs.outbox.claim import begin_claim, claim_statement, record_failure
from source.labs.outbox.faults import Faults
from source.labs.outbox.options import PublisherOptions
from source.labs.outbox.publish import send
from source.platform.sandbox import Sandbox

#: What counts as "the broker did not take the batch".
BROKER_ERRORS = (RedisError, OSError, TimeoutError)
#: The window the publish rate is measured over (seconds).
RATE_WINDOW_S = 5.0


@dataclass(frozen=True)
class BatchResult:
    """What one claim-publish-mark round did."""

    claimed: int = 0
    published: int = 0
    failed: int = 0
    dead_lettered: int = 0
    unheard: int = 0  # published, but PUBLISH reached no subscriber
    receivers: int = 0  # subscribers reached, summed over the batch's PUBLISH replies
    error: str | None = None


@dataclass
class PublisherStats:
    """Counters kept in memory while a publisher runs (the outbox table keeps the rest)."""

    batches: int = 0
    published: int = 0
    broker_failures: int = 0
    dead_lettered: int = 0
    unheard: int = 0
    receivers: int = 0
    last_error: str | None = None
    _recent: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.published += result.published
        self.dead_lettered += result.dead_lettered
        self.unheard += result.unheard
        self.receivers += result.receivers
        if result.error:
            self.broker_failures += 1
            self.last_error = result.error
        now = time.monotonic()
        self._recent.append((now, result.published))
        while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
            self._recent.popleft()

    def rate(self) -> float:
        """Events published per second over the last few seconds."""
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
        name: str | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.options = options or PublisherOptions()
        self.broker = broker if broker is not None else sandbox.redis
        self.faults = faults or Faults()
        self.name = name or f"publisher-{uuid.uuid4().hex[:6]}"
        self.stats = PublisherStats()
        dialect = sandbox.engine.dialect.name
        self._claim = claim_statement(dialect, self.options.max_events)
        self._mark = mark_published_statement(dialect)

    async def publish_batch(self) -> BatchResult:
        """Claim up to ``max_events`` due events, publish them, mark them: one transaction."""
        options = self.options
        now = datetime.now(UTC)
        lease_until = now + timedelta(seconds=options.lease_seconds)
        async with self.sandbox.engine.connect() as conn:
            await begin_claim(conn, options.lease_seconds)
            rows = (await conn.execute(self._claim, {"now": now})).all()
            if not rows:
                await conn.rollback()
                return BatchResult()
            broker = self.faults.broker_for_batch(self.broker)
            try:
                async with asyncio.timeout(options.publish_timeout):
                    outcome = await send(broker, rows, stream=options.stream, stream_maxlen=options.stream_maxlen)
            except BROKER_ERRORS as exc:
                outcome = [exc] * len(rows)
            self.faults.after_publish()  # a crash here rolls the whole transaction back
            sent = [row for row, result in zip(rows, outcome, strict=True) if isinstance(result, int)]
            failed = [row for row, result in zip(rows, outcome, strict=True) if not isinstance(result, int)]
            if sent:
                ids = [row.id for row in sent]
                await conn.execute(self._mark, {"ids": ids, "publisher": self.name, "lease_until": lease_until})
            error, dead = None, 0
            if failed:
                first = next(r for r in outcome if isinstance(r, BaseException))
                error = describe_broker_error(first)
                dead = await record_failure(conn, failed, error, options, (self.name, lease_until))
            await conn.commit()
        result = BatchResult(
            claimed=len(rows),
            published=len(sent),
            failed=len(failed),
            dead_lettered=dead,
            unheard=sum(1 for r in outcome if r == 0),
            receivers=sum(r for r in outcome if isinstance(r, int)),
            error=error,
        )
        self.stats.add(result)
        return result

    async def drain(self, max_batches: int | None = None) -> int:
        """Publish batch after batch until nothing is claimable; returns how many were published."""
        published = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            result = await self.publish_batch()
            batches += 1
            published += result.published
            if result.claimed == 0:
                break
        return published

    async def pending(self) -> int:
        """How many events are still pending (due or waiting for their backoff)."""
        async with self.sandbox.engine.connect() as conn:
            query = select(func.count()).select_from(DomainEvent).where(DomainEvent.status == "pending")
            return int((await conn.execute(query)).scalar_one())


def describe_broker_error(exc: BaseException) -> str:
    """One line about why the broker did not take the batch (stored as ``last_error``)."""
    if isinstance(exc, TimeoutError):
        return "the broker did not answer within the publish timeout"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:480] if text else type(exc).__name__
