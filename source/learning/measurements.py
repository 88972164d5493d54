"""Measurements every lab records, kept per sandbox, for the instructor's class view and CSV.

A lab that measured something calls, inside its coroutine::

    from source.learning import measurements
    await measurements.record_run(current_sandbox(), "lab3", {"queries": (201, "queries"), "wall_ms": (412.0, "ms")})

(or :func:`record` for a single value). Values of one call share a ``run`` id, so a page
or a knowledge check can read "your last run" back with :func:`latest_run`. A learner who joined
a class also feeds the run to their class (:func:`source.learning.classroom.feed.measured`). Recording never
fails the lab's own work: if Redis does not answer (within the click's Redis budget), the
measurement is dropped and said so in the log. At most :data:`MAX_KEPT` measurements are kept
per sandbox (oldest dropped).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from source.learning import store
from source.learning.classroom import feed

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

log = logging.getLogger(__name__)

KEY = "measurements"
MAX_KEPT = 2000
CSV_COLUMNS = ["at", "lab", "run", "name", "value", "unit"]


class Measurement(BaseModel):
    at: datetime
    lab: str
    run: str
    name: str
    value: float
    unit: str


async def record_run(sandbox: Sandbox, lab: str, values: dict[str, tuple[float, str]]) -> str | None:
    """Record several values of one run (``name -> (value, unit)``); returns the run id."""
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    rows = [
        Measurement(at=now, lab=lab, run=run, name=name, value=float(value), unit=unit).model_dump_json()
        for name, (value, unit) in values.items()
        if math.isfinite(float(value))
    ]
    if not rows:
        return None

    async def append(redis: Any) -> None:
        async with redis.pipeline(transaction=False) as pipe:  # one round trip
            pipe.rpush(KEY, *rows)
            pipe.ltrim(KEY, -MAX_KEPT, -1)
            await pipe.execute()

    try:
        await store.call(sandbox, append)
    except Exception as exc:  # noqa: BLE001 - a lost measurement must never fail the lab's own work
        log.warning("measurement of %s not recorded: %s", lab, exc)
        return None
    await feed.measured(sandbox, lab, run, values)  # the learner's class, if any (never raises)
    return run


async def record(sandbox: Sandbox, lab: str, name: str, value: float, unit: str) -> str | None:
    """Record one value; see :func:`record_run`."""
    return await record_run(sandbox, lab, {name: (value, unit)})


async def load(sandbox: Sandbox, lab: str | None = None) -> list[Measurement]:
    """Every kept measurement, oldest first (only ``lab``'s if given)."""
    raw = await store.call(sandbox, lambda redis: redis.lrange(KEY, 0, -1))
    found = [Measurement.model_validate(json.loads(r)) for r in raw]
    return [m for m in found if lab is None or m.lab == lab]


def latest_run(found: list[Measurement], lab: str, needs: tuple[str, ...] = ()) -> dict[str, Measurement] | None:
    """The newest run of ``lab`` that has every name in ``needs``, as ``name -> Measurement``."""
    runs: dict[str, dict[str, Measurement]] = {}
    for m in found:
        if m.lab == lab:
            runs.setdefault(m.run, {})[m.name] = m
    for values in reversed(runs.values()):  # dicts keep insertion order: newest last
        if all(n in values for n in needs):
            return values
    return None


def to_csv(found: list[Measurement]) -> str:
    """All measurements as CSV, one row per value, for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for m in found:
        writer.writerow([m.at.isoformat(), m.lab, m.run, m.name, f"{m.value:g}", m.unit])
    return out.getvalue()
