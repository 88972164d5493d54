"""Work that outlives a page script: one job at a time per sandbox, its progress, Stop, and its last outcome.

A page script must not wait for long work: any click (a toggle, another page) would stop
the script and, with it, the wait. So the work runs as a task on the app's event loop, and
the sandbox keeps a :class:`JobRunner` (in ``sandbox.services``) that knows the running job
and the outcome of the last one. Pages start it, read its progress, stop it, and find its
outcome again when the learner comes back. A reset or a release of the sandbox stops it
first (``sandbox.on_stop``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from source.platform.errors import LabError, explain

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

#: How long a reset or a release waits for a stopped job to give back what it holds.
STOP_WAIT_S = 5.0


class Progress(Protocol):
    """What a page needs to draw a job's progress bar."""

    @property
    def fraction(self) -> float: ...

    def describe(self) -> str: ...


P = TypeVar("P", bound=Progress)
T = TypeVar("T")


@dataclass
class Job(Generic[P, T]):
    """One piece of work started from a page: how far it got, and how to stop it."""

    progress: P
    stopping_text: str = "Stopping…"
    future: Future[T] | None = None  # set once the loop has the task
    task: asyncio.Task[T] | None = None  # the task on the loop, once it started
    finished: threading.Event = field(default_factory=threading.Event)  # it has given everything back
    stopped_by_learner: bool = False

    @property
    def running(self) -> bool:
        """Until the task has really ended: a stopped job may still be giving back connections."""
        if self.future is None:
            return True
        return not (self.future.done() and (self.task is None or self.finished.is_set()))

    @property
    def fraction(self) -> float:
        return self.progress.fraction

    def describe(self) -> str:
        return self.stopping_text if self.stopped_by_learner else self.progress.describe()

    def stop(self) -> None:
        """Cancel it on the event loop (from any thread); it cleans up as it unwinds."""
        self.stopped_by_learner = True
        task, future = self.task, self.future
        if task is not None:
            task.get_loop().call_soon_threadsafe(task.cancel)
        elif future is not None:
            future.cancel()  # it never started: nothing to give back

    async def execute(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the loop, remembering the task so that it can be stopped and awaited."""
        self.task = asyncio.current_task()
        try:
            return await work
        finally:
            self.finished.set()


class JobRunner(Generic[P, T]):
    """A sandbox's jobs of one kind: at most one running, and the outcome of the last one."""

    #: What a learner is told when they start a second job while one runs.
    busy_text = "This is already running in your sandbox: wait for it, or press Stop."
    #: What the progress bar says between Stop and the end of the job.
    stopping_text = "Stopping…"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.job: Job[P, T] | None = None
        self.last: T | None = None
        self.last_note: str | None = None  # why the last job produced no result
        self._lock = threading.Lock()  # a learner's tabs may rerun on several threads at once

    def launch(self, progress: P, work: Callable[[], Coroutine[Any, Any, T]]) -> Job[P, T]:
        """Run ``work()`` in the background of the sandbox, unless a job of this kind runs already."""
        with self._lock:
            if self.job is not None and self.job.running:
                raise LabError(self.busy_text)
            job: Job[P, T] = Job(progress, self.stopping_text)
            job.future = self.sandbox.backends.runtime.submit(job.execute(self.sandbox.bind(work())))
            self.job = job
            self.last_note = None
            return job

    def running(self) -> Job[P, T] | None:
        """The job still running, if any; a finished one is collected first."""
        with self._lock:
            job = self.job
            if job is None or job.running:
                return job
            self.job = None
            try:
                self.last = job.future.result() if job.future is not None else None
            except CancelledError:
                self.last_note = self.stopped_note(job)
            except Exception as exc:  # noqa: BLE001 - the learner reads one sentence, never a traceback
                self.last_note = self.failed_note(exc)
            return None

    def stopped_note(self, job: Job[P, T]) -> str:
        """What the page says about a job stopped before it finished."""
        return "It was stopped before it finished; the last result is kept."

    def failed_note(self, exc: Exception) -> str:
        """What the page says about a job that failed."""
        return explain(exc)

    async def aclose(self) -> None:
        """Stop the running job and wait until it has given everything back (bounded)."""
        job = self.job
        if job is None or job.task is None or job.task.done():
            if job is not None and job.future is not None:
                job.future.cancel()
            return
        job.stopped_by_learner = True
        job.task.cancel()
        await asyncio.wait({job.task}, timeout=STOP_WAIT_S)


R = TypeVar("R", bound=JobRunner[Any, Any])


def runner_in(sandbox: Sandbox, key: str, make: Callable[[Sandbox], R]) -> R:
    """The sandbox's runner under ``key``, made on first use; a reset or a release stops its job."""
    found = sandbox.services.get(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    made = make(sandbox)
    if sandbox.services.setdefault(key, made) is made:  # two tabs may ask at once: one wins
        sandbox.on_stop(made.aclose)
    return sandbox.services[key]  # type: ignore[no-any-return]
