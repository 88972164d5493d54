"""Lab 2, step 1: migrate the learner's sandbox and create the course's two sample users."""

from __future__ import annotations

from dataclasses import dataclass

from source.platform.session import initialize_db
from source.services.samples import SAMPLE_USERS, create_sample_users


@dataclass(frozen=True)
class SampleUserRow:
    name: str
    email: str
    id: str
    created_now: bool


@dataclass(frozen=True)
class InitReport:
    revision: str | None
    users: list[SampleUserRow]


async def initialise_with_samples() -> InitReport:
    """Migrate the learner's sandbox and create Alex Smith and Jane Doe.

    Both steps are idempotent, so pressing the button twice is harmless: Alembic skips
    migrations already applied, and the UNIQUE email index turns a second insert of the
    same person into "already existed" instead of a duplicate row.
    """
    revision = await initialize_db()
    names = dict(SAMPLE_USERS)
    rows = [
        SampleUserRow(name=names[email], email=email, id=user_id, created_now=created)
        for email, user_id, created in await create_sample_users()
    ]
    return InitReport(revision=revision, users=rows)
