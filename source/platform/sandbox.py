"""A learner's sandbox: their own database (or schema) and their own Redis key prefix.

Every viewer of a hosted lab shares one Python process. A sandbox is what keeps one
learner's clicks away from another's data: on SQLite each sandbox is its own temporary
file; on PostgreSQL it is its own schema, reached through ``schema_translate_map`` on the
shared engine; in Redis every key and channel starts with the sandbox's prefix, and every key
carries the sandbox's lease, so the keys of a sandbox whose process died expire by themselves.

A sandbox knows the process that hosts it only through :class:`SandboxHost`: the event loop
to run on, the admin engine that creates and drops schemas, the shared Redis client, and how
to release itself. Labs talk to the sandbox, never to the host behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Future
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from source.domain.errors import LabError
from source.platform.engines import make_sessionmaker
from source.platform.errors import PartialReset, explain
from source.platform.migrate import migration_lock, upgrade_to_head
from source.platform.orphans import mark_schema
from source.platform.redis_budget import RedisBudget, budget_of
from source.platform.redis_lease import KeyLease
from source.platform.redis_namespace import NamespacedRedis
from source.platform.sqlite_template import copy_template

if TYPE_CHECKING:
    from source.platform.admission import MemoryAdmission
    from source.platform.health import BackendStatus, Health
    from source.platform.runtime import AsyncRuntime

T = TypeVar("T")
S = TypeVar("S")

#: How long one background task may take to stop before the sandbox goes on without it. Longer than any
#: job's grace before it is cancelled (5 s; ``tests/test_jobs.py`` checks every kind), so a reset or a release
#: waits for a job that keeps its grace instead of racing it: with both at 5 s, a reset could return while the
#: job it had stopped was still running.
STOP_TIMEOUT_S = 8.0
#: How long one release step (Redis keys, the database) may take before it is retried later.
RELEASE_STEP_TIMEOUT_S = 15.0

#: The sandbox the running coroutine works in (set by :meth:`Sandbox.bind`, read by ``current_sandbox``).
CURRENT: ContextVar[Sandbox] = ContextVar("persistence_lab_sandbox")


@asynccontextmanager
async def use_sandbox(sandbox: Sandbox) -> AsyncIterator[Sandbox]:
    """Make ``sandbox`` the current one for the ``async with`` block."""
    token = CURRENT.set(sandbox)
    try:
        yield sandbox
    finally:
        CURRENT.reset(token)


class SandboxHost(Protocol):
    """What a sandbox needs from the process that hosts it (``Backends`` in the app, a notebook's context)."""

    @property
    def runtime(self) -> AsyncRuntime: ...

    @property
    def redis(self) -> Any:
        """The shared Redis client; a sandbox wraps it in its own namespace."""

    @property
    def status(self) -> BackendStatus:
        """Which database and Redis are live, and where (for whoever runs the host: a notebook prints it)."""

    @property
    def experiment_connections(self) -> int:
        """Connections every learner's experiments may hold together (Lab 2's budget)."""

    @property
    def admission(self) -> MemoryAdmission:
        """The process's memory budget, which heavy work asks before it starts."""

    def admin_engine(self) -> AsyncEngine:
        """The engine that creates and drops schemas (PostgreSQL only)."""

    def release_soon(self, sandbox: Sandbox, why: str | None = None) -> None: ...

    async def check_health(self) -> Health: ...

    def experiment_engine(
        self, sandbox: Sandbox, *, pool_size: int, max_overflow: int, pool_timeout: float, nullpool: bool = False
    ) -> AsyncEngine: ...


class Sandbox:
    """One learner's isolated slice of the database and of Redis."""

    #: The shared, read-only sandbox pages are drawn from before a learner's first action (see ``visitor``).
    visitor = False

    def __init__(
        self,
        host: SandboxHost,
        sandbox_id: str,
        engine: AsyncEngine,
        *,
        schema: str | None = None,
        directory: Path | None = None,
    ) -> None:
        self.host = host
        self.id = sandbox_id
        self.engine = engine
        self.schema = schema
        self.directory = directory
        self.sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
        self.key_prefix = f"plab:{sandbox_id}:"
        #: How long its keys outlive the last renewal: renewed while the sandbox lives (:meth:`renew_lease`).
        self.lease = KeyLease()
        #: This sandbox's Redis: every key and channel gets ``key_prefix`` put in front by the
        #: client itself, commands that could reach outside it are refused, and a key it may leave
        #: without an expiry gets the lease's deadline.
        self.redis = NamespacedRedis(host.redis, self.key_prefix, lease=self.lease)
        self.lease.client = self.redis.without_lease()
        #: The short budget every Redis call of a learner's click shares (one per Redis server).
        self.redis_budget: RedisBudget = budget_of(host.redis)
        #: No more work may start here (set when a release begins).
        self.closed = False
        #: Everything it held is gone: Redis keys, schema or file (set when a release finished).
        self.released = False
        #: When a learner last used it (``time.monotonic()``), and how many calls run in it now.
        self.last_used = time.monotonic()
        #: When it was opened: by its learner's first action (the grace of a brief try counts from here).
        self.opened = self.last_used
        self.busy = 0
        self._released_parts: set[str] = set()
        #: Per-sandbox objects a lab keeps between reruns (a publisher, a cache), by name: see :meth:`service`.
        self.services: dict[str, Any] = {}
        self._stoppers: list[Callable[[], Awaitable[None]]] = []

    # -- running code in the sandbox -------------------------------------------------
    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run ``coro`` (a coroutine, or any awaitable such as a Redis command) on the app's
        event loop with this sandbox as the current one."""
        if self.closed:
            if isinstance(coro, Coroutine):
                coro.close()
            raise LabError("This sandbox has been released (started over, or idle too long). Reload the page.")
        return self.host.runtime.run(self.bind(coro), **({"timeout": timeout} if timeout else {}))

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Start ``coro`` on the app's event loop in this sandbox, without waiting for it (background work)."""
        if self.closed:
            coro.close()
            raise LabError("This sandbox has been released (started over, or idle too long). Reload the page.")
        return self.host.runtime.submit(self.bind(coro))

    async def bind(self, coro: Awaitable[T]) -> T:
        self.touch()
        self.busy += 1
        try:
            async with use_sandbox(self):
                return await coro
        finally:
            self.busy -= 1
            self.touch()

    # -- what the sandbox's host provides, as the labs need it -------------------------
    @property
    def dialect(self) -> str:
        """``"postgresql"`` or ``"sqlite"``."""
        return self.engine.dialect.name

    @property
    def backend(self) -> str:
        """Which database the sandbox lives in, as a learner reads it: "PostgreSQL" or "SQLite"."""
        return "PostgreSQL" if self.dialect == "postgresql" else "SQLite"

    @property
    def experiment_connections(self) -> int:
        return self.host.experiment_connections

    def experiment_engine(
        self, *, pool_size: int, max_overflow: int, pool_timeout: float, nullpool: bool = False
    ) -> AsyncEngine:
        """A dedicated engine with a learner's own pool settings on this sandbox's data (call it on the loop)."""
        return self.host.experiment_engine(
            self, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout, nullpool=nullpool
        )

    async def health(self) -> Health:
        """Whether the database and Redis answer right now (shared, cached for a few seconds)."""
        return await self.host.check_health()

    def service(self, key: str, make: Callable[[Sandbox], S], stop: Callable[[S], Awaitable[None]] | None = None) -> S:
        """The sandbox's object under ``key`` (a cache, a job runner, a publisher), made on first use.

        Safe from any thread: two tabs asking at once get the same object. ``stop``, if given,
        is registered with :meth:`on_stop`, so a reset or a release stops the object first.
        """
        found = self.services.get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        made = make(self)
        if self.services.setdefault(key, made) is made and stop is not None:
            self.on_stop(lambda: stop(made))
        return self.services[key]  # type: ignore[no-any-return]

    def heavy(self, kind: str, what: str = "This run") -> contextlib.AbstractContextManager[object]:
        """``with sandbox.heavy(kind):`` around heavy work, refused with a sentence when memory is short."""
        return self.host.admission.heavy(kind, what)

    def touch(self) -> None:
        """Note that the learner is still here (idle expiry counts from the last touch)."""
        self.last_used = time.monotonic()

    async def renew_lease(self) -> int:
        """Keep this sandbox's Redis keys alive: renew their lease once half of it has gone.

        The host calls it while the sandbox lives (the housekeeping round); returns how many
        keys were renewed (0 when it was not due yet).
        """
        if self.closed or not self.lease.due():
            return 0
        return await self.lease.renew()

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
        """Bring the sandbox's database to the newest migration.

        A new SQLite sandbox is a copy of the process's migrated template (see
        :mod:`source.platform.sqlite_template`); a file already there is migrated up by Alembic.
        A PostgreSQL schema is created, marked and migrated in one transaction, on one connection.
        """
        if self.schema is None and self.directory is not None and await copy_template(self.directory / "lab.db"):
            return
        async with migration_lock(), self.engine.begin() as conn:
            if self.schema:
                # Plain text: schema_translate_map rewrites only the tables SQLAlchemy names.
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                await mark_schema(conn, self.schema)  # so a later process can sweep it if its owner dies
            await conn.run_sync(upgrade_to_head, self.schema)

    async def reset(self) -> None:
        """Empty this sandbox (database and Redis keys) and migrate it again.

        Whatever fails, the database is migrated again before this returns or raises, so
        the learner is never left with a sandbox without tables. If only Redis failed,
        :class:`PartialReset` says that the keys are still there.
        """
        await self.stop_background_work()
        try:
            await self._drop_database()
        finally:
            await self.migrate()
        try:
            async with asyncio.timeout(RELEASE_STEP_TIMEOUT_S):
                await self._delete_redis_keys()
        except Exception as exc:
            raise PartialReset(
                "Your database is empty and migrated again, but your Redis keys could not be cleared: " + explain(exc)
            ) from exc

    async def aclose(self) -> None:
        """Release everything this sandbox holds; raise if a part could not be released yet.

        Each part (Redis keys, database) is released at most once and bounded in time. A
        part that failed (a server down or not answering) makes this raise, and calling it
        again later retries only what is left: the registry's sweep does exactly that.
        """
        self.closed = True
        await self.stop_background_work()
        failures: list[BaseException] = []
        for part, step in (("redis", self._delete_redis_keys), ("database", self._drop_database)):
            if part in self._released_parts:
                continue
            try:
                async with asyncio.timeout(RELEASE_STEP_TIMEOUT_S):
                    await step()
                self._released_parts.add(part)
            except Exception as exc:  # noqa: BLE001 - kept for the retry, raised below
                failures.append(exc)
        if failures:
            raise RuntimeError(f"{self!r} could not release everything yet") from failures[0]
        if self.schema is None:
            await self.engine.dispose()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.released = True

    def close(self) -> None:
        """Release soon, without waiting: safe on any thread, Streamlit's own loop included."""
        self.host.release_soon(self)

    async def _drop_database(self) -> None:
        if self.schema:
            async with self.host.admin_engine().begin() as conn:
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
