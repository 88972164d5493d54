"""The circuit breaker on the broker: an outage is not an event's failure.

An event's tries are for what is its own fault: a message the broker refuses, a payload that
cannot be encoded. When the broker *itself* cannot be reached or does not answer, every event
would fail the same way, and spending their tries on it would send the oldest event of each
aggregate to the dead letter while the later ones went ahead. So an outage opens the breaker
instead: the publisher claims nothing until ``retry_at`` (tenacity's exponential backoff with
jitter, capped, counted over the outage's consecutive failures), then one ``PING`` probes the
broker; when it answers, batches flow again and the first one that goes through closes the
breaker. The events wait, pending and untouched, and drain in order when the broker is back.

A batch whose reply never came (a timeout, a connection lost mid-pipeline) is an *unknown*
outcome: the broker may have delivered it (a frozen Redis runs what it buffered when it
resumes). It stays pending and is published again: at-least-once, and the consumer's inbox
drops the duplicates by event id. The breaker remembers the last such batches for the page.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from source.labs.outbox.backoff import retry_delay

#: The broker could not be reached, or did not answer: an outage, whichever event was in the batch.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
#: Replies that speak for the broker's state, not for the one message (out of memory, read-only, loading…).
BROKER_WIDE_REPLIES: tuple[type[BaseException], ...] = (
    OutOfMemoryError,
    ReadOnlyError,
    BusyLoadingError,
    AuthenticationError,
    NoPermissionError,
    ClusterDownError,
    MasterDownError,
    TryAgainError,
)
#: Error codes Redis answers with when it is the server that cannot take writes right now.
BROKER_WIDE_CODES = ("MISCONF", "BUSY ", "NOREPLICAS")
#: How many batches without an answer the page can list.
UNANSWERED_KEPT = 5


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the broker is unavailable (rather than that it refused this one message)."""
    if isinstance(error, OUTAGE_ERRORS + BROKER_WIDE_REPLIES):
        return True
    return isinstance(error, ResponseError) and str(error).startswith(BROKER_WIDE_CODES)


def no_answer(error: BaseException) -> bool:
    """Whether the batch may have reached the broker although no reply came: an unknown outcome.

    A connection refused (``Error 111 connecting to …``) sent nothing; a timeout, or a connection
    lost after the commands were written, may have delivered some or all of them.
    """
    if isinstance(error, TimeoutError | RedisTimeoutError):
        return True
    return isinstance(error, RedisConnectionError | OSError) and "connecting to" not in str(error)


@dataclass(frozen=True)
class UnansweredBatch:
    """A batch sent to the broker whose reply never came: it stayed pending and went again."""

    publisher: str
    at: datetime
    event_ids: tuple[str, ...]
    reason: str

    @property
    def events(self) -> int:
        return len(self.event_ids)


@dataclass
class BrokerBreaker:
    """Closed while the broker answers; open (nothing claimed) from an outage until a probe finds it back."""

    #: When the current outage began (UTC), ``None`` while the broker answers.
    opened_at: datetime | None = None
    #: Failures in a row in this outage: the backoff grows with them.
    failures: int = 0
    #: How many outages so far (times it opened).
    outages: int = 0
    #: Why the last outage began, in one line.
    reason: str | None = None
    #: When the next probe may run (``time.monotonic()``).
    retry_at: float = 0.0
    unanswered: deque[UnansweredBatch] = field(default_factory=lambda: deque(maxlen=UNANSWERED_KEPT))
    unanswered_total: int = 0

    #: A probe was answered: the next batch decides (it closes the breaker, or opens it again).
    probing: bool = False

    @property
    def is_open(self) -> bool:
        """Whether batches wait for the broker now (not while a probe's answer lets one through)."""
        return self.opened_at is not None and not self.probing

    def wait_s(self) -> float:
        """Seconds until the next probe (0 when closed or due)."""
        return max(0.0, self.retry_at - time.monotonic()) if self.is_open else 0.0

    def due(self) -> bool:
        return self.wait_s() == 0.0

    def record_outage(self, reason: str, base: float, cap: float) -> None:
        """The broker was unavailable: open (or stay open) and wait longer before the next probe."""
        if self.opened_at is None:
            self.opened_at = datetime.now(UTC)
            self.outages += 1
            self.reason = reason
        self.probing = False
        self.failures += 1
        self.retry_at = time.monotonic() + retry_delay(self.failures, base, cap)

    def probe_answered(self) -> None:
        """The broker answered a ``PING``: let the next batch through (its outcome closes or reopens)."""
        self.probing = True

    def record_unanswered(self, batch: UnansweredBatch) -> None:
        self.unanswered.append(batch)
        self.unanswered_total += 1

    def record_success(self) -> None:
        """A batch went through (or there was none to send after a probe was answered): the broker is back."""
        self.opened_at, self.failures, self.reason, self.probing = None, 0, None, False

    def describe(self, waiting: int) -> str:
        """What the page says about the broker, e.g. "broker unavailable since 10:42:07, 1,240 events waiting"."""
        if self.opened_at is None:
            return "broker available"
        since = self.opened_at.astimezone().strftime("%H:%M:%S")
        if self.probing:
            return f"broker unavailable since {since}; it answered a probe, the next batch decides"
        return (
            f"broker unavailable since {since}, {waiting:,} events waiting; next try in {self.wait_s():.1f} s "
            f"(failure {self.failures} of this outage: {self.reason})"
        )
