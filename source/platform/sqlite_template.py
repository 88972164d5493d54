"""A new SQLite sandbox is a copy of one migrated database, not a migration of its own.

Migrating a sandbox runs every migration's DDL, one statement after another, and migrations
take turns on the event loop (Alembic keeps its context in module globals): when a whole class
clicks at once, their sandboxes queued behind each other. So the process migrates one database
once per migration head, keeps its bytes (tens of KB), and a learner's new sandbox is a write of
those bytes as their ``lab.db``: no Alembic, no lock, nothing to wait for.

The template is kept per head: a process that sees a new migration never hands out a copy made
for an older one. A sandbox that already has a file (one resumed from the data folder, made
before the newest migration) is not copied over: it is migrated up by Alembic, as before.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy.pool import NullPool

from source.platform.engines import sqlite_engine
from source.platform.migrate import migration_head, migration_lock, upgrade_to
from source.platform.orphans import SQLITE_FOLDER_PREFIX

#: The migrated database's bytes, by the migration head they were made for.
_templates: dict[str, bytes] = {}


async def template(head: str) -> bytes:
    """The bytes of an empty database migrated to ``head``: built once per process and head."""
    found = _templates.get(head)
    if found is not None:
        return found
    async with migration_lock():
        found = _templates.get(head)  # made meanwhile by whoever held the lock before us
        if found is None:
            found = _templates[head] = await _build(head)
    return found


async def _build(head: str) -> bytes:
    """Migrate a scratch file to ``head`` and read it back as one self-contained file (no WAL beside it)."""
    # Named like a sandbox's folder, so the start-up sweep removes it if the process dies meanwhile.
    folder = Path(tempfile.mkdtemp(prefix=SQLITE_FOLDER_PREFIX + "template-"))
    try:
        path = folder / "template.db"
        engine = sqlite_engine(path, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(upgrade_to, None, head)
            # Everything out of the write-ahead log into the file itself; the copies switch WAL on
            # again when they are first opened (``engines._sqlite_pragmas``).
            async with engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
        finally:
            await engine.dispose()
        return path.read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def copy_template(path: Path) -> bool:
    """Make ``path`` a database migrated to the newest head, if no file is there yet.

    Returns ``False`` (and touches nothing) when ``path`` exists: that database is migrated by
    Alembic instead. The copy is readable by this process's user only, like its folder.
    """
    head = migration_head()
    if head is None:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(await template(head))
    except BaseException:
        os.unlink(path)
        raise
    return True
