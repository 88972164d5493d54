"""Lab 4's cache on real Redis: a cached hit against a bare GET + JSON parse, hit against miss on
SQLite and PostgreSQL, the strategies on one workload, and a 50-way stampede with and without
protection. Run: ``python -m bench.cache [--reads 5000]``."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench._common import PG_URL, REDIS_URL, _port_open, print_table
from source import Backends, Sandbox, Settings
from source.labs.caching import actions, stampede
from source.labs.caching.cache import user_key
from source.labs.caching.repository import CachedUserRepository
from source.labs.caching.sandbox_cache import cache_for
from source.labs.caching.strategies import parse_workload, run_strategy_lab
from source.platform.jobs import Progress
from source.platform.session import get_session

WORKLOAD = {"operations": 2000, "keys": 50, "read_share": 0.9, "skew": 1.0, "ttl_ms": 500, "seed": 7}


async def _time_each(op: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await op()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def hit_against_bare_get(reads: int) -> tuple[float, float]:
    """Median µs of a cached hit (GET + DTO parse + counting) and of a bare GET + json.loads."""
    uid = (await actions.add_samples()).ids[0]
    cache = cache_for_current()
    async with get_session() as session:
        repo = CachedUserRepository(session, cache.client, cache=cache)
        await repo.get_by_id_cached(uid)  # warm: the value is in Redis now
        key = cache.key(user_key(uid))

        async def bare() -> Any:
            return json.loads(await cache.client.get(key))

        hits: list[float] = []
        plain: list[float] = []
        for _ in range(10):  # interleaved rounds, so drift on a shared machine hits both alike
            hits += await _time_each(lambda: repo.get_by_id_cached(uid), reads // 10)
            plain += await _time_each(bare, reads // 10)
        assert repo.last is not None
        assert repo.last.outcome == "hit"
    return statistics.median(hits), statistics.median(plain)


def cache_for_current() -> Any:
    from source.platform.context import current_sandbox

    return cache_for(current_sandbox())


async def hit_and_miss(reads: int) -> tuple[float, float]:
    """Median ms of a hit and of a miss (key deleted first; only the read is timed)."""
    uid = (await actions.add_samples()).ids[0]
    cache = cache_for_current()
    misses, hits = [], []
    for _ in range(reads):
        await cache.invalidate(user_key(uid))
        misses.append((await actions.fetch_user(uid)).lookup.total_ms)
        hits.append((await actions.fetch_user(uid)).lookup.total_ms)
    return statistics.median(hits), statistics.median(misses)


def measure(kind: str, database_url: str | None, reads: int) -> dict[str, Any]:
    backends = Backends.build(Settings(database_url=database_url, redis_url=REDIS_URL))
    sandbox: Sandbox = backends.open_sandbox()
    try:
        out: dict[str, Any] = {"kind": kind}
        if database_url is None:
            out["hit_vs_bare"] = sandbox.run(hit_against_bare_get(reads), timeout=600)
        out["hit_miss"] = sandbox.run(hit_and_miss(max(50, reads // 20)), timeout=600)
        uid = sandbox.run(actions.add_samples()).ids[0]
        out["stampede"] = [sandbox.run(stampede.run_stampede(uid, 50, p), timeout=120) for p in (True, False)]
        out["strategies"] = sandbox.run(run_strategy_lab(parse_workload(**WORKLOAD), Progress()), timeout=300)
        return out
    finally:
        backends.close()
        backends.runtime.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=5000)
    args = parser.parse_args()
    if not _port_open(REDIS_URL, 6379):
        raise SystemExit(f"Redis at {REDIS_URL} is unreachable: this benchmark needs a real Redis.")
    runs = [measure("SQLite + Redis", None, args.reads)]
    if _port_open(PG_URL, 5432):
        runs.append(measure("PostgreSQL + Redis", PG_URL, args.reads))
    hit_us, bare_us = runs[0]["hit_vs_bare"]
    print(f"\nCached hit vs bare GET + json.loads (median of {args.reads} each, interleaved)")
    print_table(
        ["cached hit (µs)", "bare GET + parse (µs)", "ratio (target ≤ 1.3)"],
        [[f"{hit_us:.0f}", f"{bare_us:.0f}", f"{hit_us / bare_us:.2f}"]],
    )
    print("\nHit vs miss (median ms, page path: repository read)")
    print_table(
        ["backend", "hit", "miss", "miss / hit"],
        [
            [
                r["kind"],
                f"{r['hit_miss'][0]:.3f}",
                f"{r['hit_miss'][1]:.3f}",
                f"{r['hit_miss'][1] / r['hit_miss'][0]:.1f}",
            ]
            for r in runs
        ],
    )
    print("\n50 concurrent cold reads of one user: database reads (SELECTs counted)")
    print_table(
        ["backend", "protected", "unprotected", "protected wall (ms)", "unprotected wall (ms)"],
        [
            [
                r["kind"],
                r["stampede"][0].db_reads,
                r["stampede"][1].db_reads,
                f"{r['stampede'][0].wall_ms:.0f}",
                f"{r['stampede'][1].wall_ms:.0f}",
            ]
            for r in runs
        ],
    )
    print(f"\nStrategies on one workload {WORKLOAD}")
    columns = ["strategy", "hit ratio", "DB reads", "DB writes", "read mean (ms)", "read p95 (ms)", "stale reads"]
    for r in runs:
        print(f"\n{r['kind']}")
        print_table(columns, [[row[c] for c in columns] for row in (x.row() for x in r["strategies"].results)])


if __name__ == "__main__":
    main()
