"""Running a pool experiment in the background of a learner's sandbox, one at a time.

A page script must not wait for an experiment: any click (a toggle, another page) would
stop the script and, with it, the wait. So the experiment runs as a task on the app's
event loop, and the sandbox keeps an :class:`ExperimentRunner` (in ``sandbox.services``)
that knows the running experiment and the last result. Pages start it, read its progress,
stop it, and find its result again when the learner comes back. A reset or a release of
the sandbox stops it first (``sandbox.on_stop``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from source.labs.pooling.config import ExperimentConfig
from source.labs.pooling.experiment import run_experiment
from source.labs.pooling.requests import Progress
from source.labs.pooling.results import LabRun
from source.platform.errors import LabError, explain

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

SERVICE = "pooling.experiments"
#: How long a reset or a release waits for a stopped experiment to give its connections back.
STOP_WAIT_S = 5.0


@dataclass
class Job:
    """One experiment started from a page: what it does now, and how to stop it."""

    config: ExperimentConfig
    compare_nullpool: bool
    progress: Progress
    future: Future[LabRun] | None = None  # set once the loop has the task
    task: asyncio.Task[LabRun] | None = None  # the task on the loop, once it started
    finished: threading.Event = field(default_factory=threading.Event)  # its connections are all back
    stopped_by_learner: bool = False

    @property
    def running(self) -> bool:
        """Until the task has really ended: a stopped experiment still gives back its connections."""
        if self.future is None:
            return True
        return not (self.future.done() and (self.task is None or self.finished.is_set()))

    @property
    def fraction(self) -> float:
        return self.progress.fraction

    def describe(self) -> str:
        return "Stopping: giving every connection back…" if self.stopped_by_learner else self.progress.describe()

    def stop(self) -> None:
        """Cancel it on the event loop: it gives back its slot and closes its connections."""
        self.stopped_by_learner = True
        task, future = self.task, self.future
        if task is not None:
            task.get_loop().call_soon_threadsafe(task.cancel)
        elif future is not None:
            future.cancel()  # it never started: nothing to give back

    async def execute(self, work: Coroutine[Any, Any, LabRun]) -> LabRun:
        """Run ``work`` on the loop, remembering the task so that it can be stopped and awaited."""
        self.task = asyncio.current_task()
        try:
            return await work
        finally:
            self.finished.set()


class ExperimentRunner:
    """A sandbox's experiments: at most one running, and the outcome of the last one."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.job: Job | None = None
        self.last: LabRun | None = None
        self.last_note: str | None = None  # why the last experiment produced no result
        self._lock = threading.Lock()  # a learner's tabs may rerun on several threads at once

    def start(self, config: ExperimentConfig, *, compare_nullpool: bool) -> Job:
        """Start an experiment unless one is running in this sandbox already."""
        with self._lock:
            if self.job is not None and self.job.running:
                raise LabError("An experiment is already running in your sandbox: wait for it, or press Stop.")
            job = Job(config, compare_nullpool, Progress())
            work = run_experiment(config, compare_nullpool=compare_nullpool, progress=job.progress)
            job.future = self.sandbox.backends.runtime.submit(job.execute(self.sandbox.bind(work)))
            self.job = job
            self.last_note = None
            return job

    def running(self) -> Job | None:
        """The experiment still running, if any; a finished one is collected first."""
        with self._lock:
            job = self.job
            if job is None or job.running:
                return job
            self.job = None
            try:
                self.last = job.future.result() if job.future is not None else None
            except CancelledError:
                self.last_note = "Your experiment was stopped before it finished; the last result is kept."
            except Exception as exc:  # noqa: BLE001 - the learner reads one sentence, never a traceback
                self.last_note = explain(exc)
            return None

    async def aclose(self) -> None:
        """Stop the running experiment and wait until it has given everything back (bounded)."""
        job = self.job
        if job is None or job.task is None or job.task.done():
            if job is not None and job.future is not None:
                job.future.cancel()
            return
        job.stopped_by_learner = True
        job.task.cancel()
        await asyncio.wait({job.task}, timeout=STOP_WAIT_S)


def runner(sandbox: Sandbox) -> ExperimentRunner:
    """The sandbox's runner, made on first use; a reset or a release stops its experiment."""
    found = sandbox.services.get(SERVICE)
    if isinstance(found, ExperimentRunner):
        return found
    made = ExperimentRunner(sandbox)
    if sandbox.services.setdefault(SERVICE, made) is made:  # two tabs may ask at once: one wins
        sandbox.on_stop(made.aclose)
    return sandbox.services[SERVICE]  # type: ignore[no-any-return]
