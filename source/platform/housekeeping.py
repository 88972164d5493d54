"""Housekeeping: a background task that expires idle sandboxes, retries failed releases, renews the live
sandboxes' Redis leases, beats this process's heartbeat in the shared directory and sweeps orphans."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncEngine

from source.platform.durable import DurableSandboxes
from source.platform.orphans import (
    STALE_SANDBOX_HOURS,
    sweep_dead_visitor_folders,
    sweep_stale_schemas,
    sweep_stale_sqlite_folders,
)
from source.platform.redis_budget import NO_ANSWER
from source.platform.redis_lease import RENEW_TIMEOUT_S
from source.platform.registry import SandboxRegistry

log = logging.getLogger(__name__)

#: How long the orphan sweep may take at start-up before the lab starts without it (seconds).
SWEEP_TIMEOUT_S = 10.0
#: How often the housekeeping task also sweeps orphaned schemas and folders (seconds).
ORPHAN_SWEEP_EVERY_S = 3600.0


class Housekeeping:
    """The process's chores, one task on its event loop: started once, cancelled when the backends close."""

    def __init__(self, sandboxes: SandboxRegistry, shared_engine: AsyncEngine | None, every_s: float) -> None:
        self.sandboxes = sandboxes
        self.shared_engine = shared_engine
        self.every_s = every_s
        #: The shared directory's side, when sandboxes outlive the process: heartbeat, activity, orphans.
        self.durable: DurableSandboxes | None = None
        self._beating: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the rounds on the running loop (call it from inside the loop)."""
        self._task = asyncio.get_running_loop().create_task(self._keep_house())
        if self.durable is not None:  # more often than the rounds: a heartbeat is judged within seconds
            self._beating = asyncio.get_running_loop().create_task(self.durable.keep_beating())

    def stop(self) -> None:
        for task in (self._task, self._beating):
            if task is not None:
                task.cancel()

    async def sweep_orphans(self) -> None:
        """Drop what dead processes left behind; bounded, and never fatal (failures are logged)."""
        try:
            async with asyncio.timeout(SWEEP_TIMEOUT_S):
                if self.durable is not None:
                    await self.durable.sweep_orphans({s.id for s in self.sandboxes.live | self.sandboxes.pending})
                    if self.shared_engine is None:  # folders of the days before the data directory
                        await asyncio.to_thread(sweep_stale_sqlite_folders)
                elif self.shared_engine is not None:
                    await self.sweep_stale_schemas(self.shared_engine)
                else:
                    await asyncio.to_thread(sweep_stale_sqlite_folders)
                await asyncio.to_thread(sweep_dead_visitor_folders)  # whatever the backend: a crash's leftovers
        except Exception:
            log.warning("Sweeping orphaned sandboxes failed; the lab starts anyway", exc_info=True)

    async def sweep_stale_schemas(self, engine: AsyncEngine, max_age_hours: float = STALE_SANDBOX_HOURS) -> int:
        """Drop sandbox schemas left behind by a process that died before releasing them."""
        live: set[str | None] = {s.schema for s in self.sandboxes.live | self.sandboxes.pending}
        if self.durable is not None:  # a schema the directory owns lives by its activity, never by its age
            live |= {f"plab_{sandbox_id}" for sandbox_id in await self.durable.directory.entries()}
        return await sweep_stale_schemas(engine, live, max_age_hours)

    async def renew_leases(self) -> int:
        """Renew the Redis lease of every live sandbox that is due; returns how many keys were renewed.

        A sandbox's keys expire unless it renews them (see :mod:`source.platform.redis_lease`):
        this round is what keeps a live learner's keys, even when they do not click for a while.
        A Redis that does not answer ends the round: the next one tries again, long before any
        lease runs out.
        """
        renewed = 0
        for sandbox in list(self.sandboxes.live):
            try:
                async with asyncio.timeout(RENEW_TIMEOUT_S):
                    renewed += await sandbox.renew_lease()
            except NO_ANSWER:
                log.warning("Renewing the sandboxes' Redis leases stopped: Redis did not answer", exc_info=True)
                break
            except Exception:
                log.warning("Renewing %r's Redis lease failed", sandbox, exc_info=True)
        return renewed

    async def _keep_house(self) -> None:
        """Every ``every_s``: expire idle sandboxes, retry failed releases, renew leases; hourly: orphans."""
        last_orphan_sweep = time.monotonic()
        while True:
            await asyncio.sleep(self.every_s)
            try:
                if self.durable is not None:
                    await self.durable.keep_current()
                await self.sandboxes.sweep()
                await self.renew_leases()
                if time.monotonic() - last_orphan_sweep > ORPHAN_SWEEP_EVERY_S:
                    last_orphan_sweep = time.monotonic()
                    await self.sweep_orphans()
            except Exception:
                log.warning("Housekeeping round failed", exc_info=True)
