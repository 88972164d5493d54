"""Seeding in the background of the instructor's sandbox: progress, Stop, and the last outcome kept.

The seed runs as a job on the app's event loop (:mod:`source.platform.jobs`), not in the page
script, so another click cannot cut it short and the instructor may leave the page and come
back to its result. It is bounded in time as well as in size: past :data:`SEED_TIME_LIMIT_S`
it is stopped.
"""

from __future__ import annotations

from source.learning.seed import SeedReport, SeedRequest, seed
from source.platform.jobs import Job, JobRunner

#: How long one seed may run before it is stopped (the batches written until then stay).
SEED_TIME_LIMIT_S = 120.0


class SeedRunner(JobRunner[SeedReport]):
    """A sandbox's seeding: at most one at a time, and the report of the last one."""

    service = "learning.seed"
    busy_text = "A seed is already running in your sandbox: wait for it, or press Stop."
    stopping_text = "Stopping after the batch being written…"
    time_limit_s = SEED_TIME_LIMIT_S
    #: Stop lets the batch in flight commit (the seed watches ``progress.stopping`` between batches); a seed
    #: still running after this is cancelled, and its batch in flight rolled back.
    grace_s = 5.0
    writes_in_bulk = True
    heavy = True  # thousands of rows: started only if the memory budget has room

    def start(self, request: SeedRequest) -> Job[SeedReport]:
        """Start seeding ``request`` unless a seed is running in this sandbox already."""
        return self.launch(lambda progress: seed(request, progress))

    def too_long_text(self) -> str:
        return (
            f"It took longer than {self.time_limit_s:g} s and was stopped; the batches written before stay in "
            "your sandbox. Ask for fewer rows at once."
        )

    def stopped_note(self, job: Job[SeedReport]) -> str:
        done, total = job.progress.done, job.progress.total
        if done == 0:
            return "Seeding was stopped before it wrote anything."
        return (
            f"Seeding was stopped after {done:,} of {total:,} users and pending events; the batches written "
            "before the stop stay in your sandbox."
        )

    def failed_note(self, exc: BaseException) -> str:
        return "Seeding did not finish. " + super().failed_note(exc)
