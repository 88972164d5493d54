"""Long work in the background of a sandbox: one job of a kind at a time, progress, Stop, a time limit.

A page script must not wait for long work: any click (a toggle, another page) stops the
script and, with it, the wait. So every long action (Lab 2's experiment, Lab 3's seed,
Lab 4's strategy run, Lab 5's publisher, the instructor's seed…) runs as a task on the app's
event loop, and the sandbox keeps a :class:`JobRunner` per kind of job (``JobRunner.of``) that
knows the running job, its :class:`Progress`, and the outcome of the last one. Pages start a
job, draw its progress, stop it, and find its outcome again when the learner comes back. A
reset or a release of the sandbox stops it first.

A kind of job is a subclass that says what it is called, how long it may run, how many of
its kind may run at once across the whole process, and what the learner is told when it is
busy, stopped, failed or too slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import CancelledError
from concurrent.futures import Future as ThreadFuture
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

from source.domain.errors import LabError
from source.platform.errors import explain

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

T = TypeVar("T")

#: How long a reset or a release waits for a stopped job to give back what it holds (seconds).
STOP_WAIT_S = 5.0
#: How long writing a job's start or end into the shared directory may take (seconds).
JOURNAL_TIMEOUT_S = 3.0
#: The sandbox's turn to write in bulk, among its services (SQLite only: see ``JobRunner.writes_in_bulk``).
WRITER_TURN = "jobs.writer_turn"


class JobJournal(Protocol):
    """Where a host whose sandboxes outlive it writes down the jobs running (``Backends.job_journal``)."""

    async def job_started(self, sandbox: Sandbox, service: str) -> None: ...

    async def job_ended(self, sandbox: Sandbox, service: str) -> None: ...


@dataclass
class Progress:
    """How far a job has got: written by the work on the event loop, read by the page as it redraws."""

    phase: str = "Starting"
    done: int = 0
    total: int = 0
    #: What ``done`` and ``total`` count ("users", "operations"); shown after the numbers.
    unit: str = ""
    #: Live detail beyond the counts (a pool's connections in use), read on each redraw.
    detail: Callable[[], str] | None = field(default=None, repr=False)
    #: Stop was pressed: work that can end cleanly (finish its batch) watches this and returns.
    stopping: bool = False

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def begin(self, phase: str, total: int = 0, unit: str | None = None) -> None:
        """A new phase, counted from zero."""
        self.phase, self.total, self.done = phase, total, 0
        if unit is not None:
            self.unit = unit

    def describe(self) -> str:
        text = self.phase
        if self.total:
            text += f" · {self.done:,} of {self.total:,}" + (f" {self.unit}" if self.unit else "")
        if self.detail is not None and (extra := self.detail()):
            text += " · " + extra
        return text


class Job(Generic[T]):
    """One run of a job: its progress, how to stop it, and (once it ended) how it ended."""

    def __init__(self, progress: Progress, stopping_text: str) -> None:
        self.progress = progress
        self.stopping_text = stopping_text
        self.stopped_by_learner = False
        self.task: asyncio.Task[T] | None = None  # on the loop, once the work started
        self.future: ThreadFuture[T] | asyncio.Task[T] | None = None
        self.finished = threading.Event()  # the work has ended and given everything back

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    @property
    def fraction(self) -> float:
        return self.progress.fraction

    def describe(self) -> str:
        return self.stopping_text if self.stopped_by_learner else self.progress.describe()

    def stop(self, grace_s: float = 0.0) -> None:
        """Ask the work to stop (from any thread); cancel it after ``grace_s`` if it has not ended by then."""
        self.stopped_by_learner = True
        self.progress.stopping = True
        task, future = self.task, self.future
        if task is not None:
            loop = task.get_loop()
            if grace_s > 0:
                loop.call_soon_threadsafe(lambda: loop.call_later(grace_s, task.cancel) and None)
            else:
                loop.call_soon_threadsafe(task.cancel)
        elif future is not None:
            future.cancel()  # it never started: nothing to give back

    async def execute(self, work: Coroutine[Any, Any, T]) -> T:
        self.task = asyncio.current_task()
        return await work

    def outcome(self) -> tuple[T | None, BaseException | None]:
        """``(result, None)``, or ``(None, the exception)``; a cancelled job gives ``CancelledError``."""
        future = self.future
        if future is None or future.cancelled():
            return None, CancelledError()
        error = future.exception()
        return (None, error) if error is not None else (future.result(), None)


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = weakref.WeakKeyDictionary()


def _gate(name: str, slots: int) -> asyncio.Semaphore:
    """The process-wide semaphore of one kind of job (one per event loop), made on first use."""
    gates = _gates.setdefault(asyncio.get_running_loop(), {})
    if name not in gates:
        gates[name] = asyncio.Semaphore(slots)
    return gates[name]


class JobRunner(Generic[T]):
    """A sandbox's jobs of one kind: at most one running, and the outcome of the last one.

    Subclasses name the kind (:attr:`service`) and may set its limits and sentences.
    """

    #: The key of this kind's runner in ``Sandbox.services``.
    service: ClassVar[str] = "jobs"
    #: What a learner is told when they start a second job while one runs.
    busy_text: ClassVar[str] = "This is already running in your sandbox: wait for it, or press Stop."
    #: What the progress bar says between Stop and the end of the job.
    stopping_text: ClassVar[str] = "Stopping…"
    #: How long one job may run (seconds); ``None``: until it is stopped (a publisher).
    time_limit_s: ClassVar[float | None] = 120.0
    #: How many jobs of this kind may run at once across the whole process (``None``: no limit).
    at_once: ClassVar[int | None] = None
    #: Kinds that share one such cap name the same gate (by default each kind has its own).
    gate: ClassVar[str | None] = None
    #: How long a job waits for one of those places before it gives up (seconds).
    admission_timeout_s: ClassVar[float] = 30.0
    #: After Stop, how long the work may take to end by itself before it is cancelled (seconds).
    grace_s: ClassVar[float] = 0.0
    #: Whether it writes many rows (a seed, a workload): on SQLite such jobs of one sandbox take turns.
    writes_in_bulk: ClassVar[bool] = False

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.job: Job[T] | None = None
        self.last: T | None = None
        self.last_note: str | None = None  # why the last job produced no (new) result
        self.last_failed = False  # whether that note says it failed (rather than that it was stopped)
        self._lock = threading.Lock()  # a learner's tabs may rerun on several threads at once

    @classmethod
    def of(cls, sandbox: Sandbox) -> Self:
        """The sandbox's runner of this kind, made on first use; a reset or a release stops its job."""
        return sandbox.service(cls.service, cls, cls.aclose)

    # -- starting ----------------------------------------------------------------------
    def launch(self, work: Callable[[Progress], Coroutine[Any, Any, T]], progress: Progress | None = None) -> Job[T]:
        """Run ``work(progress)`` in the background of the sandbox, unless a job of this kind runs already.

        Callable from a page's thread or from the event loop itself.
        """
        progress = progress or Progress()
        with self._lock:
            if self.job is not None and self.job.running:
                raise LabError(self.busy_text)
            job: Job[T] = Job(progress, self.stopping_text)
            coro = job.execute(self._limited(work(progress), progress))
            if self.sandbox.host.runtime.in_loop_thread():
                job.future = asyncio.get_running_loop().create_task(self.sandbox.bind(coro))
            else:
                job.future = self.sandbox.submit(coro)
            job.future.add_done_callback(lambda _: job.finished.set())
            self.job = job
            self.last_note, self.last_failed = None, False
            return job

    async def _limited(self, work: Coroutine[Any, Any, T], progress: Progress) -> T:
        """``work`` after a place of this kind is free, stopped with a sentence past the time limit."""
        # Where sandboxes outlive the process, a running job is written down, so another process can
        # tell the learner it was interrupted if this one stops (see source.platform.durable).
        journal: JobJournal | None = getattr(self.sandbox.host, "job_journal", None)
        if journal is None:
            return await self._admitted(work, progress)
        try:
            async with asyncio.timeout(JOURNAL_TIMEOUT_S):
                await journal.job_started(self.sandbox, self.service)
        except Exception:  # noqa: BLE001 - only the report after a crash is lost; the job runs
            journal = None
        try:
            return await self._admitted(work, progress)
        finally:
            if journal is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(JOURNAL_TIMEOUT_S):
                        await journal.job_ended(self.sandbox, self.service)

    async def _admitted(self, work: Coroutine[Any, Any, T], progress: Progress) -> T:
        try:
            if self.at_once is None:
                return await self._timed(work, progress)
            gate = _gate(self.gate or self.service, self.at_once)
            waiting_phase, progress.phase = progress.phase, "Waiting for a free slot (other learners' runs)"
            try:
                async with asyncio.timeout(self.admission_timeout_s):
                    await gate.acquire()
            except TimeoutError:
                raise LabError(self.full_text()) from None
            progress.phase = waiting_phase
            try:
                return await self._timed(work, progress)
            finally:
                gate.release()
        finally:
            work.close()  # a job stopped before it started never runs: say so, quietly

    async def _timed(self, work: Coroutine[Any, Any, T], progress: Progress) -> T:
        if self.writes_in_bulk and self.sandbox.dialect == "sqlite":
            # SQLite writes one transaction at a time: a second bulk writer would wait out busy_timeout
            # and fail ("database is locked"), so the sandbox's bulk writers take turns.
            turn: asyncio.Lock = self.sandbox.service(WRITER_TURN, lambda _: asyncio.Lock())
            if turn.locked():
                waiting, progress.phase = progress.phase, "Waiting for your sandbox's other job to finish writing"
                async with turn:
                    progress.phase = waiting
                    return await self._within_limit(work)
            async with turn:
                return await self._within_limit(work)
        return await self._within_limit(work)

    async def _within_limit(self, work: Coroutine[Any, Any, T]) -> T:
        if self.time_limit_s is None:
            return await work
        timer = asyncio.timeout(self.time_limit_s)
        try:
            async with timer:
                return await work
        except TimeoutError:
            if not timer.expired():
                raise  # a driver that gave up on its own: explained as such
            raise LabError(self.too_long_text()) from None

    # -- reading -----------------------------------------------------------------------
    def running(self) -> Job[T] | None:
        """The job still running, if any; a finished one is collected first (its result or its note)."""
        with self._lock:
            job = self.job
            if job is None or job.running:
                return job
            self.job = None
            result, error = job.outcome()
            self.last_failed = error is not None and not isinstance(error, CancelledError | asyncio.CancelledError)
            if error is None:
                self.last = result
                self.last_note = self.ended_after_stop_note(job) if job.stopped_by_learner else None
            elif isinstance(error, CancelledError | asyncio.CancelledError):
                self.last_note = self.stopped_note(job)
            else:
                self.last_note = self.failed_note(error)
            return None

    async def outcome_of(self, job: Job[T]) -> T:
        """Wait on the loop until ``job`` has ended, and return its result (or raise why it has none).

        For work that starts a job and reports on it (an instructor's preset): the result is kept
        as ``last``, exactly where the lab's page shows a job the learner started.
        """
        future = job.future
        if isinstance(future, asyncio.Future):
            await asyncio.wait({future})
        elif future is not None:
            await asyncio.wait({asyncio.wrap_future(future)})
        job.finished.set()  # it has ended: its done-callback, which says so too, may simply not have run yet
        self.running()  # collect it: the page's last result is this one now
        result, error = job.outcome()
        if error is not None:
            raise LabError(self.last_note or explain(error))
        return result  # type: ignore[return-value]

    # -- stopping ----------------------------------------------------------------------
    def stop(self) -> bool:
        """Stop the running job (from any thread); False if none was running."""
        job = self.running()
        if job is None:
            return False
        job.stop(self.grace_s)
        return True

    async def stop_and_wait(self) -> bool:
        """Stop the running job and wait until it has ended (on the loop); True if it ended by itself."""
        job = self.job
        if job is None or not job.running:
            return True
        job.stop(self.grace_s)
        task = job.task
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=self.grace_s + STOP_WAIT_S)
        return task is None or not task.cancelled()

    async def aclose(self) -> None:
        """Stop the running job and wait (bounded) until it has given everything back."""
        await self.stop_and_wait()

    # -- what the learner reads ----------------------------------------------------------
    def full_text(self) -> str:
        return "Other learners' runs are using every place right now; try again in a few seconds."

    def too_long_text(self) -> str:
        return f"It took longer than the lab's {self.time_limit_s:g} s limit and was stopped."

    def stopped_note(self, job: Job[T]) -> str:
        """What the page says about a job stopped before it finished."""
        return "It was stopped before it finished; the last result is kept."

    def ended_after_stop_note(self, job: Job[T]) -> str | None:
        """What the page says about a job that ended by itself after Stop (it finished what it was doing)."""
        return None

    def failed_note(self, exc: BaseException) -> str:
        """What the page says about a job that failed."""
        return explain(exc)
