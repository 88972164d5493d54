"""The curriculum's section 6 (Redis caching) as a notebook runs it, against ``source`` only.

A fresh interpreter, no Streamlit, no sandbox: the database is the default context; Redis is
the notebook's own client (``REDIS_URL``, else an in-process fakeredis when no server is
promised). It prints one JSON line with what it saw, then removes the keys it wrote.
"""

import asyncio
import json
import os
import time

import fakeredis
import redis.asyncio as aioredis

from source import *  # noqa: F403 - the curriculum's own import style

REDIS_URL = os.environ.get("REDIS_URL")


def connect() -> aioredis.Redis:
    if REDIS_URL:
        return aioredis.from_url(REDIS_URL, encoding="utf-8", decode_responses=True)
    return fakeredis.FakeAsyncRedis(decode_responses=True)


def outcome(repo: CachedUserRepository) -> str | None:  # noqa: F405
    return repo.last.outcome if repo.last else None


async def run_caching_demo(redis_client: aioredis.Redis, user_id: str) -> dict[str, object]:
    seen: dict[str, object] = {}
    async for session in get_session():  # noqa: F405
        cached_user_repo = CachedUserRepository(session, redis_client)  # noqa: F405
        start_time = time.perf_counter()
        user = await cached_user_repo.get_by_id_cached(user_id)
        seen["first"] = (outcome(cached_user_repo), getattr(user, "name", None), time.perf_counter() - start_time > 0)
        user = await cached_user_repo.get_by_id_cached(user_id)
        seen["second"] = (outcome(cached_user_repo), getattr(user, "name", None))
        score = await cached_user_repo.get_latest_score_cached(user_id)
        seen["score_first"] = (outcome(cached_user_repo), score.air_score if score else None)
        score = await cached_user_repo.get_latest_score_cached(user_id)
        seen["score_second"] = (outcome(cached_user_repo), score.air_score if score else None)
        await cached_user_repo.invalidate_user_cache(user_id)
        user = await cached_user_repo.get_by_id_cached(user_id)
        seen["after_invalidation"] = (outcome(cached_user_repo), getattr(user, "name", None))
        counts = await cached_user_repo.cache.metrics.counts()
        seen["counts"] = {"hits": counts.hits, "misses": counts.misses}
    return seen


async def main() -> dict[str, object]:
    await initialize_db()  # noqa: F405
    user_alex = await create_sample_user("alex.smith@innovateai.com", "Alex Smith")  # noqa: F405
    if user_alex is None:
        raise SystemExit("Alex exists already: run this against a fresh database")
    await create_sample_airscore(user_alex.id, air_score=85.5)  # noqa: F405
    redis_client = connect()
    try:
        return await run_caching_demo(redis_client, user_alex.id)
    finally:
        await redis_client.delete(f"cache:user:{user_alex.id}", f"cache:latest_score:{user_alex.id}", "cache:stats")
        await redis_client.aclose()


print(json.dumps(asyncio.run(main())))
