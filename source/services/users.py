"""Users' units of work: create, list, edit and delete users, and give them sample children.

Each function is one transaction through the :class:`UserRepository`, and returns DTOs, so a
page never touches an ORM object outside its session. Lab 1 teaches them; Labs 4 and 5 write
users through them too. After a committed change to a user, :data:`AFTER_WRITE` hears of it:
that is how Lab 4's cache drops the stale copy without this module knowing about caches.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from source.domain.dtos import CascadeReport, ProfileSave, UserCreate, UserRow, UserUpdate
from source.domain.errors import DuplicateEmail, InvalidInput, NotFound
from source.domain.events import DomainEventRepository
from source.domain.limits import CHILDREN_PER_USER, USERS_PER_SANDBOX
from source.domain.models import DomainEvent, EventType, User, new_id
from source.domain.repositories import UserRepository
from source.instruments.query_log import capture_queries
from source.platform.context import current_sandbox
from source.platform.session import get_session
from source.services.samples import sample_airscore, sample_assessment

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

#: What one learner may keep in a sandbox (one limit per resource: ``source/domain/limits.py``).
MAX_USERS = USERS_PER_SANDBOX
MAX_CHILDREN = CHILDREN_PER_USER


#: Called with a user's id after a committed change to that user (the course adds Lab 4's cache invalidation).
AFTER_WRITE: list[Callable[[str], Awaitable[object]]] = []

_turns: weakref.WeakKeyDictionary[Sandbox, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = weakref.WeakKeyDictionary()


def _growing(sandbox: Sandbox) -> asyncio.Lock:
    """The sandbox's turn for a unit of work that adds rows under a cap.

    Counting and inserting are two steps (a create inserts, then counts with its own row):
    twenty clicks arriving together would each count without the others' uncommitted rows,
    and all commit. Every sandbox lives on one event loop (the app's, or a notebook's), so an
    ``asyncio.Lock`` per sandbox and loop makes the pair atomic: one click inserts, counts and
    commits (or rolls back), then the next one starts.
    """
    loop = asyncio.get_running_loop()
    found = _turns.get(sandbox)
    if found is None or found[0] is not loop:
        found = _turns[sandbox] = (loop, asyncio.Lock())
    return found[1]


async def user_changed(user_id: str) -> None:
    """Tell whoever listens (:data:`AFTER_WRITE`) that a user changed; each listener is best effort and bounded."""
    for listener in AFTER_WRITE:
        await listener(user_id)


async def create_user(data: UserCreate) -> UserRow:
    """INSERT a user. A taken email is refused by the UNIQUE index and rolled back whole."""
    return (await create_user_and_newest(data, 0))[0]


async def create_user_and_newest(data: UserCreate, newest: int) -> tuple[UserRow, list[UserRow], int]:
    """INSERT a user and their ``UserCreated`` event, then read the ``newest`` users and the total back.

    One flush sends both INSERTs; the read runs in the same transaction, so it sees the new user and
    counts them against the cap (over it, the whole unit of work rolls back). Returns the new user, the
    newest users (``newest=0``: none, only the count) and how many the sandbox holds now.
    """
    async with _growing(current_sandbox()), get_session() as session:
        repo = UserRepository(session)
        user = User(id=new_id(), **data.model_dump())
        # The outbox (Lab 5): the event commits with the user, or not at all; the user's flush sends it too.
        DomainEventRepository(session).stage(
            DomainEvent(
                event_type=str(EventType.USER_CREATED),
                aggregate_type="User",
                aggregate_id=user.id,
                payload={"user_id": user.id, "email": user.email},
            )
        )
        try:
            await repo.create(user)
        except IntegrityError:
            await session.rollback()
            kept = await repo.get_by_email(data.email)
            intact = (
                f" It still reads: name **{kept.name}**, created {kept.created_at:%Y-%m-%d %H:%M:%S}." if kept else ""
            )
            raise DuplicateEmail(
                f"A user with the email {data.email} already exists. The database's UNIQUE index refused "
                f"the second row and the transaction was rolled back: nothing was lost.{intact}"
            ) from None
        found, total = await repo.list_newest(newest) if newest else ([], await repo.count())
        if total > MAX_USERS:  # counted with the new user, under the sandbox's turn: nobody else added one
            await session.rollback()
            raise InvalidInput(
                f"Your sandbox already holds {MAX_USERS:,} users, the most a sandbox may hold. "
                "Delete some, or reset your sandbox from the sidebar."
            )
        await session.commit()
        # No refresh: the INSERT returned the timestamps the database wrote (RETURNING created_at, updated_at).
        return UserRow.model_validate(user), [UserRow.model_validate(u) for u in found], total


async def newest_users(limit: int, offset: int = 0) -> tuple[list[UserRow], int]:
    """One page of users, newest first, and how many the sandbox holds: one statement, however many users."""
    async with get_session() as session:
        found, total = await UserRepository(session).list_newest(limit, offset)
        return [UserRow.model_validate(u) for u in found], total


async def get_user(user_id: str) -> UserRow | None:
    async with get_session() as session:
        found = await UserRepository(session).get_by_id(user_id)
        return UserRow.model_validate(found) if found is not None else None


async def list_users(limit: int = MAX_USERS) -> list[UserRow]:
    async with get_session() as session:
        return [UserRow.model_validate(u) for u in await UserRepository(session).list(limit)]


async def update_user(user_id: str, data: UserUpdate) -> UserRow:
    """UPDATE a user's profile; ``updated_at`` is moved by the column's ``onupdate``."""
    async with get_session() as session:
        repo = UserRepository(session)
        user = await repo.get_by_id(user_id)
        if user is None:
            raise NotFound(f"No user has the id {user_id} (it may have been deleted).")
        for field, value in data.model_dump().items():
            setattr(user, field, value)
        if session.is_modified(user):  # the outbox (Lab 5): an event only for a real change
            await DomainEventRepository(session).record(
                EventType.USER_UPDATED, "User", user.id, {"user_id": user.id, **data.model_dump()}
            )
        await session.commit()
        await session.refresh(user)  # read back the timestamp the database wrote
    await user_changed(user_id)  # a cached copy is stale now
    return UserRow.model_validate(user)


async def save_profile(user_id: str, data: UserUpdate) -> ProfileSave:
    """:func:`update_user`, with the UPDATE statements the database received counted.

    The unit of work sets every field; SQLAlchemy compares them with the loaded values and
    sends an UPDATE only if one really changed. The query recorder shows whether it did.
    """
    async with capture_queries(current_sandbox().engine) as log:
        row = await update_user(user_id, data)
    updates = [s for s in log.statements if s.startswith("UPDATE")]
    return ProfileSave(row=row, updates=updates)


async def delete_user(user_id: str) -> CascadeReport:
    """DELETE a user; the ORM cascade removes their assessments and scores first.

    The counts are measured: children counted before the delete, and again after it.
    """
    sandbox = current_sandbox()
    async with get_session() as session:
        repo = UserRepository(session)
        user = await repo.get_by_id(user_id)
        if user is None:
            raise NotFound(f"No user has the id {user_id} (it may have been deleted already).")
        email = user.email
        before = await repo.count_children(user_id)
        async with capture_queries(sandbox.engine) as log:
            await repo.delete(user)
        await session.commit()
        after = await repo.count_children(user_id)
    await user_changed(user_id)  # a cached copy is stale now
    return CascadeReport(
        user_email=email,
        assessments_removed=before[0] - after[0],
        scores_removed=before[1] - after[1],
        statements=log.statements,
    )


async def add_sample_children(user_id: str, assessments: int = 1, scores: int = 1) -> tuple[int, int]:
    """Give a user assessments and scores, so the cascade has something to remove."""
    async with _growing(current_sandbox()), get_session() as session:  # counted and added in one turn
        repo = UserRepository(session)
        if await repo.get_by_id(user_id) is None:
            raise NotFound(f"No user has the id {user_id}.")
        have = await repo.count_children(user_id)
        if have[0] + assessments > MAX_CHILDREN or have[1] + scores > MAX_CHILDREN:
            raise InvalidInput(
                f"A user may have at most {MAX_CHILDREN} assessments and {MAX_CHILDREN} scores here "
                f"(this one has {have[0]} and {have[1]}). Plenty to watch a cascade at work."
            )
        components = ("fluency", "domain", "adaptive")  # carry on the cycle where the last click stopped
        session.add_all([sample_assessment(user_id, components[i % 3]) for i in range(have[0], have[0] + assessments)])
        session.add_all([sample_airscore(user_id, air_score=round(60 + 7.5 * (i % 5), 1)) for i in range(scores)])
        await session.commit()  # every child in one transaction: all of them, or none
        now = await repo.count_children(user_id)  # counted again, not added up
    if scores:
        await user_changed(user_id)  # a new latest score
    return now
