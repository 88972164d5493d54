"""The scaling experiment: every strategy at N = 10 … 1,000 users, without and with a round trip.

For each N the strategies load the first N users (by email) and their scores. The lazy ones
send N + 1 statements, so their time grows with N × (round trip + query); the eager ones
send a constant handful, so theirs grows only with the rows. The points feed the lab's chart.
"""

from __future__ import annotations

from dataclasses import dataclass

from source.domain.repositories import UserRepository
from source.labs.repository.jobs import Progress
from source.labs.repository.measure import LoadSettings, run_strategy
from source.labs.repository.strategies import STRATEGIES
from source.platform.errors import InvalidInput
from source.platform.session import get_session

SIZES = (10, 50, 100, 250, 500, 1000)


@dataclass(frozen=True)
class ScalingPoint:
    strategy: str
    users: int
    round_trip_ms: float
    queries: int
    wall_ms: float
    injected_ms: float


@dataclass
class ScalingResult:
    points: list[ScalingPoint]
    sizes: list[int]
    round_trips: list[float]
    #: Checked at every N: all strategies loaded the same users and scores.
    identical: bool


def sizes_for(available: int) -> list[int]:
    """The sizes the sandbox has users for: SIZES up to ``available``."""
    return [n for n in SIZES if n <= available]


async def run_scaling(round_trip_ms: float, progress: Progress | None = None) -> ScalingResult:
    """Every strategy at every size, at 0 ms and (if asked for) at ``round_trip_ms``."""
    progress = progress or Progress()
    LoadSettings(round_trip_ms=round_trip_ms)  # refuses a round trip out of range
    async with get_session() as session:
        available = await UserRepository(session).count()
    sizes = sizes_for(available)
    if not sizes:
        raise InvalidInput(
            f"The scaling experiment needs at least {SIZES[0]} users and your sandbox has {available}. "
            "Seed some first (section 2)."
        )
    round_trips = [0.0, round_trip_ms] if round_trip_ms > 0 else [0.0]
    progress.total, progress.done = len(sizes) * len(STRATEGIES) * len(round_trips), 0
    points, identical = [], True
    for delay in round_trips:
        settings = LoadSettings(round_trip_ms=delay)
        for n in sizes:
            runs = []
            for info in STRATEGIES.values():
                progress.phase = f"N = {n:,}, {info.label}, round trip {delay:g} ms"
                run = await run_strategy(info.key, n, settings)
                runs.append(run)
                points.append(ScalingPoint(info.label, n, delay, run.queries, run.wall_ms, run.injected_ms))
                progress.done += 1
            identical = identical and all(r.loaded == runs[0].loaded for r in runs)
    progress.phase = "Done"
    return ScalingResult(points, sizes, round_trips, identical)
