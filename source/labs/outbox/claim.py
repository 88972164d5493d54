"""Claiming a batch of the outbox, and recording how it ended, in SQLAlchemy Core.

The claim selects only the columns a message needs (no ORM objects: building them cost
about two thirds of the drain's time). It takes pending events in ``sequence`` order that
are due (``next_attempt_at`` passed or unset) and are the **oldest event of their aggregate
not yet out**: pending, or waiting in the dead letter. A later event of the same aggregate is
not claimable until the earlier one is published (or explicitly skipped), so one aggregate's
events go out in order, with several publishers, across a crash, and behind a dead letter.

Both lookups run on *partial* indexes (``models.DomainEvent``): only the rows still to
publish are in them, so a claim costs about the same with 50,000 published events of history
as on an empty table (until vacuum, the entries a drain left behind are still there, marked
dead by the first scan that meets them and skipped after). The statuses are written into the
SQL as literals, not bound parameters: the database may use a partial index only when it can
see that the query's condition is the index's own.

On PostgreSQL ``FOR UPDATE SKIP LOCKED`` locks the claimed rows until the claim's
transaction ends, and other publishers skip them instead of waiting. SQLite has no row
locks: ``BEGIN IMMEDIATE`` takes the database's single write lock up front, so publishers
take turns (a second one waits for the first to commit, then sees the rows already marked).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Row,
    Select,
    Text,
    Update,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from source.domain.models import DomainEvent
from source.labs.outbox.backoff import next_attempt_at
from source.labs.outbox.options import PublisherOptions

EVENTS = DomainEvent.__table__
OLDER = EVENTS.alias("older")
#: Where an error message is cut before it is stored (``last_error`` is VARCHAR(500)).
ERROR_CHARS = 480
#: Every status an event may have: waiting, out, in the dead letter, or stepped over on purpose.
STATUSES = ("pending", "published", "failed", "skipped")
#: Not out yet: an event of these holds back the later events of its aggregate.
UNPUBLISHED = ("pending", "failed")


def status_literal(status: str) -> ColumnElement[Any]:
    """``'pending'`` written into the statement (see the module's docstring: partial indexes)."""
    if status not in STATUSES:
        raise ValueError(f"unknown outbox status {status!r}")
    return literal_column(f"'{status}'")


def status_is(column: Any, status: str) -> ColumnElement[bool]:
    return column == status_literal(status)  # type: ignore[no-any-return]


def unpublished(column: Any) -> ColumnElement[bool]:
    return column.in_([status_literal(s) for s in UNPUBLISHED])  # type: ignore[no-any-return]


def an_older_event_waits(events: Any) -> ColumnElement[bool]:
    """Whether an older event of the same aggregate is not out yet (pending, or in the dead letter).

    ``NOT`` this is the order rule. It is a scalar subquery, ``(SELECT 1 … LIMIT 1) IS NOT NULL``,
    rather than ``EXISTS``: the database may turn an ``EXISTS`` into a join and, without fresh
    statistics, choose one that reads every pending row for each candidate; a scalar subquery is
    always answered per candidate, from the partial index ``(aggregate_id, sequence)``. For the
    usual candidate (the oldest of its aggregate) the index range below its own sequence is
    empty: one probe, and no row read.
    """
    older = (
        select(literal_column("1"))
        .where(
            OLDER.c.aggregate_id == events.c.aggregate_id,
            unpublished(OLDER.c.status),
            OLDER.c.sequence < events.c.sequence,
        )
        .limit(1)
        .scalar_subquery()
    )
    return older.is_not(None)


def lease_for(lease_seconds: float) -> ColumnElement[bool]:
    """PostgreSQL: the claim's lease, set by the claim itself for its transaction (no round trip of its own).

    ``set_config(…, true)`` is ``SET LOCAL``: from this statement on, a transaction that sits idle
    longer than the lease (its publisher hangs, or is frozen, while it holds the claim) is ended
    by the server, its locks freed and the batch released for another publisher. Written as an
    uncorrelated subquery, the database runs it once per claim, before reading a row.
    """
    ms = bindparam("lease_ms", str(int(lease_seconds * 1000)), type_=Text)
    setting = select(func.set_config("idle_in_transaction_session_timeout", ms, True)).scalar_subquery()
    return setting.is_not(None)


def claim_statement(dialect: str, limit: int, lease_seconds: float = 15.0) -> Select[Any]:
    """The claim: the next ``limit`` due events, each the oldest of its aggregate not yet out."""
    c = EVENTS.c
    pending = status_is(c.status, "pending")
    if dialect == "sqlite":
        # Without statistics SQLite takes "pending" for a rare value: it would search the course's
        # (status, created_at) index and sort every pending row. likely() tells it the value is
        # common, so it walks the partial index, where the pending rows are already in order.
        pending = func.likely(pending)
    stmt = (
        select(c.id, c.event_type, c.aggregate_type, c.aggregate_id, c.sequence, c.attempts, cast(c.payload, Text))
        .where(
            pending,
            or_(c.next_attempt_at.is_(None), c.next_attempt_at <= bindparam("now", type_=DateTime(timezone=True))),
            ~an_older_event_waits(EVENTS),
        )
        .order_by(c.sequence)
        .limit(limit)
    )
    if dialect == "postgresql":
        stmt = stmt.where(lease_for(lease_seconds)).with_for_update(skip_locked=True, of=EVENTS)
    return stmt


def behind_a_dead_letter(events: Any = EVENTS) -> ColumnElement[bool]:
    """A pending event whose aggregate has an older event in the dead letter: it waits for a requeue or a skip.

    A scalar subquery, probed per event, for the same reason as :func:`an_older_event_waits`.
    """
    dead = EVENTS.alias("dead")
    older_dead = (
        select(literal_column("1"))
        .where(
            dead.c.aggregate_id == events.c.aggregate_id,
            status_is(dead.c.status, "failed"),
            dead.c.sequence < events.c.sequence,
        )
        .limit(1)
        .scalar_subquery()
    )
    return older_dead.is_not(None)


def publishable_statement() -> Select[Any]:
    """How many pending events will go out without anyone's help (those behind a dead letter will not)."""
    c = EVENTS.c
    return select(func.count()).select_from(EVENTS).where(and_(status_is(c.status, "pending"), ~behind_a_dead_letter()))


async def begin_claim(conn: AsyncConnection) -> None:
    """Open the claim's transaction the way each database needs it (see the module's docstring)."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        await conn.begin()  # on PostgreSQL the claim sets its own lease (:func:`lease_for`)


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
    failed: Sequence[tuple[Row[Any], str]],
    options: PublisherOptions,
    claim: tuple[str, datetime],
) -> int:
    """attempts + 1 and a backoff for each event that failed by its own fault, with its error;
    dead letter (``failed``) when its attempts ran out. Returns how many were dead-lettered.
    """
    publisher, lease_until = claim
    params = []
    dead = 0
    for row, error in failed:
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
