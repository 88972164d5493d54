"""Admission by memory: a new sandbox or a heavy job gets in only while the process has room for it.

Every viewer of a hosted lab shares one Python process, and a host stops an app that passes its
memory limit for everyone (Streamlit Community Cloud's smallest box has 690 MB). Counting
sandboxes (``PLAB_MAX_SANDBOXES``) is not enough: what a learner costs depends on what they did.
So the process keeps a memory budget (``PLAB_MEMORY_MB``) and, before it opens a sandbox or
starts a heavy job, asks: would the resident memory (RSS) now, plus what this costs, pass it?
If so, the learner gets one sentence saying so, and nothing is started.

What a sandbox costs is measured, not guessed: the memory the process has grown by over the
latest ten sandboxes admitted, divided by ten (at first: since its first sandbox was asked for,
divided by the sandboxes it holds), never below a floor. The count starts at the first sandbox asked
for, not when the process started: by then visitors' pages have imported the libraries every page
needs once, which no learner should be charged for (charged to the first few, they made a sandbox
look 80 MB dear and turned a class arriving together away from an empty server). What a heavy
job costs is the largest growth among the latest runs of its kind (again with a floor), and a
job that runs holds that much in reserve until it ends, so two heavy jobs cannot both squeeze
into the last few megabytes.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from source.platform.errors import LabFull

MB = 1024 * 1024
#: The least a sandbox is taken to cost, whatever the running estimate says (MB).
SANDBOX_FLOOR_MB = 1.0
#: The least a heavy job is taken to cost, until a job of its kind has been measured above it (MB).
JOB_FLOOR_MB = 8.0
#: A sandbox opened less than this long ago has not grown to what a sandbox costs yet (its page is being
#: drawn, its first clicks run): its cost is held in reserve meanwhile, so a class arriving at once cannot
#: all squeeze into the last few megabytes (seconds).
SETTLING_S = 20.0
#: A sandbox's cost is the growth over at least this many sandboxes admitted since (see ``sandbox_cost_mb``).
SLOPE_SPAN = 10
#: A heavy job's cost is the largest growth among this many latest runs of its kind (the process's other
#: work grows it too while a job runs: an old outlier should not hold a kind back for ever).
RUNS_REMEMBERED = 5


def process_rss_mb() -> float:
    """This process's resident memory in MB (Linux: ``/proc/self/statm``; elsewhere its peak, which is larger)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / MB
    except (OSError, ValueError, IndexError):
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return peak_kib / 1024 if peak_kib < 1 << 40 else peak_kib / MB


class OutOfMemoryBudget(LabFull):
    """Opening a sandbox or starting a job now would pass the process's memory budget."""


@dataclass
class Ticket:
    """A heavy job's reservation: held while it runs, measured and given back when it ends."""

    kind: str
    reserved_mb: float
    rss_at_start_mb: float
    returned: bool = False


class MemoryAdmission:
    """The process's memory budget, and the two questions asked of it: a new sandbox? a heavy job?

    ``read_rss`` returns the process's RSS in MB (tests give their own); ``live`` how many
    sandboxes the process holds now. The budget's baseline is the RSS when it is made, and again
    whenever a sandbox is asked for while the process holds none.
    """

    def __init__(
        self,
        budget_mb: float,
        live: Callable[[], int],
        read_rss: Callable[[], float] = process_rss_mb,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget_mb = budget_mb
        self._clock = clock
        self._settling: deque[float] = deque()  # when each sandbox still settling was admitted
        #: (live sandboxes, RSS) at the latest admissions, newest last: where the cost's slope starts from.
        self._checkpoints: deque[tuple[int, float]] = deque(maxlen=4 * SLOPE_SPAN)
        self._live = live
        self._read_rss = read_rss
        self.baseline_mb = read_rss()
        self._lock = threading.Lock()
        self._job_growth: dict[str, deque[float]] = {}
        self._reserved: list[Ticket] = []
        #: How many sandboxes and heavy jobs were refused for memory (for the bench and the log).
        self.refused_sandboxes = 0
        self.refused_jobs = 0

    # -- what things cost ----------------------------------------------------------------
    def sandbox_cost_mb(self, rss_mb: float | None = None) -> float:
        """What one more sandbox is expected to cost, never less than the floor.

        Once :data:`SLOPE_SPAN` sandboxes have been admitted since an earlier admission, the growth
        since then divided by the sandboxes added since then (so the libraries the first learners'
        pages imported once are not charged to every later one); before that, the growth since the
        baseline divided by the live sandboxes.
        """
        rss_mb = self._read_rss() if rss_mb is None else rss_mb
        live = self._live()
        with self._lock:
            earlier = next((c for c in reversed(self._checkpoints) if live - c[0] >= SLOPE_SPAN), None)
        if earlier is not None:
            return max(SANDBOX_FLOOR_MB, (rss_mb - earlier[1]) / (live - earlier[0]))
        average = (rss_mb - self.baseline_mb) / live if live else 0.0
        return max(SANDBOX_FLOOR_MB, average)

    def job_cost_mb(self, kind: str) -> float:
        """What a heavy job of ``kind`` is expected to cost: the most one has grown the process by, or the floor."""
        with self._lock:
            measured: deque[float] = self._job_growth.get(kind, deque())
            return max(JOB_FLOOR_MB, *measured) if measured else JOB_FLOOR_MB

    @property
    def reserved_mb(self) -> float:
        """Memory held back for the heavy jobs running now."""
        with self._lock:
            return sum(t.reserved_mb for t in self._reserved)

    # -- the two questions -----------------------------------------------------------------
    def settling(self) -> int:
        """How many sandboxes were admitted in the last :data:`SETTLING_S` seconds."""
        now = self._clock()
        with self._lock:
            while self._settling and now - self._settling[0] > SETTLING_S:
                self._settling.popleft()
            return len(self._settling)

    def admit_sandbox(self, *, resuming: bool = False) -> None:
        """Raise :class:`OutOfMemoryBudget` if one more sandbox would pass the budget.

        The sandboxes still settling hold their cost in reserve too, as do the heavy jobs running.
        A sandbox ``resuming`` here from the directory (kept after a restart, or by another process)
        costs this process the same as a new one; the sentence then says the learner's work is kept.
        """
        rss = self._read_rss()
        if self._live() == 0:
            self._rebaseline(rss)
        cost = self.sandbox_cost_mb(rss)
        settling = self.settling()
        with self._lock:
            if rss + sum(t.reserved_mb for t in self._reserved) + cost * (1 + settling) <= self.budget_mb:
                self._settling.append(self._clock())
                self._checkpoints.append((self._live(), rss))
                return
            self.refused_sandboxes += 1
            arriving = f" ({cost * (1 + settling):.0f} MB with the {settling} who just arrived)" if settling else ""
            what = (
                "so your sandbox cannot be opened here just now (nothing in it is lost)"
                if resuming
                else "so no new sandbox can open"
            )
            raise OutOfMemoryBudget(
                f"The lab is full for now: its server is using {rss:.0f} MB of its {self.budget_mb:.0f} MB memory "
                f"budget, and a new learner's sandbox needs about {cost:.1f} MB more{arriving}, {what}; "
                "try again in a few minutes."
            )

    def _rebaseline(self, rss_mb: float) -> None:
        """No sandbox is open: what the process holds now is its base (imports, visitors, freed memory kept)."""
        with self._lock:
            self.baseline_mb = rss_mb
            self._checkpoints.clear()

    def admit_job(self, kind: str, what: str = "This run") -> Ticket:
        """A reservation for a heavy job of ``kind``, or :class:`OutOfMemoryBudget` with the sentence to show."""
        rss = self._read_rss()
        cost = self.job_cost_mb(kind)
        with self._lock:
            reserved = sum(t.reserved_mb for t in self._reserved)
            if rss + reserved + cost > self.budget_mb:
                self.refused_jobs += 1
                raise OutOfMemoryBudget(
                    f"{what} was not started: the lab's server is using {rss:.0f} MB of its {self.budget_mb:.0f} MB "
                    f"memory budget{f' ({reserved:.0f} MB held for runs under way)' if reserved else ''}, and this "
                    f"needs about {cost:.0f} MB; try again in a few minutes, or ask for less at once."
                )
            ticket = Ticket(kind, cost, rss)
            self._reserved.append(ticket)
        return ticket

    def give_back(self, ticket: Ticket) -> None:
        """The job ended (however it ended): measure what it grew the process by, and free its reservation."""
        grown = self._read_rss() - ticket.rss_at_start_mb
        with self._lock:
            if ticket.returned:
                return
            ticket.returned = True
            self._reserved.remove(ticket)
            self._job_growth.setdefault(ticket.kind, deque(maxlen=RUNS_REMEMBERED)).append(grown)

    @contextlib.contextmanager
    def heavy(self, kind: str, what: str = "This run") -> Iterator[Ticket]:
        """``with admission.heavy("lab5.bulk"):`` around heavy work that runs in the caller (not as a job)."""
        ticket = self.admit_job(kind, what)
        try:
            yield ticket
        finally:
            self.give_back(ticket)
