"""Lab 3's long work (the seed, the four-strategy comparison, the scaling experiment) as background jobs.

Each runs as a job of the learner's sandbox on the app's event loop (:mod:`source.platform.jobs`),
never in the page script: another click, or a visit to another lab, cannot cut it short; Stop
and a reset of the sandbox do. A sandbox runs one Lab 3 job at a time (a comparison beside the
scaling experiment would measure each other's round trips, and a seed changes what they load),
and the three kinds share one process-wide gate: across every learner at most
:data:`MAX_JOBS_AT_ONCE` Lab 3 jobs run together, so nobody's experiment can starve the shared
host. A job still running after :data:`JOB_TIME_LIMIT_S` is stopped with a sentence that says
what to ask for instead.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, TypeVar

from source.domain.errors import LabError
from source.labs.repository.measure import Comparison, LoadSettings, compare_strategies
from source.labs.repository.scaling import ScalingResult, run_scaling
from source.labs.repository.seeding import COMMITTED, SeedReport, SeedRequest, seed
from source.platform.jobs import Job, JobRunner, Progress

T = TypeVar("T")

#: How many Lab 3 jobs, of all three kinds together, may run at once across the whole process.
MAX_JOBS_AT_ONCE = 2
#: How long one job may run (seconds).
JOB_TIME_LIMIT_S = 120.0
#: After Stop, how long a seed may take to finish its statement in progress before it is cancelled (seconds).
SEED_STOP_GRACE_S = 5.0


class Lab3Runner(JobRunner[T]):
    """What Lab 3's three kinds of job share: the time limit, one process-wide cap, and the sentences."""

    time_limit_s = JOB_TIME_LIMIT_S
    at_once = MAX_JOBS_AT_ONCE
    gate = "lab3"  # the same gate for every kind: two Lab 3 jobs at once, whatever they are
    heavy = True  # thousands of rows written or loaded: started only if the memory budget has room
    #: What this kind of job is called in a sentence ("the comparison").
    what: ClassVar[str] = "a Lab 3 job"

    def launch(self, work: Callable[[Progress], Coroutine[Any, Any, T]], progress: Progress | None = None) -> Job[T]:
        """Start ``work`` unless a Lab 3 job of any kind is running in this sandbox already."""
        for kind in KINDS:
            if kind is not type(self) and kind.of(self.sandbox).running() is not None:
                raise LabError(f"Your sandbox is running {kind.what} already: wait for it to end, or press its Stop.")
        return super().launch(work, progress)

    def full_text(self) -> str:
        return (
            f"This server runs at most {MAX_JOBS_AT_ONCE} Lab 3 jobs at once (seeds, comparisons, scaling), and "
            f"both places stayed taken for {self.admission_timeout_s:g} s; try again in a few seconds."
        )

    def too_long_text(self) -> str:
        return (
            f"This took longer than the lab's {self.time_limit_s:g} s limit and was stopped. "
            "Try fewer users or a shorter simulated round trip."
        )


def _how_far(progress: Progress, noun: str) -> str:
    """``after 2 of 4 strategies``, or ``before it started`` (stopped while it waited for a place)."""
    done, total = progress.done, progress.total
    return f"after {done:,} of {total:,} {noun}" if total else "before it started"


class SeedRunner(Lab3Runner[SeedReport]):
    """A sandbox's seeding of N users × M scores: one at a time, and the report of the last one."""

    service = "repository.seed"
    writes_in_bulk = True
    what = "a seed"
    busy_text = "A seed is already running in your sandbox: wait for it, or press Stop."
    stopping_text = "Stopping after the statement in progress: the seed's transaction is rolled back…"
    #: Stop lets the statement in progress finish (the seed watches ``progress.stopping`` between
    #: statements), then the transaction is rolled back; a seed still running after this is cancelled.
    grace_s = SEED_STOP_GRACE_S

    def start(self, request: SeedRequest) -> Job[SeedReport]:
        """Start seeding ``request`` unless a seed is running in this sandbox already."""
        return self.launch(lambda progress: seed(request, progress))

    def forget(self) -> None:
        """Drop the last report: once the seeded users are removed, it no longer describes the sandbox."""
        self.last, self.last_note, self.last_failed = None, None, False

    def too_long_text(self) -> str:
        return (
            f"Seeding took longer than the lab's {self.time_limit_s:g} s limit and was stopped; its transaction "
            "was rolled back, so nothing was added. Try fewer users or fewer scores per user."
        )

    def stopped_note(self, job: Job[SeedReport]) -> str:
        progress = job.progress
        if progress.phase == COMMITTED:
            return "Seeding was stopped after its transaction had committed: the seeded users are in your sandbox."
        if not progress.total:
            return "Seeding was stopped before it started: nothing was added."
        return (
            f"Seeding was stopped after {progress.done:,} of {progress.total:,} users. It writes in one "
            "transaction, which was rolled back: nothing was added."
        )


class ComparisonRunner(Lab3Runner[Comparison]):
    """A sandbox's four-strategy comparison: one at a time, and the last complete one."""

    service = "repository.comparison"
    what = "the comparison"
    busy_text = "A comparison is already running in your sandbox: wait for it, or press Stop."
    stopping_text = "Stopping the comparison…"

    def start(self, settings: LoadSettings) -> Job[Comparison]:
        """Start loading every user with every strategy, unless a comparison is running already."""
        return self.launch(lambda progress: compare_strategies(settings, progress))

    def stopped_note(self, job: Job[Comparison]) -> str:
        kept = "your previous comparison is shown below" if self.last is not None else "nothing was recorded"
        return f"The comparison was stopped {_how_far(job.progress, 'strategies')}; {kept}."


class ScalingRunner(Lab3Runner[ScalingResult]):
    """A sandbox's scaling experiment: one at a time, and the last complete one."""

    service = "repository.scaling"
    what = "the scaling experiment"
    busy_text = "The scaling experiment is already running in your sandbox: wait for it, or press Stop."
    stopping_text = "Stopping the scaling experiment…"

    def start(self, settings: LoadSettings) -> Job[ScalingResult]:
        """Start the experiment at ``settings``' round trip, unless it is running already."""
        return self.launch(lambda progress: run_scaling(settings.round_trip_ms, progress))

    def stopped_note(self, job: Job[ScalingResult]) -> str:
        kept = "your previous result is shown below" if self.last is not None else "nothing was plotted"
        return f"The scaling experiment was stopped {_how_far(job.progress, 'runs')}; {kept}."


#: Every kind of Lab 3 job: a sandbox runs one of them at a time.
KINDS: tuple[type[Lab3Runner[Any]], ...] = (SeedRunner, ComparisonRunner, ScalingRunner)
