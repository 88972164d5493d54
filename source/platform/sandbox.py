"""A learner's sandbox: their own database (or schema) and their own Redis key prefix.

Every viewer of a hosted lab shares one Python process. A sandbox is what keeps one
learner's clicks away from another's data: on SQLite each sandbox is its own temporary
file; on PostgreSQL it is its own schema, reached through ``schema_translate_map`` on the
shared engine; in Redis every key and channel starts with the sandbox's prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from source.platform.context import use_sandbox
from source.platform.engines import make_sessionmaker
from source.platform.migrate import upgrade_to_head
from source.platform.redis_namespace import NamespacedRedis

if TYPE_CHECKING:
    from source.platform.backends import Backends

T = TypeVar("T")

#: Marks a schema as a sandbox and records when it was made (see ``Backends.sweep_stale_schemas``).
#: How long one background task may take to stop before the sandbox goes on without it.
STOP_TIMEOUT_S = 5.0

SCHEMA_COMMENT_PREFIX = "persistence-lab sandbox created "

_migration_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _migration_lock() -> asyncio.Lock:
    """One lock per event loop, so migrations take turns.

    Alembic keeps the running migration's context in module globals (``alembic.context``,
    ``alembic.op``). A migration awaits the database between steps, and meanwhile the loop
    would start another learner's: the second would overwrite the first one's globals. So
    when several learners open the lab at once, their sandboxes are migrated one after another.
    """
    loop = asyncio.get_running_loop()
    lock = _migration_locks.get(loop)
    if lock is None:
        lock = _migration_locks[loop] = asyncio.Lock()
    return lock


class Sandbox:
    """One learner's isolated slice of the database and of Redis."""

    def __init__(
        self,
        backends: Backends,
        sandbox_id: str,
        engine: AsyncEngine,
        *,
        schema: str | None = None,
        directory: Path | None = None,
    ) -> None:
        self.backends = backends
        self.id = sandbox_id
        self.engine = engine
        self.schema = schema
        self.directory = directory
        self.sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
        self.key_prefix = f"plab:{sandbox_id}:"
        #: This sandbox's Redis: every key and channel gets ``key_prefix`` put in front by the
        #: client itself, and commands that could reach outside it are refused.
        self.redis = NamespacedRedis(backends.redis, self.key_prefix)
        self.closed = False
        #: Per-sandbox objects a lab keeps between reruns (a publisher, a cache's settings), by name.
        self.services: dict[str, Any] = {}
        self._stoppers: list[Callable[[], Awaitable[None]]] = []

    # -- running code in the sandbox -------------------------------------------------
    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run ``coro`` (a coroutine, or any awaitable such as a Redis command) on the app's
        event loop with this sandbox as the current one."""
        if self.closed:
            if isinstance(coro, Coroutine):
                coro.close()
            raise RuntimeError("This sandbox was released; open a new one.")
        return self.backends.runtime.run(self.bind(coro), **({"timeout": timeout} if timeout else {}))

    async def bind(self, coro: Awaitable[T]) -> T:
        async with use_sandbox(self):
            return await coro

    # -- background work -------------------------------------------------------------
    def on_stop(self, stopper: Callable[[], Awaitable[None]]) -> None:
        """Register how to stop something running in this sandbox (a publisher, a consumer).

        Every stopper runs, newest first, before a reset empties the sandbox and before a
        release drops it, so no background task outlives the data it works on.
        """
        self._stoppers.append(stopper)

    async def stop_background_work(self) -> None:
        stoppers, self._stoppers = self._stoppers[::-1], []
        self.services.clear()
        for stop in stoppers:
            # One stopper that hangs or fails must not keep the others (or the release) waiting.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await stop()

    # -- lifecycle -------------------------------------------------------------------
    async def migrate(self) -> None:
        if self.schema:
            async with self.backends.shared_engine_or_raise().begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                # The creation time, so a later process can sweep schemas whose owner died.
                created = datetime.now(UTC).isoformat()
                await conn.execute(text(f"COMMENT ON SCHEMA \"{self.schema}\" IS '{SCHEMA_COMMENT_PREFIX}{created}'"))
        async with _migration_lock(), self.engine.begin() as conn:
            await conn.run_sync(upgrade_to_head, self.schema)

    async def reset(self) -> None:
        """Empty this sandbox (database and Redis keys) and migrate it again."""
        await self.stop_background_work()
        await self._drop_database()
        await self._delete_redis_keys()
        await self.migrate()

    async def aclose(self) -> None:
        """Release everything this sandbox holds. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        await self.stop_background_work()
        for step in (self._delete_redis_keys, self._drop_database):
            # Release must go on even if a service is down: a leftover is better than a crash.
            with contextlib.suppress(Exception):
                await step()
        if self.schema is None:
            await self.engine.dispose()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def close(self) -> None:
        """Synchronous release, for Streamlit's ``on_release`` hook."""
        if not self.closed and self.backends.runtime.alive:
            self.backends.runtime.run(self.aclose(), timeout=30)

    async def _drop_database(self) -> None:
        if self.schema:
            async with self.backends.shared_engine_or_raise().begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        else:
            # A SQLite file: close every pooled connection, then delete the file and its
            # WAL companions. The next connection creates a fresh, empty database.
            await self.engine.dispose()
            if self.directory is None:
                raise RuntimeError("A SQLite sandbox always has a folder")
            for path in self.directory.glob("lab.db*"):
                path.unlink(missing_ok=True)

    async def _delete_redis_keys(self) -> None:
        await self.redis.drop_all()

    def __repr__(self) -> str:
        where = f"schema {self.schema}" if self.schema else f"file {self.directory}"
        return f"<Sandbox {self.id} ({where})>"
