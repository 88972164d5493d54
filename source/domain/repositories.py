"""The repository pattern: one class that knows how users are stored and fetched.

Services and pages ask a ``UserRepository`` for users; only the repository writes
SQLAlchemy queries. It works inside a session it is given and never commits: the
caller owns the unit of work, so several repository calls can share one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Select, Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, raiseload, selectinload

from source.domain.models import AIRScore, Assessment, User


class UserRepository:
    """Data access for users and their scores."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_id(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result = await self.session.execute(select(User).where(User.email == email))
        return result.scalar_one_or_none()

    async def create(self, user: User) -> User:
        """Add ``user`` and flush: the INSERT runs (so a duplicate email fails here), no commit."""
        self.session.add(user)
        await self.session.flush()
        return user

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(User)) or 0)

    async def list(self, limit: int = 200) -> Sequence[User]:
        result = await self.session.execute(select(User).order_by(User.created_at, User.email).limit(limit))
        return result.scalars().all()

    async def list_newest(self, limit: int, offset: int = 0) -> tuple[Sequence[User], int]:
        """One page of users, the newest first, and how many users there are, in one statement.

        ``count(*) OVER ()`` counts every row the query would return before LIMIT cuts the page:
        the page and the total in one round trip. (An empty page has no row to carry the count:
        then it is asked for on its own.)
        """
        newest = select(User, func.count().over()).order_by(User.created_at.desc(), User.email.desc())
        rows = (await self.session.execute(newest.limit(limit).offset(offset))).all()
        if not rows:
            return [], await self.count() if offset else 0
        return [user for user, _ in rows], int(rows[0][1])

    async def delete(self, user: User) -> None:
        """Delete ``user``; the ORM cascade deletes their assessments and scores first.

        ``AsyncSession.delete`` is awaitable because the cascade must load the children
        before it can delete them: that load is real I/O.
        """
        await self.session.delete(user)
        await self.session.flush()

    async def count_children(self, user_id: str) -> tuple[int, int]:
        """How many assessments and scores point at ``user_id`` right now."""
        assessments = await self.session.scalar(
            select(func.count()).select_from(Assessment).where(Assessment.user_id == user_id)
        )
        scores = await self.session.scalar(
            select(func.count()).select_from(AIRScore).where(AIRScore.user_id == user_id)
        )
        return int(assessments or 0), int(scores or 0)

    async def get_latest_score(self, user_id: str) -> AIRScore | None:
        result = await self.session.execute(
            select(AIRScore)
            .where(AIRScore.user_id == user_id)
            .order_by(AIRScore.created_at.desc(), AIRScore.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def get_user_with_scores_eager(self, user_id: str) -> User | None:
        """One user with ``scores`` loaded up front, so reading them needs no more queries."""
        result = await self.session.execute(select(User).options(selectinload(User.scores)).where(User.id == user_id))
        return result.scalar_one_or_none()

    async def get_all_users_with_scores_eager(self, limit: int | None = None) -> Sequence[User]:
        """Every user (or the first ``limit`` by email) and their scores, loaded up front.

        ``selectinload`` sends the users' query, then ``... WHERE air_scores.user_id IN (...)``
        with the users' ids: one more statement per 500 users, whatever their number.
        """
        result = await self.session.execute(_users_by_email(limit).options(selectinload(User.scores)))
        return result.scalars().all()

    # -- what Lab 3 adds: every user, scores one by one, a JOIN, a guard, bulk writes -----
    async def list_all(self, limit: int | None = None, *, forbid_lazy_loads: bool = False) -> Sequence[User]:
        """Every user (or the first ``limit``) by email, *without* their scores.

        Reading ``user.scores`` afterwards needs one more query per user: the N+1. With
        ``forbid_lazy_loads`` the query carries ``raiseload("*")``, so any such lazy load
        raises at once instead of quietly querying.
        """
        query = _users_by_email(limit)
        if forbid_lazy_loads:
            query = query.options(raiseload("*"))
        return (await self.session.execute(query)).scalars().all()

    async def get_all_users_with_scores_joined(self, limit: int | None = None) -> Sequence[User]:
        """Users and their scores in one statement: ``users LEFT OUTER JOIN air_scores``.

        Each user's columns repeat once per score in the result, and ``unique()`` folds the
        rows back into one object per user. With a ``limit`` SQLAlchemy limits users in a
        subquery first, so the LIMIT counts users, not joined rows.
        """
        result = await self.session.execute(_users_by_email(limit).options(joinedload(User.scores)))
        return result.unique().scalars().all()

    async def list_scores_for_user(self, user_id: str) -> Sequence[AIRScore]:
        """One user's scores, oldest first: ``... WHERE air_scores.user_id = ?``."""
        result = await self.session.execute(
            select(AIRScore).where(AIRScore.user_id == user_id).order_by(AIRScore.created_at, AIRScore.id)
        )
        return result.scalars().all()

    async def add_score(self, user_id: str, **values: Any) -> AIRScore:
        """Add an AI-R score for ``user_id`` and flush (the INSERT runs, no commit)."""
        score = AIRScore(user_id=user_id, **values)
        self.session.add(score)
        await self.session.flush()
        return score

    async def count_scores(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(AIRScore)) or 0)

    async def count_by_email_domain(self, domain: str) -> int:
        """How many users have an email ending in ``@domain``."""
        query = select(func.count()).select_from(User).where(User.email.endswith("@" + domain))
        return int(await self.session.scalar(query) or 0)

    async def bulk_insert_users(self, rows: Sequence[dict[str, Any]]) -> None:
        """Many users in one ``executemany``: Core ``insert()``, no ORM objects built."""
        if rows:
            await self.session.execute(insert(cast(Table, User.__table__)), list(rows))

    async def bulk_insert_scores(self, rows: Sequence[dict[str, Any]]) -> None:
        """Many scores in one ``executemany``."""
        if rows:
            await self.session.execute(insert(cast(Table, AIRScore.__table__)), list(rows))

    async def refresh_statistics(self) -> None:
        """``ANALYZE`` users and scores, so the query planner knows how many rows a bulk load added."""
        schema = (self.session.get_bind().get_execution_options().get("schema_translate_map") or {}).get(None)
        connection = await self.session.connection()
        for table in ("users", "air_scores"):
            await connection.exec_driver_sql(f'ANALYZE "{schema}".{table}' if schema else f"ANALYZE {table}")

    async def delete_by_email_domain(self, domain: str) -> int:
        """Delete every user whose email ends in ``@domain``, children first, in three statements."""
        owners = select(User.id).where(User.email.endswith("@" + domain)).scalar_subquery()
        await self.session.execute(delete(AIRScore).where(AIRScore.user_id.in_(owners)))
        await self.session.execute(delete(Assessment).where(Assessment.user_id.in_(owners)))
        result = await self.session.execute(delete(User).where(User.email.endswith("@" + domain)))
        return int(getattr(result, "rowcount", 0) or 0)


def _users_by_email(limit: int | None) -> Select[User]:
    query = select(User).order_by(User.email)
    return query.limit(limit) if limit is not None else query
