"""The outbox's repository: an event is added inside the caller's transaction, and a batch is
marked published with one real UPDATE.

Writing the event in the same transaction as the business change is the whole point of the
outbox: both rows commit together or neither does. Publishing happens later, elsewhere
(``source.labs.outbox``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, DateTime, String, Update, any_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from source.domain.errors import InvalidInput
from source.domain.models import DomainEvent

#: The largest payload an event may carry, as JSON text (events announce; they do not ship files).
MAX_PAYLOAD_BYTES = 16_384
#: Event and aggregate type names: they become Redis channel names, so letters, digits and ``._-``.
TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")


def validate_event(event_type: str, aggregate_type: str, aggregate_id: str, payload: Any) -> dict[str, Any]:
    """Check an event before it is written; returns the payload. Raises :class:`InvalidInput`."""
    for label, name in (("event type", event_type), ("aggregate type", aggregate_type)):
        if not isinstance(name, str) or not TYPE_NAME.fullmatch(name):
            raise InvalidInput(
                f"The {label} {name!r} cannot be used: it names a Redis channel, so it must start with a letter "
                "and hold only letters, digits, '.', '_' or '-' (at most 100)."
            )
    if not isinstance(aggregate_id, str) or not 0 < len(aggregate_id) <= 36 or not aggregate_id.isprintable():
        raise InvalidInput(f"The aggregate id {aggregate_id!r} must be 1 to 36 printable characters (a UUID fits).")
    if not isinstance(payload, dict):
        raise InvalidInput(f"An event's payload must be a JSON object (a dict), not {type(payload).__name__}.")
    try:
        text = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"The payload cannot be written as JSON ({exc}). Use strings, numbers, booleans, lists and dicts; "
            "turn dates into ISO strings. Nothing was written."
        ) from None
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"The payload is {len(text.encode()):,} bytes as JSON; an event may carry at most 16 KB.")
    return payload


def mark_published_statement(dialect: str) -> Update:
    """``UPDATE domain_events SET status='published' … WHERE id = ANY(:ids)``: one statement per batch.

    On PostgreSQL the ids travel as one array parameter (the statement text is the same for
    every batch size, so the server reuses its plan); elsewhere as an expanding ``IN`` list.
    Only pending rows flip, so the number of rows changed says how many were really marked.
    Parameters: ``ids``, and ``publisher`` / ``lease_until`` (who held the claim; may be None).
    """
    if dialect == "postgresql":
        matches = DomainEvent.id == any_(bindparam("ids", type_=ARRAY(String(36))))
    else:
        matches = DomainEvent.id.in_(bindparam("ids", expanding=True))
    return (
        update(DomainEvent)
        .where(matches, DomainEvent.status == "pending")
        .values(
            status="published",
            published_at=func.now(),
            claimed_by=bindparam("publisher", type_=String(64)),
            lease_until=bindparam("lease_until", type_=DateTime(timezone=True)),
        )
        .execution_options(synchronize_session=False)
    )


class DomainEventRepository:
    """Data access for the outbox. It never commits, except :meth:`mark_as_published` (see there)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: DomainEvent) -> DomainEvent:
        """Add ``event`` to the caller's transaction and flush it (the INSERT runs; no commit)."""
        self.stage(event)
        await self.session.flush()
        return event

    def stage(self, event: DomainEvent) -> DomainEvent:
        """Check ``event`` and add it to the caller's transaction unflushed: the caller's next flush
        sends its INSERT together with the business row's (one flush, no commit)."""
        validate_event(event.event_type, event.aggregate_type, event.aggregate_id, event.payload)
        event.status = event.status or "pending"
        self.session.add(event)
        return event

    async def record(self, event_type: str, aggregate_type: str, aggregate_id: str, payload: Any) -> DomainEvent:
        """Shorthand used by the write paths: a new pending event for one aggregate."""
        return await self.add(
            DomainEvent(
                event_type=str(event_type), aggregate_type=aggregate_type, aggregate_id=aggregate_id, payload=payload
            )
        )

    async def get(self, event_id: str) -> DomainEvent | None:
        return await self.session.get(DomainEvent, event_id)

    async def get_pending_events(self, limit: int = 100) -> Sequence[DomainEvent]:
        """Pending events, oldest first (by ``sequence``: ``created_at`` ties within a transaction)."""
        result = await self.session.execute(
            select(DomainEvent)
            .where(DomainEvent.status == "pending")
            .order_by(DomainEvent.sequence)
            .limit(max(1, min(int(limit), 1000)))
        )
        return result.scalars().all()

    async def mark_as_published(self, event_ids: Sequence[str]) -> int:
        """Mark these events published with one UPDATE and commit; returns how many changed.

        As in the course, this commits: marking is the publisher's whole unit of work. (The
        publisher in Lab 5 runs the same statement inside its claim's transaction instead.)
        """
        if not event_ids:
            return 0
        dialect = self.session.get_bind().dialect.name
        params = {"ids": list(event_ids), "publisher": None, "lease_until": None}
        result = await self.session.execute(mark_published_statement(dialect), params)
        await self.session.commit()
        return int(getattr(result, "rowcount", 0) or 0)

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(DomainEvent.status, func.count()).group_by(DomainEvent.status).order_by(DomainEvent.status)
        )
        return {str(status): int(n) for status, n in rows.all()}
