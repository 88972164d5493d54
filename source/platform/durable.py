"""Durable sandboxes: a link finds its sandbox again after a restart, or on another process of the lab.

The registry (:mod:`source.platform.registry`) keeps the links this process serves in memory. When
a link is not there, it asks :class:`DurableSandboxes`, which asks the shared directory
(:mod:`source.platform.directory`): one round trip. A sandbox found there is attached again (the
same schema or SQLite file, the same Redis key prefix, so the learner's data and progress come
back), and its Redis keys' lease is taken over at once.

Liveness is by activity and heartbeat in the shared store, never by creation time: each
housekeeping round writes this process's heartbeat and the ``last_active`` of the sandboxes used
here since the last round (so a click costs nothing extra). A sandbox idle *here* but used
recently elsewhere is only let go by this process (detached); it is dropped only when the
directory says nobody has used it for the idle expiry. A background job of a process whose
heartbeat stopped is reported as interrupted on the learner's page, wherever the link lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from source.platform.directory import Directory, FileDirectory, RunningJob, token_hash
from source.platform.errors import ServiceUnavailable
from source.platform.orphans import STALE_SANDBOX_HOURS, sweep_stale_schemas
from source.platform.seats import release_reason

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from source.platform.registry import SandboxRegistry
    from source.platform.runtime import AsyncRuntime
    from source.platform.sandbox import Sandbox

log = logging.getLogger(__name__)

#: How long one directory call from a page may take before the page goes on without it (seconds).
DIRECTORY_TIMEOUT_S = 5.0
#: How long after its idle expiry a sandbox nobody serves is dropped by a sweep (seconds).
ORPHAN_GRACE_S = 600.0
#: The only sandbox ids and schema names a directory entry may hold (they end up in SQL and paths).
SANDBOX_ID = re.compile(r"[0-9a-f]{12}")
#: What the page says of a job whose process stopped.
INTERRUPTED = (
    "Your last run was interrupted when its process stopped (the lab restarted, or another of its "
    "processes serves you now). Its partial work is in your sandbox; start it again to restart it."
)
ELSEWHERE = "A run of this is still going on another of the lab's processes (started {started:%H:%M:%S} UTC)."
#: Where a sandbox keeps the jobs another process had running when it was found again.
ELSEWHERE_KEY = "durable.jobs_elsewhere"
#: Set in a resumed sandbox's services once it was marked opened and its lease taken over.
OPENED_KEY = "durable.opened"


#: How much later than the use itself a sandbox's ``last_active`` may be written (one housekeeping round).
LAST_ACTIVE_SLACK_S = 60.0


class DurableSandboxes:
    """What a process does with the shared directory: bind links, keep it current, report others' jobs."""

    def __init__(
        self,
        directory: Directory,
        runtime: AsyncRuntime,
        registry: SandboxRegistry,
        attach: Callable[[str, Any], Sandbox],
        *,
        heartbeat_grace_s: float,
        admin_engine: AsyncEngine | None = None,
    ) -> None:
        self.directory = directory
        self.runtime = runtime
        self.registry = registry
        self.attach = attach
        self.heartbeat_grace_s = heartbeat_grace_s
        self.admin_engine = admin_engine
        #: Set while the process stops: jobs stopped then stay recorded, so another process reports them.
        self.leaving = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._written: dict[str, float] = {}  # sandbox id -> its last_used when last_active was written

    @property
    def idle_s(self) -> float:
        return self.registry.idle_s

    # -- the registry's side: binding links --------------------------------------------
    def resume(self, token: str) -> Sandbox | None:
        """The sandbox the directory has for ``token``, attached here; ``None`` if it has none.

        Raises :class:`ServiceUnavailable` if the directory does not answer: the link may name a sandbox.
        """
        try:
            found = self.directory.find(token_hash(token), self.idle_s, self.heartbeat_grace_s)
            entry = self.runtime.run(found, timeout=DIRECTORY_TIMEOUT_S)
        except Exception as exc:
            # Never a new sandbox in its place: the learner's address would stop naming their work.
            log.warning("The sandbox directory did not answer for a link", exc_info=True)
            raise ServiceUnavailable(
                "Your sandbox could not be looked up just now: the sandbox directory did not answer in time. "
                "Nothing is lost: reload the page in a moment."
            ) from exc
        if entry is None or not SANDBOX_ID.fullmatch(entry.sandbox_id):
            return None
        if entry.schema_name is not None and entry.schema_name != f"plab_{entry.sandbox_id}":
            return None
        sandbox = self.attach(token, entry)
        # Jobs another process had running here: the page reports them (job_elsewhere) from the first render.
        others = [job for job in entry.jobs if job.process_id != self.directory.process_id]
        sandbox.services[ELSEWHERE_KEY] = {job.service: job for job in others}
        self.runtime.submit(self._after_resume(sandbox))
        return sandbox

    async def _after_resume(self, sandbox: Sandbox) -> None:
        """Mark it opened and take over its keys' lease at once."""
        with contextlib.suppress(Exception):
            await self.directory.opened(sandbox.id)
            self._written[sandbox.id] = sandbox.last_used
        try:
            await sandbox.lease.renew()
        except Exception as exc:  # noqa: BLE001 - the housekeeping round renews it again
            log.warning("Taking over %r's Redis lease failed: %s", sandbox, exc)
        sandbox.services.setdefault(OPENED_KEY, True)

    async def directory_jobs(self, sandbox: Sandbox, service: str) -> list[RunningJob]:
        """Jobs of ``service`` the directory has running in ``sandbox`` on other processes."""
        found = await self.directory.jobs(sandbox.id, service, self.heartbeat_grace_s)
        return [job for job in found if job.process_id != self.directory.process_id]

    def record(self, token: str, sandbox: Sandbox) -> None:
        """Write a new link's sandbox into the directory (bounded; a failure only costs durability)."""
        write = self.directory.record(token_hash(token), sandbox.id, sandbox.schema, sandbox.directory)
        try:
            if self.runtime.in_loop_thread():
                task = asyncio.get_running_loop().create_task(write)
                self._tasks.add(task)  # the loop keeps only a weak reference to a task
                task.add_done_callback(self._tasks.discard)
            else:
                self.runtime.run(write, timeout=DIRECTORY_TIMEOUT_S)
            self._written[sandbox.id] = sandbox.last_used
        except Exception:  # noqa: BLE001 - logged; the learner works on, for this process's lifetime
            log.warning("Recording %r in the sandbox directory failed: it will not outlive this process", sandbox)

    async def forget(self, sandbox: Sandbox) -> None:
        """Take a sandbox out of the directory before it is dropped (its link stops working everywhere)."""
        self._written.pop(sandbox.id, None)
        await self.directory.forget(sandbox.id)

    async def detach(self, sandbox: Sandbox) -> None:
        """Let go of a sandbox here without dropping it: stop its work, close its file, keep its data."""
        self._written.pop(sandbox.id, None)
        await sandbox.stop_background_work()
        if sandbox.schema is None:
            await sandbox.engine.dispose()

    # -- housekeeping ---------------------------------------------------------------------
    @property
    def beat_every_s(self) -> float:
        """How often the heartbeat is written: three beats fit in the grace, so one late beat is no death."""
        return max(0.5, self.heartbeat_grace_s / 3)

    async def keep_beating(self) -> None:
        """Write this process's heartbeat every :attr:`beat_every_s`, for as long as the process runs."""
        while True:
            await asyncio.sleep(self.beat_every_s)
            try:
                async with asyncio.timeout(self.beat_every_s):
                    await self.directory.beat()
            except Exception:
                log.warning("Writing this process's heartbeat failed", exc_info=True)

    async def keep_current(self) -> None:
        """This process's heartbeat, and ``last_active`` of every sandbox used here since the last round."""
        await self.directory.beat()
        used = [
            s
            for s in self.registry.live
            if not s.closed and (s.busy > 0 or s.last_used > self._written.get(s.id, float("-inf")))
        ]
        if used:
            await self.directory.touch([s.id for s in used])
            for s in used:
                self._written[s.id] = s.last_used

    async def expire_idle(self) -> int:
        """Let go of sandboxes due here (idle, or a brief try left for its grace: :mod:`source.platform.seats`):
        dropped if unused everywhere for that long, only detached if used elsewhere since."""
        now = time.monotonic()
        due = [
            (s, why, now - s.last_used)
            for s in self.registry.live
            if not s.closed
            and s.busy == 0
            and (
                why := release_reason(
                    s.opened, s.last_used, now, self.idle_s, open_pages=self.registry.presence.pages(s)
                )
            )
            is not None
        ]
        if not due:
            return 0
        entries = await self.directory.entries()
        for sandbox, why, quiet in due:
            entry = entries.get(sandbox.id)
            # Unused for ``quiet`` seconds here: dropped only if the directory saw no use elsewhere since
            # (its last_active is written by the housekeeping round after a use, so it may be that much later).
            unused = max(0.0, min(quiet, self.idle_s) - LAST_ACTIVE_SLACK_S)
            if entry is None or await self.directory.forget(sandbox.id, unused):
                self.registry.release_soon(sandbox, why)
            else:  # used on another process since: not ours to drop
                self.registry.detach_soon(sandbox)
        return len(due)

    async def sweep_orphans(self, keep: set[str]) -> int:
        """Drop sandboxes nobody has used for the idle expiry and a grace, and what no entry owns.

        ``keep`` are the ids live in this process. An entry's age is its ``last_active``, never its
        creation time: a sandbox used on any process within the idle expiry is kept, however old.
        A schema or folder with no entry (a notebook's, one older than this directory) goes by the
        older rule: marked by the app more than :data:`STALE_SANDBOX_HOURS` ago.
        """
        stale_after = self.idle_s + ORPHAN_GRACE_S
        cutoff = datetime.now(UTC) - timedelta(seconds=stale_after)
        if isinstance(self.directory, FileDirectory):
            return await asyncio.to_thread(self._sweep_folders, self.directory, keep, cutoff)
        entries = await self.directory.entries()
        dropped = 0
        for sandbox_id, entry in entries.items():
            if sandbox_id in keep or entry.last_active > cutoff or not SANDBOX_ID.fullmatch(sandbox_id):
                continue
            if await self.directory.forget(sandbox_id, stale_after) and self.admin_engine is not None:
                async with self.admin_engine.begin() as conn:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "plab_{sandbox_id}" CASCADE'))
                dropped += 1
        if self.admin_engine is not None:
            owned = {f"plab_{i}" for i in entries} | {f"plab_{i}" for i in keep}
            dropped += await sweep_stale_schemas(self.admin_engine, owned, STALE_SANDBOX_HOURS)
        return dropped

    def _sweep_folders(self, directory: FileDirectory, keep: set[str], cutoff: datetime) -> int:
        """Folders whose entry is stale; folders with no ``sandbox.json`` untouched for the old 12 hours."""
        live = {s.directory for s in self.registry.live | self.registry.pending}
        unowned_cutoff = time.time() - STALE_SANDBOX_HOURS * 3600
        swept = 0
        for folder, entry in directory.folders().items():
            if folder in live or (entry is not None and (entry.sandbox_id in keep or entry.last_active > cutoff)):
                continue
            with contextlib.suppress(OSError):
                if entry is None:
                    newest = max((p.stat().st_mtime for p in folder.rglob("*")), default=folder.stat().st_mtime)
                    if newest >= unowned_cutoff:
                        continue
                shutil.rmtree(folder)
                swept += 1
        return swept

    # -- jobs ----------------------------------------------------------------------------
    async def job_started(self, sandbox: Sandbox, service: str) -> None:
        sandbox.services.get(ELSEWHERE_KEY, {}).pop(service, None)
        if self.registry.token_of(sandbox) is not None:  # no link, no other process can come to it
            await self.directory.job_started(sandbox.id, service)

    async def job_ended(self, sandbox: Sandbox, service: str) -> None:
        # A process that stops leaves its jobs recorded: the next one to serve the link reports them.
        if not self.leaving and self.registry.token_of(sandbox) is not None:
            await self.directory.job_ended(sandbox.id, service)

    def job_elsewhere(self, sandbox: Sandbox, service: str) -> tuple[str | None, bool]:
        """What the page says of a job of ``service`` another process had running in ``sandbox``.

        ``(None, False)`` when there is none (a dictionary lookup: no round trip). Otherwise
        ``(sentence, interrupted)``: still running elsewhere, or interrupted because its process has
        no heartbeat any more (then its record is removed: it is reported once, as a stopped job).
        """
        pending: dict[str, RunningJob] = sandbox.services.get(ELSEWHERE_KEY, {})
        job = pending.get(service)
        if job is None:
            return None, False
        try:
            now = self.runtime.run(self.directory_jobs(sandbox, service), timeout=DIRECTORY_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the directory is away: say nothing rather than something wrong
            return None, False
        current = next((j for j in now if j.process_id == job.process_id), None)
        if current is not None and current.process_alive:
            return ELSEWHERE.format(started=current.started), False
        pending.pop(service, None)
        if current is not None:
            with contextlib.suppress(Exception):
                self.runtime.run(
                    self.directory.job_ended(sandbox.id, service, job.process_id), timeout=DIRECTORY_TIMEOUT_S
                )
        return INTERRUPTED, True

    # -- stopping -------------------------------------------------------------------------
    async def leave(self) -> None:
        """The process stops: its heartbeat goes (its jobs read as stopped at once); sandboxes stay."""
        self.leaving = True
        await self.directory.leave()
