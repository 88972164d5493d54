"""What each lab records after a run: one call from the lab's own code (see :mod:`measurements`)."""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from source.learning.measurements import record_run
from source.platform.context import current_sandbox

if TYPE_CHECKING:
    from source.labs.caching.cache import RedisCache
    from source.labs.outbox.publisher import BatchResult, OutboxPublisher
    from source.labs.pooling.results import ExperimentResult
    from source.labs.repository.measure import StrategyRun


async def cascade_delete(assessments_removed: int, scores_removed: int, statements: int) -> None:
    """Lab 1: what one delete removed, as counted before and after, and the statements it sent."""
    await record_run(
        current_sandbox(),
        "lab1",
        {
            "assessments_removed": (assessments_removed, "rows"),
            "scores_removed": (scores_removed, "rows"),
            "statements": (statements, "statements"),
        },
    )


async def pool_run(pooled: ExperimentResult, nullpool: ExperimentResult | None) -> None:
    """Lab 2: the pooled run's settings and results (and the new-connection run's, when made)."""
    cfg = pooled.config
    values: dict[str, tuple[float, str]] = {
        "requests": (cfg.requests, "requests"),
        "connections": (cfg.connections_at_once, "connections"),
        "hold_ms": (cfg.delay_ms, "ms"),
        "wall_ms": (pooled.wall_s * 1000, "ms"),
        "bound_ms": (pooled.bound_s * 1000, "ms"),
        "completed": (pooled.completed, "requests"),
        "timeouts": (pooled.timeouts, "requests"),
        "throughput_rps": (pooled.throughput_rps, "req/s"),
        "connections_opened": (pooled.connections_opened, "connections"),
    }
    if nullpool is not None:
        values["nullpool_wall_ms"] = (nullpool.wall_s * 1000, "ms")
        values["nullpool_connections_opened"] = (nullpool.connections_opened, "connections")
    await record_run(current_sandbox(), "lab2", values)


async def repository_comparison(runs: list[StrategyRun]) -> None:
    """Lab 3: statements and time per loading strategy, on the same users."""
    by_key = {run.key: run for run in runs}
    values: dict[str, tuple[float, str]] = {}
    if runs:
        values["users"] = (runs[0].loaded.user_count, "users")
    for key, run in by_key.items():
        values[f"{key}_queries"] = (run.queries, "statements")
        values[f"{key}_ms"] = (run.wall_ms, "ms")
    if "selectin" in by_key:  # the fix the lab teaches, under the names its knowledge check reads
        values["eager_queries"] = values["selectin_queries"]
        values["eager_ms"] = values["selectin_ms"]
    await record_run(current_sandbox(), "lab3", values)


@dataclass
class _Drain:
    published: int = 0
    batches: int = 0
    seconds: float = 0.0


_drains: weakref.WeakKeyDictionary[OutboxPublisher, _Drain] = weakref.WeakKeyDictionary()


async def timed_batch(publisher: OutboxPublisher) -> BatchResult:
    """Lab 5: run one claim-publish-mark batch and time it; a drain is recorded when the outbox runs dry.

    A drain is the batches from the first that published until the first that claimed nothing;
    its time is the sum of those batches' own durations, so idle waits never count.
    """
    began = time.perf_counter()
    result = await publisher.publish_batch()
    drain = _drains.setdefault(publisher, _Drain())
    if result.claimed:
        drain.batches += 1
        drain.published += result.published
        drain.seconds += time.perf_counter() - began
    elif drain.published:
        values = {
            "published": (drain.published, "events"),
            "publish_ms": (drain.seconds * 1000, "ms"),
            "batches": (drain.batches, "batches"),
        }
        _drains[publisher] = _Drain()
        await record_run(current_sandbox(), "lab5", values)
    return result


async def cache_reads(cache: RedisCache) -> None:
    """Lab 4: H, T_cache and T_db over the cache's recent reads, as its T_avg formula uses them.

    Only what the cache keeps in this process is read: a figure for the class view must never
    send the cache's own client to a Redis that may be the one the learner just broke.
    """
    formula = cache.metrics.formula()
    if formula is None:
        return
    hits = round(formula.hit_ratio * formula.reads)
    values: dict[str, tuple[float, str]] = {
        "hits": (hits, "reads"),
        "misses": (formula.reads - hits, "reads"),
        "cache_ms": (formula.t_cache_ms, "ms"),
        "db_ms": (formula.t_db_ms, "ms"),
        "avg_ms": (formula.measured_ms, "ms"),
    }
    await record_run(current_sandbox(), "lab4", values)
