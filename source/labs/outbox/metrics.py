"""What the outbox looks like right now: counts, the oldest pending event's age, and the rows.

Measured from the table itself (one GROUP BY), so the numbers hold whichever publisher did
the work; the publishing rate and broker failures come from the running publisher.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import case, func, select

from source.domain.errors import InvalidInput
from source.domain.models import DomainEvent
from source.labs.outbox.claim import EVENTS, STATUSES, behind_a_dead_letter, status_is
from source.platform.session import get_session

__all__ = ["STATUSES", "EventRow", "OutboxMetrics", "list_events", "outbox_metrics"]


class OutboxMetrics(BaseModel):
    pending: int = 0
    due: int = 0  # pending and not waiting for a backoff
    published: int = 0
    failed: int = 0  # the dead letter
    skipped: int = 0  # dead letters given up on, on purpose
    #: Pending, but an older event of the same aggregate waits in the dead letter: they wait behind it.
    behind_dead_letter: int = 0
    attempts: int = 0  # failed tries recorded on events still pending or failed
    oldest_pending_age_s: float | None = None


class EventRow(BaseModel):
    """One outbox row as the page's tables show it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    event_type: str
    aggregate_id: str
    sequence: int
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    published_at: datetime | None
    claimed_by: str | None
    payload: dict[str, Any]
    #: Why a pending event is not going out now: behind a dead letter, or its backoff (None: due).
    waiting: str | None = None


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without a zone; the lab writes them all in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def outbox_metrics() -> OutboxMetrics:
    now = datetime.now(UTC)
    e = DomainEvent
    waiting = case((e.status != "published", e.attempts), else_=0)
    due = case((((e.status == "pending") & ((e.next_attempt_at.is_(None)) | (e.next_attempt_at <= now))), 1), else_=0)
    async with get_session() as session:
        rows = (
            await session.execute(
                select(
                    e.status,
                    func.count(),
                    func.sum(waiting),
                    func.sum(due),
                    func.min(case((e.status == "pending", e.created_at))),
                ).group_by(e.status)
            )
        ).all()
        found = OutboxMetrics()
        for status, count, attempts, due_now, oldest in rows:
            if status in STATUSES:
                setattr(found, str(status), int(count))
            found.attempts += int(attempts or 0)
            found.due += int(due_now or 0)
            if status == "pending" and oldest is not None:
                found.oldest_pending_age_s = max(0.0, (now - (_utc(oldest) or now)).total_seconds())
        if found.failed and found.pending:
            blocked = select(func.count()).select_from(EVENTS).where(status_is(EVENTS.c.status, "pending"))
            found.behind_dead_letter = int(await session.scalar(blocked.where(behind_a_dead_letter())) or 0)
    return found


async def list_events(status: str, limit: int = 50) -> list[EventRow]:
    """The newest ``limit`` events with this status (pending: the next to go, first, with why they wait)."""
    if status not in STATUSES:
        raise InvalidInput(f"Status must be one of {', '.join(STATUSES)}.")
    order = DomainEvent.sequence.asc() if status == "pending" else DomainEvent.sequence.desc()
    blocked = behind_a_dead_letter().label("blocked")
    query = select(DomainEvent, blocked).where(status_is(DomainEvent.status, status)).order_by(order)
    async with get_session() as session:
        result = await session.execute(query.limit(max(1, min(limit, 500))))
        found = [(EventRow.model_validate(event), bool(behind)) for event, behind in result.all()]
    now = datetime.now(UTC)
    rows = []
    for row, behind in found:
        row.created_at = _utc(row.created_at) or row.created_at
        row.published_at = _utc(row.published_at)
        row.next_attempt_at = _utc(row.next_attempt_at)
        if status == "pending":
            row.waiting = _why_waiting(row, behind, now)
        rows.append(row)
    return rows


def _why_waiting(row: EventRow, behind: bool, now: datetime) -> str | None:
    if behind:
        return "waiting behind a dead letter"
    if row.next_attempt_at is not None and row.next_attempt_at > now:
        return f"backoff until {row.next_attempt_at.astimezone():%H:%M:%S}"
    return None
