"""Four ways to load every user with their scores, and a guard that refuses the slow ones.

Each strategy is a small function whose source the page shows. They all return the same
:class:`Loaded` summary, so the lab can check (not just claim) that every strategy found the
same users and the same scores. Only the number of statements differs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from source.domain.models import AIRScore, User
from source.domain.repositories import UserRepository


@dataclass(frozen=True)
class Loaded:
    """What a strategy loaded: users by email, each with the ids of their scores."""

    users: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def user_count(self) -> int:
        return len(self.users)

    @property
    def score_count(self) -> int:
        return sum(len(scores) for _, scores in self.users)


def loaded(pairs: Iterable[tuple[User, Sequence[AIRScore]]]) -> Loaded:
    """Users in the order loaded, each with their score ids sorted (collections have no order)."""
    return Loaded(tuple((user.id, tuple(sorted(score.id for score in scores))) for user, scores in pairs))


async def load_lazy(session: AsyncSession, limit: int | None = None) -> Loaded:
    """N+1 the ORM way: load the users, then each user's ``scores`` lazily, one query per user.

    Under asyncio a lazy load must be awaited (``awaitable_attrs``); a plain ``user.scores``
    would raise ``MissingGreenlet`` instead of querying.
    """
    users = await UserRepository(session).list_all(limit)
    pairs = []
    for user in users:
        scores = await user.awaitable_attrs.scores  # one SELECT per user, sent from this line
        pairs.append((user, scores))
    return loaded(pairs)


async def load_per_user_queries(session: AsyncSession, limit: int | None = None) -> Loaded:
    """N+1 written by hand: one explicit query per user, through the repository."""
    repo = UserRepository(session)
    users = await repo.list_all(limit)
    pairs = []
    for user in users:
        pairs.append((user, await repo.list_scores_for_user(user.id)))  # one SELECT per user
    return loaded(pairs)


async def load_selectin(session: AsyncSession, limit: int | None = None) -> Loaded:
    """The fix: ``selectinload``, users then ``scores WHERE user_id IN (...)`` per 500 users."""
    users = await UserRepository(session).get_all_users_with_scores_eager(limit)
    return loaded((user, user.scores) for user in users)


async def load_joined(session: AsyncSession, limit: int | None = None) -> Loaded:
    """One statement: ``users LEFT OUTER JOIN air_scores``, each user's row repeated per score."""
    users = await UserRepository(session).get_all_users_with_scores_joined(limit)
    return loaded((user, user.scores) for user in users)


async def load_lazy_guarded(session: AsyncSession, limit: int | None = None) -> Loaded:
    """The lazy loop again, on users loaded with ``raiseload("*")``: the first lazy load raises.

    The same guard can live on the model, ``relationship(..., lazy="raise")``, so that every
    query must say how it loads ``scores``. Either way the N+1 fails in a test, not in production.
    """
    users = await UserRepository(session).list_all(limit, forbid_lazy_loads=True)
    pairs = []
    for user in users:
        scores = await user.awaitable_attrs.scores  # raises InvalidRequestError: lazy='raise'
        pairs.append((user, scores))
    return loaded(pairs)


Strategy = Callable[[AsyncSession, int | None], Awaitable[Loaded]]


@dataclass(frozen=True)
class StrategyInfo:
    key: str
    label: str
    load: Strategy
    n_plus_one: bool


STRATEGIES: dict[str, StrategyInfo] = {
    info.key: info
    for info in (
        StrategyInfo("lazy", "lazy loading (awaitable_attrs)", load_lazy, True),
        StrategyInfo("per_user", "a query per user (loop)", load_per_user_queries, True),
        StrategyInfo("selectin", "selectinload", load_selectin, False),
        StrategyInfo("joined", "joinedload", load_joined, False),
    )
}
