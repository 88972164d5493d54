"""Benchmark: draining the outbox. The Lab 5 publisher against a raw-driver reference and a one-at-a-time loop.

Run from the repository root with ``python -m bench.outbox_drain``. For each backend pair
(SQLite + fakeredis always; PostgreSQL + Redis when they answer) it seeds N pending events and
drains them, in one run, with:

- the publisher (``OutboxPublisher``, batches of 500, Pub/Sub only);
- a raw-driver reference: asyncpg (or aiosqlite) directly: claim 500 (``FOR UPDATE SKIP LOCKED`` /
  ``BEGIN IMMEDIATE``), one Redis pipeline of PUBLISH, one ``UPDATE … = ANY`` (``IN`` on SQLite);
- the course's loop: one event at a time (ORM select, PUBLISH, ``mark_as_published``), on fewer events;
- on PostgreSQL, two publishers at once.

Targets: publisher ≥ 0.8 × the reference, ≥ 25 × the one-at-a-time loop. Median of ``--runs``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import delete, insert, text

from bench._common import PG_URL, backend_kinds
from source import Backends, DomainEvent, DomainEventRepository, Sandbox, Settings, get_session
from source.domain.models import new_id
from source.labs.outbox.options import publisher_options
from source.labs.outbox.publish import CHANNEL_PREFIX, encode
from source.labs.outbox.publisher import OutboxPublisher
from tests.conftest import settings_for

BATCH = 500
SQLITE_CLAIM = (
    "SELECT id, event_type, aggregate_type, aggregate_id, sequence, CAST(payload AS TEXT) FROM domain_events "  # noqa: S608
    f"WHERE status = 'pending' ORDER BY sequence LIMIT {BATCH}"
)
SQLITE_MARK = (
    "UPDATE domain_events SET status = 'published', published_at = STRFTIME('%Y-%m-%d %H:%M:%f', 'now') "
    "WHERE id IN ({marks})"
)


async def seed(sandbox: Sandbox, n: int) -> None:
    """``n`` pending score events, one aggregate each (a score is announced once), in one INSERT batch."""
    rows = [
        {
            "event_type": "score.calculated",
            "aggregate_type": "AIRScore",
            "aggregate_id": new_id(),
            "payload": {"user_id": "u-1", "score_value": 80.5 + i % 10, "occupation": "SW_ENG"},
            "status": "pending",
        }
        for i in range(n)
    ]
    async with sandbox.engine.begin() as conn:
        await conn.execute(delete(DomainEvent))
        await conn.execute(insert(DomainEvent), rows)
    async with sandbox.engine.connect() as conn:
        # What autovacuum does to a table that just grew: the planner gets real row counts.
        await conn.execute(
            text("ANALYZE domain_events" if sandbox.schema is None else f'ANALYZE "{sandbox.schema}".domain_events')
        )
        await conn.commit()


async def publisher_drain(sandbox: Sandbox, publishers: int = 1) -> int:
    options = publisher_options(max_events=BATCH, stream=False)
    workers = [OutboxPublisher(sandbox, options, name=f"bench-{i}") for i in range(publishers)]
    done = await asyncio.gather(*(w.drain() for w in workers))
    return sum(done)


async def reference_drain_pg(sandbox: Sandbox) -> int:
    """asyncpg directly: the least a claim-publish-mark drain can do on PostgreSQL."""
    table = f'"{sandbox.schema}".domain_events'
    claim = (
        f"SELECT id, event_type, aggregate_type, aggregate_id, sequence, payload::text FROM {table} "  # noqa: S608
        f"WHERE status = 'pending' ORDER BY sequence LIMIT {BATCH} FOR UPDATE SKIP LOCKED"
    )
    mark = f"UPDATE {table} SET status = 'published', published_at = now() WHERE id = ANY($1::varchar[])"  # noqa: S608
    conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
    published = 0
    try:
        while True:
            async with conn.transaction():
                rows = await conn.fetch(claim)
                if not rows:
                    return published
                await _publish(sandbox.redis, rows)
                await conn.execute(mark, [r[0] for r in rows])
            published += len(rows)
    finally:
        await conn.close()


async def reference_drain_sqlite(sandbox: Sandbox) -> int:
    """aiosqlite directly, the same steps (one writer: ``BEGIN IMMEDIATE``)."""
    assert sandbox.directory is not None
    published = 0
    async with aiosqlite.connect(sandbox.directory / "lab.db", isolation_level=None) as db:
        await db.execute("PRAGMA busy_timeout=5000")
        while True:
            await db.execute("BEGIN IMMEDIATE")
            cursor = await db.execute(SQLITE_CLAIM)
            rows = list(await cursor.fetchall())
            if not rows:
                await db.execute("COMMIT")
                return published
            await _publish(sandbox.redis, rows)
            marks = ",".join("?" * len(rows))
            await db.execute(SQLITE_MARK.format(marks=marks), [r[0] for r in rows])
            await db.execute("COMMIT")
            published += len(rows)


async def _publish(redis: Any, rows: Any) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for event_id, event_type, aggregate_type, aggregate_id, sequence, payload in rows:
            pipe.publish(
                CHANNEL_PREFIX + event_type,
                encode(event_id, event_type, aggregate_type, aggregate_id, sequence, payload),
            )
        await pipe.execute()


async def one_at_a_time(sandbox: Sandbox) -> int:
    """The course's loop: fetch one pending event with the ORM, publish it, mark it (one commit each)."""
    published = 0
    while True:
        async with get_session() as session:
            repo = DomainEventRepository(session)
            pending = await repo.get_pending_events(limit=1)
            if not pending:
                return published
            event = pending[0]
            await sandbox.redis.publish(CHANNEL_PREFIX + event.event_type, str(event.payload))
            await repo.mark_as_published([event.id])
            published += 1


async def timed(sandbox: Sandbox, n: int, drain: Callable[[], Awaitable[int]]) -> float:
    """Seed ``n`` events, drain them, return events per second (checking every one was published)."""
    await seed(sandbox, n)
    started = time.perf_counter()
    done = await drain()
    elapsed = time.perf_counter() - started
    if done != n:
        raise AssertionError(f"drained {done} of {n}")
    return n / elapsed


def measure(kind: str, events: int, loop_events: int, runs: int) -> dict[str, float]:
    backends = Backends.build(settings_for(kind) if kind == "services" else Settings())
    sandbox = backends.open_sandbox()
    pg = sandbox.schema is not None
    reference = reference_drain_pg if pg else reference_drain_sqlite
    variants: dict[str, tuple[int, Callable[[], Awaitable[int]]]] = {
        "publisher": (events, lambda: publisher_drain(sandbox)),
        "reference": (events, lambda: reference(sandbox)),
        "one at a time": (loop_events, lambda: one_at_a_time(sandbox)),
    }
    if pg:
        variants["2 publishers"] = (events, lambda: publisher_drain(sandbox, 2))
    found: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(runs):
            for name, (n, drain) in variants.items():  # interleaved, so load drifts hit all alike
                found[name].append(sandbox.run(timed(sandbox, n, drain), timeout=600))
    finally:
        backends.release(sandbox)
        backends.close()
        backends.runtime.stop()
    return {name: statistics.median(rates) for name, rates in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--loop-events", type=int, default=2_000, help="events for the one-at-a-time loop")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"Drain {args.events:,} events (one-at-a-time loop: {args.loop_events:,}), median of {args.runs} runs")
    print(
        "| backend | publisher ev/s | raw reference ev/s | publisher ÷ reference | one at a time ev/s "
        "| publisher ÷ loop | 2 publishers ev/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind in backend_kinds():
        r = measure(kind, args.events, args.loop_events, args.runs)
        two = f"{r['2 publishers']:,.0f}" if "2 publishers" in r else "—"
        name = "PostgreSQL + Redis" if kind == "services" else "SQLite + fakeredis"
        print(
            f"| {name} | {r['publisher']:,.0f} | {r['reference']:,.0f} | {r['publisher'] / r['reference']:.2f}× "
            f"| {r['one at a time']:,.0f} | {r['publisher'] / r['one at a time']:.0f}× | {two} |"
        )


if __name__ == "__main__":
    main()
