"""The composition root: builds the engine and the Redis client from settings, once.

Nothing else in the lab creates an engine or a client. Backends are chosen by URL:
a PostgreSQL ``DATABASE_URL`` gives asyncpg, none gives SQLite through aiosqlite;
a ``REDIS_URL`` gives redis.asyncio, none gives fakeredis. A configured service that
cannot be reached is not fatal: the lab falls back to the embedded default and says why.

How each piece is built lives beside this module (``connect``, ``engines``, ``redis_clients``);
what runs in the background lives in ``housekeeping``. This is where they are put together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fakeredis
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from source.platform.admission import MemoryAdmission
from source.platform.config import Settings, safe_url
from source.platform.connect import PROBE_TIMEOUT, connect_database, connect_redis, on_loop
from source.platform.directory import Directory, Entry, FileDirectory, PostgresDirectory, default_data_dir, folder_name
from source.platform.durable import DurableSandboxes
from source.platform.engines import loop_engine, postgres_connect_args, sqlite_engine, sqlite_engine_own_dialect
from source.platform.health import BackendStatus, Health, HealthCheck
from source.platform.housekeeping import SWEEP_TIMEOUT_S, Housekeeping
from source.platform.native_memory import limit_malloc_arenas
from source.platform.orphans import SQLITE_FOLDER_PREFIX, STALE_SANDBOX_HOURS, sweep_stale_sqlite_folders
from source.platform.redis_clients import process_fake_redis, redis_client
from source.platform.registry import SandboxRegistry, new_token
from source.platform.runtime import AsyncRuntime
from source.platform.sandbox import Sandbox
from source.platform.visitor import VisitorSandbox, open_visitor

__all__ = ["SQLITE_FOLDER_PREFIX", "BackendStatus", "Backends", "sweep_stale_sqlite_folders"]

log = logging.getLogger(__name__)

#: How long a blocking release (tests, benchmarks) waits before leaving it to the sweep (seconds).
RELEASE_WAIT_S = 60.0

#: Connections Lab 2's experiments may hold together on SQLite (files in this process: no server to protect).
SQLITE_EXPERIMENT_CONNECTIONS = 60

#: The pool each learner's SQLite file gets (small: one learner, one file). One connection (and its
#: aiosqlite thread) is kept between clicks; the few more that a burst of work opens are closed after it.
SQLITE_SANDBOX_POOL = {"pool_size": 1, "max_overflow": 4, "pool_timeout": 10.0}
#: The pool a notebook's or a script's SQLite file gets on its event loop (kept, overflow).
SQLITE_LOOP_POOL = (3, 2)


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
        self.sandboxes = SandboxRegistry(runtime, settings.max_sandboxes, settings.idle_minutes)
        self.health = HealthCheck(shared_engine, redis)
        self.housekeeping = Housekeeping(self.sandboxes, shared_engine, settings.sweep_interval_s)
        self._visitor: VisitorSandbox | None = None
        self._visitor_lock = threading.Lock()
        #: The shared directory's side, once :meth:`make_durable` found one: links outlive the process.
        self.durable: DurableSandboxes | None = None
        #: Where jobs running in the sandboxes are written down (read by ``JobRunner``); ``None``: nowhere.
        self.job_journal: DurableSandboxes | None = None
        #: The memory budget every new sandbox and heavy job must fit in (``PLAB_MEMORY_MB``).
        self.admission = MemoryAdmission(settings.memory_mb, live=lambda: len(self.sandboxes.live))

    # -- building --------------------------------------------------------------------
    @classmethod
    def build(cls, settings: Settings, runtime: AsyncRuntime | None = None) -> Backends:
        """Start the event loop (unless given) and build every client *on* it.

        If building fails or takes too long, a loop this call started is stopped again, so
        a retry on the next rerun does not leave one more thread and engine behind.
        """
        limit_malloc_arenas()  # before the threads that SQLite files and the event loop start (see native_memory)
        own = runtime is None
        runtime = runtime or AsyncRuntime()
        try:
            return runtime.run(cls._build(settings, runtime), timeout=3 * PROBE_TIMEOUT + SWEEP_TIMEOUT_S)
        except BaseException:
            if own:
                runtime.stop()
            raise

    @classmethod
    async def _build(cls, settings: Settings, runtime: AsyncRuntime) -> Backends:
        engine, db_note = await connect_database(settings)
        client, redis_note = await connect_redis(settings.redis_url)
        status = BackendStatus(
            database_configured=settings.database_configured or settings.database_url is not None,
            redis_configured=settings.redis_configured or settings.redis_url is not None,
            config_notes=settings.notes,
            database="PostgreSQL" if engine is not None else "SQLite",
            database_where="configured" if engine is not None else "a file per learner in the lab's data folder",
            database_note=db_note,
            redis="Redis" if not isinstance(client, fakeredis.FakeAsyncRedis) else "fakeredis",
            redis_where="configured" if not isinstance(client, fakeredis.FakeAsyncRedis) else "in-process",
            redis_note=redis_note,
        )
        # Where the servers are is for whoever runs the app (the log), never for the learners' pages.
        log.info(
            "Backends: %s (%s), %s (%s)",
            status.database,
            safe_url(settings.database_url) if engine is not None else "SQLite files",
            status.redis,
            safe_url(settings.redis_url) if status.redis == "Redis" else "in-process",
        )
        backends = cls(settings, runtime, status, engine, client)
        try:
            await backends.make_durable()
            await backends.housekeeping.sweep_orphans()
            backends.housekeeping.start()
        except BaseException:
            await backends._aclose()
            raise
        return backends

    @classmethod
    def on_current_loop(cls, settings: Settings, sqlite_path: Path) -> tuple[Backends, AsyncEngine]:
        """Engine and client for the caller's own loop (a notebook, a script), and the engine to use.

        Nothing connects here: a server that is down fails at the first statement with its own
        error, which in a notebook is the clearest message. The engine keeps a pool, as the app's
        does, sized like the app's; its connections and the Redis client belong to this loop, so
        the caller closes both before the loop closes (``default_context`` does, as the loop
        shuts down): a script's next ``asyncio.run`` gets a new loop and builds its own.
        """
        runtime = AsyncRuntime(loop=asyncio.get_running_loop())
        postgres = bool(settings.database_url and settings.database_url.startswith("postgresql"))
        size, overflow = (settings.db_pool_size, settings.db_max_overflow) if postgres else SQLITE_LOOP_POOL
        engine = loop_engine(
            settings.database_url, sqlite_path, settings.statement_timeout_s, pool_size=size, max_overflow=overflow
        )
        if engine.dialect.name == "postgresql":
            database, where = "PostgreSQL", safe_url(settings.database_url)
        else:
            database, where = "SQLite", str(engine.url.database)
        if settings.redis_url:
            client: Any = redis_client(settings.redis_url)
            redis_kind, redis_where = "Redis", safe_url(settings.redis_url)
        else:
            client = process_fake_redis()
            redis_kind, redis_where = "fakeredis", "in-process"
        status = BackendStatus(database, where, None, redis_kind, redis_where, None)
        shared = engine if database == "PostgreSQL" else None
        return cls(settings, runtime, status, shared, client), engine

    async def make_durable(self, directory: Directory | None = None) -> bool:
        """Keep links and sandboxes in the shared directory, so a restart or another process finds them.

        PostgreSQL: the ``persistence_lab`` schema of the configured database; SQLite: the data folder
        (``PLAB_DATA_DIR``). A directory that cannot be set up is not fatal: sandboxes then live as
        long as this process, and the sidebar says so.
        """
        if directory is None:
            if self.shared_engine is not None:
                directory = PostgresDirectory(self.shared_engine)
            else:
                directory = FileDirectory(
                    Path(self.settings.data_dir) if self.settings.data_dir else default_data_dir()
                )
        try:
            async with asyncio.timeout(SWEEP_TIMEOUT_S):
                await directory.setup()
                await directory.beat()
        except Exception:
            log.warning(
                "The sandbox directory could not be set up: sandboxes live as long as this process", exc_info=True
            )
            return False
        self.durable = self.job_journal = DurableSandboxes(
            directory,
            self.runtime,
            self.sandboxes,
            self._attach,
            heartbeat_grace_s=self.settings.heartbeat_grace_s,
            admin_engine=self.shared_engine,
        )
        self.sandboxes.links = self.housekeeping.durable = self.durable
        return True

    @property
    def durability(self) -> str:
        """What a restart of the app keeps of a learner's sandbox, in the learner's words."""
        if self.durable is None:
            return "Your sandbox lives in this process: a restart of the app loses it."
        if self.status.redis == "Redis":
            return self.durable.directory.survives + " Your Redis keys and progress come back with it."
        return (
            self.durable.directory.survives
            + " Your Redis keys and progress live in the process (fakeredis): a restart loses them."
        )

    def _attach(self, token: str, entry: Entry) -> Sandbox:
        """A sandbox the directory knows, attached in this process: same schema or file, same Redis prefix.

        It is migrated to the newest schema on the way (nothing to do when it already is). It costs this
        process's memory as much as a new sandbox, so it is admitted by the same budget.
        """
        with self.sandboxes.opening():
            self.admission.admit_sandbox(resuming=True)
            if self.shared_engine is not None:
                schema = f"plab_{entry.sandbox_id}"
                engine = self.shared_engine.execution_options(schema_translate_map={None: schema})
                sandbox = Sandbox(self, entry.sandbox_id, engine, schema=schema)
            else:
                folder = self._data_folder(token)
                engine = self.runtime.run(on_loop(sqlite_engine, folder / "lab.db", **SQLITE_SANDBOX_POOL))
                sandbox = Sandbox(self, entry.sandbox_id, engine, directory=folder)
            try:
                sandbox.run(sandbox.migrate())
            except BaseException:
                self.sandboxes.detach_soon(sandbox)
                raise
            self.sandboxes.add(sandbox)
        return sandbox

    def _data_folder(self, token: str) -> Path:
        if self.durable is None or not isinstance(self.durable.directory, FileDirectory):
            raise RuntimeError("Only the embedded default keeps sandboxes in a data folder")
        return self.durable.directory.root / folder_name(token)

    def leave(self, timeout: float = RELEASE_WAIT_S) -> int:
        """The process stops: sandboxes in the directory are let go here and kept; the rest are released.

        Their jobs are stopped but stay recorded, and this process's heartbeat goes, so the process
        that serves the link next reports them as interrupted at once. Returns how many were kept.
        """
        durable = self.durable
        if durable is None or not self.runtime.alive:
            self.release_all(timeout)
            return 0
        linked = [s for s in self.sandboxes.live if self.sandboxes.token_of(s) is not None]
        with contextlib.suppress(Exception):
            self.runtime.run(durable.leave(), timeout=timeout)
        futures = [f for f in (self.sandboxes.detach_soon(box) for box in linked) if f is not None]
        deadline = time.monotonic() + timeout
        for future in futures:
            with contextlib.suppress(Exception):
                future.result(max(0.0, deadline - time.monotonic()))
        self.release_all(timeout)  # sandboxes no link names (nobody could come back to them)
        return len(linked)

    async def sweep_stale_schemas(self, max_age_hours: float = STALE_SANDBOX_HOURS) -> int:
        """Drop sandbox schemas left behind by a process that died before releasing them."""
        return await self.housekeeping.sweep_stale_schemas(self.admin_engine(), max_age_hours)

    # -- sandboxes -------------------------------------------------------------------
    def open_sandbox(self, migrate: bool = True) -> Sandbox:
        """A new, empty sandbox for one learner, migrated to the newest schema.

        Raises :class:`LabFull` past ``max_sandboxes``, or when one more sandbox would take the
        process past its memory budget (``PLAB_MEMORY_MB``). A sandbox whose migration fails is
        released again (retried by the sweep if the server is down) before the error is raised.
        """
        with self.sandboxes.opening():
            self.admission.admit_sandbox()
            # The public id names the schema and the key prefix, both shown on the page; the
            # secret that finds the sandbox again is its token (see SandboxRegistry.issue).
            sandbox_id = uuid.uuid4().hex[:12]
            if self.shared_engine is not None:
                schema = f"plab_{sandbox_id}"
                engine = self.shared_engine.execution_options(schema_translate_map={None: schema})
                sandbox = Sandbox(self, sandbox_id, engine, schema=schema)
            else:
                token = None
                if self.durable is not None and isinstance(self.durable.directory, FileDirectory):
                    # Named after its link (hashed), so a restart finds it again: see SandboxRegistry.reserve.
                    token = new_token()
                    directory = self._data_folder(token)
                    directory.mkdir(mode=0o700, parents=True)
                else:
                    directory = Path(tempfile.mkdtemp(prefix=SQLITE_FOLDER_PREFIX))
                engine = self.runtime.run(on_loop(sqlite_engine, directory / "lab.db", **SQLITE_SANDBOX_POOL))
                sandbox = Sandbox(self, sandbox_id, engine, directory=directory)
                if token is not None:
                    self.sandboxes.reserve(sandbox, token)
            if migrate:
                try:
                    sandbox.run(sandbox.migrate())
                except BaseException:
                    self.sandboxes.release_soon(sandbox)
                    raise
            self.sandboxes.add(sandbox)
        return sandbox

    def visitor(self) -> VisitorSandbox:
        """The process's shared, read-only sandbox that passers-by's pages are drawn from (built once, on first use).

        It takes no seat: see :mod:`source.platform.visitor`.
        """
        with self._visitor_lock:
            if self._visitor is None:
                self._visitor = self.runtime.run(open_visitor(self, self.shared_engine), timeout=RELEASE_WAIT_S)
            return self._visitor

    @property
    def seats_taken(self) -> int:
        """Sandboxes held by learners right now (what the cap ``max_sandboxes`` counts)."""
        return len(self.sandboxes.live)

    def release_soon(self, sandbox: Sandbox, why: str | None = None) -> None:
        """Release without waiting (Streamlit's ``on_release``, *Start over*, idle expiry)."""
        self.sandboxes.release_soon(sandbox, why)

    def release(self, sandbox: Sandbox, timeout: float = RELEASE_WAIT_S) -> None:
        """Release and wait for it, up to ``timeout`` (tests, benchmarks); the sweep retries a failure."""
        future = self.sandboxes.release_soon(sandbox)
        if future is not None:
            with contextlib.suppress(Exception):
                future.result(timeout)

    def release_all(self, timeout: float = RELEASE_WAIT_S) -> int:
        """Release every sandbox at once and wait up to ``timeout`` for all of them together."""
        boxes = list(self._sandboxes)
        futures = [f for f in (self.sandboxes.release_soon(box) for box in boxes) if f is not None]
        deadline = time.monotonic() + timeout
        for future in futures:
            with contextlib.suppress(Exception):
                future.result(max(0.0, deadline - time.monotonic()))
        return len(boxes)

    @property
    def _sandboxes(self) -> set[Sandbox]:
        """Every live sandbox (for tests and benchmarks that clean up after themselves)."""
        return self.sandboxes.live | self.sandboxes.pending

    @property
    def open_sandboxes(self) -> int:
        return sum(1 for s in self.sandboxes.live if not s.closed)

    async def check_health(self) -> Health:
        """Whether the database and Redis answer right now (cached for a few seconds)."""
        return await self.health()

    def experiment_engine(
        self, sandbox: Sandbox, *, pool_size: int, max_overflow: int, pool_timeout: float, nullpool: bool = False
    ) -> AsyncEngine:
        """A dedicated engine with a learner's own pool settings, for Lab 2 (call it on the loop).

        SQLite: a pool on the sandbox's own file. PostgreSQL: the app's database URL with the
        same bounded waits as the shared engine, seeing the sandbox's schema. ``NullPool`` keeps nothing:
        every ``connect()`` opens a new connection and closing it really closes it.
        """
        pool: dict[str, Any] = (
            {"poolclass": NullPool}
            if nullpool
            else {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}
        )
        if self.shared_engine is None:  # SQLite; a notebook's PostgreSQL context has no schema of its own
            if sandbox.directory is None:
                raise RuntimeError("A SQLite sandbox always has a folder")
            # Its pool probe times each opening from the dialect's do_connect event: a dialect of its own.
            return sqlite_engine_own_dialect(sandbox.directory / "lab.db", **pool)
        if self.settings.database_url is None:
            raise RuntimeError("A shared engine always comes from a DATABASE_URL")
        connect_args = postgres_connect_args(self.settings.statement_timeout_s)
        engine = create_async_engine(self.settings.database_url, connect_args=connect_args, **pool)
        return engine.execution_options(schema_translate_map={None: sandbox.schema})

    def admin_engine(self) -> AsyncEngine:
        """The shared PostgreSQL engine, which creates and drops sandbox schemas."""
        if self.shared_engine is None:
            raise RuntimeError("No shared PostgreSQL engine: this lab runs on SQLite files.")
        return self.shared_engine

    @property
    def experiment_connections(self) -> int:
        """Connections every learner's Lab 2 experiments may hold together: a setting on PostgreSQL.

        SQLite files are in this process, so their budget is a fixed one that the largest pool fits.
        """
        if self.shared_engine is None:
            return SQLITE_EXPERIMENT_CONNECTIONS
        return self.settings.experiment_connections

    def close(self) -> None:
        """Release every sandbox and client (tests and benchmarks)."""
        self.release_all()
        if self.runtime.alive:
            self.runtime.run(self._aclose(), timeout=30)

    async def _aclose(self) -> None:
        self.housekeeping.stop()
        if self._visitor is not None:
            await self._visitor.aclose()
        if self.durable is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(SWEEP_TIMEOUT_S):
                    await self.durable.directory.leave()
        if self.shared_engine is not None:
            await self.shared_engine.dispose()
        await self.redis.aclose()
