"""The repository pattern: one class that knows how users are stored and fetched.

Services and pages ask a ``UserRepository`` for users; only the repository writes
SQLAlchemy queries. It works inside a session it is given and never commits: the
caller owns the unit of work, so several repository calls can share one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

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

    async def get_all_users_with_scores_eager(self) -> Sequence[User]:
        """Every user and their scores in two queries: users, then scores ``WHERE user_id IN (...)``."""
        result = await self.session.execute(select(User).options(selectinload(User.scores)).order_by(User.email))
        return result.scalars().all()
