"""Engine factories: how the lab reaches SQLite files and PostgreSQL asynchronously."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.engine.interfaces import CompiledCacheType
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

#: The shared PostgreSQL pool: every learner's schema is reached through it (sizes: ``Settings``).
SHARED_POOL = {"pool_size": 5, "max_overflow": 5, "pool_timeout": 10.0}

#: SQLite's page cache per connection (KiB; its default is 2,000): measured with ``bench.cloud_memory``.
SQLITE_CACHE_KIB = 128
#: How long opening one PostgreSQL connection may take (seconds).
CONNECT_TIMEOUT_S = 5.0
#: The client gives up on a statement this long after the server should have cancelled it:
#: a server that stopped answering altogether cannot cancel anything.
CLIENT_TIMEOUT_MARGIN_S = 2.0


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit.

    ``expire_on_commit=False`` matters under asyncio: an expired attribute would need
    an implicit refresh on access, and implicit I/O is exactly what async forbids.
    """
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def sqlite_engine(path: Path, **pool: Any) -> AsyncEngine:
    """An async engine on a SQLite *file*, so it gets a real connection pool.

    WAL mode lets readers and one writer work at the same time; ``busy_timeout`` makes a
    second writer wait for the lock instead of failing at once; ``foreign_keys`` makes
    SQLite enforce the FKs that PostgreSQL always enforces.

    The engine compiles through the process's shared dialect and statement cache (see
    :class:`SharedSqliteCompiler`); :func:`sqlite_engine_own_dialect` makes one that does not.
    """
    engine = sqlite_engine_own_dialect(path, **pool)
    SQLITE_COMPILED.share(engine.sync_engine)
    return engine


def sqlite_engine_own_dialect(path: Path, **pool: Any) -> AsyncEngine:
    """As :func:`sqlite_engine`, with a dialect and a statement cache of its own: for an engine that
    listens to dialect events such as ``do_connect`` (see :class:`SharedSqliteCompiler`)."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", **pool)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


class SharedSqliteCompiler:
    """One SQLite dialect and one compiled-statement cache for every SQLite file engine of the process.

    SQLAlchemy keeps the SQL it compiled for a statement in its engine's cache, keyed by the engine's
    dialect: each learner's file engine compiled (and kept) the same few hundred statements again, the
    largest part of a learner's memory on the embedded default. A SQLite file holds one learner's tables
    under the same names as every other's, so the SQL is the same for all of them; the values travel
    beside it, bound at each execution. Only the dialect and the cache are shared: each engine keeps its
    own pool, its own connections and the listeners that set each new connection up (pragmas, isolation
    level, SQLite's functions), which run for every connection as before.

    Listeners of *dialect* events (``do_connect``) belong to the dialect, not to the engine: on a shared
    dialect they would never fire for the engine they were meant for, and would pile up for every
    learner. An engine that needs them is made by :func:`sqlite_engine_own_dialect` (Lab 2's pool probe).

    The dialect is shared once a first connection has initialised it (read SQLite's version and what it
    supports): an engine made before that keeps its own, and the next one offers its dialect instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dialect: Dialect | None = None
        self._cache: CompiledCacheType | None = None

    def share(self, engine: Engine) -> None:
        with self._lock:
            if self._dialect is None or self._dialect.server_version_info is None:
                self._dialect, self._cache = engine.dialect, engine._compiled_cache
                return
            dialect, cache = self._dialect, self._cache
        engine.dialect = dialect
        engine.pool._dialect = dialect  # the pool rolls back, pings and closes connections through it
        engine._compiled_cache = cache

    def shares(self, engine: Engine) -> bool:
        """Whether ``engine`` compiles through the shared dialect and cache (tests, benchmarks)."""
        return self._dialect is not None and engine.dialect is self._dialect


#: The process's shared SQLite dialect and compiled-statement cache (see :class:`SharedSqliteCompiler`).
SQLITE_COMPILED = SharedSqliteCompiler()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Every learner's connections live in the app's one process: a page cache of SQLite's default 2 MB
    # each would grow with every learner. Pages it drops are read again from the OS's file cache.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def postgres_connect_args(statement_timeout_s: float) -> dict[str, Any]:
    """What asyncpg needs so that no wait on PostgreSQL is unbounded.

    ``timeout`` bounds connecting; the server's ``statement_timeout`` cancels a statement
    that runs too long (the learner is told so); ``command_timeout`` makes the client give
    up too, a little later, for a server that stopped answering altogether.

    And no JIT, as for most short transactional queries: the planner deems a query such as
    the outbox's claim (a subquery per candidate row) costly enough to compile it to machine
    code, which takes longer (about 5 ms, on every run) than running it (about 1 ms).
    """
    return {
        "timeout": CONNECT_TIMEOUT_S,
        "command_timeout": statement_timeout_s + CLIENT_TIMEOUT_MARGIN_S,
        "server_settings": {"statement_timeout": str(int(statement_timeout_s * 1000)), "jit": "off"},
    }


def postgres_engine(url: str, statement_timeout_s: float = 10.0, **pool: Any) -> AsyncEngine:
    """An asyncpg engine whose every wait is bounded (see :func:`postgres_connect_args`)."""
    options = {**SHARED_POOL, **pool}
    return create_async_engine(
        url, pool_pre_ping=True, connect_args=postgres_connect_args(statement_timeout_s), **options
    )


def loop_engine(
    url: str | None, sqlite_path: Path, statement_timeout_s: float, *, pool_size: int = 5, max_overflow: int = 5
) -> AsyncEngine:
    """A pooled engine for one event loop: PostgreSQL if ``url`` names it, else a SQLite file.

    The SQLite file is the one a ``sqlite`` ``url`` names, or ``sqlite_path``. A pooled
    connection belongs to the event loop it was opened on, so whoever makes this engine
    disposes of it before that loop closes (``default_context`` does it as the loop shuts down).
    Reusing connections is what makes a notebook's or a script's calls run at the app's speed:
    no new connection, and no statement prepared again, per call.
    """
    pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": SHARED_POOL["pool_timeout"]}
    if url and url.startswith("postgresql"):
        return postgres_engine(url, statement_timeout_s, **pool)
    if url and url.startswith("sqlite"):
        sqlite_path = Path(make_url(url).database or sqlite_path)
    return sqlite_engine(sqlite_path, **pool)
