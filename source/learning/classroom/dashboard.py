"""What the instructor's dashboard reads: a snapshot of one class, read again only when the class changed.

A refresh first reads the class's version (one ``GET``): every write by a learner moves it on. When it
has not moved since this process last read the class, the snapshot kept in memory is shown again, so
a quiet class costs one small call per refresh whatever its size. When it has, two pipelined round
trips read the running totals the learners' clicks keep up to date (each learner's small hash of
progress, the per-question counters) and the one lab being plotted: its newest runs (a bounded list)
and each learner's newest run. Nothing is recomputed from every raw value.
"""

from __future__ import annotations

import functools
import json
import statistics
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from source.learning.classroom import rules
from source.learning.classroom.classes import INSTRUCTOR_TIMEOUT_S, ClassInfo
from source.learning.classroom.keys import ClassKeys
from source.learning.classroom.store import ClassStore

#: Snapshots kept in this process (a class and a plotted lab each), least recently used dropped first.
KEPT_SNAPSHOTS = 64


@dataclass(frozen=True)
class Run:
    """One run of a lab, as the class keeps it: whose (learner number), when, and its values."""

    n: int
    run: str
    at: float
    values: dict[str, tuple[float, str]]

    @classmethod
    def parse(cls, raw: str) -> Run | None:
        try:
            data = json.loads(raw)
            values = {str(k): (float(v[0]), str(v[1])) for k, v in data["v"].items()}
            return cls(int(data["n"]), str(data["run"]), float(data["t"]), values)
        except (ValueError, KeyError, TypeError, IndexError):
            return None

    def value(self, name: str) -> float | None:
        found = self.values.get(name)
        return found[0] if found is not None else None


@dataclass(frozen=True)
class Learner:
    """One member: their number, display name and the running totals their clicks keep."""

    n: int
    name: str
    joined: float
    page: str = ""
    active: float = 0.0  # last click the class heard of
    moved: float | None = None  # last progress: a check passed, a measurement, the exercise
    visited: frozenset[str] = frozenset()
    passed: dict[str, int] = field(default_factory=dict)  # lab -> checks passed
    exercise: bool = False

    def label(self, anonymous: bool) -> str:
        """What the class sees of this learner: their display name, or "Learner n" on a projector."""
        return f"Learner {self.n}" if anonymous else self.name

    def stalled(self, now: float, after_s: float = rules.STALLED_S) -> bool:
        """No progress for ``after_s`` (counted from joining when there has been none at all)."""
        return now - (self.moved if self.moved is not None else self.joined) > after_s

    @classmethod
    def parse(cls, record: str, totals: dict[str, str]) -> Learner:
        n, joined, name = record.split("|", 2)
        passed = {f[2:]: int(v) for f, v in totals.items() if f.startswith("p:")}
        return cls(
            n=int(n),
            name=name,
            joined=float(joined),
            page=totals.get("page", ""),
            active=float(totals.get("at", joined)),
            moved=float(totals["moved"]) if "moved" in totals else None,
            visited=frozenset(f[2:] for f in totals if f.startswith("v:")),
            passed=passed,
            exercise="create" in totals,
        )


@dataclass(frozen=True)
class QuestionTotals:
    """One question across the class: learners who answered, got it right, were shown the answer."""

    answered: int = 0
    right: int = 0
    shown: int = 0
    top_wrong: str | None = None  # the most common wrong answer's label
    top_wrong_count: int = 0


@dataclass(frozen=True)
class Snapshot:
    """One class as read at ``read_at`` (version ``version``), with the runs of ``lab``."""

    info: ClassInfo
    version: int
    read_at: float
    learners: list[Learner]
    questions: dict[str, QuestionTotals]
    lab: str | None
    runs: list[Run]  # the plotted lab's runs, oldest first, from current members only

    @functools.cached_property
    def _by_number(self) -> dict[int, Learner]:
        return {learner.n: learner for learner in self.learners}

    def learner(self, n: int) -> Learner | None:
        return self._by_number.get(n)

    def latest(self) -> dict[int, Run]:
        """Each learner's newest run of the plotted lab."""
        newest: dict[int, Run] = {}
        for run in self.runs:
            newest[run.n] = run
        return newest


def question_totals(fields: dict[str, str]) -> dict[str, QuestionTotals]:
    """The ``q`` hash (``<question>|answered`` …) as totals per question."""
    by: dict[str, dict[str, str]] = {}
    for name, value in fields.items():
        question, _, what = name.rpartition("|")
        by.setdefault(question, {})[what] = value
    return {
        q: QuestionTotals(
            answered=int(v.get("answered", 0)),
            right=int(v.get("right", 0)),
            shown=int(v.get("shown", 0)),
            top_wrong=v.get("top"),
            top_wrong_count=int(v.get("topn", 0)),
        )
        for q, v in by.items()
    }


_kept: OrderedDict[tuple[str, str | None], Snapshot] = OrderedDict()
_kept_lock = threading.Lock()


def forget_kept() -> None:
    """Drop every snapshot this process keeps (tests start from nothing kept)."""
    with _kept_lock:
        _kept.clear()


async def snapshot(store: ClassStore, code: str, lab: str | None, *, now: float | None = None) -> Snapshot | None:
    """The class ``code`` with the runs of ``lab``; None when the class is not running (ended, expired)."""
    now = time.time() if now is None else now
    k = ClassKeys(code)
    version = await store.call(lambda client: client.get(k.version), timeout_s=INSTRUCTOR_TIMEOUT_S)
    with _kept_lock:
        kept = _kept.get((code, lab))
    if kept is not None and version is not None and int(version) == kept.version and kept.info.expires > now:
        return kept

    async def totals(client: Any) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.get(k.version)
            pipe.hgetall(k.meta)
            pipe.hgetall(k.members)
            pipe.hgetall(k.questions)
            return list(await pipe.execute())

    version, meta, members, questions = await store.call(totals, timeout_s=INSTRUCTOR_TIMEOUT_S)
    if not meta or float(meta["expires"]) <= now:
        return None
    seats = sorted(members.values(), key=lambda record: int(record.split("|", 1)[0]))
    numbers = [int(record.split("|", 1)[0]) for record in seats]

    async def learners_and_runs(client: Any) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            for n in numbers:
                pipe.hgetall(k.learner(n))
            if lab is not None:
                pipe.lrange(k.runs(lab), 0, -1)
                pipe.hgetall(k.latest(lab))
            return list(await pipe.execute())

    answers = await store.call(learners_and_runs, timeout_s=INSTRUCTOR_TIMEOUT_S)
    learners = [Learner.parse(record, t) for record, t in zip(seats, answers[: len(numbers)], strict=True)]
    runs: list[Run] = []
    if lab is not None:
        recent, newest = answers[len(numbers)], answers[len(numbers) + 1]
        runs = distinct_runs(list(recent)[::-1] + list(newest.values()), set(numbers))
    shot = Snapshot(
        info=ClassInfo.from_meta(meta, len(members)),
        version=int(version or 0),
        read_at=now,
        learners=learners,
        questions=question_totals(questions),
        lab=lab,
        runs=runs,
    )
    with _kept_lock:
        _kept[(code, lab)] = shot
        _kept.move_to_end((code, lab))
        while len(_kept) > KEPT_SNAPSHOTS:
            _kept.popitem(last=False)
    return shot


def distinct_runs(raw: list[str], members: set[int]) -> list[Run]:
    """Distinct runs of current members, oldest first (``raw`` is oldest first: runs of one instant keep its order)."""
    seen: dict[tuple[int, str], Run] = {}
    for text in raw:
        run = Run.parse(text)
        if run is not None and run.n in members:
            seen.setdefault((run.n, run.run), run)
    return sorted(seen.values(), key=lambda r: r.at)


@dataclass(frozen=True)
class Outlier:
    n: int
    value: float
    median: float


def outliers(values: dict[int, float], *, most: int = 3) -> list[Outlier]:
    """Learners whose value is far from the class's: more than 3 scaled median absolute deviations away.

    Robust to the outliers themselves (a mean and a standard deviation are pulled toward them); at least
    four learners are needed, and at most ``most`` are named, the furthest first.
    """
    if len(values) < 4:
        return []
    median = statistics.median(values.values())
    spread = 1.4826 * statistics.median(abs(v - median) for v in values.values())
    if spread == 0:
        spread = 0.1 * abs(median) if median else 0.0
    if spread == 0:
        return []
    far = [Outlier(n, v, median) for n, v in values.items() if abs(v - median) > 3 * spread]
    return sorted(far, key=lambda o: abs(o.value - o.median), reverse=True)[:most]
