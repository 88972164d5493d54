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
import math
import statistics
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import plotly.graph_objects as go
from sqlalchemy import event, text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from .db import initialize_db, sqlite_engine
from .errors import InvalidInput, LabError, explain
from .samples import SAMPLE_USERS, create_sample_users
from .sandbox import current_sandbox

if TYPE_CHECKING:
    from .sandbox import Sandbox

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


async def read_pool_status(engine: AsyncEngine) -> PoolStatus | None:
    """Read the pool's counters on the event loop that owns the pool.

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


@dataclass
class Progress:
    """Counters the running experiment updates and the page reads to draw a progress bar."""

    total: int = 0
    done: int = 0
    timeouts: int = 0
    in_use: int = 0
    phase: str = "waiting for a free experiment slot"

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def describe(self) -> str:
        return f"{self.phase}: {self.done}/{self.total} requests finished, {self.in_use} holding a connection"


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
    connect_ms: list[float]  # per new connection opened (NullPool only)
    connections_opened: int
    peak_in_use: int

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
    def bound_ratio(self) -> float:
        return self.wall_s / self.bound_s if self.bound_s > 0 else math.inf

    @property
    def max_wait_ms(self) -> float:
        return max(self.waits_ms, default=0.0)

    @property
    def median_connect_ms(self) -> float | None:
        return statistics.median(self.connect_ms) if self.connect_ms else None


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
    async def admit(self, connections: int, timeout: float = ADMISSION_TIMEOUT_S) -> AsyncIterator[None]:
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
            async with self._changed:
                self.running -= 1
                self.connections -= connections
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
        assert sandbox.directory is not None
        return sqlite_engine(sandbox.directory / "lab.db", **pool)
    url = sandbox.backends.settings.database_url
    assert url is not None
    return create_async_engine(url, connect_args={"timeout": 5}, **pool)


@dataclass
class _Tally:
    waits_ms: list[float] = field(default_factory=list)
    timeout_waits_ms: list[float] = field(default_factory=list)
    connect_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    opened: int = 0
    peak: int = 0


async def hold_connection(conn: AsyncConnection, delay_s: float, tally: _Tally, progress: Progress) -> None:
    """The work of one request once it holds a connection: a real query, then the hold."""
    progress.in_use += 1
    tally.peak = max(tally.peak, progress.in_use)
    try:
        await conn.execute(text("SELECT 1"))
        await asyncio.sleep(delay_s)  # injected: stands in for a slow query or network
    finally:
        progress.in_use -= 1


async def pooled_request(engine: AsyncEngine, delay_s: float, tally: _Tally, progress: Progress) -> None:
    """One simulated request: borrow a connection, run a query, hold it for D, give it back."""
    asked = time.perf_counter()
    try:
        async with engine.connect() as conn:
            tally.waits_ms.append((time.perf_counter() - asked) * 1000)
            await hold_connection(conn, delay_s, tally, progress)
    except PoolTimeoutError:
        # The pool's own timeout: no connection became free within pool_timeout.
        tally.timeout_waits_ms.append((time.perf_counter() - asked) * 1000)
        progress.timeouts += 1
    except Exception as exc:  # noqa: BLE001 - counted and reported, the other requests go on
        tally.errors.append(explain(exc))
    finally:
        progress.done += 1


async def new_connection_request(
    engine: AsyncEngine, delay_s: float, slots: asyncio.Semaphore, timeout_s: float, tally: _Tally, progress: Progress
) -> None:
    """The same request without a pool: open a connection, use it, close it.

    ``slots`` caps how many run at once (like the pool's limit) and the same timeout
    applies to waiting for a slot, so the only difference from the pooled run is that
    nothing is reused: every request pays for opening its own connection.
    """
    asked = time.perf_counter()
    try:
        await asyncio.wait_for(slots.acquire(), timeout_s)
    except TimeoutError:
        tally.timeout_waits_ms.append((time.perf_counter() - asked) * 1000)
        progress.timeouts += 1
        progress.done += 1
        return
    try:
        opening = time.perf_counter()
        async with engine.connect() as conn:
            now = time.perf_counter()
            tally.connect_ms.append((now - opening) * 1000)
            tally.waits_ms.append((now - asked) * 1000)
            await hold_connection(conn, delay_s, tally, progress)
    except Exception as exc:  # noqa: BLE001 - e.g. the server refusing more connections
        tally.errors.append(explain(exc))
    finally:
        slots.release()
        progress.done += 1


async def _measure(
    sandbox: Sandbox, config: ExperimentConfig, progress: Progress, *, nullpool: bool
) -> ExperimentResult:
    engine = build_engine(sandbox, config, nullpool=nullpool)
    tally = _Tally()

    def count_connect(*_: Any) -> None:
        tally.opened += 1

    event.listen(engine.sync_engine, "connect", count_connect)
    delay_s = config.delay_ms / 1000
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
        await asyncio.gather(*requests)
        wall_s = time.perf_counter() - started
    finally:
        await engine.dispose()
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
    )


async def run_experiment(
    config: ExperimentConfig, *, compare_nullpool: bool = False, progress: Progress | None = None
) -> LabRun:
    """Run K concurrent requests through a pool, and optionally without one.

    Waits for a free experiment slot first (at most two experiments run at once in the
    whole process), so one learner's experiment cannot starve the database of connections.
    """
    sandbox = current_sandbox()
    progress = progress or Progress()
    progress.total = config.requests * (2 if compare_nullpool else 1)
    needs = max(config.connections_at_once, config.nullpool_concurrency if compare_nullpool else 0)
    async with experiment_gate().admit(needs):
        async with asyncio.timeout(EXPERIMENT_TIME_LIMIT_S):
            progress.phase = "Pooled run"
            pooled = await _measure(sandbox, config, progress, nullpool=False)
            nullpool = None
            if compare_nullpool:
                progress.phase = "New connection per request"
                nullpool = await _measure(sandbox, config, progress, nullpool=True)
        progress.phase = "Done"
    return LabRun(pooled=pooled, nullpool=nullpool)


# -- running it from a page with a progress bar ------------------------------------------
def start(sandbox: Sandbox, coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Hand ``coro`` to the app's event loop in the learner's sandbox, without waiting."""
    return sandbox.backends.runtime.submit(sandbox.bind(coro))


def wait_with_progress(
    future: Future[T], on_tick: Callable[[], object], *, every_s: float = 0.1, timeout_s: float = 90.0
) -> T:
    """Block until ``future`` is done, calling ``on_tick`` between polls (to redraw a bar)."""
    deadline = time.monotonic() + timeout_s
    while not future.done():
        if time.monotonic() > deadline:
            future.cancel()
            raise TimeoutError("the experiment did not finish in time")
        on_tick()
        time.sleep(every_s)
    on_tick()
    return future.result()


# -- figures --------------------------------------------------------------------------------
def waits_figure(run: LabRun) -> go.Figure:
    """Histogram of how long requests waited for a connection, per strategy and outcome."""
    fig = go.Figure()
    colours = {"pool": ("#2563eb", "#dc2626"), "new connection per request": ("#f59e0b", "#7f1d1d")}
    for result in (run.pooled, run.nullpool):
        if result is None:
            continue
        served, failed = colours[result.strategy]
        fig.add_trace(
            go.Histogram(
                x=result.waits_ms,
                name=f"{result.strategy}: got a connection",
                opacity=0.6,
                marker_color=served,
                bingroup="waits",
            )
        )
        if result.timeout_waits_ms:
            fig.add_trace(
                go.Histogram(
                    x=result.timeout_waits_ms,
                    name=f"{result.strategy}: timed out",
                    opacity=0.6,
                    marker_color=failed,
                    bingroup="waits",
                )
            )
    fig.update_layout(
        barmode="overlay",
        xaxis_title="wait for a connection (ms)",
        yaxis_title="requests",
        legend={"orientation": "h", "y": -0.25},
        margin={"t": 30},
    )
    return fig


def connect_figure(result: ExperimentResult) -> go.Figure:
    """Box plot of the time each new connection took to open."""
    fig = go.Figure(go.Box(x=result.connect_ms, name="open a connection", boxpoints="outliers"))
    fig.update_layout(xaxis_title="time to open one connection (ms)", margin={"t": 30}, height=220)
    return fig
