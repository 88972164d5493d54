"""Recording the SQL that really ran, with SQLAlchemy's own cursor events.

Every figure such as "3 queries" on a page comes from here: a listener on the engine sees
each statement just before the driver sends it, and again when the answer is back. For each
statement the log keeps its SQL, its parameters, how long the database took, and the *caller*:
the line of our code that made the statement happen.

Finding that line under asyncio takes one extra step. SQLAlchemy's async layer runs the ORM's
synchronous code in a greenlet of its own, and that greenlet's stack ends at SQLAlchemy's
bridge: the coroutine that awaited (say, ``await user.awaitable_attrs.scores``) is not on it.
It is on the *parent* greenlet's stack, the one suspended inside ``greenlet_spawn`` while the
child runs. So the caller is searched for on the current stack first, then on the parents'.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import greenlet
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import await_, in_greenlet

#: Where the repository lives: callers are shown relative to it.
ROOT = Path(__file__).resolve().parents[2]

#: Frames from these packages are machinery, not the caller a learner is looking for.
_MACHINERY = tuple(
    str(Path(path).resolve().parent) + "/"
    for path in (sys.modules["sqlalchemy"].__file__, asyncio.__file__, greenlet.__file__, __file__)
    if path
)
_MACHINERY_NAMES = ("aiosqlite", "asyncpg", "contextlib.py", "threading.py", "concurrent/futures")


@dataclass(frozen=True)
class Caller:
    """Where a statement came from: a file (relative to the repository), a line, a function."""

    file: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.function}"


@dataclass
class StatementRecord:
    """One statement as the driver received it."""

    sql: str
    params: Any
    executemany: bool
    #: Our own frames that led to it, innermost first (``caller`` is the first of them).
    stack: tuple[Caller, ...]
    #: Time from handing the statement to the driver until its rows were back (ms).
    duration_ms: float | None = None
    #: The simulated network round trip added before this statement (ms), 0 when none.
    injected_ms: float = 0.0

    @property
    def caller(self) -> Caller | None:
        return self.stack[0] if self.stack else None


@dataclass
class QueryLog:
    """The statements one block of code sent, in order."""

    records: list[StatementRecord] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    elapsed_ms: float = 0.0
    round_trip_ms: float = 0.0
    task: asyncio.Task[Any] | None = None
    _open: dict[int, tuple[StatementRecord, float]] = field(default_factory=dict, repr=False)

    @property
    def statements(self) -> list[str]:
        """Each statement's SQL on one line, as the database received it."""
        return [r.sql for r in self.records]

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def database_ms(self) -> float:
        """Time spent inside the driver, summed over statements (simulated round trips excluded)."""
        return sum(r.duration_ms or 0.0 for r in self.records)

    @property
    def injected_ms(self) -> float:
        """Simulated round trip time actually slept, summed over statements."""
        return sum(r.injected_ms for r in self.records)

    def _mine(self) -> bool:
        if self.task is None:
            return True
        try:
            return asyncio.current_task() is self.task
        except RuntimeError:  # no running loop: a synchronous engine, never one of ours
            return False

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if not self._mine():
            return
        injected = 0.0
        if self.round_trip_ms > 0 and in_greenlet():
            # A simulated network round trip: the statement waits, but the event loop does not.
            # ``await_`` hands asyncio.sleep to the loop from inside SQLAlchemy's greenlet.
            slept_from = time.perf_counter()
            await_(asyncio.sleep(self.round_trip_ms / 1000))
            injected = (time.perf_counter() - slept_from) * 1000
        record = StatementRecord(" ".join(statement.split()), params, executemany, own_stack(), injected_ms=injected)
        self.records.append(record)
        self._open[id(context)] = (record, time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        opened = self._open.pop(id(context), None)
        if opened is not None:
            record, since = opened
            record.duration_ms = (time.perf_counter() - since) * 1000


#: The logs recording each engine right now. Each engine gets one pair of listeners, once:
#: SQLAlchemy iterates an engine's listeners while a statement runs, and a listener that waits
#: out a simulated round trip (``await_``) would see that list change under it whenever another
#: recorder came or went meanwhile ("deque mutated during iteration").
_recording: weakref.WeakKeyDictionary[Any, list[QueryLog]] = weakref.WeakKeyDictionary()


def _logs_of(target: Any) -> list[QueryLog]:
    logs = _recording.get(target)
    if logs is None:
        logs = _recording[target] = []

        def before(*args: Any) -> None:
            for log in list(logs):  # a copy: recorders may come and go while one of them sleeps
                log._before(*args)

        def after(*args: Any) -> None:
            for log in list(logs):
                log._after(*args)

        event.listen(target, "before_cursor_execute", before)
        event.listen(target, "after_cursor_execute", after)
    return logs


@asynccontextmanager
async def capture_queries(
    engine: AsyncEngine, *, round_trip_ms: float = 0.0, this_task_only: bool = False
) -> AsyncIterator[QueryLog]:
    """Record every statement ``engine`` executes inside the ``async with`` block.

    A learner's sandbox has an engine of its own (on PostgreSQL, a view of the shared one
    with its own event listeners), so other learners' queries never land in this log.
    ``this_task_only`` also leaves out statements other tasks send through the same engine.
    ``round_trip_ms`` adds that much simulated network delay before each recorded statement,
    with ``asyncio.sleep``: other coroutines keep running meanwhile.
    """
    log = QueryLog(round_trip_ms=round_trip_ms, task=asyncio.current_task() if this_task_only else None)
    logs = _logs_of(engine.sync_engine)
    logs.append(log)
    try:
        yield log
    finally:
        logs.remove(log)
        log.elapsed_ms = (time.perf_counter() - log.started) * 1000


_machinery_cache: dict[str, bool] = {}


def _is_machinery(filename: str) -> bool:
    known = _machinery_cache.get(filename)
    if known is None:
        known = filename.startswith(_MACHINERY) or any(name in filename for name in _MACHINERY_NAMES)
        known = known or (filename.startswith("<") and not filename.startswith("<ipython"))
        _machinery_cache[filename] = known
    return known


def _own_frames(frame: FrameType | None, found: list[Caller], depth: int) -> None:
    while frame is not None and len(found) < depth:
        filename = frame.f_code.co_filename
        if not _is_machinery(filename):
            found.append(Caller(relative_path(filename), frame.f_lineno or 0, frame.f_code.co_name))
        frame = frame.f_back


def own_stack(depth: int = 4) -> tuple[Caller, ...]:
    """Our frames that led here, innermost first: the first is the *caller* of a statement.

    Frames of SQLAlchemy, asyncio, greenlet, the drivers and this package are skipped. The
    search covers this greenlet's stack, then each parent greenlet's suspended stack: under
    asyncio that is where the awaiting coroutine (the real caller) waits.
    """
    found: list[Caller] = []
    _own_frames(sys._getframe(1), found, depth)
    current: greenlet.greenlet | None = greenlet.getcurrent()
    while len(found) < depth and current is not None and current.parent is not None:
        current = current.parent
        _own_frames(current.gr_frame, found, depth)
    return tuple(found)


@functools.lru_cache(maxsize=1024)
def relative_path(filename: str) -> str:
    """``source/labs/...`` for our own files; the path as given for anything else."""
    try:
        return Path(filename).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return filename
