"""Data to load: the codelab's three sample scores for one user, and N users × M scores in bulk.

Seeding builds plain dictionaries and sends them with Core ``insert()`` as one ``executemany``
per batch: no ORM objects, no per-row round trip. 1,000 users × 5 scores take well under a
second on either backend. Seeded users share an email domain, so they can be removed again
without touching the users a learner made by hand.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from source.domain.errors import InvalidInput, NotFound
from source.domain.limits import USERS_PER_SANDBOX, too_many_users
from source.domain.repositories import UserRepository
from source.platform.jobs import Progress
from source.platform.session import get_session
from source.services.samples import sample_score_parts

MAX_USERS = 2000
MAX_SCORES_PER_USER = 20
#: Seeded users' emails end in ``@`` this domain.
SEED_DOMAIN = "seed.innovateai.com"
#: Users (with their scores) sent per batch: progress moves between batches.
BATCH_USERS = 250
#: The codelab's button adds this many sample scores at a time; a user may keep at most MAX_SAMPLE_SCORES.
SAMPLE_SCORES = 3
MAX_SAMPLE_SCORES = 60
#: The seed's phase once its transaction has committed: a Stop after this point no longer undoes it.
COMMITTED = "Committed; updating the planner's statistics"


class SeedRequest(BaseModel):
    """N users × M scores, bounded so that one learner cannot fill the shared host."""

    users: int = Field(ge=1, le=MAX_USERS)
    scores_per_user: int = Field(ge=0, le=MAX_SCORES_PER_USER)


@dataclass(frozen=True)
class SeedReport:
    users: int
    scores: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return (self.users + self.scores) / self.seconds if self.seconds else 0.0


def _score(user_id: str, rng: random.Random) -> dict[str, object]:
    air = round(rng.uniform(40, 98), 1)
    return {
        "id": str(uuid.uuid4()),
        "user_id": user_id,
        "occupation_code": rng.choice(("SW_ENG", "DATA_SCI", "PM", "UX")),
        "air_score": air,
        "vr_score": round(rng.uniform(0.4, 1), 2),
        "hr_score": round(rng.uniform(0.4, 1), 2),
        "synergy_score": round(rng.uniform(0.4, 1), 2),
        "ci_lower": round(air - 3.5, 1),
        "ci_upper": round(air + 3.5, 1),
        "parameter_version": "v1.2",
        "calculation_metadata": {"model": "deep_eval_v3", "seeded": True},
    }


def _unless_stopped(progress: Progress) -> None:
    """End the seed here, between two statements, if Stop was pressed: leaving the block rolls back.

    Stop asks first and cancels only if the seed has not ended after its runner's grace, because
    cancelling a driver in the middle of a bulk statement is not always prompt: asyncpg may keep
    the statement's connection busy until its command timeout and then raise ``TimeoutError``.
    """
    if progress.stopping:
        raise asyncio.CancelledError


async def seed(request: SeedRequest, progress: Progress | None = None) -> SeedReport:
    """Insert N users × M scores in one transaction: all of it, or (cancelled, failed) none of it."""
    progress = progress or Progress()
    _unless_stopped(progress)
    rng = random.Random(request.users * 100 + request.scores_per_user)  # noqa: S311 - sample data, not secrets
    started = time.perf_counter()
    async with get_session() as session:
        repo = UserRepository(session)
        already = await repo.count_by_email_domain(SEED_DOMAIN)
        if (have := await repo.count()) + request.users > USERS_PER_SANDBOX:
            raise InvalidInput(too_many_users(have, request.users))
        if already:
            raise InvalidInput(
                f"Your sandbox already holds {already:,} seeded users (emails @{SEED_DOMAIN}); nothing was added. "
                "Remove them first to seed a different size."
            )
        progress.begin("Seeding", request.users, "users")
        try:
            for first in range(0, request.users, BATCH_USERS):
                users = [
                    {"id": str(uuid.uuid4()), "email": f"learner{i:04d}@{SEED_DOMAIN}", "name": f"Learner {i:04d}"}
                    for i in range(first, min(first + BATCH_USERS, request.users))
                ]
                scores = [_score(str(u["id"]), rng) for u in users for _ in range(request.scores_per_user)]
                _unless_stopped(progress)
                await repo.bulk_insert_users(users)
                _unless_stopped(progress)
                await repo.bulk_insert_scores(scores)
                progress.done += len(users)
            _unless_stopped(progress)
            await session.commit()
            progress.begin(COMMITTED)
            await repo.refresh_statistics()
        except IntegrityError:
            raise InvalidInput("Another seeding run in your sandbox got there first; nothing was added.") from None
    progress.phase = "Done"
    return SeedReport(request.users, request.users * request.scores_per_user, time.perf_counter() - started)


async def remove_seeded() -> int:
    """Delete the seeded users and their children; hand-made users stay."""
    async with get_session() as session:
        removed = await UserRepository(session).delete_by_email_domain(SEED_DOMAIN)
        await session.commit()
    return removed


async def some_users(limit: int = 5) -> list[tuple[str, str]]:
    """A few users (email, id) to pick from, oldest first."""
    async with get_session() as session:
        return [(u.email, u.id) for u in await UserRepository(session).list(limit)]


async def seeded_count() -> int:
    async with get_session() as session:
        return await UserRepository(session).count_by_email_domain(SEED_DOMAIN)


async def add_sample_scores(user_id: str, count: int = SAMPLE_SCORES) -> int:
    """The codelab's "Add 3 Sample Scores": three AI-R scores for one user; returns their total."""
    async with get_session() as session:
        repo = UserRepository(session)
        if await repo.get_by_id(user_id) is None:
            raise NotFound(f"No user has the id {user_id}. Create the sample users or pick one listed below.")
        have = len(await repo.list_scores_for_user(user_id))
        if have + count > MAX_SAMPLE_SCORES:
            raise InvalidInput(f"This user already has {have} scores; a user may keep {MAX_SAMPLE_SCORES} here.")
        for i in range(count):
            await repo.add_score(
                user_id,
                occupation_code=("SW_ENG", "DATA_SCI", "PM")[i % 3],
                air_score=round(70 + 6.5 * ((have + i) % 5), 1),
                **sample_score_parts(),
            )
        await session.commit()
        return have + count
