"""What Lab 4 records for the knowledge check and the class view: H, T_cache and T_db over recent reads."""

from __future__ import annotations

from source.labs.caching.cache import RedisCache
from source.learning.measurements import record_run
from source.platform.context import current_sandbox


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
