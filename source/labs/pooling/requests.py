"""The simulated requests of a pool experiment, and the counters they keep while they run.

Each request asks for a connection, runs ``SELECT 1``, holds the connection for D
milliseconds with ``asyncio.sleep`` (the lab's only injected delay, standing in for a slow
query or a slow network) and gives it back. Both strategies, a pool and a new connection
per request, use the same :class:`QueuedRequest` bookkeeping, so their figures are
measured the same way.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from source.instruments.pool_probe import PoolProbe
from source.platform.errors import explain
from source.platform.jobs import Progress


@dataclass
class Traffic:
    """What the running experiment's requests are doing now; a page reads it while it runs.

    The counters are updated by the requests themselves and start again at zero for each run
    (pooled, then optionally a new connection per request); ``probe`` reads the running
    experiment's own engine, so the job's progress shows the pool filling and draining.
    """

    progress: Progress = field(default_factory=Progress)
    run: int = 0  # 1 = the pooled run, 2 = the run with a new connection per request
    runs: int = 1
    timeouts: int = 0
    in_use: int = 0
    waiting: int = 0
    probe: PoolProbe | None = None

    def __post_init__(self) -> None:
        self.progress.phase = "Waiting for a free experiment slot (at most a few run at once on this server)"
        self.progress.detail = self.describe

    def begin(self, phase: str, run: int, requests: int) -> None:
        """Start counting a new run from zero; the job's progress counts every run's requests."""
        self.run = run
        self.timeouts = self.in_use = self.waiting = 0
        self.probe = None
        self.progress.begin(f"Run {run} of {self.runs}, {phase}", self.runs * requests, "requests finished")
        self.progress.done = (run - 1) * requests

    @property
    def open_connections(self) -> int:
        """Connections the running experiment's engine holds open right now."""
        return self.probe.open_now if self.probe is not None else 0

    def describe(self) -> str:
        """The live part of the progress text: who waits, who gave up, and the pool's counters."""
        if self.run == 0:
            return ""
        text = f"{self.waiting} waiting for a connection" + (f", {self.timeouts} gave up" if self.timeouts else "")
        probe = self.probe
        if probe is not None and probe.status is not None:
            status, extra = probe.status, max(probe.status.overflow, 0)
            return text + f" · pool: {status.checked_out} lent out, {status.checked_in} idle, {extra} overflow"
        if probe is not None:
            return text + f" · {probe.open_now} connection{'s' if probe.open_now != 1 else ''} open"
        return text


@dataclass
class Tally:
    """What the requests of one run measured about themselves."""

    waits_ms: list[float] = field(default_factory=list)  # served: asked → holding a connection
    timeout_waits_ms: list[float] = field(default_factory=list)  # gave up: asked → gave up
    errors: list[str] = field(default_factory=list)
    peak: int = 0  # most requests holding a connection at the same moment


class QueuedRequest:
    """One request's bookkeeping, from the moment it asks for a connection.

    It counts as *waiting* until it holds a connection, gives up, or fails; its wait is
    recorded as served or timed out.
    """

    def __init__(self, tally: Tally, traffic: Traffic) -> None:
        self.tally = tally
        self.traffic = traffic
        self.asked = time.perf_counter()
        self.queued = True
        traffic.waiting += 1

    def _leave_queue(self) -> float:
        if self.queued:
            self.queued = False
            self.traffic.waiting -= 1
        return (time.perf_counter() - self.asked) * 1000

    def served(self) -> None:
        """It holds a connection now: record how long that took."""
        self.tally.waits_ms.append(self._leave_queue())

    def timed_out(self) -> None:
        """It gave up waiting: record how long it waited before doing so."""
        self.tally.timeout_waits_ms.append(self._leave_queue())
        self.traffic.timeouts += 1

    def finish(self) -> None:
        self._leave_queue()
        self.traffic.progress.done += 1


async def hold_connection(conn: AsyncConnection, delay_s: float, tally: Tally, traffic: Traffic) -> None:
    """The work of one request once it holds a connection: a real query, then the hold."""
    traffic.in_use += 1
    tally.peak = max(tally.peak, traffic.in_use)
    try:
        await conn.execute(text("SELECT 1"))
        await asyncio.sleep(delay_s)  # injected: stands in for a slow query or network
    finally:
        traffic.in_use -= 1


async def pooled_request(engine: AsyncEngine, delay_s: float, tally: Tally, traffic: Traffic) -> None:
    """One simulated request: borrow a connection, run a query, hold it for D, give it back."""
    request = QueuedRequest(tally, traffic)
    try:
        async with engine.connect() as conn:
            request.served()
            await hold_connection(conn, delay_s, tally, traffic)
    except PoolTimeoutError:
        # The pool's own timeout: no connection became free within pool_timeout.
        request.timed_out()
    except Exception as exc:  # noqa: BLE001 - counted and reported, the other requests go on
        tally.errors.append(explain(exc))
    finally:
        request.finish()


async def new_connection_request(
    engine: AsyncEngine, delay_s: float, slots: asyncio.Semaphore, timeout_s: float, tally: Tally, traffic: Traffic
) -> None:
    """The same request without a pool: open a connection, use it, close it.

    ``NullPool`` has no limit and no timeout of its own, so two stand-ins play the pool's
    part: ``slots``, an ``asyncio.Semaphore``, caps how many requests hold a connection at
    once, and ``asyncio.wait_for`` gives up on waiting for a slot after pool_timeout. The
    one real difference from the pooled run is that nothing is reused: every request
    opens its own connection and really closes it afterwards.
    """
    request = QueuedRequest(tally, traffic)
    try:
        try:
            await asyncio.wait_for(slots.acquire(), timeout_s)
        except TimeoutError:
            request.timed_out()
            return
        try:
            async with engine.connect() as conn:
                request.served()
                await hold_connection(conn, delay_s, tally, traffic)
        except Exception as exc:  # noqa: BLE001 - e.g. the server refusing more connections
            tally.errors.append(explain(exc))
        finally:
            slots.release()
    finally:
        request.finish()


def attach_probe(engine: AsyncEngine, traffic: Traffic) -> PoolProbe:
    """A probe on ``engine`` that knows how many of this run's requests are queued."""
    probe = PoolProbe(waiting=lambda: traffic.waiting)
    probe.attach(engine)
    traffic.probe = probe
    return probe
