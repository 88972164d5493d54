"""What Lab 2's buttons do, on the learner's sandbox: initialise it, read its pool, start an experiment.

The page's panels call only this module. Each function returns what the page shows (a DTO with
its sentences already written), so the choices (which sentence, which backend note, what a form
value means) are made here, where a test can reach them without a browser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from source.instruments.pool_probe import PoolStatus, read_pool_status
from source.labs.pooling import config, experiment
from source.labs.pooling.config import ExperimentConfig
from source.labs.pooling.initialise import initialise_with_samples
from source.labs.pooling.jobs import ExperimentRunner
from source.labs.pooling.report import plural
from source.labs.pooling.results import LabRun
from source.platform.context import current_sandbox
from source.platform.jobs import Job
from source.platform.outcome import Outcome
from source.platform.sandbox import Sandbox


# -- 1 · initialise ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Initialised:
    """What the Initialise button reports: the schema's revision, then one line per sample user."""

    outcome: Outcome
    users: list[str]


async def initialise() -> Initialised:
    """Migrate the sandbox and create Alex and Jane; say which of them already existed."""
    done = await initialise_with_samples()
    lines = [
        f"- **{u.name}** · {u.email} · id `{u.id}` · _{'created now' if u.created_now else 'already existed'}_"
        for u in done.users
    ]
    return Initialised(Outcome(f"Your sandbox is at migration `{done.revision}`."), lines)


# -- 2 · the live pool -------------------------------------------------------------------------
@dataclass(frozen=True)
class PoolReading:
    """The sandbox's pool counters at one instant (``None``: a pool without counters) and what they mean."""

    status: PoolStatus | None
    said: str


async def read_pool() -> PoolReading:
    """Read the counters of the pool the other labs use (on the loop that owns it)."""
    status = await read_pool_status(current_sandbox().engine)
    if status is None:
        return PoolReading(None, "This engine's pool keeps no counters (it is not a QueuePool).")
    return PoolReading(
        status,
        f"{status.pool_class}, read at {datetime.now():%H:%M:%S}. SQLAlchemy counts overflow up from −pool_size: "
        f"overflow {status.overflow} with size {status.size} means {plural(status.opened, 'connection')} "
        "open now; a positive number is how many extra connections beyond pool_size are open.",
    )


# -- what the page says about the learner's backend ----------------------------------------------
@dataclass(frozen=True)
class BackendNotes:
    """The sentences that depend on where the sandbox lives (``None``: nothing to add on this backend)."""

    #: Section 1: why SQLite's database is a file.
    storage: str | None
    #: Section 2: whose pool the live panel reads, and an icon for it.
    live_pool: str
    live_pool_icon: str
    #: Section 3: what a "connection" costs here, and SQLite's single writer.
    connections: str | None
    #: Section 3: the limits every learner's experiment runs within on this server.
    limits: str


def backend_notes(sandbox: Sandbox) -> BackendNotes:
    sqlite = sandbox.backend == "SQLite"
    return BackendNotes(
        storage=(
            "On SQLite your database is a temporary *file*, not `:memory:`: an in-memory SQLite database gets "
            "a single shared connection (StaticPool), so there would be no pool to study."
        )
        if sqlite
        else None,
        live_pool=(
            "This panel reads the pool of the empty, read-only SQLite file every visitor's page is drawn from: "
            "your first action takes a seat, a file of your own, and the panel then reads its pool."
            if sqlite and sandbox.visitor
            else "This panel reads the pool of your own SQLite file, the one the other labs use."
            if sqlite
            else "This panel reads the app's **shared** PostgreSQL pool, the one the other labs use: every "
            "learner's sandbox (their own schema) borrows connections from it, so these numbers move with "
            "everybody's clicks."
        ),
        live_pool_icon="🙋" if sqlite else "👥",
        connections=(
            'You are on SQLite. A SQLite "connection" opens a file inside this process and starts a worker thread '
            "(aiosqlite): no network handshake. On PostgreSQL it is a TCP connection, authentication and a new "
            "server process. Either way the time to open one is measured below, not assumed. And SQLite allows one "
            "writer at a time: these requests only read, but with writes they would also queue on the file's lock "
            "(busy_timeout), not just on the pool, where PostgreSQL locks only the rows each one touches."
        )
        if sqlite
        else None,
        limits=(
            f"Limits, so nobody can exhaust the shared host: K ≤ {config.MAX_REQUESTS}, D ≤ {config.MAX_DELAY_MS} "
            f"ms, pool_size ≤ {config.MAX_POOL_SIZE}, max_overflow ≤ {config.MAX_OVERFLOW}, pool_timeout "
            f"{config.MIN_POOL_TIMEOUT_S:g}–{config.MAX_POOL_TIMEOUT_S:g} s. One experiment per learner. On this "
            f"server at most {config.MAX_EXPERIMENTS_AT_ONCE} experiments run at once, holding at most "
            f"{experiment.connection_budget(sandbox)} connections together: an experiment that does not fit waits "
            f"its turn (up to {experiment.ADMISSION_TIMEOUT_S:g} s), so two large ones run one after the other."
        ),
    )


# -- 3 · the experiment ------------------------------------------------------------------------
def _whole(value: object) -> object:
    """A whole-number box sends a float (see ``whole_number_input``): 20.0 means 20. Anything else is
    left for :meth:`ExperimentConfig.parse` to refuse in words."""
    return round(value) if isinstance(value, float) and math.isfinite(value) else value


def start_experiment(  # noqa: PLR0913 - one argument per field of the form
    runner: ExperimentRunner,
    *,
    requests: object,
    delay_ms: object,
    pool_size: object,
    max_overflow: object,
    pool_timeout_s: object,
    compare_nullpool: object,
) -> Job[LabRun]:
    """Check the form's values (a bad one is refused with the control's name and range), then start the run."""
    chosen = ExperimentConfig.parse(
        requests=_whole(requests),
        delay_ms=delay_ms,
        pool_size=_whole(pool_size),
        max_overflow=_whole(max_overflow),
        pool_timeout_s=pool_timeout_s,
    )
    return runner.start(chosen, compare_nullpool=bool(compare_nullpool))
