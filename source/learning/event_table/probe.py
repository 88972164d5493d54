"""The real check: create the learner's table in their sandbox, write events, claim them, read the plan.

Every probe that could leave a stray row (a duplicate id, a NULL aggregate, a typo in a
status) runs in its own transaction and is rolled back, so the claim sees exactly the
sample events. Only the sandbox's own engine is used; the table stays until the next check
or a reset, so the learner can look at it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import MetaData, Table, inspect, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from source.domain.errors import InvalidInput
from source.domain.models import Base
from source.learning import store
from source.learning.event_table import build, claim
from source.learning.event_table.claim import Claim
from source.learning.event_table.design import TEXT, WHOLE, ColumnDesign, EventTableDesign
from source.learning.event_table.plan import PlanReading
from source.platform.context import current_sandbox

EVENTS = 1000  # sample events written per check
PENDING_EVERY = 20  # one in 20 is still pending: 50 pending among 950 published
AGGREGATES = 10
EVENT_TYPES = ("score.calculated", "assessment.completed", "user.created")
TABLES_KEY = "exercise:tables"  # the tables this exercise created in the sandbox
#: Left to the table's defaults when the learner gave one (or NULL is allowed), as an application would.
LEFT_TO_DEFAULTS = ("attempts", "last error")


@dataclass
class Facts:
    """What happened when the design met real events. ``None`` means "could not be tried"."""

    ddl: list[str] = field(default_factory=list)
    inserted: int = 0
    insert_ms: float = 0.0
    refused: str | None = None
    duplicate_id_refused: bool | None = None
    null_aggregate_refused: bool | None = None
    status_default: str | None = None  # "pending", "NULL", "refused" or another value
    created_default: str | None = None  # "set", "NULL" or "refused"
    attempts_after_retry: str | None = None  # "1", "NULL", "refused"
    typo_refused: bool | None = None
    claim: Claim | None = None
    plan: PlanReading | None = None


def _value(col: ColumnDesign, i: int, status: str, start: datetime) -> Any:  # noqa: PLR0911
    """A plausible value for column ``col`` of sample event ``i``."""
    role, kind = col.role, col.type
    if role == "event id":
        return str(uuid.uuid4()) if kind in TEXT else i + 1
    if role == "aggregate id":
        return f"user-{i % AGGREGATES:04d}" if kind in TEXT else i % AGGREGATES + 1
    if role == "event type":
        return EVENT_TYPES[i % len(EVENT_TYPES)]
    if role == "status":
        return status
    if role in ("created at", "published at"):
        moment = start + timedelta(seconds=i, milliseconds=500 if role == "published at" else 0)
        return None if role == "published at" and status == "pending" else (moment if kind == "timestamp" else i + 1)
    if role == "payload":
        body = {"event": i, "air_score": round(60 + (i % 40), 1)}
        return body if kind == "JSON" else str(body)
    if role == "attempts":
        return 0
    return {"JSON": {}, "boolean": False, "timestamp": start}.get(kind, i if kind in WHOLE else f"v{i}")


def sample_rows(design: EventTableDesign, start: datetime, count: int = EVENTS, first: int = 0) -> list[dict[str, Any]]:
    others = [v for v in design.status_values if v != "pending"] or ["pending"]
    has_pending = "pending" in design.status_values
    rows = []
    for i in range(first, first + count):
        status = "pending" if has_pending and i % PENDING_EVERY == PENDING_EVERY // 2 else others[0]
        row = {c.name: _value(c, i, status, start) for c in design.columns}
        for c in design.columns:
            if c.role in LEFT_TO_DEFAULTS and (c.default != "none" or c.nullable):
                del row[c.name]
        rows.append(row)
    return rows


async def _refused(conn: AsyncConnection, table: Table, row: dict[str, Any]) -> bool:
    """Try one INSERT in a transaction that is always rolled back: was it refused?"""
    async with conn.begin() as trans:
        try:
            await conn.execute(table.insert(), row)
            return False
        except (IntegrityError, DBAPIError):
            return True
        finally:
            await trans.rollback()


async def _prepare(conn: AsyncConnection, design: EventTableDesign, schema: str | None) -> Table:
    """Drop this exercise's earlier tables, refuse a name the sandbox already uses, create the new one."""
    sandbox = current_sandbox()
    redis, key = store.client(sandbox), TABLES_KEY
    await store.ready(sandbox)
    async with asyncio.timeout(store.REDIS_TIMEOUT_S):
        mine = set(await redis.smembers(key))
    existing = set(await conn.run_sync(lambda c: inspect(c).get_table_names(schema=schema)))
    if design.table in Base.metadata.tables or design.table == "alembic_version" or design.table in existing - mine:
        raise InvalidInput(f"'{design.table}' is already one of the labs' tables in your sandbox: pick another name.")
    for name in mine & existing:
        await conn.run_sync(Table(name, MetaData(schema=schema)).drop)
    table = build.to_table(design, schema)
    await conn.run_sync(table.create)
    async with asyncio.timeout(store.REDIS_TIMEOUT_S):
        await redis.delete(key)
        await redis.sadd(key, design.table)
    return table


async def run_probes(design: EventTableDesign) -> Facts:
    """Create the table and put it through what a publisher and its consumers will do to it."""
    sandbox = current_sandbox()
    facts = Facts()
    start = datetime.now(UTC) - timedelta(days=1)
    async with sandbox.engine.connect() as conn:
        async with conn.begin():
            table = await _prepare(conn, design, sandbox.schema)
        facts.ddl = build.ddl(table, conn.dialect)
        rows = sample_rows(design, start)
        began = time.perf_counter()
        try:
            async with conn.begin():
                for batch in range(0, len(rows), 250):
                    await conn.execute(table.insert(), rows[batch : batch + 250])
        except (IntegrityError, DBAPIError) as exc:
            facts.refused = str(exc.orig).strip().splitlines()[0][:300]
            return facts
        facts.insert_ms = (time.perf_counter() - began) * 1000
        facts.inserted = len(rows)
        await _row_probes(conn, table, design, facts, start)
        facts.claim, facts.plan = await claim.claim_and_explain(conn, table, design, rows)
    return facts


async def _row_probes(
    conn: AsyncConnection, table: Table, design: EventTableDesign, facts: Facts, start: datetime
) -> None:
    fresh = sample_rows(design, start, count=1, first=EVENTS + 1)[0]
    if (id_col := design.column("event id")) is not None:
        async with conn.begin():
            taken = (await conn.execute(select(table.c[id_col.name]).limit(1))).scalar()
        copy = sample_rows(design, start, count=1, first=EVENTS + 2)[0] | {id_col.name: taken}
        facts.duplicate_id_refused = await _refused(conn, table, copy)
    if (agg := design.column("aggregate id")) is not None:
        facts.null_aggregate_refused = await _refused(conn, table, fresh | {agg.name: None})
    if (status := design.column("status")) is not None:
        facts.typo_refused = await _refused(conn, table, fresh | {status.name: "publishd"})
    facts.status_default, facts.created_default = await _defaults(conn, table, design, fresh)
    facts.attempts_after_retry = await _retry(conn, table, design)


async def _defaults(
    conn: AsyncConnection, table: Table, design: EventTableDesign, fresh: dict[str, Any]
) -> tuple[str | None, str | None]:
    """Write an event the way a hurried application would: without status or created time."""
    status, created = design.column("status"), design.column("created at")
    minimal = {k: v for k, v in fresh.items() if k not in {c.name for c in (status, created) if c is not None}}
    async with conn.begin() as trans:
        try:
            result = await conn.execute(table.insert().returning(*table.c), minimal)
            row = result.mappings().one()
        except (IntegrityError, DBAPIError):
            return ("refused" if status else None), ("refused" if created else None)
        finally:
            await trans.rollback()
    status_seen = None if status is None else ("NULL" if row[status.name] is None else str(row[status.name]))
    created_seen = None if created is None else ("NULL" if row[created.name] is None else "set")
    return status_seen, created_seen


async def _retry(conn: AsyncConnection, table: Table, design: EventTableDesign) -> str | None:
    """What a publisher does after a failed send: attempts + 1, and the error kept."""
    attempts, error = design.column("attempts"), design.column("last error")
    if attempts is None:
        return None
    primary = list(table.primary_key.columns)
    key = primary[0] if primary else table.c[design.columns[0].name]
    async with conn.begin() as trans:
        try:
            target = (await conn.execute(select(key).limit(1))).scalar()
            change: dict[str, Any] = {attempts.name: table.c[attempts.name] + 1}
            if error is not None:
                change[error.name] = "broker timeout"
            await conn.execute(update(table).where(key == target).values(change))
            after = (await conn.execute(select(table.c[attempts.name]).where(key == target))).scalar()
        except (IntegrityError, DBAPIError):
            return "refused"
        finally:
            await trans.rollback()
    return "NULL" if after is None else str(after)
