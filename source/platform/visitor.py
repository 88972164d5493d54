"""The visitor's sandbox: what a page is drawn from before a learner's first action, shared and read-only.

A page view is not a learner. Link previews, bots, a tab opened and closed, someone reading the story:
none of them needs a database of their own, and each one that got one would hold a seat (a schema, a
file) for the whole idle expiry. So every passer-by's page is drawn from *one* empty sandbox per
process, migrated like any other, that nothing can write to:

* on PostgreSQL, the schema :data:`VISITOR_SCHEMA` read through read-only transactions
  (``postgresql_readonly``: the server itself refuses any write);
* on SQLite, one empty file per process opened with ``PRAGMA query_only`` (SQLite refuses any write);
* in Redis, the namespace :data:`VISITOR_PREFIX` through a client that sends read commands only.

Pages drawn from it show empty tables, zero counts, the story and the code. The first action that needs
a sandbox takes a seat of the learner's own (see ``source.web.sandbox``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from source.domain.errors import LabError
from source.platform.engines import sqlite_engine
from source.platform.migrate import migration_lock, upgrade_to_head
from source.platform.orphans import VISITOR_FOLDER_PREFIX, hold_folder
from source.platform.redis_command_names import NamespaceError, command_name
from source.platform.redis_namespace import NamespacedPipeline, NamespacedRedis
from source.platform.sandbox import Sandbox

if TYPE_CHECKING:
    from source.platform.sandbox import SandboxHost

T = TypeVar("T")
S = TypeVar("S")

#: The PostgreSQL schema every process draws visitors' pages from (empty, migrated, never written).
VISITOR_SCHEMA = "persistence_lab_empty"
#: The visitor's sandbox id, and so its Redis prefix (``plab:visitor:``): no learner's id looks like it.
VISITOR_ID = "visitor"
VISITOR_PREFIX = f"plab:{VISITOR_ID}:"
#: The visitor's SQLite pool: every passer-by of the process shares it, for reads only.
VISITOR_SQLITE_POOL = {"pool_size": 2, "max_overflow": 4, "pool_timeout": 10.0}
#: Another process may be migrating the shared schema: the lock it holds meanwhile (``pg_advisory_xact_lock``).
MIGRATION_LOCK_ID = 0x706C6162  # "plab"

#: Redis commands that only read: the only ones the visitor's client sends.
READ_COMMANDS = frozenset(
    [
        "EXISTS",
        "GET",
        "MGET",
        "GETRANGE",
        "STRLEN",
        "TTL",
        "PTTL",
        "EXPIRETIME",
        "PEXPIRETIME",
        "TYPE",
        "SCAN",
        "HGET",
        "HGETALL",
        "HMGET",
        "HEXISTS",
        "HLEN",
        "HKEYS",
        "HVALS",
        "HSTRLEN",
        "HSCAN",
        "SMEMBERS",
        "SISMEMBER",
        "SMISMEMBER",
        "SCARD",
        "SSCAN",
        "SRANDMEMBER",
        "ZRANGE",
        "ZREVRANGE",
        "ZRANGEBYSCORE",
        "ZREVRANGEBYSCORE",
        "ZSCORE",
        "ZMSCORE",
        "ZCARD",
        "ZCOUNT",
        "ZRANK",
        "ZREVRANK",
        "ZSCAN",
        "LRANGE",
        "LLEN",
        "LINDEX",
        "LPOS",
        "XLEN",
        "XRANGE",
        "XREVRANGE",
        "XPENDING",
        "XREAD",
        "PFCOUNT",
        "BITCOUNT",
        "GETBIT",
        "BITPOS",
        "PING",
        "ECHO",
    ]
) | {"XINFO STREAM", "XINFO GROUPS", "XINFO CONSUMERS", "OBJECT ENCODING", "MEMORY USAGE"}

WRITE_REFUSED = (
    "{name} would write, and the page you are looking at is drawn from the shared read-only view "
    "for visitors: press an action's button instead, which opens a sandbox of your own."
)


def _refuse_writes(args: tuple[Any, ...]) -> None:
    name, _ = command_name(args)
    if name not in READ_COMMANDS:
        raise NamespaceError(WRITE_REFUSED.format(name=name))


class ReadOnlyRedis(NamespacedRedis):
    """The visitor's Redis: its own namespace, read commands only (a write raises before anything is sent)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        _refuse_writes(args)
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> NamespacedPipeline:
        return ReadOnlyPipeline(self.namespace, self.connection_pool, self.response_callbacks, False, shard_hint)

    def pubsub(self, **kwargs: Any) -> NoReturn:
        raise NamespaceError("Visitors have no channels: an action opens a sandbox of your own.")

    def client(self) -> NamespacedRedis:
        return self  # reads only: no dedicated connection needed


class ReadOnlyPipeline(NamespacedPipeline):
    """A visitor's pipeline: read commands only, refused as they are queued."""

    def pipeline_execute_command(self, *args: Any, **options: Any) -> NamespacedPipeline:
        _refuse_writes(args)
        return super().pipeline_execute_command(*args, **options)

    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        _refuse_writes(args)
        return await super().immediate_execute_command(*args, **options)


class VisitorSandbox(Sandbox):
    """The one sandbox every passer-by of a process is drawn from: empty, shared, read-only.

    It keeps nothing between calls (a page's memory, a job runner: each call gets a new, empty one),
    starts no background work, and is never reset or released by a learner: it belongs to the process.
    """

    visitor = True

    def __init__(self, host: SandboxHost, engine: AsyncEngine, *, schema: str | None, directory: Path | None) -> None:
        super().__init__(host, VISITOR_ID, engine, schema=schema, directory=directory)
        self.redis = ReadOnlyRedis(host.redis, self.key_prefix)
        #: The lock on its folder this process holds while it lives (see :func:`~source.platform.orphans.hold_folder`).
        self.owner_lock: int | None = None

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        coro.close()
        raise LabError("Background work needs a sandbox of your own: an action's button opens one.")

    def service(self, key: str, make: Callable[[Sandbox], S], stop: Callable[[S], Awaitable[None]] | None = None) -> S:
        """A new object on every call: nothing one passer-by's page leaves is seen by another's."""
        return make(self)

    async def reset(self) -> None:
        raise LabError("There is nothing to reset yet: your first action opens a sandbox of your own.")

    async def renew_lease(self) -> int:
        return 0  # it writes no keys

    async def aclose(self) -> None:
        """Close its connections (the process is shutting down); the shared schema stays for the next start."""
        self.closed = True
        if self.schema is None:  # on PostgreSQL its engine is a view of the shared one, which the host closes
            await self.engine.dispose()
        if self.directory is not None:
            await asyncio.to_thread(shutil.rmtree, self.directory, True)
        if self.owner_lock is not None:
            os.close(self.owner_lock)
            self.owner_lock = None
        self.released = True

    def __repr__(self) -> str:
        where = f"schema {self.schema}" if self.schema else f"file {self.directory}"
        return f"<VisitorSandbox ({where}, read-only)>"


async def open_visitor(host: SandboxHost, shared_engine: AsyncEngine | None) -> VisitorSandbox:
    """Build the process's visitor sandbox on the running loop: migrate the empty database, then open it read-only."""
    if shared_engine is not None:
        writer = shared_engine.execution_options(schema_translate_map={None: VISITOR_SCHEMA})
        async with shared_engine.connect() as conn:
            # Several processes may start at once: one creates and migrates the schema, the others wait here.
            await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            try:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{VISITOR_SCHEMA}"'))
                await conn.commit()
                async with migration_lock(), writer.begin() as migrating:
                    await migrating.run_sync(upgrade_to_head, VISITOR_SCHEMA)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                await conn.commit()
        reader = shared_engine.execution_options(schema_translate_map={None: VISITOR_SCHEMA}, postgresql_readonly=True)
        return VisitorSandbox(host, reader, schema=VISITOR_SCHEMA, directory=None)
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=VISITOR_FOLDER_PREFIX))
    # Held while this process lives: if it dies without removing the folder, another's orphan sweep does.
    owner_lock = await asyncio.to_thread(hold_folder, directory)
    path = directory / "lab.db"
    writer = sqlite_engine(path)
    try:
        async with migration_lock(), writer.begin() as migrating:
            await migrating.run_sync(upgrade_to_head, None)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, directory, True)
        if owner_lock is not None:
            os.close(owner_lock)
        raise
    finally:
        await writer.dispose()
    reader = sqlite_engine(path, **VISITOR_SQLITE_POOL)
    event.listen(reader.sync_engine, "connect", _query_only)
    visitor = VisitorSandbox(host, reader, schema=None, directory=directory)
    visitor.owner_lock = owner_lock
    return visitor


def _query_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()
