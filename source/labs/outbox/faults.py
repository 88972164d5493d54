"""Faults a learner (or a test) can inject into the outbox, each one real where it can be.

- *Broker down*: the publisher is routed to a Redis address where nothing listens, so its
  pipeline fails with a real connection error. The shared Redis is never touched. An outage:
  the breaker opens, no event spends a try.
- *Reply lost*: the next batch reaches Redis (its messages are delivered), and its answer is
  thrown away, as when Redis froze and ran the commands later: the outcome is unknown to the
  publisher, so the batch stays pending and goes again; the consumer's inbox drops the copies.
- *Poisoned event*: the broker refuses this one event's message (its command is sent
  malformed and Redis answers ``ERR``): the event's own fault, so it spends its tries and
  ends in the dead letter; the later events of its aggregate wait behind it.
- *Crash after publish, before mark*: the publisher raises right after Redis accepted the
  batch, before its UPDATE: the transaction rolls back, the events stay pending and are
  delivered again by the next claim (at-least-once).
- *Failure before commit*: the business write raises after both rows were flushed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from source.domain.errors import LabError
from source.platform.dead_redis import closed_port, unreachable_redis


class InjectedFailure(LabError):
    """A failure the lab raised on purpose, to show what a rollback keeps and what it undoes."""


class SimulatedCrash(Exception):
    """The publisher 'dies' here: whatever its transaction did is rolled back."""


class LostReply(TimeoutError):
    """The broker ran the batch, and its answer never arrived: the publisher cannot know it was delivered."""


@dataclass
class Faults:
    """What to break, and when. One per publisher service; the page flips the switches."""

    #: Route every batch to an address where nothing listens.
    broker_down: bool = False
    #: Crash after publishing (before marking) the next this-many batches.
    crash_next: int = 0
    #: Throw away the broker's answer to the next this-many batches (they were delivered).
    lose_replies: int = 0
    #: Ids of events whose message the broker refuses, every time it is sent.
    refused: set[str] = field(default_factory=set)
    #: Tests: the chance that one batch finds the broker down / crashes after publishing.
    broker_failure_rate: float = 0.0
    crash_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    crashes: int = 0
    replies_lost: int = 0
    _dead: Any = None

    def broker_for_batch(self, broker: Any) -> Any:
        """The client this batch publishes through: the real one, or the dead address."""
        if self.broker_down or (self.broker_failure_rate and self.rng.random() < self.broker_failure_rate):
            if self._dead is None:
                self._dead = unreachable_redis(closed_port(), timeout_s=1.0)
            return self._dead
        return broker

    def after_send(self) -> None:
        """Called when the broker's answer has arrived: the lab may throw it away."""
        if self.lose_replies > 0:
            self.lose_replies -= 1
            self.replies_lost += 1
            raise LostReply("the broker's answer to this batch was lost (the lab's fault): it may have been delivered")

    def after_publish(self) -> None:
        """Called between the broker's answer and the UPDATE that marks the batch."""
        crash = self.crash_next > 0 or (self.crash_rate and self.rng.random() < self.crash_rate)
        if crash:
            self.crash_next = max(0, self.crash_next - 1)
            self.crashes += 1
            raise SimulatedCrash("the publisher crashed after publishing and before marking the batch")

    async def aclose(self) -> None:
        if self._dead is not None:
            await self._dead.aclose()
            self._dead = None
