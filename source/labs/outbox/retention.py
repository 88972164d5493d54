"""Retention: published events older than a window are deleted, so the outbox stays small.

Only ``published`` rows go; pending and failed events are never cleaned up (they are the
work still to do). One DELETE statement.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from source.domain.errors import InvalidInput
from source.domain.models import DomainEvent
from source.platform.session import get_session

#: The longest retention window a learner may ask for (30 days, in seconds).
MAX_RETENTION_S = 30 * 24 * 3600


async def cleanup_published(older_than_seconds: float) -> int:
    """Delete published events published more than ``older_than_seconds`` ago; returns how many."""
    try:
        window = float(older_than_seconds)
    except (TypeError, ValueError):
        raise InvalidInput(f"The retention window must be a number of seconds, not {older_than_seconds!r}.") from None
    if not 0 <= window <= MAX_RETENTION_S:
        raise InvalidInput(
            f"The retention window must be between 0 seconds and 30 days ({MAX_RETENTION_S:,} s); got {window:g}."
        )
    cutoff = datetime.now(UTC) - timedelta(seconds=window)
    async with get_session() as session:
        result = await session.execute(
            delete(DomainEvent).where(DomainEvent.status == "published", DomainEvent.published_at <= cutoff)
        )
        await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)
