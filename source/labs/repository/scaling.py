"""The scaling experiment: every strategy at N = 10 … 1,000 users, without and with a round trip.

For each N the strategies load the first N users (by email) and their scores. The lazy ones
send N + 1 statements, so their time grows with N × (round trip + query); the eager ones
send a constant handful, so theirs grows only with the rows. The points feed the lab's chart.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from source.domain.errors import InvalidInput
from source.domain.repositories import UserRepository
from source.labs.repository.measure import LoadSettings, run_strategy
from source.labs.repository.strategies import STRATEGIES, Loaded
from source.platform.jobs import Progress
from source.platform.session import get_session

SIZES = (10, 50, 100, 250, 500, 1000)
#: Runs per point without a round trip (the median is plotted): a shared host is noisy at this scale.
#: With a round trip the sleeping dominates, and one run per point keeps the experiment short.
REPEATS_WITHOUT_ROUND_TRIP = 3


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


async def _point(
    key: str, users: int, settings: LoadSettings, repeats: int, progress: Progress
) -> tuple[ScalingPoint, Loaded]:
    """One strategy at one size: statements, and the median time of ``repeats`` runs."""
    runs = []
    for _ in range(repeats):
        runs.append(await run_strategy(key, users, settings))
        progress.done += 1
    wall = statistics.median(r.wall_ms for r in runs)
    injected = statistics.median(r.injected_ms for r in runs)
    point = ScalingPoint(runs[0].label, users, settings.round_trip_ms, runs[0].queries, wall, injected)
    return point, runs[0].loaded


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
    repeats = {delay: REPEATS_WITHOUT_ROUND_TRIP if delay == 0 else 1 for delay in round_trips}
    progress.begin("Scaling", len(sizes) * len(STRATEGIES) * sum(repeats.values()), "runs")
    points, identical = [], True
    for delay in round_trips:
        settings = LoadSettings(round_trip_ms=delay)
        for n in sizes:
            loads = []
            for info in STRATEGIES.values():
                progress.phase = f"N = {n:,}, {info.label}, round trip {delay:g} ms"
                point, load = await _point(info.key, n, settings, repeats[delay], progress)
                points.append(point)
                loads.append(load)
            identical = identical and all(load == loads[0] for load in loads)
    progress.phase = "Done"
    return ScalingResult(points, sizes, round_trips, identical)
