"""Benchmark: draining the outbox. Lab 5's publisher and the course's ``event_publisher()`` against a raw floor.

Run from the repository root with ``python -m bench.outbox_drain [--mode drain|course|history|all]``.
For each backend pair (SQLite + fakeredis always; PostgreSQL + Redis when they answer):

- ``drain``: in a sandbox, N pending events drained by the publisher (``OutboxPublisher``, batches of
  500, Pub/Sub only), by the raw-driver floor (asyncpg or aiosqlite directly: claim 500 with
  ``FOR UPDATE SKIP LOCKED`` / ``BEGIN IMMEDIATE``, one Redis pipeline of PUBLISH, one
  ``UPDATE … = ANY`` / ``IN``), by the course's one-at-a-time loop (fewer events) and, on
  PostgreSQL, by two publishers at once. Targets: publisher ≥ 0.8 × the floor, ≥ 25 × the loop.
- ``course``: the course's ``event_publisher(interval_seconds=0, max_events=500, stream=False)``
  as a script calls it, through the *default context* (no sandbox, the script's own event loop),
  on a fresh database (PostgreSQL: a database of its own; SQLite: the default context's file),
  beside the floor on the same database. Target ≥ 0.8 × the floor.
- ``history``: the fresh figures, then the same after ``event_publisher()`` drained 50,000 events
  (``--history``) into the table's history, without VACUUM (each drain's events are ANALYZEd, as
  autovacuum's analyze would), beside the floor on the same history and, in the same rounds, on a
  fresh table. Target ≥ 0.8 ×.

Median of ``--runs``, the variants interleaved so that load drifts hit all alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import delete, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bench._common import PG_URL, REDIS_URL, backend_kinds
from source import Backends, DomainEvent, DomainEventRepository, Sandbox, Settings, event_publisher, get_session
from source.domain.models import new_id
from source.labs.outbox.options import publisher_options
from source.labs.outbox.publish import CHANNEL_PREFIX, encode
from source.labs.outbox.publisher import OutboxPublisher
from source.platform.default_context import default_sandbox
from tests.conftest import settings_for

BATCH = 500
#: Rows per INSERT while seeding.
SEED_CHUNK = 2_000
SQLITE_CLAIM = (
    "SELECT id, event_type, aggregate_type, aggregate_id, sequence, CAST(payload AS TEXT) FROM domain_events "  # noqa: S608
    f"WHERE status = 'pending' ORDER BY sequence LIMIT {BATCH}"
)
SQLITE_MARK = (
    "UPDATE domain_events SET status = 'published', published_at = STRFTIME('%Y-%m-%d %H:%M:%f', 'now') "
    "WHERE id IN ({marks})"
)
NAMES = {"services": "PostgreSQL + Redis", "embedded": "SQLite + fakeredis"}


# -- seeding ----------------------------------------------------------------------------------------
async def seed(engine: AsyncEngine, schema: str | None, n: int, *, keep: bool = False) -> None:
    """``n`` pending score events, one aggregate each (a score is announced once), in one INSERT batch.

    ``keep``: add them to what the table holds (its history) instead of emptying it first.
    """
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
    async with engine.begin() as conn:
        if not keep and engine.dialect.name == "postgresql":
            table = f'"{schema}".domain_events' if schema else "domain_events"
            await conn.execute(text(f"TRUNCATE {table}"))  # a fresh table: no dead rows, no dead index entries
        elif not keep:
            await conn.execute(delete(DomainEvent))  # SQLite empties the table's pages for a DELETE of all rows
        for at in range(0, n, SEED_CHUNK):  # in chunks: each INSERT well inside the statement timeout
            await conn.execute(insert(DomainEvent), rows[at : at + SEED_CHUNK])
    async with engine.connect() as conn:
        # What autovacuum does to a table that just grew: the planner gets real row counts. (No VACUUM.)
        if engine.dialect.name == "postgresql":
            await conn.execute(text(f'ANALYZE "{schema}".domain_events' if schema else "ANALYZE domain_events"))
        else:
            await conn.execute(text("ANALYZE domain_events"))
        await conn.commit()


# -- the raw-driver floor ---------------------------------------------------------------------------
async def floor_pg(url: str, table: str, redis: Any) -> int:
    """asyncpg directly: the least a claim-publish-mark drain can do on PostgreSQL."""
    claim = (
        f"SELECT id, event_type, aggregate_type, aggregate_id, sequence, payload::text FROM {table} "  # noqa: S608
        f"WHERE status = 'pending' ORDER BY sequence LIMIT {BATCH} FOR UPDATE SKIP LOCKED"
    )
    mark = f"UPDATE {table} SET status = 'published', published_at = now() WHERE id = ANY($1::varchar[])"  # noqa: S608
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    published = 0
    try:
        while True:
            async with conn.transaction():
                rows = await conn.fetch(claim)
                if not rows:
                    return published
                await _publish(redis, rows)
                await conn.execute(mark, [r[0] for r in rows])
            published += len(rows)
    finally:
        await conn.close()


async def floor_sqlite(path: Path, redis: Any) -> int:
    """aiosqlite directly, the same steps (one writer: ``BEGIN IMMEDIATE``)."""
    published = 0
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await db.execute("PRAGMA busy_timeout=5000")
        while True:
            await db.execute("BEGIN IMMEDIATE")
            cursor = await db.execute(SQLITE_CLAIM)
            rows = list(await cursor.fetchall())
            if not rows:
                await db.execute("COMMIT")
                return published
            await _publish(redis, rows)
            marks = ",".join("?" * len(rows))
            await db.execute(SQLITE_MARK.format(marks=marks), [r[0] for r in rows])
            await db.execute("COMMIT")
            published += len(rows)


def floor_of(sandbox: Sandbox, url: str | None) -> Callable[[], Awaitable[int]]:
    """The floor for this sandbox's table: asyncpg on its schema, or aiosqlite on its file."""
    if sandbox.dialect == "postgresql":
        assert url is not None
        table = f'"{sandbox.schema}".domain_events' if sandbox.schema else "domain_events"
        return lambda: floor_pg(url, table, sandbox.redis)
    assert sandbox.directory is not None
    path = sandbox.directory / "lab.db"
    return lambda: floor_sqlite(path, sandbox.redis)


async def _publish(redis: Any, rows: Any) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for event_id, event_type, aggregate_type, aggregate_id, sequence, payload in rows:
            pipe.publish(
                CHANNEL_PREFIX + event_type,
                encode(event_id, event_type, aggregate_type, aggregate_id, sequence, payload),
            )
        await pipe.execute()


# -- what is measured -------------------------------------------------------------------------------
async def publisher_drain(sandbox: Sandbox, publishers: int = 1) -> int:
    options = publisher_options(max_events=BATCH, stream=False)
    workers = [OutboxPublisher(sandbox, options, name=f"bench-{i}") for i in range(publishers)]
    done = await asyncio.gather(*(w.drain() for w in workers))
    return sum(done)


async def course_drain() -> int:
    """The course's own loop, as a notebook or a script calls it: through the default context."""
    stats = await event_publisher(interval_seconds=0, max_events=BATCH, stream=False)
    return stats.published


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


async def timed(sandbox: Sandbox, n: int, drain: Callable[[], Awaitable[int]], *, keep: bool = False) -> float:
    """Seed ``n`` events, drain them, return events per second (checking every one was published)."""
    await seed(sandbox.engine, sandbox.schema, n, keep=keep)
    started = time.perf_counter()
    done = await drain()
    elapsed = time.perf_counter() - started
    if done != n:
        raise AssertionError(f"drained {done} of {n}")
    return n / elapsed


# -- mode: drain (in a sandbox) ---------------------------------------------------------------------
def measure_drain(kind: str, events: int, loop_events: int, runs: int) -> dict[str, float]:
    backends = Backends.build(settings_for(kind) if kind == "services" else Settings())
    sandbox = backends.open_sandbox()
    pg = sandbox.schema is not None
    variants: dict[str, tuple[int, Callable[[], Awaitable[int]]]] = {
        "publisher": (events, lambda: publisher_drain(sandbox)),
        "floor": (events, floor_of(sandbox, backends.settings.database_url)),
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


def print_drain(events: int, loop_events: int, runs: int, kinds: list[str]) -> None:
    print(f"\n**drain** · {events:,} events (one-at-a-time loop: {loop_events:,}), median of {runs} runs\n")
    print(
        "| backend | publisher ev/s | floor ev/s | publisher ÷ floor | one at a time ev/s | publisher ÷ loop "
        "| 2 publishers ev/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind in kinds:
        r = measure_drain(kind, events, loop_events, runs)
        two = f"{r['2 publishers']:,.0f}" if "2 publishers" in r else "—"
        print(
            f"| {NAMES[kind]} | {r['publisher']:,.0f} | {r['floor']:,.0f} | {r['publisher'] / r['floor']:.2f}× "
            f"| {r['one at a time']:,.0f} | {r['publisher'] / r['one at a time']:.0f}× | {two} |"
        )


# -- modes: course and history (the default context) --------------------------------------------------
@contextmanager
def default_context_env(kind: str) -> Iterator[tuple[str | None, str | None]]:
    """The environment a script has: no URLs (embedded), or a fresh PostgreSQL database of its own and Redis.

    Yields the default context's database URL, and a second fresh database's, where the floor is
    measured on an empty table while the first holds history (both ``None`` when embedded).
    """
    saved = {k: os.environ.pop(k, None) for k in ("DATABASE_URL", "REDIS_URL")}
    names = [f"plab_bench_{uuid.uuid4().hex[:8]}", f"plab_bench_{uuid.uuid4().hex[:8]}"]
    urls = [make_url(PG_URL).set(database=n).render_as_string(hide_password=False) for n in names]
    try:
        if kind == "services":
            for name in names:
                asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            os.environ.update(DATABASE_URL=urls[0], REDIS_URL=REDIS_URL)
            yield urls[0], urls[1]
        else:
            yield None, None
    finally:
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
        os.environ.update({k: v for k, v in saved.items() if v is not None})
        if kind == "services":
            for name in names:
                asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def second_sandbox(url: str | None, folder: Path) -> Sandbox:
    """A second, empty outbox on this loop (PostgreSQL: the second database; SQLite: a file of its own)."""
    settings = Settings(database_url=url, redis_url=os.environ.get("REDIS_URL"))
    backends, engine = Backends.on_current_loop(settings, folder / "lab.db")
    sandbox = Sandbox(backends, "bench-fresh", engine, directory=None if url else folder)
    await sandbox.migrate()
    return sandbox


def measure_course(kind: str, events: int, history: int, runs: int) -> dict[str, float]:
    """``event_publisher()`` through the default context, fresh and (``history`` > 0) after a drained history.

    While the default context's table holds the history, the fresh floor is measured again, in
    the same rounds, on a second empty outbox: every ratio compares figures taken side by side.
    """
    with default_context_env(kind) as (url, fresh_url), tempfile.TemporaryDirectory() as folder:

        async def rounds() -> dict[str, list[float]]:
            sandbox = default_sandbox()  # the script's own loop: no sandbox bound, the default context
            await sandbox.migrate()
            floor = floor_of(sandbox, url)
            found: dict[str, list[float]] = {"course": [], "floor": []}
            for _ in range(runs):
                found["course"].append(await timed(sandbox, events, course_drain))
                found["floor"].append(await timed(sandbox, events, floor))
            if not history:
                return found
            await seed(sandbox.engine, sandbox.schema, history)  # the history, drained by the course's loop
            if await course_drain() != history:
                raise AssertionError("the history did not drain")
            fresh = await second_sandbox(fresh_url, Path(folder))
            fresh_floor = floor_of(fresh, fresh_url)
            found |= {"course with history": [], "floor with history": [], "fresh floor": []}
            try:
                for _ in range(runs):
                    found["course with history"].append(await timed(sandbox, events, course_drain, keep=True))
                    found["floor with history"].append(await timed(sandbox, events, floor, keep=True))
                    found["fresh floor"].append(await timed(fresh, events, fresh_floor))
            finally:
                await fresh.engine.dispose()
                await fresh.host.redis.aclose()
            return found

        found = asyncio.run(rounds())
    return {name: statistics.median(rates) for name, rates in found.items()}


def print_course(kinds: list[str], events: int, history: int, runs: int) -> None:
    """The fresh table and, if ``history``, the table after it, for each backend (one run for both)."""
    found = {kind: measure_course(kind, events, history, runs) for kind in kinds}
    print(
        f"\n**event_publisher() through the default context** on a fresh database · {events:,} events, "
        f"median of {runs}\n"
    )
    print("| backend | floor ev/s | event_publisher() ev/s | ÷ floor |")
    print("|---|---|---|---|")
    for kind, r in found.items():
        print(f"| {NAMES[kind]} | {r['floor']:,.0f} | {r['course']:,.0f} | {r['course'] / r['floor']:.2f}× |")
    if history:
        print(
            f"\n**event_publisher() through the default context** with {history:,} events of drained history "
            f"(no VACUUM) · {events:,} events, median of {runs}\n"
        )
        print(
            "| backend | fresh floor ev/s | event_publisher() ev/s | ÷ fresh floor | floor with history ev/s | ÷ it |"
        )
        print("|---|---|---|---|---|---|")
        for kind, r in found.items():
            course, floor, aged = r["course with history"], r["fresh floor"], r["floor with history"]
            print(
                f"| {NAMES[kind]} | {floor:,.0f} | {course:,.0f} | {course / floor:.2f}× | {aged:,.0f} "
                f"| {course / aged:.2f}× |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("drain", "course", "history", "all"), default="all")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--loop-events", type=int, default=2_000, help="events for the one-at-a-time loop")
    parser.add_argument("--history", type=int, default=50_000, help="drained events already in the table")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    kinds = backend_kinds()
    if args.mode in ("drain", "all"):
        print_drain(args.events, args.loop_events, args.runs, kinds)
    if args.mode != "drain":
        history = 0 if args.mode == "course" else args.history
        print_course(kinds, args.events, history, args.runs)


if __name__ == "__main__":
    main()
