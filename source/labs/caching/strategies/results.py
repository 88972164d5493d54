"""What the strategy lab measured per strategy, and the bookkeeping that detects stale reads."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from source.labs.caching.strategies.workload import WorkloadConfig


@dataclass
class StrategyResult:
    strategy: str
    reads: int = 0
    writes: int = 0
    hits: int = 0
    db_reads: int = 0
    db_writes: int = 0
    stale_reads: int = 0
    behind_acknowledged: int = 0
    max_unflushed: int = 0
    #: Reads and writes whose cache call got no answer in time (or skipped Redis after one did not).
    redis_failed: int = 0
    read_ms: list[float] = field(default_factory=list, repr=False)
    write_ms: list[float] = field(default_factory=list, repr=False)
    wall_ms: float = 0.0

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.reads if self.reads else 0.0

    def row(self) -> dict[str, object]:
        return {
            "strategy": self.strategy,
            "hit ratio": round(self.hit_ratio, 3),
            "DB reads": self.db_reads,
            "DB writes": self.db_writes,
            "read mean (ms)": round(mean_ms(self.read_ms), 3),
            "read p95 (ms)": round(p95_ms(self.read_ms), 3),
            "write mean (ms)": round(mean_ms(self.write_ms), 3),
            "write p95 (ms)": round(p95_ms(self.write_ms), 3),
            "stale reads": self.stale_reads,
            "reads behind an acknowledged write": self.behind_acknowledged,
            "max writes not yet in DB": self.max_unflushed,
            "operations Redis failed": self.redis_failed,
        }


@dataclass(frozen=True)
class StrategyRun:
    config: WorkloadConfig
    results: list[StrategyResult]
    popularity: list[tuple[int, int]]


class Versions:
    """Which version each name stands for, what the database holds, what clients were told."""

    def __init__(self, keys: int) -> None:
        self.in_db = [0] * keys
        self.acknowledged = [0] * keys
        self.of_name = {name_of(k, 0): 0 for k in range(keys)}

    def new(self, key: int) -> tuple[int, str]:
        version = self.acknowledged[key] + 1
        self.of_name[name_of(key, version)] = version
        return version, name_of(key, version)


def name_of(key: int, version: int) -> str:
    return f"load-{key:03d} v{version}"


def mean_ms(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def p95_ms(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=20, method="inclusive")[18]
