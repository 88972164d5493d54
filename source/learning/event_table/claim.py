"""The publisher's claim query against the learner's table, run for real and EXPLAINed.

"Pending, oldest first, LIMIT n", with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so two
publishers never take the same event (SQLite has no row locks: the clause is left out and
a writer locks the whole file instead).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from source.learning.event_table.design import EventTableDesign
from source.learning.event_table.plan import PlanReading, read_postgres, read_sqlite
from source.platform.context import current_sandbox

CLAIM = 10  # the publisher's batch
SECOND_CLAIM_TIMEOUT_S = 5.0


@dataclass
class Claim:
    sql: str  # as SQLAlchemy compiled it for this database
    got: list[Any]  # ids (or created-at values) of the events claimed, in order
    expected: list[Any]  # the oldest pending sample events, worked out in Python
    ms: float
    second_disjoint: bool | None = None  # PostgreSQL: a concurrent claimer skipped the locked rows


def _comparable(value: Any) -> Any:
    """Timestamps as naive UTC: SQLite hands them back without their time zone."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def claim_statement(table: Table, design: EventTableDesign, limit: int = CLAIM) -> Select[Any]:
    status, created = design.column("status"), design.column("created at")
    if status is None or created is None:
        raise ValueError("a claim needs a status and a created-at column")
    return (
        select(table)
        .where(table.c[status.name] == "pending")
        .order_by(table.c[created.name])
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


async def claim_and_explain(
    conn: AsyncConnection, table: Table, design: EventTableDesign, rows: list[dict[str, Any]]
) -> tuple[Claim | None, PlanReading | None]:
    """Claim a batch as a publisher would (then roll back), and read the plan of that query."""
    status, created = design.column("status"), design.column("created at")
    if status is None or created is None or "pending" not in design.status_values:
        return None, None
    shown = design.column("event id") or created
    stmt = claim_statement(table, design)
    pending = sorted((r for r in rows if r[status.name] == "pending"), key=lambda r: r[created.name])
    expected = [_comparable(r[shown.name]) for r in pending[:CLAIM]]
    postgres = conn.dialect.name == "postgresql"
    async with conn.begin() as trans:
        began = time.perf_counter()
        got = [_comparable(r[shown.name]) for r in (await conn.execute(stmt)).mappings()]
        ms = (time.perf_counter() - began) * 1000
        second = await _second_claimer(stmt, shown.name) if postgres else None
        await trans.rollback()
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    result = Claim(sql=sql, got=got, expected=expected, ms=ms)
    if second is not None:
        result.second_disjoint = bool(second) and not set(second) & set(got)
    pending_only = {f"ix_{design.table}_{n}" for n, i in enumerate(design.indexes) if i.pending_only}
    return result, await _explain(conn, sql, pending_only, status.name)


async def _second_claimer(stmt: Select[Any], column: str) -> list[Any]:
    """Another publisher claiming while the first still holds its rows (PostgreSQL only)."""
    engine = current_sandbox().engine
    async with asyncio.timeout(SECOND_CLAIM_TIMEOUT_S), engine.connect() as other, other.begin() as trans:
        got = [r[column] for r in (await other.execute(stmt)).mappings()]
        await trans.rollback()
    return got


async def _explain(conn: AsyncConnection, sql: str, pending_only: set[str], status_column: str) -> PlanReading:
    """``sql`` was compiled by SQLAlchemy from validated names: no learner text is in it."""
    if conn.dialect.name == "postgresql":
        async with conn.begin() as trans:
            # Ask whether an index *can* serve the claim: at a classroom's thousand rows the
            # planner may prefer reading the whole table, which says nothing about the design.
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            lines = [str(r[0]) for r in await conn.exec_driver_sql("EXPLAIN " + sql)]
            raw = (await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql)).scalar()
            await trans.rollback()
        return read_postgres(json.loads(raw) if isinstance(raw, str) else raw, lines, pending_only, status_column)
    # The comment makes the text unique: Python's sqlite3 caches prepared statements by their
    # text, and a cached EXPLAIN would describe the table this name had before it was re-created.
    fresh = f"EXPLAIN QUERY PLAN {sql} /* {uuid.uuid4().hex} */"
    async with conn.begin() as trans:
        details = [str(r[-1]) for r in await conn.exec_driver_sql(fresh)]  # id, parent, unused, detail
        await trans.rollback()
    return read_sqlite(details, pending_only)
