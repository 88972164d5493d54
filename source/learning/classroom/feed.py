"""What a member's clicks add to their class: pages visited, answers graded, measurements recorded.

The labs do not know about classes. Three hooks feed a class, each called where the learner's own
work is already saved: :func:`visited` (every page the learner opens), :func:`answered` (a knowledge
check's *Check my answer* and *Show me*) and :func:`measured` (every run
:func:`source.learning.measurements.record_run` keeps). Each is one atomic script on the shared
Redis, within the click's Redis budget, that adds to the class's running totals (counters in hashes
and sorted sets, bounded lists): the dashboard reads the totals, never every raw value.

For a learner who joined no class each hook returns before any call (see :mod:`membership`). A hook
never fails the learner's own work: if the class cannot be told, the log says so and the click goes on.
An instructor's demo runs :func:`muted`, so a demo never counts toward anyone's class progress.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

from source.learning.classroom import membership, rules, scripts
from source.learning.classroom.answers import Kind
from source.learning.classroom.keys import ClassKeys
from source.learning.classroom.membership import Seat
from source.learning.classroom.store import ClassStore, Script

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The Create exercise's lab, and the measurement that says a design passed (no check found missing).
EXERCISE_LAB = "create"
EXERCISE_MISSING = "missing"

_MUTED: ContextVar[bool] = ContextVar("plab_class_feed_muted", default=False)


async def muted(work: Awaitable[T]) -> T:
    """Await ``work`` without feeding any class (an instructor's demo of an answer)."""
    token = _MUTED.set(True)
    try:
        return await work
    finally:
        _MUTED.reset(token)


async def _seat(sandbox: Sandbox) -> Seat | None:
    if _MUTED.get() or not membership.may_be_seated(sandbox):
        return None
    return await membership.seat_of(sandbox)


async def _send(sandbox: Sandbox, seat: Seat, script: Script, extra_keys: list[str], args: list[object]) -> None:
    k = ClassKeys(seat.code)
    keys_ = [k.meta, k.members, k.version, k.learner(seat.n), k.marks(seat.n), *extra_keys]
    kept = await ClassStore.of(sandbox).script(script, keys_, [sandbox.id, seat.n, f"{time.time():.3f}", *args])
    if not kept:  # the class ended or expired, or this seat was given up elsewhere
        membership.forget(sandbox)


async def visited(sandbox: Sandbox, page: str, lab: str | None) -> None:
    """The learner opened ``page`` (``lab``: the lab it belongs to, if any)."""
    try:
        if (seat := await _seat(sandbox)) is not None:
            await _send(sandbox, seat, scripts.VISIT, [], [page[:80], lab or ""])
    except Exception as exc:  # noqa: BLE001 - the class is a nicety; the learner's page goes on
        log.warning("class not told of a visit: %s", exc)


async def answered(sandbox: Sandbox, question_id: str, lab: str, kind: Kind, label: str = "") -> None:
    """One graded answer (``kind``), with the wrong answer's ``label`` (see :mod:`answers`)."""
    try:
        if (seat := await _seat(sandbox)) is not None:
            k = ClassKeys(seat.code)
            args: list[object] = [question_id, lab, kind, label[:60]]
            args += [rules.MAX_MARKS_PER_LEARNER, rules.MAX_WRONG_ANSWERS]
            await _send(sandbox, seat, scripts.ANSWER, [k.questions, k.wrong(question_id)], args)
    except Exception as exc:  # noqa: BLE001
        log.warning("class not told of an answer: %s", exc)


def run_record(n: int, run: str, at: float, values: dict[str, tuple[float, str]]) -> str | None:
    """One run as the class keeps it (JSON), bounded; None when nothing in it can be kept."""
    kept = {
        name[: rules.MAX_VALUE_NAME]: [round(float(value), 6), unit[:20]]
        for name, (value, unit) in list(values.items())[: rules.MAX_RUN_VALUES]
        if math.isfinite(float(value))
    }
    record = json.dumps({"n": n, "run": run, "t": round(at, 3), "v": kept}, separators=(",", ":"))
    return record if kept and len(record) <= rules.MAX_RUN_BYTES else None


async def measured(sandbox: Sandbox, lab: str, run: str, values: dict[str, tuple[float, str]]) -> None:
    """A run the learner's lab just recorded: into the class's runs of ``lab`` and the learner's newest."""
    try:
        if (seat := await _seat(sandbox)) is None:
            return
        record = run_record(seat.n, run, time.time(), values)
        if record is None:
            return
        done = lab == EXERCISE_LAB and values.get(EXERCISE_MISSING, (1.0, ""))[0] == 0
        k = ClassKeys(seat.code)
        extra = [k.runs(lab), k.latest(lab), k.labs]
        await _send(sandbox, seat, scripts.MEASURE, extra, [lab, record, rules.MAX_RUNS_PER_LAB, int(done)])
    except Exception as exc:  # noqa: BLE001
        log.warning("class not told of a measurement of %s: %s", lab, exc)
