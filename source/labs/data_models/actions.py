"""What Lab 1's buttons do, one coroutine each, on the learner's sandbox, and what each one says.

The units of work themselves live in the service layer (``source/services/users.py``), which
other labs share. Lab 1's own part is here: turning a form into a validated DTO, the sentence
each click reports (with the figures it measured), the page of the join, and the record of a
delete for the knowledge check and the class view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from source.domain.dtos import CascadeReport, ProfileSave, QueryResult, UserCreate, UserRow, UserUpdate, parse
from source.labs.data_models import join, record
from source.services import users

#: The profile's fields, as the create form asks for them; the edit form asks for all but the email.
PROFILE = ("email", "name", "occupation_code", "education_level", "years_experience")
EDITABLE = PROFILE[1:]


def when(value: datetime) -> str:
    """Timestamps as a learner reads them: date, time and milliseconds."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


#: Users offered to pick from (the newest), and rows per page of the users table.
PICKABLE = 20
TABLE_ROWS = 10


@dataclass(frozen=True)
class Users:
    """What the page shows of the sandbox's users after any click: how many, the newest, one page of them."""

    total: int
    newest: list[UserRow]  # at most PICKABLE, the newest first: the ones the learner may pick
    page: list[UserRow]  # the table's page, the newest first
    first: int  # the number of the table's first row, counted from 1

    @property
    def said(self) -> str:
        if not self.total:
            return "None yet: the `users` table is empty."
        shown = f"{self.first:,}–{self.first + len(self.page) - 1:,}"
        return f"{self.total:,} user(s), the newest first; showing {shown}."


async def users_now(page: int = 1) -> Users:
    """The sandbox's users as the database has them now: the newest (and the table's page, if it is another)."""
    return await _paged(*await users.newest_users(PICKABLE), page)


async def _paged(newest: list[UserRow], total: int, page: int) -> Users:
    """The table's ``page`` of the users: a slice of the newest, or (further back) one more read."""
    offset = (max(1, page) - 1) * TABLE_ROWS
    rows = (
        newest[offset : offset + TABLE_ROWS] if offset < PICKABLE else (await users.newest_users(TABLE_ROWS, offset))[0]
    )
    return Users(total=total, newest=newest, page=rows, first=offset + 1)


async def user(user_id: str) -> UserRow | None:
    """One user as stored now (``None`` if they are gone)."""
    return await users.get_user(user_id)


async def create_user(form: Mapping[str, object]) -> str:
    """Validate the create form with ``UserCreate`` (no SQL runs for a bad value), then INSERT the user."""
    row = await users.create_user(parse(UserCreate, **{field: form.get(field) for field in PROFILE}))
    return created(row)


@dataclass(frozen=True)
class Created:
    """What *Create user* says, and the users as the page then shows them."""

    said: str
    now: Users


async def create_user_and_show(form: Mapping[str, object], page: int = 1) -> Created:
    """:func:`create_user`, and the users the page shows next, read back in the same transaction.

    The form is validated with ``UserCreate`` first (no SQL runs for a bad value). Then one unit of
    work inserts the user and their event and reads the newest users with the total: the page draws
    them from this answer instead of asking the database again.
    """
    data = parse(UserCreate, **{field: form.get(field) for field in PROFILE})
    row, newest, total = await users.create_user_and_newest(data, PICKABLE)
    return Created(said=created(row), now=await _paged(newest, total, page))


def created(row: UserRow) -> str:
    return f"Created `{row.email}` with id `{row.id}`."


async def save_profile(before: UserRow, form: Mapping[str, object]) -> str:
    """Validate the edit form with ``UserUpdate``, save it, and say how many UPDATEs the database received."""
    save = await users.save_profile(before.id, parse(UserUpdate, **{field: form.get(field) for field in EDITABLE}))
    return saved(before, save)


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


async def add_children(user: UserRow, assessments: int, scores: int) -> str:
    """Give the user sample assessments and scores, and say how many they have now (counted, not added up)."""
    have = await users.add_sample_children(user.id, assessments, scores)
    return f"{user.email} now has {have[0]} assessments and {have[1]} scores."


async def delete_user(user_id: str) -> CascadeReport:
    """Delete the user with the ORM's cascade, and record what went (for the knowledge check and class view)."""
    report = await users.delete_user(user_id)
    await record.cascade_delete(report)
    return report


@dataclass(frozen=True)
class JoinPage:
    """One page of users ⋈ assessments, and where the Previous and Next buttons lead (``None``: nowhere)."""

    result: QueryResult
    first: int  # the number of the first row shown, counted from 1 (0 when the page is empty)
    last: int  # the number of the last row shown
    previous: int | None
    next: int | None

    @property
    def said(self) -> str:
        return (
            f"{self.result.total} row(s). Showing {self.first}–{self.last}, as of the last click "
            "(`LIMIT`/`OFFSET` in the SQL above). Give a user sample assessments above to see more."
        )


async def join_page(offset: int) -> JoinPage:
    """Run the join for one page of :data:`~source.labs.data_models.join.JOIN_PAGE_ROWS` rows from ``offset``."""
    step, offset = join.JOIN_PAGE_ROWS, max(0, offset)
    result = await join.run_users_join_assessments(limit=step, offset=offset)
    last = offset + len(result.rows)
    return JoinPage(
        result=result,
        first=offset + 1 if result.rows else 0,
        last=last,
        previous=max(0, offset - step) if offset > 0 else None,
        next=offset + step if last < result.total else None,
    )
