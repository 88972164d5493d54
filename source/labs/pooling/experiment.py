"""Lab 2: async connectivity and connection pooling, measured on a real pool.

A web request that needs the database first needs a *connection*. Opening one costs a
network round trip or several (TCP, authentication, a new server process on PostgreSQL),
so an application keeps a pool of open connections and lends them out. The pool is also a
limit: with ``pool_size`` connections plus ``max_overflow`` extra ones, at most that many
requests can talk to the database at once; the rest queue, and a request that queues
longer than ``pool_timeout`` gets ``sqlalchemy.exc.TimeoutError``.

The experiments here build a *dedicated* engine with the pool settings the learner chose,
fire K concurrent simulated requests at it, and record what each one waited. Each request
holds its connection for D milliseconds with ``asyncio.sleep``: that sleep stands in for a
slow query or a slow network, and is the only injected delay in the lab.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import CancelledError, Future
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from source.domain.samples import SAMPLE_USERS, create_sample_users
from source.platform.context import current_sandbox
from source.platform.engines import sqlite_engine
from source.platform.errors import InvalidInput, LabError, explain
from source.platform.session import initialize_db

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

T = TypeVar("T")

# -- limits: what one learner may ask of a host shared by everybody ----------------------
MAX_REQUESTS = 500
MAX_DELAY_MS = 200
MAX_POOL_SIZE = 20
MAX_OVERFLOW = 20
MIN_POOL_TIMEOUT_S = 0.1
MAX_POOL_TIMEOUT_S = 10.0
#: "A new connection per request" never opens more than this many connections at once.
MAX_NULLPOOL_CONCURRENCY = 40
#: Experiments running at the same moment, across every learner of this process.
MAX_EXPERIMENTS_AT_ONCE = 2
#: Connections all running experiments may hold together. PostgreSQL refuses clients past
#: ``max_connections`` (100 by default, 3 of them reserved); the app's shared pool can hold
#: 20, so 60 more leaves room for everybody else.
MAX_EXPERIMENT_CONNECTIONS = 60
#: How long an experiment waits for its turn before giving up with a clear message.
ADMISSION_TIMEOUT_S = 30.0
#: A hard stop for one experiment (both phases); the pool timeout normally ends it far sooner.
EXPERIMENT_TIME_LIMIT_S = 60.0
#: How long a new experiment waits for the same sandbox's previous one to wind down.
REPLACE_WAIT_S = 5.0
#: How long a page waits for an experiment: every stage above, plus a margin.
WAIT_TIMEOUT_S = REPLACE_WAIT_S + ADMISSION_TIMEOUT_S + EXPERIMENT_TIME_LIMIT_S + 5.0
#: How often the experiment's pool counters are read while it runs.
SAMPLE_EVERY_S = 0.01


# -- step 1: initialise the sandbox and the sample users ---------------------------------
@dataclass(frozen=True)
class SampleUserRow:
    name: str
    email: str
    id: str
    created_now: bool


@dataclass(frozen=True)
class InitReport:
    revision: str | None
    users: list[SampleUserRow]


async def initialise_with_samples() -> InitReport:
    """Migrate the learner's sandbox and create Alex Smith and Jane Doe.

    Both steps are idempotent, so pressing the button twice is harmless: Alembic skips
    migrations already applied, and the UNIQUE email index turns a second insert of the
    same person into "already existed" instead of a duplicate row.
    """
    revision = await initialize_db()
    names = dict(SAMPLE_USERS)
    rows = [
        SampleUserRow(name=names[email], email=email, id=user_id, created_now=created)
        for email, user_id, created in await create_sample_users()
    ]
    return InitReport(revision=revision, users=rows)


# -- step 2: the status of a live pool ----------------------------------------------------
@dataclass(frozen=True)
class PoolStatus:
    """The four counters SQLAlchemy's ``QueuePool`` keeps, read at one instant."""

    pool_class: str
    size: int
    checked_in: int
    checked_out: int
    overflow: int

    @property
    def opened(self) -> int:
        """Connections open right now (idle in the pool plus lent out)."""
        return self.checked_in + self.checked_out


def pool_status(engine: AsyncEngine) -> PoolStatus | None:
    """Read the pool's counters now; call it on the event loop that owns the pool.

    ``overflow`` starts at ``-size``: SQLAlchemy counts every connection it opens, so
    ``-3`` means three of the pool's places have not been opened yet, and a positive
    number means that many extra connections beyond ``pool_size`` are open now.
    Returns ``None`` for pools without these counters (``NullPool``, ``StaticPool``).
    """
    pool: Any = engine.pool
    if not all(hasattr(pool, name) for name in ("size", "checkedin", "checkedout", "overflow")):
        return None
    return PoolStatus(
        pool_class=type(pool).__name__,
        size=pool.size(),
        checked_in=pool.checkedin(),
        checked_out=pool.checkedout(),
        overflow=pool.overflow(),
    )


async def read_pool_status(engine: AsyncEngine) -> PoolStatus | None:
    """:func:`pool_status` as a coroutine, so a page can run it on the loop that owns the pool."""
    return pool_status(engine)


# -- step 3: the experiment -----------------------------------------------------------------
def _check_number(name: str, value: object, low: float, high: float, *, whole: bool, unit: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a number between {low:g} and {high:g}{unit} (got {value!r}).")
    number = float(value)
    if whole and not number.is_integer():
        raise InvalidInput(f"{name} must be a whole number between {low:g} and {high:g} (got {value!r}).")
    if not low <= number <= high:
        kind = "a whole number" if whole else "a number"
        raise InvalidInput(f"{name} must be {kind} between {low:g} and {high:g}{unit} (got {value!r}).")
    return number


@dataclass(frozen=True)
class ExperimentConfig:
    """What the learner chose. Every field is checked, so nobody can exhaust the host."""

    requests: int
    delay_ms: float
    pool_size: int
    max_overflow: int
    pool_timeout_s: float

    def __post_init__(self) -> None:
        checks: list[tuple[str, str, float, float, bool, str]] = [
            ("requests", "Concurrent requests (K)", 1, MAX_REQUESTS, True, ""),
            ("delay_ms", "Hold time per request (D)", 1, MAX_DELAY_MS, False, " ms"),
            ("pool_size", "pool_size", 1, MAX_POOL_SIZE, True, ""),
            ("max_overflow", "max_overflow", 0, MAX_OVERFLOW, True, ""),
            ("pool_timeout_s", "pool_timeout", MIN_POOL_TIMEOUT_S, MAX_POOL_TIMEOUT_S, False, " s"),
        ]
        for attr, label, low, high, whole, unit in checks:
            number = _check_number(label, getattr(self, attr), low, high, whole=whole, unit=unit)
            object.__setattr__(self, attr, int(number) if whole else number)

    @property
    def connections_at_once(self) -> int:
        """How many requests can hold a connection at the same moment."""
        return self.pool_size + self.max_overflow

    @property
    def nullpool_concurrency(self) -> int:
        """The cap for "a new connection per request": same as the pool, never above 40."""
        return min(self.connections_at_once, MAX_NULLPOOL_CONCURRENCY)

    @property
    def bound_s(self) -> float:
        """The best possible wall time: ``ceil(K / connections_at_once) · D``.

        Each request holds a connection for D, and only ``pool_size + max_overflow`` can be
        held at once, so the K requests need at least ``ceil(K / that)`` rounds of D each.
        """
        return math.ceil(self.requests / self.connections_at_once) * self.delay_ms / 1000


@dataclass(frozen=True)
class PoolSample:
    """One reading of the experiment's pool, taken while it ran."""

    t_ms: float  # since the requests were fired
    checked_out: int  # connections lent to requests right now
    overflow_in_use: int  # of those, how many are extra connections beyond pool_size
    waiting: int  # requests that asked for a connection and do not hold one yet


@dataclass
class Progress:
    """What the running experiment is doing now; the page reads it to draw a progress bar.

    The request counters are updated by the requests themselves; ``pool`` and
    ``open_connections`` are read from the experiment's own engine by a sampler every
    ``SAMPLE_EVERY_S`` seconds, so the progress text shows the pool filling and draining.
    """

    total: int = 0
    done: int = 0
    timeouts: int = 0
    in_use: int = 0
    waiting: int = 0
    open_connections: int = 0
    pool: PoolStatus | None = None
    phase: str = "waiting for a free experiment slot"

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def describe(self) -> str:
        text = f"{self.phase}: {self.done}/{self.total} finished, {self.waiting} waiting for a connection"
        if self.timeouts:
            text += f", {self.timeouts} gave up"
        if self.pool is not None:
            extra = max(self.pool.overflow, 0)
            return text + (
                f" · pool: {self.pool.checked_out} checked out, {self.pool.checked_in} idle, {extra} overflow"
            )
        if self.phase.startswith("New connection"):
            return text + f" · {self.open_connections} connection(s) open"
        return text


@dataclass(frozen=True)
class ExperimentResult:
    """What one run measured. Every number here was timed or counted while it ran."""

    strategy: str  # "pool" or "new connection per request"
    backend: str  # "PostgreSQL" or "SQLite"
    config: ExperimentConfig
    wall_s: float
    completed: int
    timeouts: int
    errors: int
    first_error: str | None
    waits_ms: list[float]  # per completed request: time until it held a connection
    timeout_waits_ms: list[float]  # per timed-out request: time until it gave up
    connect_ms: list[float]  # per new connection: from asking the driver until it was open
    connections_opened: int
    peak_in_use: int
    timeline: list[PoolSample] = field(default_factory=list)
    closed_while_queued: int = 0  # connections the pool closed while some request was waiting for one

    @property
    def lent_while_queued(self) -> float | None:
        """Connections lent out on average while some request was waiting, weighted by time.

        If the pool really used all its C connections whenever anybody queued, this is C.
        ``None`` when no request ever had to wait.
        """
        weighted = span = 0.0
        for now, following in itertools.pairwise(self.timeline):
            if now.waiting > 0:
                dt = following.t_ms - now.t_ms
                weighted += now.checked_out * dt
                span += dt
        return weighted / span if span > 0 else None

    @property
    def throughput_rps(self) -> float:
        return self.completed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def concurrency(self) -> int:
        return self.config.connections_at_once if self.strategy == "pool" else self.config.nullpool_concurrency

    @property
    def bound_s(self) -> float:
        return math.ceil(self.config.requests / self.concurrency) * self.config.delay_ms / 1000

    @property
    def bound_applies(self) -> bool:
        """The bound assumes every request is served; it says nothing about a run where some gave up."""
        return self.timeouts == 0 and self.errors == 0

    @property
    def bound_ratio(self) -> float | None:
        if not self.bound_applies or self.bound_s <= 0:
            return None
        return self.wall_s / self.bound_s

    @property
    def max_wait_ms(self) -> float:
        return max(self.waits_ms, default=0.0)

    @property
    def median_connect_ms(self) -> float | None:
        return statistics.median(self.connect_ms) if self.connect_ms else None

    @property
    def total_connect_ms(self) -> float:
        return sum(self.connect_ms)


@dataclass(frozen=True)
class LabRun:
    pooled: ExperimentResult
    nullpool: ExperimentResult | None = None


class ExperimentGate:
    """Admits at most N experiments, holding at most M connections together, at a time.

    One per event loop, created lazily *on* that loop (an ``asyncio.Condition`` belongs to
    the loop it was first used on). Experiments that do not fit wait their turn.
    """

    def __init__(self, max_experiments: int, max_connections: int) -> None:
        self.max_experiments = max_experiments
        self.max_connections = max_connections
        self.running = 0
        self.connections = 0
        self._changed = asyncio.Condition()

    def _fits(self, connections: int) -> bool:
        return self.running < self.max_experiments and self.connections + connections <= self.max_connections

    @asynccontextmanager
    async def admit(self, connections: int, timeout: float = ADMISSION_TIMEOUT_S) -> AsyncIterator[None]:  # noqa: ASYNC109
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
            # Give the slot back first, without awaiting anything, so even an experiment
            # that is being cancelled cannot keep it; then wake whoever waits for one.
            self.running -= 1
            self.connections -= connections
            async with self._changed:
                self._changed.notify_all()


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ExperimentGate] = weakref.WeakKeyDictionary()


def experiment_gate() -> ExperimentGate:
    """The gate of the running loop (one per process in the app)."""
    loop = asyncio.get_running_loop()
    if loop not in _gates:
        _gates[loop] = ExperimentGate(MAX_EXPERIMENTS_AT_ONCE, MAX_EXPERIMENT_CONNECTIONS)
    return _gates[loop]


def backend_name(sandbox: Sandbox) -> str:
    """Which database the sandbox lives in: "PostgreSQL" or "SQLite"."""
    return "PostgreSQL" if sandbox.backends.shared_engine is not None else "SQLite"


def build_engine(sandbox: Sandbox, config: ExperimentConfig, *, nullpool: bool = False) -> AsyncEngine:
    """A dedicated engine with the learner's pool settings (call it on the event loop).

    SQLite gets a file in the learner's sandbox directory; PostgreSQL gets the app's
    database URL with a 5-second connect timeout. ``NullPool`` keeps no connection:
    every ``connect()`` opens a new one and closing it really closes it.
    """
    pool: dict[str, Any] = (
        {"poolclass": NullPool}
        if nullpool
        else {
            "pool_size": config.pool_size,
            "max_overflow": config.max_overflow,
            "pool_timeout": config.pool_timeout_s,
        }
    )
    if sandbox.backends.shared_engine is None:
        if sandbox.directory is None:
            raise RuntimeError("A SQLite sandbox always has a folder")
        return sqlite_engine(sandbox.directory / "lab.db", **pool)
    url = sandbox.backends.settings.database_url
    if url is None:
        raise RuntimeError("A shared engine always comes from a DATABASE_URL")
    return create_async_engine(url, connect_args={"timeout": 5}, **pool)


@dataclass
class _Tally:
    waits_ms: list[float] = field(default_factory=list)
    timeout_waits_ms: list[float] = field(default_factory=list)
    connect_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timeline: list[PoolSample] = field(default_factory=list)
    opened: int = 0
    closed_while_queued: int = 0
    peak: int = 0


def time_new_connections(engine: AsyncEngine, tally: _Tally, progress: Progress) -> None:
    """Time every new connection the engine opens, and count the ones open right now.

    ``do_connect`` fires just before SQLAlchemy asks the driver for a new connection and
    the pool's ``connect`` event just after it is open, both with the same connection
    record: the gap between them is what opening that one connection cost. A pool that
    reuses its connections fires them only for the few it opens.
    """
    asked: dict[int, float] = {}

    def before(dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
        asked[id(record)] = time.perf_counter()

    def opened(dbapi_connection: Any, record: Any) -> None:
        started = asked.pop(id(record), None)
        if started is not None:
            tally.connect_ms.append((time.perf_counter() - started) * 1000)
        tally.opened += 1
        progress.open_connections += 1

    def closed(*_: Any) -> None:
        if progress.waiting > 0:
            tally.closed_while_queued += 1
        progress.open_connections -= 1

    event.listen(engine.sync_engine, "do_connect", before)
    event.listen(engine.sync_engine, "connect", opened)
    event.listen(engine.sync_engine, "close", closed)
    event.listen(engine.sync_engine, "close_detached", closed)


def read_sample(engine: AsyncEngine, started: float, progress: Progress) -> PoolSample:
    """One reading of the experiment's pool, also shown live through ``progress``.

    For ``NullPool``, which keeps no counters, the connections open at that moment stand
    in for "checked out" (each request holds the one it opened).
    """
    status = pool_status(engine)
    progress.pool = status
    return PoolSample(
        t_ms=(time.perf_counter() - started) * 1000,
        checked_out=status.checked_out if status else progress.open_connections,
        overflow_in_use=max(status.overflow, 0) if status else 0,
        waiting=progress.waiting,
    )


async def sample_pool(engine: AsyncEngine, started: float, progress: Progress, timeline: list[PoolSample]) -> None:
    """Read the pool every ``SAMPLE_EVERY_S`` until cancelled, keeping the readings that changed."""
    while True:
        sample = read_sample(engine, started, progress)
        last = timeline[-1] if timeline else None
        if last is None or (last.checked_out, last.overflow_in_use, last.waiting) != (
            sample.checked_out,
            sample.overflow_in_use,
            sample.waiting,
        ):
            timeline.append(sample)
        await asyncio.sleep(SAMPLE_EVERY_S)


async def hold_connection(conn: AsyncConnection, delay_s: float, tally: _Tally, progress: Progress) -> None:
    """The work of one request once it holds a connection: a real query, then the hold."""
    progress.in_use += 1
    tally.peak = max(tally.peak, progress.in_use)
    try:
        await conn.execute(text("SELECT 1"))
        await asyncio.sleep(delay_s)  # injected: stands in for a slow query or network
    finally:
        progress.in_use -= 1


class QueuedRequest:
    """One request's bookkeeping, from the moment it asks for a connection.

    It counts as *waiting* until it holds a connection, gives up, or fails; its wait is
    recorded as served or timed out. Both strategies below share it, so their figures are
    measured the same way.
    """

    def __init__(self, tally: _Tally, progress: Progress) -> None:
        self.tally = tally
        self.progress = progress
        self.asked = time.perf_counter()
        self.queued = True
        progress.waiting += 1

    def _leave_queue(self) -> float:
        if self.queued:
            self.queued = False
            self.progress.waiting -= 1
        return (time.perf_counter() - self.asked) * 1000

    def served(self) -> None:
        """It holds a connection now: record how long that took."""
        self.tally.waits_ms.append(self._leave_queue())

    def timed_out(self) -> None:
        """It gave up waiting: record how long it waited before doing so."""
        self.tally.timeout_waits_ms.append(self._leave_queue())
        self.progress.timeouts += 1

    def finish(self) -> None:
        self._leave_queue()
        self.progress.done += 1


async def pooled_request(engine: AsyncEngine, delay_s: float, tally: _Tally, progress: Progress) -> None:
    """One simulated request: borrow a connection, run a query, hold it for D, give it back."""
    request = QueuedRequest(tally, progress)
    try:
        async with engine.connect() as conn:
            request.served()
            await hold_connection(conn, delay_s, tally, progress)
    except PoolTimeoutError:
        # The pool's own timeout: no connection became free within pool_timeout.
        request.timed_out()
    except Exception as exc:  # noqa: BLE001 - counted and reported, the other requests go on
        tally.errors.append(explain(exc))
    finally:
        request.finish()


async def new_connection_request(
    engine: AsyncEngine, delay_s: float, slots: asyncio.Semaphore, timeout_s: float, tally: _Tally, progress: Progress
) -> None:
    """The same request without a pool: open a connection, use it, close it.

    ``NullPool`` has no limit and no timeout of its own, so two stand-ins play the pool's
    part: ``slots``, an ``asyncio.Semaphore``, caps how many requests hold a connection at
    once, and ``asyncio.wait_for`` gives up on waiting for a slot after pool_timeout. The
    one real difference from the pooled run is that nothing is reused: every request
    opens its own connection and really closes it afterwards.
    """
    request = QueuedRequest(tally, progress)
    try:
        try:
            await asyncio.wait_for(slots.acquire(), timeout_s)
        except TimeoutError:
            request.timed_out()
            return
        try:
            async with engine.connect() as conn:
                request.served()
                await hold_connection(conn, delay_s, tally, progress)
        except Exception as exc:  # noqa: BLE001 - e.g. the server refusing more connections
            tally.errors.append(explain(exc))
        finally:
            slots.release()
    finally:
        request.finish()


async def _measure(
    sandbox: Sandbox, config: ExperimentConfig, progress: Progress, *, nullpool: bool
) -> ExperimentResult:
    engine = build_engine(sandbox, config, nullpool=nullpool)
    tally = _Tally()
    time_new_connections(engine, tally, progress)
    delay_s = config.delay_ms / 1000
    sampler: asyncio.Task[None] | None = None
    try:
        if nullpool:
            slots = asyncio.Semaphore(config.nullpool_concurrency)
            requests = [
                new_connection_request(engine, delay_s, slots, config.pool_timeout_s, tally, progress)
                for _ in range(config.requests)
            ]
        else:
            requests = [pooled_request(engine, delay_s, tally, progress) for _ in range(config.requests)]
        started = time.perf_counter()
        sampler = asyncio.create_task(sample_pool(engine, started, progress, tally.timeline))
        # A TaskGroup, not gather(): if the experiment is cancelled, it waits until every
        # request has given its connection back, so the engine below is disposed last.
        async with asyncio.TaskGroup() as group:
            for request in requests:
                group.create_task(request)
        wall_s = time.perf_counter() - started
        tally.timeline.append(read_sample(engine, started, progress))
    finally:
        if sampler is not None:
            sampler.cancel()
        progress.pool = None
        # Shielded: even if this experiment is being cancelled, its connections get closed.
        await asyncio.shield(engine.dispose())
    return ExperimentResult(
        strategy="new connection per request" if nullpool else "pool",
        backend=backend_name(sandbox),
        config=config,
        wall_s=wall_s,
        completed=len(tally.waits_ms),
        timeouts=len(tally.timeout_waits_ms),
        errors=len(tally.errors),
        first_error=tally.errors[0] if tally.errors else None,
        waits_ms=tally.waits_ms,
        timeout_waits_ms=tally.timeout_waits_ms,
        connect_ms=tally.connect_ms,
        connections_opened=tally.opened,
        peak_in_use=tally.peak,
        timeline=tally.timeline,
        closed_while_queued=tally.closed_while_queued,
    )


#: The experiment each sandbox is running now (a task on the app's loop), by sandbox id.
_running: dict[str, asyncio.Task[Any]] = {}
#: Experiments stopped because their sandbox started a newer one.
_replaced: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()


async def _replace_previous(sandbox_id: str) -> asyncio.Task[Any]:
    """Make this task the sandbox's only experiment, cancelling an older one first.

    A learner who presses "Run" again, or leaves and comes back, has no use for the old
    run, and it would hold an experiment slot other learners are waiting for. So the old
    one is cancelled, and this one waits until it has given back its slot and closed its
    connections before starting.
    """
    me = asyncio.current_task()
    if me is None:
        raise RuntimeError("_replace_previous runs inside a task")
    previous = _running.get(sandbox_id)
    _running[sandbox_id] = me
    if previous is not None and previous is not me and not previous.done():
        _replaced.add(previous)
        previous.cancel()
        await asyncio.wait({previous}, timeout=REPLACE_WAIT_S)
    return me


async def run_experiment(
    config: ExperimentConfig, *, compare_nullpool: bool = False, progress: Progress | None = None
) -> LabRun:
    """Run K concurrent requests through a pool, and optionally without one.

    One experiment per sandbox: starting a new one cancels the sandbox's previous one.
    Then it waits for a free experiment slot (at most two experiments run at once in the
    whole process), so one learner's experiment cannot starve the database of connections.
    """
    sandbox = current_sandbox()
    progress = progress or Progress()
    progress.total = config.requests * (2 if compare_nullpool else 1)
    needs = max(config.connections_at_once, config.nullpool_concurrency if compare_nullpool else 0)
    me = await _replace_previous(sandbox.id)
    try:
        async with experiment_gate().admit(needs):
            async with asyncio.timeout(EXPERIMENT_TIME_LIMIT_S):
                progress.phase = "Pooled run"
                pooled = await _measure(sandbox, config, progress, nullpool=False)
                nullpool = None
                if compare_nullpool:
                    progress.phase = "New connection per request"
                    nullpool = await _measure(sandbox, config, progress, nullpool=True)
            progress.phase = "Done"
    except asyncio.CancelledError:
        progress.phase = "Stopped"
        if me in _replaced:
            raise LabError("This experiment was stopped because a newer one started in your sandbox.") from None
        raise
    except TimeoutError:
        raise LabError(
            f"The experiment hit the lab's {EXPERIMENT_TIME_LIMIT_S:g} s limit and was stopped. "
            "Try fewer requests, a shorter hold or a shorter pool_timeout."
        ) from None
    finally:
        if _running.get(sandbox.id) is me:
            del _running[sandbox.id]
    return LabRun(pooled=pooled, nullpool=nullpool)


# -- running it from a page with a progress bar ------------------------------------------
def start(sandbox: Sandbox, coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Hand ``coro`` to the app's event loop in the learner's sandbox, without waiting."""
    return sandbox.backends.runtime.submit(sandbox.bind(coro))


def wait_with_progress(
    future: Future[T], on_tick: Callable[[], object], *, every_s: float = 0.1, timeout_s: float = WAIT_TIMEOUT_S
) -> T:
    """Block until ``future`` is done, calling ``on_tick`` between polls (to redraw a bar).

    Whatever ends the wait early (a timeout, or Streamlit stopping the script because
    the learner pressed a button again or left the page) cancels the experiment on the
    event loop, so it gives back its slot and closes its connections at once instead of
    running on for nobody.
    """
    deadline = time.monotonic() + timeout_s
    try:
        while not future.done():
            if time.monotonic() > deadline:
                raise LabError("The experiment did not finish in time and was stopped.")
            on_tick()
            time.sleep(every_s)
        on_tick()
        return future.result()
    except CancelledError:
        raise LabError("This experiment was stopped before it finished.") from None
    finally:
        if not future.done():
            future.cancel()
