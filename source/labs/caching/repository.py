"""``CachedUserRepository``: the course's read-through cache in front of ``UserRepository``.

The course's names and signature, with what the course's version left out: cached values
are Pydantic DTOs (never ORM objects rebuilt by hand), every read is counted for real,
concurrent misses on one key make one database read, and a Redis that is down, slow or
holding a damaged value makes a read come from the database instead of failing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from source.domain.repositories import UserRepository
from source.labs.caching.cache import RedisCache, latest_score_key, user_key
from source.labs.caching.dtos import ScoreRow, UserRow
from source.labs.caching.lookup import Loader, Lookup
from source.labs.caching.sandbox_cache import default_cache


class CachedUserRepository(UserRepository):
    """Users and latest scores through Redis (read-through, TTL, invalidation on write)."""

    def __init__(self, session: AsyncSession, redis_client: Any, *, cache: RedisCache | None = None) -> None:
        super().__init__(session)
        self.redis = redis_client
        #: Counters, breaker and locks live in the cache, which outlives this repository.
        self.cache = cache if cache is not None else default_cache(redis_client)
        #: How the most recent cached read went (hit or miss, and what each part cost).
        self.last: Lookup | None = None
        #: Database reads this repository made on behalf of cached reads.
        self.db_reads = 0

    def _user_cache_key(self, user_id: str) -> str:
        return user_key(user_id)

    def _latest_airscore_cache_key(self, user_id: str) -> str:
        return latest_score_key(user_id)

    async def get_by_id_cached(self, user_id: str) -> UserRow | None:
        """The user from Redis if cached, else from the database (then cached for ``user_ttl_s``)."""

        async def load() -> UserRow | None:
            self.db_reads += 1
            user = await self.get_by_id(user_id)
            return UserRow.model_validate(user) if user is not None else None

        value, self.last = await self.cache.read_through(
            self._user_cache_key(user_id), UserRow, load, self.cache.settings.user_ttl_s, self._reload_user(user_id)
        )
        return value

    async def get_latest_score_cached(self, user_id: str) -> ScoreRow | None:
        """The user's newest AI-R score from Redis if cached, else from the database (``score_ttl_s``)."""

        async def load() -> ScoreRow | None:
            self.db_reads += 1
            score = await self.get_latest_score(user_id)
            return ScoreRow.model_validate(score) if score is not None else None

        value, self.last = await self.cache.read_through(
            self._latest_airscore_cache_key(user_id),
            ScoreRow,
            load,
            self.cache.settings.score_ttl_s,
            self._reload_score(user_id),
        )
        return value

    async def invalidate_user_cache(self, user_id: str) -> bool:
        """Drop the user's cached profile and latest score after they changed.

        Returns whether Redis confirmed it. If Redis is down, the keys are remembered and
        deleted before the cache serves again, so a stale value cannot come back with it.
        """
        return await self.cache.invalidate(self._user_cache_key(user_id), self._latest_airscore_cache_key(user_id))

    async def cache_user(self, row: UserRow) -> bool:
        """Write-through: store the user's new state in the cache right after the database."""
        return await self.cache.store(self._user_cache_key(row.id), row, self.cache.settings.user_ttl_s)

    # -- early refresh needs a session of its own: the reader's may be closed by then ---------
    def _reload_user(self, user_id: str) -> Loader[UserRow]:
        bind = self.session.bind

        async def reload() -> UserRow | None:
            async with AsyncSession(bind, expire_on_commit=False) as session:
                user = await UserRepository(session).get_by_id(user_id)
                return UserRow.model_validate(user) if user is not None else None

        return reload

    def _reload_score(self, user_id: str) -> Loader[ScoreRow]:
        bind = self.session.bind

        async def reload() -> ScoreRow | None:
            async with AsyncSession(bind, expire_on_commit=False) as session:
                score = await UserRepository(session).get_latest_score(user_id)
                return ScoreRow.model_validate(score) if score is not None else None

        return reload
