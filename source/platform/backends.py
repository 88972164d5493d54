"""The composition root: builds the engine and the Redis client from settings, once.

Nothing else in the lab creates an engine or a client. Backends are chosen by URL:
a PostgreSQL ``DATABASE_URL`` gives asyncpg, none gives SQLite through aiosqlite;
a ``REDIS_URL`` gives redis.asyncio, none gives fakeredis. A configured service that
cannot be reached is not fatal: the lab falls back to the embedded default and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from source.platform.config import Settings, safe_url
from source.platform.engines import postgres_engine, sqlite_engine
from source.platform.runtime import AsyncRuntime
from source.platform.sandbox import SCHEMA_COMMENT_PREFIX, Sandbox

#: How long start-up waits for a configured server before falling back (seconds).
PROBE_TIMEOUT = 5.0

#: A sandbox schema older than this with no live owner is an orphan (hours).
STALE_SANDBOX_HOURS = 12.0

#: Every learner's SQLite file lives in a temporary folder whose name starts with this.
SQLITE_FOLDER_PREFIX = "persistence-lab-"

#: The pool each learner's SQLite file gets (small: one learner, one file).
SQLITE_SANDBOX_POOL = {"pool_size": 3, "max_overflow": 2, "pool_timeout": 10.0}


@dataclass(frozen=True)
class BackendStatus:
    """What is live, for the sidebar: kind, where, and why a fallback happened."""

    database: str  # "PostgreSQL" or "SQLite"
    database_where: str
    database_note: str | None
    redis: str  # "Redis" or "fakeredis"
    redis_where: str
    redis_note: str | None

    @property
    def is_embedded(self) -> bool:
        return self.database == "SQLite" and self.redis == "fakeredis"


class Backends:
    """The process-wide services: one event loop, one database engine, one Redis client."""

    def __init__(
        self,
        settings: Settings,
        runtime: AsyncRuntime,
        status: BackendStatus,
        shared_engine: AsyncEngine | None,
        redis: Any,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.status = status
        self.shared_engine = shared_engine
        self.redis = redis
        self._sandboxes: set[Sandbox] = set()

    # -- building --------------------------------------------------------------------
    @classmethod
    def build(cls, settings: Settings, runtime: AsyncRuntime | None = None) -> Backends:
        """Start the event loop (unless given) and build every client *on* it."""
        runtime = runtime or AsyncRuntime()
        return runtime.run(cls._build(settings, runtime), timeout=4 * PROBE_TIMEOUT)

    @classmethod
    async def _build(cls, settings: Settings, runtime: AsyncRuntime) -> Backends:
        engine, db_note = await _connect_database(settings.database_url)
        client, redis_note = await _connect_redis(settings.redis_url)
        status = BackendStatus(
            database="PostgreSQL" if engine is not None else "SQLite",
            database_where=safe_url(settings.database_url) if engine is not None else "a temporary file per learner",
            database_note=db_note,
            redis="Redis" if not isinstance(client, fakeredis.FakeAsyncRedis) else "fakeredis",
            redis_where=safe_url(settings.redis_url)
            if not isinstance(client, fakeredis.FakeAsyncRedis)
            else "in-process",
            redis_note=redis_note,
        )
        backends = cls(settings, runtime, status, engine, client)
        if engine is not None:
            await backends.sweep_stale_schemas()
        else:
            sweep_stale_sqlite_folders()
        return backends

    @classmethod
    def on_current_loop(cls, settings: Settings, sqlite_path: Path) -> tuple[Backends, AsyncEngine]:
        """Engine and client for the caller's own loop (a notebook, a script), and the engine to use.

        Nothing connects here: a server that is down fails at the first statement with its own
        error, which in a notebook is the clearest message. The engine has no pool
        (``NullPool``): a script may run several ``asyncio.run`` calls, each with a new loop,
        and a pooled connection would outlive the loop it belongs to.
        """
        runtime = AsyncRuntime(loop=asyncio.get_running_loop())
        url = settings.database_url
        if url and url.startswith("postgresql"):
            engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": PROBE_TIMEOUT})
            database, where = "PostgreSQL", safe_url(url)
        else:
            if url and url.startswith("sqlite"):
                sqlite_path = Path(make_url(url).database or sqlite_path)
            engine = sqlite_engine(sqlite_path, poolclass=NullPool)
            database, where = "SQLite", str(sqlite_path)
        if settings.redis_url:
            client: Any = aioredis.Redis.from_url(
                settings.redis_url, decode_responses=True, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=10
            )
            redis_kind, redis_where = "Redis", safe_url(settings.redis_url)
        else:
            client = fakeredis.FakeAsyncRedis(server=_process_fake_server(), decode_responses=True)
            redis_kind, redis_where = "fakeredis", "in-process"
        status = BackendStatus(database, where, None, redis_kind, redis_where, None)
        shared = engine if database == "PostgreSQL" else None
        return cls(settings, runtime, status, shared, client), engine

    async def sweep_stale_schemas(self, max_age_hours: float = STALE_SANDBOX_HOURS) -> int:
        """Drop sandbox schemas left behind by a process that died before releasing them.

        A session's sandbox is dropped when the session ends; a crash or a restart skips
        that. Sandboxes are marked with their creation time, so the next process can tell
        an orphan (older than any session lives) from a live learner's schema.
        """
        engine = self.shared_engine_or_raise()
        query = text(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'plab\\_%' AND ("
            " obj_description(oid, 'pg_namespace') IS NULL"
            " OR substr(obj_description(oid, 'pg_namespace'), :n + 1)::timestamptz"
            "    < now() - make_interval(secs => :age))"
        )
        async with engine.begin() as conn:
            stale = (
                await conn.execute(query, {"n": len(SCHEMA_COMMENT_PREFIX), "age": max_age_hours * 3600})
            ).scalars()
            names = list(stale)
            for name in names:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        return len(names)

    # -- sandboxes -------------------------------------------------------------------
    def open_sandbox(self, migrate: bool = True) -> Sandbox:
        """A new, empty sandbox for one learner, migrated to the newest schema."""
        sandbox_id = uuid.uuid4().hex[:12]
        if self.shared_engine is not None:
            schema = f"plab_{sandbox_id}"
            engine = self.shared_engine.execution_options(schema_translate_map={None: schema})
            sandbox = Sandbox(self, sandbox_id, engine, schema=schema)
        else:
            directory = Path(tempfile.mkdtemp(prefix=SQLITE_FOLDER_PREFIX))
            engine = self.runtime.run(_on_loop(sqlite_engine, directory / "lab.db", **SQLITE_SANDBOX_POOL))
            sandbox = Sandbox(self, sandbox_id, engine, directory=directory)
        self._sandboxes.add(sandbox)
        if migrate:
            sandbox.run(sandbox.migrate())
        return sandbox

    def release(self, sandbox: Sandbox) -> None:
        sandbox.close()
        self._sandboxes.discard(sandbox)

    @property
    def open_sandboxes(self) -> int:
        return sum(1 for s in self._sandboxes if not s.closed)

    def shared_engine_or_raise(self) -> AsyncEngine:
        if self.shared_engine is None:
            raise RuntimeError("No shared PostgreSQL engine: this lab runs on SQLite files.")
        return self.shared_engine

    def close(self) -> None:
        """Release every sandbox and client (tests and benchmarks)."""
        for sandbox in list(self._sandboxes):
            self.release(sandbox)
        self.runtime.run(self._aclose(), timeout=30)

    async def _aclose(self) -> None:
        if self.shared_engine is not None:
            await self.shared_engine.dispose()
        await self.redis.aclose()


@functools.cache
def _process_fake_server() -> fakeredis.FakeServer:
    """One in-process Redis server per process, so every loop's client sees the same keys."""
    return fakeredis.FakeServer()


def sweep_stale_sqlite_folders(max_age_hours: float = STALE_SANDBOX_HOURS) -> int:
    """Delete learners' SQLite folders left behind by a process that died before releasing them.

    A folder untouched for longer than any session lives belongs to nobody any more.
    """
    cutoff = time.time() - max_age_hours * 3600
    swept = 0
    for folder in Path(tempfile.gettempdir()).glob(SQLITE_FOLDER_PREFIX + "*"):
        with contextlib.suppress(OSError):
            newest = max((p.stat().st_mtime for p in folder.iterdir()), default=folder.stat().st_mtime)
            if newest < cutoff:
                shutil.rmtree(folder)
                swept += 1
    return swept


async def _on_loop(factory: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``factory`` from inside the event loop, so what it builds belongs to that loop."""
    return factory(*args, **kwargs)


async def _connect_database(url: str | None) -> tuple[AsyncEngine | None, str | None]:
    if not url:
        return None, None
    if not url.startswith("postgresql"):
        return None, f"DATABASE_URL names an unsupported database ({safe_url(url)}); using SQLite."
    engine = postgres_engine(url)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "fall back, and say why"
        await engine.dispose()
        return None, f"PostgreSQL at {safe_url(url)} is unreachable ({describe(exc)}); using SQLite instead."
    return engine, None


async def _connect_redis(url: str | None) -> tuple[Any, str | None]:
    if url:
        client = aioredis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=10
        )
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await client.ping()
            return client, None
        except Exception as exc:  # noqa: BLE001
            await client.aclose()
            note = f"Redis at {safe_url(url)} is unreachable ({describe(exc)}); using fakeredis instead."
            return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True), note
    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True), None


def fail_fast_redis(url: str, timeout: float = 2.0) -> aioredis.Redis:
    """A Redis client that gives up within ``timeout`` and never retries by itself.

    For a lab's own broker (a private server a test stops, an address where nothing
    listens): the lab's code decides what a failure means, not a hidden retry loop.
    """
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def describe(exc: BaseException) -> str:
    """A one-line, password-free description of a connection failure."""
    if isinstance(exc, TimeoutError):
        return "no answer within the time limit"
    text_ = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text_}"[:200] if text_ else type(exc).__name__
