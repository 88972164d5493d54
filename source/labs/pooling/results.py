"""What one pool experiment measured, and the statistics a page shows from it.

Every list here was filled while the experiment ran: a wait timed per request, an opening
timed per new connection, the pool's counters sampled every few milliseconds.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass, field

from source.instruments.pool_probe import PoolSample
from source.labs.pooling.config import ExperimentConfig

POOL = "pool"
NEW_CONNECTION = "new connection per request"


@dataclass(frozen=True)
class ExperimentResult:
    """One run (pooled, or a new connection per request). Every number was timed or counted."""

    strategy: str  # POOL or NEW_CONNECTION
    backend: str  # "PostgreSQL" or "SQLite"
    config: ExperimentConfig
    wall_s: float
    completed: int
    timeouts: int
    errors: int
    first_error: str | None
    waits_ms: list[float]  # per completed request: time until it held a connection
    timeout_waits_ms: list[float]  # per timed-out request: time until it gave up
    connect_ms: list[float]  # per new connection: from asking the driver until it was open
    connections_opened: int
    peak_in_use: int
    timeline: list[PoolSample] = field(default_factory=list)
    closed_while_queued: int = 0  # connections the pool closed while some request was waiting for one

    @property
    def lent_while_queued(self) -> float | None:
        """Connections lent out on average while some request was waiting, weighted by time.

        If the pool really used all its C connections whenever anybody queued, this is C.
        ``None`` when no request ever had to wait.
        """
        weighted = span = 0.0
        for now, following in itertools.pairwise(self.timeline):
            if now.waiting > 0:
                dt = following.t_ms - now.t_ms
                weighted += now.checked_out * dt
                span += dt
        return weighted / span if span > 0 else None

    @property
    def throughput_rps(self) -> float:
        """Requests served per second of wall time."""
        return self.completed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def concurrency(self) -> int:
        """C: how many requests could hold a connection at once in this run."""
        return self.config.connections_at_once if self.strategy == POOL else self.config.nullpool_concurrency

    @property
    def bound_s(self) -> float:
        """⌈K/C⌉·D: no schedule serves K requests holding a connection for D each faster."""
        return math.ceil(self.config.requests / self.concurrency) * self.config.delay_ms / 1000

    @property
    def bound_applies(self) -> bool:
        """The bound assumes every request is served; it says nothing about a run where some gave up."""
        return self.timeouts == 0 and self.errors == 0

    @property
    def bound_ratio(self) -> float | None:
        if not self.bound_applies or self.bound_s <= 0:
            return None
        return self.wall_s / self.bound_s

    @property
    def max_wait_ms(self) -> float | None:
        """The longest wait of a request that was served; ``None`` if none was."""
        return max(self.waits_ms, default=None)

    @property
    def median_connect_ms(self) -> float | None:
        return statistics.median(self.connect_ms) if self.connect_ms else None

    @property
    def total_connect_ms(self) -> float:
        return sum(self.connect_ms)


@dataclass(frozen=True)
class LabRun:
    """One experiment: the pooled run, and the run with a new connection per request if asked for."""

    pooled: ExperimentResult
    nullpool: ExperimentResult | None = None

    @property
    def results(self) -> list[ExperimentResult]:
        return [r for r in (self.pooled, self.nullpool) if r is not None]
