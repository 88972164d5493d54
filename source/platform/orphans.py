"""Orphans: sandboxes a process that died (or restarted) could not release, found and removed.

Live sandboxes are released by their registry. A crash, a redeploy or a kill skips that, so
every sandbox is marked with when it was made: a schema whose comment carries the app's mark
and a timestamp older than any learner works, or a temporary folder untouched for as long,
belongs to nobody any more. Anything not marked exactly so is left alone.

A process's visitor's SQLite folder (:mod:`source.platform.visitor`) is not a learner's: it lives
exactly as long as its process, which holds a lock on a file inside it (``flock``). The kernel lets
go of that lock when the process ends, however it ends, so a folder whose lock can be taken is a
dead process's, and one whose lock is held is a live one's, whatever their ages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if sys.platform != "win32":
    import fcntl

#: Marks a schema as a sandbox and records when it was made.
SCHEMA_COMMENT_PREFIX = "persistence-lab sandbox created "

#: A sandbox older than this with no live owner is an orphan (hours).
STALE_SANDBOX_HOURS = 12.0

#: Every learner's SQLite file lives in a temporary folder whose name starts with this.
SQLITE_FOLDER_PREFIX = "persistence-lab-"

#: Each process's visitor's SQLite folder, in the temporary directory, has a name that starts with this.
VISITOR_FOLDER_PREFIX = "plab-visitor-"
#: The file in a visitor's folder that its process keeps locked while it lives.
OWNER_LOCK_FILE = "owner.lock"


async def mark_schema(conn: AsyncConnection, schema: str) -> None:
    """Mark ``schema`` as a sandbox made now, so a later process can tell it from a schema it must not drop."""
    created = datetime.now(UTC).isoformat()
    await conn.execute(text(f"COMMENT ON SCHEMA \"{schema}\" IS '{SCHEMA_COMMENT_PREFIX}{created}'"))


async def sweep_stale_schemas(
    engine: AsyncEngine, keep: Collection[str | None] = (), max_age_hours: float = STALE_SANDBOX_HOURS
) -> int:
    """Drop ``plab_`` schemas marked by the app more than ``max_age_hours`` ago (except ``keep``).

    A schema is dropped only if its comment is exactly the app's mark with a readable
    timestamp: a ``plab_`` schema with any other comment (or none) is not ours to drop.
    Each schema is dropped in its own transaction, so one that fails leaves the rest going.
    """
    query = text("SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname LIKE 'plab\\_%'")
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    cutoff = datetime.now(UTC) - timedelta(hours=max_age_hours)
    stale = [name for name, comment in rows if name not in keep and (_created(comment) or cutoff) < cutoff]
    for name in stale:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    return len(stale)


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


def hold_folder(folder: Path) -> int | None:
    """Lock ``folder`` for this process until it ends or closes the descriptor returned (``None``: no locks here).

    The lock is an ``flock`` on :data:`OWNER_LOCK_FILE`: held per open file, so even a sweep in this same
    process cannot take it, and released by the kernel when the process dies.
    """
    if sys.platform == "win32":  # no flock: such folders go by age alone
        return None
    fd = os.open(folder / OWNER_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def _owner_gone(folder: Path) -> bool:
    """True if ``folder`` has an owner file whose lock nobody holds: the process that made it has ended."""
    if sys.platform == "win32":
        return False
    try:
        fd = os.open(folder / OWNER_LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: its process is alive
        return False
    finally:
        os.close(fd)  # lets go of the lock, if this took it
    return True


def sweep_dead_visitor_folders(max_age_hours: float = STALE_SANDBOX_HOURS) -> int:
    """Delete visitors' SQLite folders whose process has ended without removing them (a crash, a kill).

    A folder whose owner lock is held belongs to a live process and is kept, however old. One with no
    lock file (a process still making it, or one from before the lock) goes by age, like a learner's.
    """
    cutoff = time.time() - max_age_hours * 3600
    swept = 0
    for folder in Path(tempfile.gettempdir()).glob(VISITOR_FOLDER_PREFIX + "*"):
        with contextlib.suppress(OSError):
            if not (folder / OWNER_LOCK_FILE).exists():
                newest = max((p.stat().st_mtime for p in folder.iterdir()), default=folder.stat().st_mtime)
                if newest >= cutoff:
                    continue
            elif not _owner_gone(folder):
                continue
            shutil.rmtree(folder)
            swept += 1
    return swept


def _created(comment: str | None) -> datetime | None:
    """When the app made a sandbox schema, read from its comment; ``None`` if the mark is not ours."""
    if not comment or not comment.startswith(SCHEMA_COMMENT_PREFIX):
        return None
    try:
        created = datetime.fromisoformat(comment[len(SCHEMA_COMMENT_PREFIX) :])
    except ValueError:
        return None
    return created if created.tzinfo is not None else None
