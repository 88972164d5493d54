"""An admission gate: at most N jobs at once, holding at most M connections together.

A process serves every learner, and the database accepts only so many clients. Before a
job that opens many connections starts (Lab 2's pool experiment), it asks the gate for a
slot and for the connections it will hold; jobs that do not fit wait their turn, for a
bounded time, and are then refused with a sentence a learner can act on.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from source.domain.errors import LabError


class AdmissionGate:
    """Admits at most ``max_jobs`` jobs, holding at most ``max_connections`` together, at a time.

    Create it *on* the event loop that uses it (an ``asyncio.Condition`` belongs to the loop
    it was first used on): :func:`gate_on_running_loop` does that.
    """

    def __init__(self, max_jobs: int, max_connections: int) -> None:
        self.max_jobs = max_jobs
        self.max_connections = max_connections
        self.running = 0
        self.connections = 0
        self._changed = asyncio.Condition()

    def _fits(self, connections: int) -> bool:
        return self.running < self.max_jobs and self.connections + connections <= self.max_connections

    @asynccontextmanager
    async def admit(self, connections: int, timeout: float) -> AsyncIterator[None]:  # noqa: ASYNC109
        """Hold a slot and ``connections`` of the budget for the ``async with`` block."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self._fits(connections))
                self.running += 1
                self.connections += connections
        except TimeoutError:
            raise LabError(
                "Other learners' experiments are using every experiment slot right now; try again in a few seconds."
            ) from None
        try:
            yield
        finally:
            # Give the slot back first, without awaiting anything, so even a job that is
            # being cancelled cannot keep it; then wake whoever waits for one.
            self.running -= 1
            self.connections -= connections
            async with self._changed:
                self._changed.notify_all()


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AdmissionGate]] = weakref.WeakKeyDictionary()


def gate_on_running_loop(name: str, build: Callable[[], AdmissionGate]) -> AdmissionGate:
    """The gate called ``name`` of the running loop (one loop per process in the app), built on first use."""
    gates = _gates.setdefault(asyncio.get_running_loop(), {})
    if name not in gates:
        gates[name] = build()
    return gates[name]
