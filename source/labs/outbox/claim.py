"""Claiming a batch of the outbox, and recording how it ended, in SQLAlchemy Core.

The claim selects only the columns a message needs (no ORM objects: building them cost
about two thirds of the drain's time). It takes pending events in ``sequence`` order that
are due (``next_attempt_at`` passed or unset) and are the **oldest pending event of their
aggregate**: a later event of the same aggregate is not claimable until the earlier one is
published, so one aggregate's events go out in order even with several publishers.

On PostgreSQL ``FOR UPDATE SKIP LOCKED`` locks the claimed rows until the claim's
transaction ends, and other publishers skip them instead of waiting. SQLite has no row
locks: ``BEGIN IMMEDIATE`` takes the database's single write lock up front, so publishers
take turns (a second one waits for the first to commit, then sees the rows already marked).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Row, Select, Text, Update, bindparam, cast, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from source.domain.models import DomainEvent
from source.labs.outbox.backoff import next_attempt_at
from source.labs.outbox.options import PublisherOptions

EVENTS = DomainEvent.__table__
OLDER = EVENTS.alias("older")
#: Where an error message is cut before it is stored (``last_error`` is VARCHAR(500)).
ERROR_CHARS = 480


def oldest_pending_of_aggregate(aggregate_id: Any) -> Any:
    """The sequence of the oldest pending event of an aggregate, as a correlated subquery.

    Written as ``ORDER BY sequence LIMIT 1`` (not ``NOT EXISTS``) so that the database answers
    it per candidate row from the index on ``(aggregate_id, status, sequence)``: one short
    index probe, whatever the planner believes about the table's size.
    """
    return (
        select(OLDER.c.sequence)
        .where(OLDER.c.aggregate_id == aggregate_id, OLDER.c.status == "pending")
        .order_by(OLDER.c.sequence)
        .limit(1)
        .scalar_subquery()
    )


def claim_statement(dialect: str, limit: int) -> Select[Any]:
    """The claim: the next ``limit`` due events, each the oldest pending one of its aggregate."""
    c = EVENTS.c
    stmt = (
        select(c.id, c.event_type, c.aggregate_type, c.aggregate_id, c.sequence, c.attempts, cast(c.payload, Text))
        .where(
            c.status == "pending",
            or_(c.next_attempt_at.is_(None), c.next_attempt_at <= bindparam("now", type_=DateTime(timezone=True))),
            c.sequence == oldest_pending_of_aggregate(c.aggregate_id),
        )
        .order_by(c.sequence)
        .limit(limit)
    )
    if dialect == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=EVENTS)
    return stmt


async def begin_claim(conn: AsyncConnection, lease_seconds: float) -> None:
    """Open the claim's transaction the way each database needs it (see the module's docstring)."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        await conn.begin()
        if conn.dialect.name == "postgresql":
            # The lease, enforced by the server: a publisher that hangs (or is frozen) while it
            # holds the claim has its transaction ended, its locks freed and the batch released.
            await conn.exec_driver_sql(f"SET LOCAL idle_in_transaction_session_timeout = {int(lease_seconds * 1000)}")


def failure_statement() -> Update:
    """One row's new retry state; run with many parameter sets (one statement per batch)."""
    return (
        update(DomainEvent)
        .where(DomainEvent.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            attempts=bindparam("b_attempts"),
            last_error=bindparam("b_error"),
            next_attempt_at=bindparam("b_next"),
            claimed_by=bindparam("b_by"),
            lease_until=bindparam("b_lease"),
        )
    )


async def record_failure(
    conn: AsyncConnection,
    rows: Sequence[Row[Any]],
    error: str,
    options: PublisherOptions,
    claim: tuple[str, datetime],
) -> int:
    """attempts + 1 and a backoff for each failed event; dead letter (``failed``) when they ran out.

    Returns how many were dead-lettered.
    """
    publisher, lease_until = claim
    params = []
    dead = 0
    for row in rows:
        attempts = int(row.attempts) + 1
        gave_up = attempts >= options.max_attempts
        dead += gave_up
        params.append(
            {
                "b_id": row.id,
                "b_status": "failed" if gave_up else "pending",
                "b_attempts": attempts,
                "b_error": error[:ERROR_CHARS],
                "b_next": None if gave_up else next_attempt_at(attempts, options.backoff_base, options.backoff_cap),
                "b_by": publisher,
                "b_lease": lease_until,
            }
        )
    await conn.execute(failure_statement(), params)
    return dead
