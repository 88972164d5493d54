"""Seeding in the background of the instructor's sandbox: progress, Stop, and the last outcome kept.

The seed runs as a task on the app's event loop, not in the page script, so another click
cannot cut it short and the instructor may leave the page and come back to its result. It
is bounded in time as well as in size: past :data:`SEED_TIME_LIMIT_S` it is stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from source.learning.seed import SeedProgress, SeedReport, SeedRequest, seed
from source.platform.background import Job, JobRunner, runner_in
from source.platform.errors import LabError

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

SERVICE = "learning.seed"
#: How long one seed may run before it is stopped (the batches written until then stay).
SEED_TIME_LIMIT_S = 120.0


async def within_limit(work: Coroutine[Any, Any, SeedReport], limit_s: float = SEED_TIME_LIMIT_S) -> SeedReport:
    """``work``, stopped with a sentence if it runs longer than ``limit_s`` seconds."""
    timer = asyncio.timeout(limit_s)
    try:
        async with timer:
            return await work
    except TimeoutError:
        if not timer.expired():
            raise  # a driver that gave up on its own: explained as such
        raise LabError(
            f"It took longer than {limit_s:g} s and was stopped; the batches written before stay in your "
            "sandbox. Ask for fewer rows at once."
        ) from None


class SeedRunner(JobRunner[SeedProgress, SeedReport]):
    """A sandbox's seeding: at most one at a time, and the report of the last one."""

    busy_text = "A seed is already running in your sandbox: wait for it, or press Stop."
    stopping_text = "Stopping: the batch being written is rolled back…"

    def start(self, request: SeedRequest, limit_s: float = SEED_TIME_LIMIT_S) -> Job[SeedProgress, SeedReport]:
        """Start seeding ``request`` unless a seed is running in this sandbox already."""
        progress = SeedProgress()
        return self.launch(progress, lambda: within_limit(seed(request, progress), limit_s))

    def stopped_note(self, job: Job[SeedProgress, SeedReport]) -> str:
        done, total = job.progress.done, job.progress.total
        if done == 0:
            return "Seeding was stopped before it wrote anything."
        return (
            f"Seeding was stopped after {done:,} of {total:,} users and pending events; the batches written "
            "before the stop stay in your sandbox."
        )

    def failed_note(self, exc: Exception) -> str:
        return "Seeding did not finish. " + super().failed_note(exc)


def runner(sandbox: Sandbox) -> SeedRunner:
    """The sandbox's seed runner, made on first use; a reset or a release stops its seed."""
    return runner_in(sandbox, SERVICE, SeedRunner)
