"""The dead letter: events whose attempts ran out wait as ``failed`` until someone requeues or skips them.

While it waits there, a dead letter keeps its place in its aggregate's line: the later
events of the same aggregate are not claimed (the page shows them as "waiting behind a dead
letter"), because a consumer that applies them first would apply them out of order. Requeued,
it is pending again with its own ``sequence``, so it goes out first and its successors after
it. Skipped (an explicit decision: this event will never be published), it steps out of the
line and the ones behind it go.
"""

from __future__ import annotations

from sqlalchemy import select, update

from source.domain.errors import InvalidInput, NotFound
from source.domain.models import DomainEvent
from source.labs.outbox.claim import status_is
from source.labs.outbox.inputs import event_id as parse_event_id
from source.platform.session import get_session

_REQUEUE = dict(status="pending", attempts=0, next_attempt_at=None)


async def requeue(event_id: str) -> str:
    """Put one failed event back in the queue with fresh attempts; returns its id."""
    return await _leave_dead_letter(event_id, _REQUEUE, "requeued")


async def skip(event_id: str) -> str:
    """Give up on one failed event for good (``skipped``): the events behind it go; returns its id."""
    return await _leave_dead_letter(event_id, {"status": "skipped"}, "skipped")


async def _leave_dead_letter(raw_id: str, values: dict[str, object], what: str) -> str:
    event_id = parse_event_id(raw_id)
    async with get_session() as session:
        dead = update(DomainEvent).where(DomainEvent.id == event_id, status_is(DomainEvent.status, "failed"))
        result = await session.execute(dead.values(**values))
        if getattr(result, "rowcount", 0) == 1:
            await session.commit()
            return event_id
        status = await session.scalar(select(DomainEvent.status).where(DomainEvent.id == event_id))
    if status is None:
        raise NotFound(f"No event has the id {event_id}. Nothing was changed.")
    raise InvalidInput(f"Event {event_id} is {status}, not failed: only dead-lettered events can be {what}.")


async def requeue_all_failed() -> int:
    """Every failed event back to pending, in one UPDATE; returns how many.

    Each keeps its ``sequence``, so each aggregate's events still go out in order.
    """
    async with get_session() as session:
        result = await session.execute(
            update(DomainEvent).where(status_is(DomainEvent.status, "failed")).values(**_REQUEUE)
        )
        await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)
