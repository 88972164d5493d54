"""Benchmark: Lab 3's loading strategies on 1,000 users × 5 scores, on both backends in one run.

Run from the repository root with ``python -m bench.n_plus_one``. SQLite always runs;
PostgreSQL runs when ``TEST_DATABASE_URL`` (default: the local test database) answers.
Reports, per backend: time and statements per strategy; the repository's eager load against a
bare SQLAlchemy ``selectinload`` on the same data (target ≤ 1.15×); the N+1/eager time ratio at
0 ms and 1 ms of simulated round trip; seeding rows/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bench._common import PG_URL, REDIS_URL, backend_kinds, print_table
from source import Backends, Sandbox, Settings, User, UserRepository, get_session
from source.labs.repository import seeding
from source.labs.repository.measure import LoadSettings, run_strategy
from source.labs.repository.strategies import STRATEGIES

USERS, SCORES = 1000, 5
TARGET_REPOSITORY_RATIO = 1.15
#: Runs of each side in the repository-versus-bare comparison.
PAIRS = 20


@dataclass
class Figures:
    backend: str
    strategies: dict[str, tuple[int, float]]  # label -> (statements, median ms) at 0 ms
    repository_ms: float
    bare_ms: float
    repository_best_ms: float
    bare_best_ms: float
    repository_cpu_ms: float
    bare_cpu_ms: float
    ratio_0ms: float
    ratio_1ms: float
    lazy_1ms: float
    eager_1ms: float
    lazy_injected_1ms: float
    seed_rows_per_s: float
    seed_ms: float


def timed(sandbox: Sandbox, make: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Wall time and this process's CPU time (all threads) of one run, in ms.

    On a busy shared host the wall time also holds the time spent waiting for a core; the CPU
    time does not, so for two loads that send the very same statements it compares better.
    """

    async def once() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        await make()
        return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000

    return sandbox.run(once())


async def repository_eager() -> int:
    async with get_session() as session:
        return len(await UserRepository(session).get_all_users_with_scores_eager())


async def bare_selectinload() -> int:
    async with get_session() as session:
        result = await session.execute(select(User).options(selectinload(User.scores)).order_by(User.email))
        return len(result.scalars().all())


def seeding_seconds(sandbox: Sandbox) -> float:
    seconds = []
    for _ in range(3):
        sandbox.run(seeding.remove_seeded())
        seconds.append(sandbox.run(seeding.seed(seeding.SeedRequest(users=USERS, scores_per_user=SCORES))).seconds)
    return statistics.median(seconds)


def strategies(sandbox: Sandbox, repeats: int) -> dict[str, tuple[int, float]]:
    """Statements and median wall time per strategy, interleaved so drift hits them all alike."""
    walls: dict[str, list[float]] = {info.label: [] for info in STRATEGIES.values()}
    statements: dict[str, int] = {}
    for _ in range(repeats):
        for info in STRATEGIES.values():
            run = sandbox.run(run_strategy(info.key))
            walls[info.label].append(run.wall_ms)
            statements[info.label] = run.queries
    return {label: (statements[label], statistics.median(ms)) for label, ms in walls.items()}


def lazy_versus_eager(sandbox: Sandbox, round_trip_ms: float) -> tuple[float, float, float]:
    """Median wall time of the lazy and the selectinload strategy, and the lazy one's slept time."""
    settings = LoadSettings(round_trip_ms=round_trip_ms)
    lazy, eager = [], []
    for _ in range(3):
        lazy.append(sandbox.run(run_strategy("lazy", settings=settings)))
        eager.append(sandbox.run(run_strategy("selectin", settings=settings)))
    return (
        statistics.median(r.wall_ms for r in lazy),
        statistics.median(r.wall_ms for r in eager),
        statistics.median(r.injected_ms for r in lazy),
    )


def measure(kind: str, repeats: int) -> Figures:
    settings = Settings() if kind == "embedded" else Settings(database_url=PG_URL, redis_url=REDIS_URL)
    backends = Backends.build(settings)
    sandbox = backends.open_sandbox()
    try:
        seed_s = seeding_seconds(sandbox)
        per_strategy = strategies(sandbox, repeats)
        repo: list[tuple[float, float]] = []
        bare: list[tuple[float, float]] = []
        for i in range(PAIRS):  # ABBA order, so neither side always runs first
            order = [(repo, repository_eager), (bare, bare_selectinload)]
            for samples, load in order if i % 2 == 0 else order[::-1]:
                samples.append(timed(sandbox, load))
        lazy_0, eager_0, _ = lazy_versus_eager(sandbox, 0.0)
        lazy_1, eager_1, slept_1 = lazy_versus_eager(sandbox, 1.0)
        return Figures(
            backend=backends.status.database,
            strategies=per_strategy,
            repository_ms=statistics.median(w for w, _ in repo),
            bare_ms=statistics.median(w for w, _ in bare),
            repository_best_ms=min(w for w, _ in repo),
            bare_best_ms=min(w for w, _ in bare),
            repository_cpu_ms=statistics.median(c for _, c in repo),
            bare_cpu_ms=statistics.median(c for _, c in bare),
            ratio_0ms=lazy_0 / eager_0,
            ratio_1ms=lazy_1 / eager_1,
            lazy_1ms=lazy_1,
            eager_1ms=eager_1,
            lazy_injected_1ms=slept_1,
            seed_rows_per_s=USERS * (1 + SCORES) / seed_s,
            seed_ms=seed_s * 1000,
        )
    finally:
        backends.release(sandbox)
        backends.close()
        backends.runtime.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement (the median is shown)")
    args = parser.parse_args()
    figures = [measure(kind, args.repeats) for kind in backend_kinds()]

    print(f"\n{USERS:,} users × {SCORES} scores, median of {args.repeats} runs, query recorder on\n")
    labels = list(figures[0].strategies)
    print_table(
        ["strategy", *(f"{f.backend} statements" for f in figures), *(f"{f.backend} ms" for f in figures)],
        [
            [label, *(f.strategies[label][0] for f in figures), *(f"{f.strategies[label][1]:.0f}" for f in figures)]
            for label in labels
        ],
    )
    print()
    rows = []
    for f in figures:
        ratio = f.repository_ms / f.bare_ms
        best = f.repository_best_ms / f.bare_best_ms
        cpu = f.repository_cpu_ms / f.bare_cpu_ms
        rows.append(
            [
                f.backend,
                f"{f.repository_ms:.0f} / {f.repository_best_ms:.0f} / {f.repository_cpu_ms:.0f}",
                f"{f.bare_ms:.0f} / {f.bare_best_ms:.0f} / {f.bare_cpu_ms:.0f}",
                f"{ratio:.2f} / {best:.2f} / {cpu:.2f}",
                f"{f.ratio_0ms:.1f}",
                f"{f.ratio_1ms:.1f} ({f.lazy_1ms:.0f} / {f.eager_1ms:.0f} ms)",
                f"{f.lazy_injected_1ms:.0f}",
                f"{f.seed_ms:.0f} ms, {f.seed_rows_per_s:,.0f}",
            ]
        )
    print_table(
        [
            "backend",
            "repository eager ms (median / best / CPU)",
            "bare selectinload ms (median / best / CPU)",
            f"ratio (target ≤{TARGET_REPOSITORY_RATIO})",
            "N+1/eager at 0 ms",
            "N+1/eager at 1 ms",
            "N+1 slept at 1 ms (ms)",
            "seeding 6,000 rows (rows/s)",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
