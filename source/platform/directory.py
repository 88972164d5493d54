"""The sandbox directory: which link owns which sandbox, kept where a restart or another process finds it.

A link token is a secret: the directory stores its SHA-256, never the token. Beside the sandboxes
it keeps a heartbeat per process (a row written every housekeeping round) and the background jobs
running, so a process can tell a job whose process died from one still running elsewhere.

Two stores, one interface:

* :class:`PostgresDirectory` keeps three tables in the schema ``persistence_lab`` of the configured
  database: ``sandboxes``, ``processes`` and ``jobs``. Every time is the database's ``now()``, one
  clock for every process.
* :class:`FileDirectory` (the embedded default) keeps a folder per sandbox in a stable data directory,
  ``persistence-lab-<sha256(token)[:32]>``, holding the learner's SQLite file and ``sandbox.json``;
  heartbeats are files under ``processes/`` and running jobs are marker files in the sandbox's folder.
  A restart in the same container finds them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

#: The schema that holds the directory on PostgreSQL (a sandbox's schema starts with ``plab_``: never swept).
#: Its statements below name it literally: no part of a statement is built from a value.
SCHEMA = "persistence_lab"
#: The folder, under the system's temporary directory, that holds the embedded default's sandboxes.
DATA_DIR_NAME = "persistence-lab"
#: A sandbox's folder: this prefix and the first 32 hex digits of its token's SHA-256.
FOLDER_PREFIX = "persistence-lab-"
#: The small file in a sandbox's folder that says which link owns it and when it was last used.
ENTRY_FILE = "sandbox.json"
#: Serialises the tables' creation when several processes start at once (any constant of our own).
SETUP_LOCK = 0x504C4142

DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.sandboxes (
        token_hash text PRIMARY KEY,
        sandbox_id text NOT NULL UNIQUE,
        schema_name text,
        created timestamptz NOT NULL DEFAULT now(),
        last_active timestamptz NOT NULL DEFAULT now(),
        last_open timestamptz NOT NULL DEFAULT now())""",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.processes (process_id text PRIMARY KEY, beat timestamptz NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.jobs (
        sandbox_id text NOT NULL,
        service text NOT NULL,
        process_id text NOT NULL,
        started timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (sandbox_id, service, process_id))""",
)


def token_hash(token: str) -> str:
    """What the directory keeps of a link: its SHA-256 (the token itself never leaves the process)."""
    return hashlib.sha256(token.encode()).hexdigest()


def folder_name(token: str) -> str:
    """The folder of a sandbox on the embedded default, named after (a hash of) its link."""
    return FOLDER_PREFIX + token_hash(token)[:32]


def default_data_dir() -> Path:
    """Where the embedded default keeps its sandboxes unless ``PLAB_DATA_DIR`` says otherwise."""
    return Path(tempfile.gettempdir()) / DATA_DIR_NAME


def new_process_id() -> str:
    """A name for this process in the directory: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunningJob:
    """A background job the directory says is running: which process runs it, and whether that one still beats."""

    service: str
    process_id: str
    started: datetime
    process_alive: bool


@dataclass(frozen=True)
class Entry:
    """One sandbox in the directory (and, when found by its link, the jobs recorded as running in it)."""

    sandbox_id: str
    schema_name: str | None
    created: datetime
    last_active: datetime
    jobs: tuple[RunningJob, ...] = ()


class Directory(ABC):
    """Where sandboxes, heartbeats and running jobs are kept; every method is one round trip to the store."""

    #: What survives a restart of the process, in the learner's words (shown in the sidebar).
    survives: str = ""

    def __init__(self, process_id: str | None = None) -> None:
        self.process_id = process_id or new_process_id()

    @abstractmethod
    async def setup(self) -> None:
        """Create what the store needs (idempotent; several processes may start at once)."""

    @abstractmethod
    async def find(self, token_hash: str, idle_s: float, grace_s: float = 30.0) -> Entry | None:
        """The sandbox of a link, if used within ``idle_s``, with its running jobs (one read, nothing else).

        A job's process counts as alive if its heartbeat is younger than ``grace_s``.
        """

    @abstractmethod
    async def opened(self, sandbox_id: str) -> None:
        """A process attached the sandbox just now: ``last_open`` and ``last_active`` (after the bind)."""

    @abstractmethod
    async def record(self, token_hash: str, sandbox_id: str, schema_name: str | None, folder: Path | None) -> None:
        """A new sandbox for a link."""

    @abstractmethod
    async def touch(self, sandbox_ids: Collection[str]) -> None:
        """These sandboxes were used just now (called each housekeeping round, not on each click)."""

    @abstractmethod
    async def entries(self) -> dict[str, Entry]:
        """Every sandbox in the directory, by id (for the sweeps)."""

    @abstractmethod
    async def forget(self, sandbox_id: str, idle_s: float | None = None) -> bool:
        """Remove a sandbox (with its jobs); with ``idle_s`` only if unused that long. True if it was removed."""

    @abstractmethod
    async def beat(self) -> None:
        """This process is alive (each housekeeping round)."""

    @abstractmethod
    async def leave(self) -> None:
        """This process is stopping: its heartbeat goes, so its jobs read as stopped at once."""

    @abstractmethod
    async def job_started(self, sandbox_id: str, service: str) -> None: ...

    @abstractmethod
    async def job_ended(self, sandbox_id: str, service: str, process_id: str | None = None) -> None: ...

    @abstractmethod
    async def jobs(self, sandbox_id: str, service: str, grace_s: float) -> list[RunningJob]:
        """Jobs of one kind recorded as running in a sandbox, on any process, and whether their process beats."""


#: A sandbox's jobs, each with whether its process still beats (within ``:grace`` seconds): the select list's
#: last column and the FROM clause that both :meth:`PostgresDirectory.find` and :meth:`PostgresDirectory.jobs` read.
_JOB_ALIVE = "coalesce(p.beat > now() - make_interval(secs => :grace), false)"
_JOBS_FROM = "FROM persistence_lab.jobs j LEFT JOIN persistence_lab.processes p USING (process_id)"


class PostgresDirectory(Directory):
    """The directory in the configured PostgreSQL: ``persistence_lab.sandboxes``, ``processes`` and ``jobs``."""

    survives = (
        "Your sandbox's schema lives in the lab's PostgreSQL: a restart of the app, or another of its "
        "processes, finds it again through this address."
    )

    def __init__(self, engine: AsyncEngine, process_id: str | None = None) -> None:
        super().__init__(process_id)
        self.engine = engine
        #: One statement, one round trip: no BEGIN and COMMIT around a statement that stands alone.
        self.single = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def setup(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SETUP_LOCK})
            for statement in DDL:
                await conn.execute(text(statement))

    async def find(self, token_hash: str, idle_s: float, grace_s: float = 30.0) -> Entry | None:
        # One statement, a read by primary key: found and still fresh (with its jobs), or nothing.
        query = text(
            "SELECT s.sandbox_id, s.schema_name, s.created, s.last_active, "  # noqa: S608 - constants only
            "(SELECT coalesce(json_agg(json_build_array(j.service, j.process_id, extract(epoch FROM j.started), "
            f"{_JOB_ALIVE})), '[]') {_JOBS_FROM} WHERE j.sandbox_id = s.sandbox_id) "
            "FROM persistence_lab.sandboxes s "
            "WHERE s.token_hash = :h AND s.last_active > now() - make_interval(secs => :idle)"
        )
        async with self.single.connect() as conn:
            row = (await conn.execute(query, {"h": token_hash, "idle": idle_s, "grace": grace_s})).first()
        if row is None:
            return None
        listed = json.loads(row[4]) if isinstance(row[4], str) else row[4]
        jobs = tuple(RunningJob(s, p, datetime.fromtimestamp(float(t), UTC), bool(a)) for s, p, t, a in listed)
        return Entry(row[0], row[1], row[2], row[3], jobs)

    async def opened(self, sandbox_id: str) -> None:
        query = text(
            "UPDATE persistence_lab.sandboxes SET last_open = now(), last_active = now() WHERE sandbox_id = :id"
        )
        async with self.single.connect() as conn:
            await conn.execute(query, {"id": sandbox_id})

    async def record(self, token_hash: str, sandbox_id: str, schema_name: str | None, folder: Path | None) -> None:
        query = text(
            "INSERT INTO persistence_lab.sandboxes (token_hash, sandbox_id, schema_name) VALUES (:h, :id, :schema) "
            "ON CONFLICT (token_hash) DO NOTHING"
        )
        async with self.single.connect() as conn:
            await conn.execute(query, {"h": token_hash, "id": sandbox_id, "schema": schema_name})

    async def touch(self, sandbox_ids: Collection[str]) -> None:
        if not sandbox_ids:
            return
        query = text("UPDATE persistence_lab.sandboxes SET last_active = now() WHERE sandbox_id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        async with self.single.connect() as conn:
            await conn.execute(query, {"ids": list(sandbox_ids)})

    async def entries(self) -> dict[str, Entry]:
        query = text("SELECT sandbox_id, schema_name, created, last_active FROM persistence_lab.sandboxes")
        async with self.single.connect() as conn:
            return {row[0]: Entry(*row) for row in (await conn.execute(query)).all()}

    async def forget(self, sandbox_id: str, idle_s: float | None = None) -> bool:
        # With no idle_s the age test is off (a NULL makes the OR true): one statement either way.
        query = text(
            "DELETE FROM persistence_lab.sandboxes WHERE sandbox_id = :id AND "
            "(CAST(:idle AS float8) IS NULL OR last_active < now() - make_interval(secs => CAST(:idle AS float8))) "
            "RETURNING sandbox_id"
        )
        async with self.engine.begin() as conn:
            gone = await conn.execute(query, {"id": sandbox_id, "idle": idle_s})
            removed = gone.first() is not None
            if removed:
                await conn.execute(text("DELETE FROM persistence_lab.jobs WHERE sandbox_id = :id"), {"id": sandbox_id})
        return removed

    async def beat(self) -> None:
        query = text(
            "INSERT INTO persistence_lab.processes (process_id, beat) VALUES (:p, now()) "
            "ON CONFLICT (process_id) DO UPDATE SET beat = now()"
        )
        async with self.single.connect() as conn:
            await conn.execute(query, {"p": self.process_id})

    async def leave(self) -> None:
        async with self.single.connect() as conn:
            await conn.execute(
                text("DELETE FROM persistence_lab.processes WHERE process_id = :p"), {"p": self.process_id}
            )

    async def job_started(self, sandbox_id: str, service: str) -> None:
        query = text(
            "INSERT INTO persistence_lab.jobs (sandbox_id, service, process_id) VALUES (:id, :s, :p) "
            "ON CONFLICT (sandbox_id, service, process_id) DO UPDATE SET started = now()"
        )
        async with self.single.connect() as conn:
            await conn.execute(query, {"id": sandbox_id, "s": service, "p": self.process_id})

    async def job_ended(self, sandbox_id: str, service: str, process_id: str | None = None) -> None:
        query = text("DELETE FROM persistence_lab.jobs WHERE sandbox_id = :id AND service = :s AND process_id = :p")
        async with self.single.connect() as conn:
            await conn.execute(query, {"id": sandbox_id, "s": service, "p": process_id or self.process_id})

    async def jobs(self, sandbox_id: str, service: str, grace_s: float) -> list[RunningJob]:
        query = text(
            f"SELECT j.service, j.process_id, j.started, {_JOB_ALIVE} {_JOBS_FROM} "
            "WHERE j.sandbox_id = :id AND j.service = :s"
        )
        async with self.single.connect() as conn:
            rows = (await conn.execute(query, {"id": sandbox_id, "s": service, "grace": grace_s})).all()
        return [RunningJob(*row) for row in rows]


class FileDirectory(Directory):
    """The directory as folders and small files in a stable data directory (the embedded default).

    Every write replaces a whole file (written beside it, then renamed), so a process that dies
    mid-write leaves the old file or the new one, never half of one.
    """

    survives = (
        "Your database is a file in the lab's data folder: a restart of the app in the same container finds "
        "it again through this address."
    )

    def __init__(self, root: Path, process_id: str | None = None) -> None:
        super().__init__(process_id)
        self.root = root
        self.processes = root / "processes"
        self._folders: dict[str, Path] = {}  # sandbox id -> folder, for the sandboxes this process recorded

    async def setup(self) -> None:
        await asyncio.to_thread(self._setup)

    def _setup(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)  # folder names are hashes, yet nobody else's
        self.processes.mkdir(exist_ok=True)

    def folder(self, token: str) -> Path:
        """Where the sandbox of ``token`` keeps its files."""
        return self.root / folder_name(token)

    async def find(self, token_hash: str, idle_s: float, grace_s: float = 30.0) -> Entry | None:
        return await asyncio.to_thread(self._find, token_hash, idle_s, grace_s)

    def _find(self, token_hash: str, idle_s: float, grace_s: float) -> Entry | None:
        folder = self.root / (FOLDER_PREFIX + token_hash[:32])
        data = _read(folder / ENTRY_FILE)
        if data is None or data.get("token_hash") != token_hash or time.time() - data["last_active"] > idle_s:
            return None
        self._folders[data["sandbox_id"]] = folder
        entry = _entry(data)
        return replace(entry, jobs=tuple(self._jobs(folder / "jobs", "*", grace_s)))

    async def opened(self, sandbox_id: str) -> None:
        folder = self._folders.get(sandbox_id)
        if folder is not None:
            await asyncio.to_thread(_stamp, folder, "last_open", "last_active")

    async def record(self, token_hash: str, sandbox_id: str, schema_name: str | None, folder: Path | None) -> None:
        if folder is None:
            raise ValueError("a SQLite sandbox is recorded with its folder")
        now = time.time()
        data: dict[str, Any] = {"token_hash": token_hash, "sandbox_id": sandbox_id, "schema_name": schema_name}
        data |= {"created": now, "last_active": now, "last_open": now}
        await asyncio.to_thread(_write, folder / ENTRY_FILE, data)
        self._folders[sandbox_id] = folder

    async def touch(self, sandbox_ids: Collection[str]) -> None:
        await asyncio.to_thread(self._touch, [self._folders[i] for i in sandbox_ids if i in self._folders])

    @staticmethod
    def _touch(folders: list[Path]) -> None:
        for folder in folders:
            _stamp(folder, "last_active")

    async def entries(self) -> dict[str, Entry]:
        return await asyncio.to_thread(self._entries)

    def _entries(self) -> dict[str, Entry]:
        return {entry.sandbox_id: entry for entry in self.folders().values() if entry is not None}

    def folders(self) -> dict[Path, Entry | None]:
        """Every sandbox folder in the data directory, with its entry (``None``: a folder no link owns)."""
        return {folder: None if data is None else _entry(data) for folder, data in self._entry_files()}

    def _entry_files(self) -> Iterator[tuple[Path, dict[str, Any] | None]]:
        """Every sandbox folder, with what its entry file holds (``None``: missing or unreadable)."""
        for folder in self.root.glob(FOLDER_PREFIX + "*"):
            yield folder, _read(folder / ENTRY_FILE)

    async def forget(self, sandbox_id: str, idle_s: float | None = None) -> bool:
        return await asyncio.to_thread(self._forget, sandbox_id, idle_s)

    def _forget(self, sandbox_id: str, idle_s: float | None) -> bool:
        folder = self._folders.get(sandbox_id) or next(
            (f for f, data in self._entry_files() if (data or {}).get("sandbox_id") == sandbox_id), None
        )
        if folder is None:
            return False
        data = _read(folder / ENTRY_FILE)
        if data is None or (idle_s is not None and time.time() - data["last_active"] < idle_s):
            return False
        (folder / ENTRY_FILE).unlink(missing_ok=True)
        shutil.rmtree(folder / "jobs", ignore_errors=True)
        self._folders.pop(sandbox_id, None)
        return True

    async def beat(self) -> None:
        await asyncio.to_thread(self._beat)

    def _beat(self) -> None:
        self.processes.mkdir(parents=True, exist_ok=True)
        (self.processes / self.process_id).touch()

    async def leave(self) -> None:
        await asyncio.to_thread((self.processes / self.process_id).unlink, True)

    def _jobs_folder(self, sandbox_id: str) -> Path | None:
        folder = self._folders.get(sandbox_id)
        return None if folder is None else folder / "jobs"

    async def job_started(self, sandbox_id: str, service: str) -> None:
        jobs = self._jobs_folder(sandbox_id)
        if jobs is not None:
            marker = {"service": service, "process_id": self.process_id, "started": time.time()}
            await asyncio.to_thread(_write, jobs / f"{service}@{self.process_id}.json", marker)

    async def job_ended(self, sandbox_id: str, service: str, process_id: str | None = None) -> None:
        jobs = self._jobs_folder(sandbox_id)
        if jobs is not None:
            marker = jobs / f"{service}@{process_id or self.process_id}.json"
            await asyncio.to_thread(marker.unlink, True)

    async def jobs(self, sandbox_id: str, service: str, grace_s: float) -> list[RunningJob]:
        jobs = self._jobs_folder(sandbox_id)
        return [] if jobs is None else await asyncio.to_thread(self._jobs, jobs, service, grace_s)

    def _jobs(self, jobs: Path, service: str, grace_s: float) -> list[RunningJob]:
        found = []
        for marker in jobs.glob(f"{service}@*.json"):
            data = _read(marker)
            if data is None:
                continue
            try:
                beat = (self.processes / data["process_id"]).stat().st_mtime
            except OSError:
                beat = 0.0
            started = datetime.fromtimestamp(data["started"], UTC)
            found.append(RunningJob(data["service"], data["process_id"], started, time.time() - beat < grace_s))
        return found

    def live_processes(self, grace_s: float) -> set[str]:
        """Processes whose heartbeat is younger than ``grace_s`` (for a look at the data directory)."""
        now = time.time()
        return {p.name for p in self.processes.glob("*") if now - p.stat().st_mtime < grace_s}


def _entry(data: dict[str, Any]) -> Entry:
    created, last_active = data["created"], data["last_active"]
    schema = data.get("schema_name")
    return Entry(
        str(data["sandbox_id"]),
        schema if isinstance(schema, str) else None,
        datetime.fromtimestamp(created, UTC),
        datetime.fromtimestamp(last_active, UTC),
    )


def _stamp(folder: Path, *fields: str) -> None:
    """Set ``fields`` of ``folder``'s entry to now (a folder whose entry cannot be read is nobody's: left alone)."""
    data = _read(folder / ENTRY_FILE)
    if data is not None:
        data |= dict.fromkeys(fields, time.time())
        _write(folder / ENTRY_FILE, data)


def _read(path: Path) -> dict[str, Any] | None:
    """A small JSON file, or ``None`` if it is missing or unreadable (a half-made folder is nobody's)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` whole: written beside it, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    spare = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}")
    spare.write_text(json.dumps(data))
    with contextlib.suppress(FileNotFoundError):
        os.replace(spare, path)
