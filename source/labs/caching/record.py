"""What Lab 4 records for the knowledge check and the class view: the page's window of reads.

The tiles, the T_avg formula and the knowledge check all read one window (the learner's last
reads since the counters were reset), so the check asks about exactly the reads the page shows.
"""

from __future__ import annotations

from source.labs.caching.cache import RedisCache
from source.learning.measurements import record_run
from source.platform.context import current_sandbox


async def cache_reads(cache: RedisCache) -> None:
    """Lab 4: the window's reads by outcome, H's terms and T_avg, as the page's tiles and formula show them.

    Only what the cache keeps in this process is read: a figure for the class view must never
    send the cache's own client to a Redis that may be the one the learner just broke.
    """
    window = cache.metrics.window()
    if not window.reads:
        return
    values: dict[str, tuple[float, str]] = {
        "reads": (window.reads, "reads"),
        "hits": (window.hits, "reads"),
        "misses": (window.misses, "reads"),
        "errors": (window.errors, "reads"),
        "bypassed": (window.bypassed, "reads"),
        "cache_ms": (window.t_cache_ms, "ms"),
        "db_ms": (window.t_db_ms, "ms"),
        "avg_ms": (window.measured_ms, "ms"),
    }
    await record_run(current_sandbox(), "lab4", values)
