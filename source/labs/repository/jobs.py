"""Long work (seeding, comparing, the scaling experiment) as one cancellable job per sandbox.

A job runs on the app's event loop while the page polls it and redraws a progress bar. A
learner's sandbox runs one Lab 3 job at a time: a new one cancels the old, and so does a
sandbox reset or release (``Sandbox.on_stop``). Across all learners at most
:data:`MAX_JOBS_AT_ONCE` run together, so nobody's experiment can starve the shared host.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import Any, TypeVar

from source.domain.errors import LabError
from source.platform.context import current_sandbox
from source.platform.sandbox import Sandbox

T = TypeVar("T")

MAX_JOBS_AT_ONCE = 2
#: How long a job waits for a free slot before giving up (seconds).
ADMISSION_TIMEOUT_S = 30.0
#: How long one job may run (seconds).
JOB_TIME_LIMIT_S = 120.0
#: How long the page waits in all.
WAIT_TIMEOUT_S = ADMISSION_TIMEOUT_S + JOB_TIME_LIMIT_S + 10.0
#: Where a sandbox keeps its running job, in ``Sandbox.services``.
JOB_KEY = "lab3_job"

_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


@dataclass
class Progress:
    """How far a job has got; written on the loop, read by the page between polls."""

    phase: str = "Waiting for a free slot"
    done: int = 0
    total: int = 1

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def describe(self) -> str:
        return f"{self.phase} · {self.done:,}/{self.total:,}"


def _gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(MAX_JOBS_AT_ONCE)
    return gate


class JobSlot:
    """The one job a sandbox may run now; its stopper is registered with the sandbox once."""

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None

    async def stop(self) -> None:
        await _cancel(self.task)


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None and not task.done() and task is not asyncio.current_task():
        task.cancel()
        await asyncio.wait({task}, timeout=5)


def _slot(sandbox: Sandbox) -> JobSlot:
    slot = sandbox.services.get(JOB_KEY)
    if not isinstance(slot, JobSlot):
        slot = sandbox.services[JOB_KEY] = JobSlot()
        sandbox.on_stop(slot.stop)  # a reset or a release cancels the running job
    return slot


async def exclusive(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` as the sandbox's only Lab 3 job, within the process-wide limit."""
    slot = _slot(current_sandbox())
    me = asyncio.current_task()
    try:
        previous, slot.task = slot.task, me
        await _cancel(previous)  # the sandbox's previous job, if one is still running
        gate = _gate()
        try:
            async with asyncio.timeout(ADMISSION_TIMEOUT_S):
                await gate.acquire()
        except TimeoutError:
            raise LabError("Other learners' experiments are running; try again in a moment.") from None
        limit = asyncio.timeout(JOB_TIME_LIMIT_S)
        try:
            async with limit:
                return await coro
        except TimeoutError:
            if not limit.expired():
                raise
            raise LabError(
                f"This took longer than the lab's {JOB_TIME_LIMIT_S:g} s limit and was stopped. "
                "Try fewer users or a shorter simulated round trip."
            ) from None
        finally:
            gate.release()
    finally:
        coro.close()  # a job cancelled before it started never runs: say so, quietly
        if slot.task is me:
            slot.task = None


def start(sandbox: Sandbox, coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Hand ``coro`` to the app's loop as this sandbox's job, without waiting for it."""
    return sandbox.submit(exclusive(coro))


def wait_with_progress(
    future: Future[T], on_tick: Callable[[], object], *, every_s: float = 0.1, timeout_s: float = WAIT_TIMEOUT_S
) -> T:
    """Block until ``future`` is done, calling ``on_tick`` between polls (to redraw a bar).

    Whatever ends the wait early (a timeout, or Streamlit stopping the script because the
    learner clicked again or left the page) cancels the job on the loop: nothing keeps
    running for nobody.
    """
    deadline = time.monotonic() + timeout_s
    try:
        while not future.done():
            if time.monotonic() > deadline:
                raise LabError("The job did not finish in time and was stopped.")
            on_tick()
            time.sleep(every_s)
        return future.result()
    except CancelledError:
        raise LabError("This run was stopped: a newer one started, or the sandbox was reset.") from None
    finally:
        if not future.done():
            future.cancel()
