"""Alembic in code: every sandbox is migrated to the newest revision on its own connection.

The migration scripts are read once per process (:func:`scripts`): Alembic's ``command.upgrade``
would read the script folder again, and load ``env.py`` again, for every learner's sandbox.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from source.domain.models import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_migration_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def alembic_config() -> Config:
    """Alembic configured in code: the scripts ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@functools.cache
def scripts() -> ScriptDirectory:
    """The migration scripts, read once per process (a new migration takes a restart, as new code does)."""
    return ScriptDirectory.from_config(alembic_config())


def upgrade_to_head(connection: Connection, schema: str | None = None) -> None:
    """Bring the database (or one schema of it) to the newest migration."""
    upgrade_to(connection, schema, "head")


def upgrade_to(connection: Connection, schema: str | None, revision: str) -> None:
    """Bring the database (or one schema of it) to ``revision``; what ``alembic upgrade`` does, in code.

    Runs inside ``AsyncConnection.run_sync``: Alembic is synchronous, and ``run_sync``
    lends it the async connection through a greenlet. Alembic keeps the running migration
    in module globals, so callers on one event loop take turns (see :func:`migration_lock`).
    """
    script = scripts()

    def steps(current: Any, _context: Any) -> Iterable[Any]:
        return script._upgrade_revs(revision, current)

    config = alembic_config()
    with EnvironmentContext(config, script, fn=steps, destination_rev=revision) as context:
        run_migrations(context, connection, schema)


def run_migrations(context: EnvironmentContext, connection: Connection, schema: str | None) -> None:
    """Configure Alembic on ``connection`` and run the migrations (shared with ``migrations/env.py``).

    A learner's PostgreSQL schema is reached through ``schema_translate_map``; the version
    table is named with the schema explicitly so Alembic's own existence check finds it.
    """
    context.configure(connection=connection, target_metadata=Base.metadata, version_table_schema=schema)
    with context.begin_transaction():
        context.run_migrations()


def migration_lock() -> asyncio.Lock:
    """One lock per event loop, so migrations take turns.

    Alembic keeps the running migration's context in module globals (``alembic.context``,
    ``alembic.op``). A migration awaits the database between steps, and meanwhile the loop
    would start another learner's: the second would overwrite the first one's globals. So
    migrations that would overlap on one loop run one after another.
    """
    loop = asyncio.get_running_loop()
    lock = _migration_locks.get(loop)
    if lock is None:
        lock = _migration_locks[loop] = asyncio.Lock()
    return lock


def migration_head() -> str | None:
    """The newest revision of the migration scripts (what every sandbox is migrated to)."""
    return scripts().get_current_head()
