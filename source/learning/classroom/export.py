"""The class as CSV, for a spreadsheet: one row per learner per measurement, and a progress sheet.

Read when the instructor asks for the file (never on a dashboard refresh): every current member's
kept runs of every lab (the newest :data:`~source.learning.classroom.rules.MAX_RUNS_PER_LAB` per lab,
and each learner's newest), and each learner's progress.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from source.learning.classroom.classes import INSTRUCTOR_TIMEOUT_S
from source.learning.classroom.dashboard import Learner, Run, distinct_runs
from source.learning.classroom.keys import ClassKeys
from source.learning.classroom.store import ClassStore

MEASUREMENT_COLUMNS = ["learner", "display_name", "lab", "run", "at", "name", "value", "unit"]


@dataclass(frozen=True)
class LabColumn:
    """A lab in the progress sheet: its id, its title and how many knowledge-check questions it has."""

    id: str
    title: str
    checks: int


@dataclass(frozen=True)
class ClassData:
    learners: list[Learner]
    runs: dict[str, list[Run]]  # lab -> runs, oldest first


async def read_all(store: ClassStore, code: str) -> ClassData:
    """Every current member and every kept run of every lab (three round trips, bounded by the caps)."""
    k = ClassKeys(code)

    async def first(client: Any) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hgetall(k.members)
            pipe.smembers(k.labs)
            return list(await pipe.execute())

    members, labs = await store.call(first, timeout_s=INSTRUCTOR_TIMEOUT_S)
    seats = sorted(members.values(), key=lambda record: int(record.split("|", 1)[0]))
    numbers = [int(record.split("|", 1)[0]) for record in seats]
    labs = sorted(labs)

    async def rest(client: Any) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            for n in numbers:
                pipe.hgetall(k.learner(n))
            for lab in labs:
                pipe.lrange(k.runs(lab), 0, -1)
                pipe.hgetall(k.latest(lab))
            return list(await pipe.execute())

    answers = await store.call(rest, timeout_s=4 * INSTRUCTOR_TIMEOUT_S)
    learners = [Learner.parse(record, t) for record, t in zip(seats, answers[: len(numbers)], strict=True)]
    kept = answers[len(numbers) :]
    runs = {
        lab: distinct_runs(list(kept[2 * i])[::-1] + list(kept[2 * i + 1].values()), set(numbers))
        for i, lab in enumerate(labs)
    }
    return ClassData(learners, runs)


def _cell(text: str) -> str:
    """Text a learner typed, safe in a spreadsheet: a leading ``=``, ``+``, ``-`` or ``@`` would start a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def measurements_csv(data: ClassData, *, anonymous: bool = False) -> str:
    """One row per learner per measured value: learner, display name, lab, run, time (UTC), name, value, unit."""
    names = {learner.n: _cell(learner.label(anonymous)) for learner in data.learners}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(MEASUREMENT_COLUMNS)
    for lab, runs in data.runs.items():
        for run in runs:
            for name, (value, unit) in run.values.items():
                writer.writerow([run.n, names.get(run.n, ""), lab, run.run, _when(run.at), name, f"{value:g}", unit])
    return out.getvalue()


def progress_csv(data: ClassData, labs: Sequence[LabColumn], *, now: float, anonymous: bool = False) -> str:
    """One row per learner: joined, last active, page, then per lab visited and checks passed, and the exercise."""
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["learner", "display_name", "joined", "last_active", "current_page", "no_progress_for_a_while"]
    for lab in labs:
        header += [f"{lab.id}_visited", f"{lab.id}_checks_passed", f"{lab.id}_checks"]
    writer.writerow([*header, "create_exercise_done"])
    for learner in data.learners:
        row: list[object] = [
            learner.n,
            _cell(learner.label(anonymous)),
            _when(learner.joined),
            _when(learner.active),
            _cell(learner.page),
            "yes" if learner.stalled(now) else "no",
        ]
        for lab in labs:
            row += ["yes" if lab.id in learner.visited else "no", learner.passed.get(lab.id, 0), lab.checks]
        writer.writerow([*row, "yes" if learner.exercise else "no"])
    return out.getvalue()
