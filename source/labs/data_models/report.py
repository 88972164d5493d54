"""Lab 1's sentences: what a unit of work did, said with the figures it measured."""

from __future__ import annotations

from datetime import datetime

from source.domain.dtos import ProfileSave, UserRow


def when(value: datetime) -> str:
    """Timestamps as a learner reads them: date, time and milliseconds."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def created(row: UserRow) -> str:
    return f"Created `{row.email}` with id `{row.id}`."


def saved(before: UserRow, save: ProfileSave) -> str:
    """What a save sent, counted by the query recorder, and what it did to ``updated_at``."""
    after = when(save.row.updated_at)
    if not save.updates:
        return (
            f"Saved `{before.email}`: nothing had changed, so SQLAlchemy sent **0 UPDATE statements** "
            f"(counted by the query recorder) and updated_at stayed {after}."
        )
    count = len(save.updates)
    return (
        f"Saved `{before.email}` with **{count} UPDATE statement{'s' if count != 1 else ''}** (counted by the "
        f"query recorder). updated_at: {when(before.updated_at)} → {after}"
    )


def children(email: str, have: tuple[int, int]) -> str:
    return f"{email} now has {have[0]} assessments and {have[1]} scores."
