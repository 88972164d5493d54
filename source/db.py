"""Engines, sessions and migrations: how the lab reaches its database asynchronously.

``get_session`` and ``initialize_db`` keep the course's names. They work on the
*current sandbox* (see :mod:`source.sandbox`): the learner's own database or schema.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: The shared PostgreSQL pool: every learner's schema is reached through it.
SHARED_POOL = {"pool_size": 10, "max_overflow": 10, "pool_timeout": 10.0}


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
    """
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", **pool)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def postgres_engine(url: str, **pool: Any) -> AsyncEngine:
    """An asyncpg engine. ``timeout`` bounds connecting, so a dead server fails fast."""
    options = {**SHARED_POOL, **pool}
    return create_async_engine(url, pool_pre_ping=True, connect_args={"timeout": 5}, **options)


def alembic_config() -> Config:
    """Alembic configured in code: the scripts ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_to_head(connection: Connection, schema: str | None = None) -> None:
    """Bring the database (or one schema of it) to the newest migration.

    Runs inside ``AsyncConnection.run_sync``: Alembic is synchronous, and ``run_sync``
    lends it the async connection through a greenlet.
    """
    config = alembic_config()
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    command.upgrade(config, "head")


def migration_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class _SessionScope:
    """One ``AsyncSession`` on the current sandbox, closed when the block ends.

    Works both as ``async with get_session() as session:`` (the usual form) and as
    ``async for session in get_session():`` (the course notebook's form).
    """

    def __init__(self) -> None:
        from .sandbox import current_sandbox

        self._session = current_sandbox().sessionmaker()

    async def __aenter__(self) -> AsyncSession:
        return await self._session.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._session.__aexit__(*exc)

    async def __aiter__(self) -> AsyncIterator[AsyncSession]:
        async with self._session as session:
            yield session


def get_session() -> _SessionScope:
    """An ``AsyncSession`` on the current learner's sandbox.

    The session does not commit for you: a unit of work decides when it is done and calls
    ``await session.commit()``; leaving the block without committing rolls back.
    """
    return _SessionScope()


async def initialize_db() -> str | None:
    """Create or upgrade the current sandbox's schema with Alembic; returns the revision.

    Safe to run again: Alembic records the revision it reached and skips what is done.
    """
    from .sandbox import current_sandbox

    sandbox = current_sandbox()
    await sandbox.migrate()
    return migration_head()
