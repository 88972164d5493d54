"""Faults a learner (or a test) can inject into the outbox, each one real where it can be.

- *Broker down*: the publisher is routed to a Redis address where nothing listens, so its
  pipeline fails with a real connection error. The shared Redis is never touched.
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


@dataclass
class Faults:
    """What to break, and when. One per publisher service; the page flips the switches."""

    #: Route every batch to an address where nothing listens.
    broker_down: bool = False
    #: Crash after publishing (before marking) the next this-many batches.
    crash_next: int = 0
    #: Tests: the chance that one batch finds the broker down / crashes after publishing.
    broker_failure_rate: float = 0.0
    crash_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    crashes: int = 0
    _dead: Any = None

    def broker_for_batch(self, broker: Any) -> Any:
        """The client this batch publishes through: the real one, or the dead address."""
        if self.broker_down or (self.broker_failure_rate and self.rng.random() < self.broker_failure_rate):
            if self._dead is None:
                self._dead = unreachable_redis(closed_port(), timeout_s=1.0)
            return self._dead
        return broker

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
