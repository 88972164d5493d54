"""What Lab 4's page does, one coroutine per button: cached reads (checked against the database
afterwards), invalidation, a new score, a deliberate stale write, the keys' TTLs, the counters.

Each runs in the learner's sandbox (``web.run``) and returns plain data for the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import update

from source.domain.errors import InvalidInput, NotFound
from source.domain.models import User
from source.domain.repositories import UserRepository
from source.labs.caching import record
from source.labs.caching.audit import Fetched, judge
from source.labs.caching.breaker import CacheUnavailable
from source.labs.caching.cache import RedisCache
from source.labs.caching.dtos import CacheSettings, ScoreRow, UserRow
from source.labs.caching.keys import latest_score_key, user_key
from source.labs.caching.metrics import CacheCounts, Formula
from source.labs.caching.repository import CachedUserRepository
from source.labs.caching.sandbox_cache import cache_for, outage_of
from source.platform.context import current_sandbox
from source.platform.session import get_session
from source.services.samples import create_sample_airscore, create_sample_users

LABELS = {
    "user_ttl_s": "User TTL (s)",
    "score_ttl_s": "Latest-score TTL (s)",
    "early_refresh_share": "Early refresh share",
    "op_timeout_s": "Redis call timeout (s)",
    "cooldown_s": "Bypass cool-down (s)",
    "lock_ttl_s": "Stampede lock TTL (s)",
}


async def add_samples() -> list[str]:
    """Alex and Jane from the course story, each with a first AI-R score."""
    made = await create_sample_users()
    for (_, user_id, created), score in zip(made, (85.5, 78.0), strict=True):
        if created:
            await create_sample_airscore(user_id, air_score=score)
    return [user_id for _, user_id, _ in made]


def _cache() -> RedisCache:
    return cache_for(current_sandbox())


async def fetch_user(user_id: str) -> Fetched[UserRow]:
    """Read the user through the cache, then compare with the database to catch a stale hit."""
    cache = _cache()
    async with get_session() as session:
        repo = CachedUserRepository(session, cache.client, cache=cache)
        value = await repo.get_by_id_cached(user_id)
        lookup = repo.last
    async with get_session() as session:  # the audit: a fresh session, after the timed read
        row = await UserRepository(session).get_by_id(user_id)
        truth = UserRow.model_validate(row) if row is not None else None
    await record.cache_reads(cache)  # for the knowledge check and the class view
    return judge(cache, value, truth, lookup, "user")


async def fetch_latest_score(user_id: str) -> Fetched[ScoreRow]:
    cache = _cache()
    async with get_session() as session:
        repo = CachedUserRepository(session, cache.client, cache=cache)
        value = await repo.get_latest_score_cached(user_id)
        lookup = repo.last
    async with get_session() as session:
        row = await UserRepository(session).get_latest_score(user_id)
        truth = ScoreRow.model_validate(row) if row is not None else None
    await record.cache_reads(cache)  # for the knowledge check and the class view
    return judge(cache, value, truth, lookup, "latest score")


async def invalidate(user_id: str) -> bool:
    async with get_session() as session:
        cache = _cache()
        return await CachedUserRepository(session, cache.client, cache=cache).invalidate_user_cache(user_id)


async def add_score(user_id: str, air_score: float) -> ScoreRow:
    """A new score path: INSERT, commit, then invalidate the cached latest score."""
    if not 0 <= air_score <= 100:
        raise InvalidInput("An AI-R score is between 0 and 100.")
    async with get_session() as session:
        if await UserRepository(session).get_by_id(user_id) is None:
            raise NotFound(f"No user has the id {user_id} (it may have been deleted).")
    score = ScoreRow.model_validate(await create_sample_airscore(user_id, air_score=air_score))
    async with get_session() as session:
        cache = _cache()
        await CachedUserRepository(session, cache.client, cache=cache).invalidate_user_cache(user_id)
    return score


async def rename_without_invalidating(user_id: str, name: str) -> None:
    """The classic bug, on purpose: change the row and forget the cache."""
    name = name.strip()
    if not 1 <= len(name) <= 255:
        raise InvalidInput("A name has 1 to 255 characters.")
    async with get_session() as session:
        result = await session.execute(update(User).where(User.id == user_id).values(name=name))
        await session.commit()
    if getattr(result, "rowcount", 1) == 0:
        raise NotFound(f"No user has the id {user_id} (it may have been deleted).")


@dataclass(frozen=True)
class KeyState:
    label: str
    key: str
    ttl_ms: int | None
    configured_s: float
    value: str | None
    unavailable: str | None = None


async def key_states(user_id: str) -> list[KeyState]:
    """Both of the user's cache keys as Redis holds them now (or why Redis cannot say)."""
    cache = _cache()
    out = []
    for label, logical, ttl in (
        ("user", user_key(user_id), cache.settings.user_ttl_s),
        ("latest score", latest_score_key(user_id), cache.settings.score_ttl_s),
    ):
        try:
            raw, pttl = await cache.peek(logical)
        except CacheUnavailable as exc:
            out.append(KeyState(label, logical, None, ttl, None, str(exc)))
            continue
        out.append(KeyState(label, logical, pttl, ttl, raw))
    return out


@dataclass(frozen=True)
class CacheStatus:
    counts: CacheCounts
    formula: Formula | None
    settings: CacheSettings
    breaker: str
    last_error: str | None
    outage: str | None
    pending_invalidations: int


async def status() -> CacheStatus:
    sandbox = current_sandbox()
    cache = cache_for(sandbox)
    outage = outage_of(sandbox)
    return CacheStatus(
        counts=await cache.metrics.counts(),
        formula=cache.metrics.formula(),
        settings=cache.settings,
        breaker=cache.breaker.state,
        last_error=cache.breaker.last_error,
        outage=outage.mode if outage else None,
        pending_invalidations=len(cache.pending_invalidations),
    )


async def reset_counts() -> None:
    await _cache().metrics.reset()


def settings_from(**values: Any) -> CacheSettings:
    """Validate the page's settings; a TTL of 0 or less is refused with the field's name."""
    try:
        return CacheSettings(**values)
    except ValidationError as exc:
        problems = [f"{LABELS.get(str(e['loc'][0]), str(e['loc'][0]))}: {e['msg'].lower()}" for e in exc.errors()]
        raise InvalidInput("Please fix: " + "; ".join(problems) + ". The previous settings are kept.") from None


async def configure(settings: CacheSettings) -> CacheSettings:
    _cache().configure(settings)
    return settings
