"""What the cache's counters report: one timed read, the counts with the hit ratio, and T_avg filled in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["hit", "miss", "bypassed", "error"]


@dataclass(frozen=True, slots=True)
class ReadSample:
    """One cached read, timed: the Redis part and (when it went there) the database part."""

    outcome: Outcome
    cache_ms: float
    db_ms: float
    total_ms: float


@dataclass(frozen=True)
class CacheCounts:
    hits: int = 0
    misses: int = 0
    errors: int = 0
    bypassed: int = 0
    stale: int = 0
    repaired: int = 0
    waited: int = 0
    refreshes: int = 0
    #: Counts that could not be written to Redis yet (it did not answer): they live in this process.
    in_process: int = 0
    from_redis: bool = True

    @property
    def requests(self) -> int:
        return self.hits + self.misses + self.bypassed + self.errors

    @property
    def hit_ratio(self) -> float | None:
        """H = hits / all requests (None before the first request)."""
        return self.hits / self.requests if self.requests else None

    def tiles(self) -> list[tuple[str, int | str]]:
        h = f"{self.hit_ratio:.0%}" if self.hit_ratio is not None else "–"
        return [
            ("Hits", self.hits),
            ("Misses", self.misses),
            ("Errors", self.errors),
            ("Bypassed", self.bypassed),
            ("Stale reads", self.stale),
            ("H", h),
        ]

    def note(self) -> str:
        text = (
            f"Counted in Redis (`HINCRBY` on your sandbox's `cache:stats` hash): {self.repaired} repaired, "
            f"{self.waited} waited for another reader's load, {self.refreshes} early refreshes."
        )
        if not self.from_redis:
            text += f" Redis is not answering: {self.in_process} count(s) are kept in this process until it does."
        return text


@dataclass(frozen=True)
class Formula:
    """T_avg = H·T_cache + (1−H)·(T_cache + T_db), every term measured on recent reads."""

    reads: int
    hit_ratio: float
    t_cache_ms: float
    t_db_ms: float
    predicted_ms: float
    measured_ms: float

    def filled_in(self) -> str:
        """The formula as LaTeX with the measured values in place."""
        h, tc, td, avg = self.hit_ratio, self.t_cache_ms, self.t_db_ms, self.predicted_ms
        return rf"= {h:.2f} \cdot {tc:.3f} + {1 - h:.2f} \cdot ({tc:.3f} + {td:.3f}) = {avg:.3f}\ \text{{ms}}"
