"""The dead letter: events whose attempts ran out wait as ``failed`` until someone requeues them.

A failed event no longer holds back the later events of its aggregate (it stepped out of
the line). Requeued, it is published after them: a consumer that cares about order reads
the ``sequence`` in the message.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from source.domain.errors import InvalidInput, NotFound
from source.domain.models import DomainEvent
from source.platform.session import get_session

_REQUEUE = dict(status="pending", attempts=0, next_attempt_at=None)


async def requeue(event_id: str) -> str:
    """Put one failed event back in the queue with fresh attempts; returns its id."""
    try:
        event_id = str(uuid.UUID(str(event_id).strip()))
    except ValueError:
        raise InvalidInput(f"{str(event_id)[:60]!r} is not an event id: ids look like 0f8c…-…, a UUID.") from None
    async with get_session() as session:
        result = await session.execute(
            update(DomainEvent).where(DomainEvent.id == event_id, DomainEvent.status == "failed").values(**_REQUEUE)
        )
        if getattr(result, "rowcount", 0) == 1:
            await session.commit()
            return event_id
        status = await session.scalar(select(DomainEvent.status).where(DomainEvent.id == event_id))
    if status is None:
        raise NotFound(f"No event has the id {event_id}. Nothing was changed.")
    raise InvalidInput(f"Event {event_id} is {status}, not failed: only dead-lettered events can be requeued.")


async def requeue_all_failed() -> int:
    """Every failed event back to pending, in one UPDATE; returns how many."""
    async with get_session() as session:
        result = await session.execute(update(DomainEvent).where(DomainEvent.status == "failed").values(**_REQUEUE))
        await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)
