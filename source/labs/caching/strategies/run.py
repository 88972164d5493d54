"""The strategy lab: one workload, run against the real repository and cache five ways.

- **no cache**: every read goes to the database.
- **cache-aside + invalidation**: reads through the cache; a write commits, then deletes the key.
- **cache-aside, TTL only**: the same reads; writes leave the cache alone and the TTL ends staleness.
- **write-through**: a write commits, then stores the new row in the cache.
- **write-behind**: a write goes to the cache and is acknowledged; a flusher writes the database later.

Stale reads are detected exactly. Each write gives its user a new name (``load-007 v12``), and
the lab remembers which version every name stands for and which version the database holds
(updated only after a commit). One client runs the operations one after another, so a read
is stale when it returns a version older than the one the database held when the read began:
that value was not current at any moment during the read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from sqlalchemy import delete, update

from source.domain.errors import InvalidInput, LabError
from source.domain.models import User
from source.domain.repositories import UserRepository
from source.instruments.query_log import capture_queries
from source.labs.caching.cache import RedisCache, user_key
from source.labs.caching.dtos import CacheSettings, UserRow
from source.labs.caching.repository import CachedUserRepository
from source.labs.caching.sandbox_cache import cache_for
from source.labs.caching.strategies.results import StrategyResult, StrategyRun, Versions, name_of
from source.labs.caching.strategies.workload import Op, WorkloadConfig, generate, key_popularity
from source.labs.caching.strategies.write_behind import WriteBehindQueue
from source.platform.context import current_sandbox
from source.platform.jobs import Progress
from source.platform.session import get_session

STRATEGIES = ("no cache", "cache-aside + invalidation", "cache-aside, TTL only", "write-through", "write-behind")
EMAIL_DOMAIN = "@strategy-lab.invalid"


def check_strategies(chosen: Sequence[str]) -> tuple[str, ...]:
    """The chosen strategies, in the order given; one message if none, or an unknown one, was chosen."""
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown or not chosen:
        raise InvalidInput(f"Choose one or more of: {', '.join(STRATEGIES)}.")
    return tuple(chosen)


async def run_strategy_lab(
    config: WorkloadConfig, progress: Progress, strategies: Sequence[str] = STRATEGIES
) -> StrategyRun:
    """Run ``config``'s workload under each strategy, on users made for it and removed after.

    As a job (:class:`~source.labs.caching.jobs.StrategyRunner`) it is bounded in time and in
    how many run at once; Stop ends it after the operation in progress.
    """
    chosen = check_strategies(strategies)
    ops = generate(config)
    progress.total, progress.done, progress.unit = len(ops) * len(chosen), 0, "operations"
    ids = await _create_users(config.keys)
    try:
        results = [await _run_one(name, ops, ids, config, progress) for name in chosen]
    finally:
        await _drop_users(ids)
    return StrategyRun(config, results, key_popularity(ops))


async def _run_one(
    strategy: str, ops: list[Op], ids: list[str], config: WorkloadConfig, progress: Progress
) -> StrategyResult:
    sandbox = current_sandbox()
    base = cache_for(sandbox)
    progress.phase = strategy
    await _reset_rows(ids)
    settings = CacheSettings(user_ttl_s=config.ttl_ms / 1000, op_timeout_s=base.settings.op_timeout_s)
    cache = RedisCache(base.client, settings, prefix=base.prefix, stats_key="strategy-lab:stats")
    await cache.invalidate(*(user_key(i) for i in ids))
    versions = Versions(len(ids))
    result = StrategyResult(strategy)

    async def flush(batch: dict[int, int]) -> None:
        async with get_session() as session:
            await session.execute(update(User), [{"id": ids[k], "name": name_of(k, v)} for k, v in batch.items()])
            await session.commit()
        for k, v in batch.items():
            versions.in_db[k] = max(versions.in_db[k], v)

    behind = WriteBehindQueue(flush) if strategy == "write-behind" else None
    started = time.perf_counter()
    async with capture_queries(sandbox.engine) as log:
        if behind is not None:
            behind.start()
        try:
            for op in ops:
                if progress.stopping:  # Stop was pressed: end here, cleanly, as a cancelled run
                    raise asyncio.CancelledError
                if op.kind == "read":
                    await _read(strategy, cache, ids[op.key], op.key, versions, result)
                else:
                    await _write(strategy, cache, ids[op.key], op.key, versions, result, behind)
                progress.done += 1
            if behind is not None:
                await behind.close()
        except BaseException:
            if behind is not None:
                await behind.abort()
            raise
        finally:
            await cache.metrics.reset()
            await cache.aclose()
    result.wall_ms = (time.perf_counter() - started) * 1000
    result.db_reads = sum(1 for s in log.statements if s.startswith("SELECT"))
    result.db_writes = sum(1 for s in log.statements if s.startswith("UPDATE"))
    result.max_unflushed = behind.max_pending if behind is not None else 0
    await cache.invalidate(*(user_key(i) for i in ids))
    return result


async def _read(
    strategy: str, cache: RedisCache, user_id: str, key: int, versions: Versions, result: StrategyResult
) -> None:
    held_at_start = versions.in_db[key]
    started = time.perf_counter()
    async with get_session() as session:
        if strategy == "no cache":
            found = await UserRepository(session).get_by_id(user_id)
            row = UserRow.model_validate(found) if found is not None else None
            hit = redis_failed = False
        else:
            repo = CachedUserRepository(session, cache.client, cache=cache)
            row = await repo.get_by_id_cached(user_id)
            hit = repo.last is not None and repo.last.outcome == "hit"
            redis_failed = repo.last is not None and repo.last.outcome in ("error", "bypassed")
    result.read_ms.append((time.perf_counter() - started) * 1000)
    result.reads += 1
    result.hits += hit
    result.redis_failed += redis_failed
    if row is None:
        raise LabError("A workload user disappeared during the run; run it again.")
    version = versions.of_name[row.name]
    result.stale_reads += version < held_at_start
    result.behind_acknowledged += version < versions.acknowledged[key]


async def _write(  # noqa: PLR0913 - one write needs all of these
    strategy: str,
    cache: RedisCache,
    user_id: str,
    key: int,
    versions: Versions,
    result: StrategyResult,
    behind: WriteBehindQueue | None,
) -> None:
    version, name = versions.new(key)
    started = time.perf_counter()
    redis_answered = True  # False when a cache call of this write got no answer (it used the fallback)
    async with get_session() as session:
        if behind is not None:  # write-behind: the cache first, the database later
            repo = CachedUserRepository(session, cache.client, cache=cache)
            current = await repo.get_by_id_cached(user_id)
            redis_answered = repo.last is not None and repo.last.outcome in ("hit", "miss")
            if current is not None:
                new = current.model_copy(update={"name": name})
                redis_answered &= await cache.store(user_key(user_id), new, cache.settings.user_ttl_s)
            behind.enqueue(key, version)
        else:
            statement = update(User).where(User.id == user_id).values(name=name).returning(User)
            row = UserRow.model_validate((await session.execute(statement)).scalar_one())
            await session.commit()
            versions.in_db[key] = version
            if strategy == "cache-aside + invalidation":
                redis_answered = await cache.invalidate(user_key(user_id))
            elif strategy == "write-through":
                redis_answered = await cache.store(user_key(user_id), row, cache.settings.user_ttl_s)
    versions.acknowledged[key] = version
    result.write_ms.append((time.perf_counter() - started) * 1000)
    result.writes += 1
    result.redis_failed += not redis_answered


async def _create_users(keys: int) -> list[str]:
    await _drop_users([])  # what a cancelled run may have left
    async with get_session() as session:
        users = [User(email=f"load-{k:03d}{EMAIL_DOMAIN}", name=name_of(k, 0)) for k in range(keys)]
        session.add_all(users)
        await session.commit()
        return [u.id for u in users]


async def _reset_rows(ids: list[str]) -> None:
    async with get_session() as session:
        await session.execute(update(User), [{"id": uid, "name": name_of(k, 0)} for k, uid in enumerate(ids)])
        await session.commit()


async def _drop_users(ids: list[str]) -> None:
    async with get_session() as session:
        await session.execute(delete(User).where(User.email.like(f"%{EMAIL_DOMAIN}")))
        await session.commit()
    if ids:
        await cache_for(current_sandbox()).invalidate(*(user_key(i) for i in ids))
