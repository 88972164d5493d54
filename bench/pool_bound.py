"""Benchmark: how close a real pool gets to its bound ⌈K/C⌉·D, and what NullPool costs instead.

Run from the repository root with ``python -m bench.pool_bound``. SQLite always runs;
PostgreSQL runs when ``DATABASE_URL`` (default: the local test database) answers.
Each setting runs a few times and the median is reported; the target is wall ≤ 1.3 × bound.
"""

from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import dataclass

from source import Backends, Settings
from source.labs.pooling.config import ExperimentConfig
from source.labs.pooling.experiment import SAMPLE_EVERY_S, run_experiment
from source.labs.pooling.results import LabRun
from source.platform.config import normalise_database_url

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET_RATIO = 1.3

#: (K requests, pool_size, max_overflow, D ms)
SETTINGS: list[tuple[int, int, int, float]] = [
    (20, 2, 0, 20),
    (100, 5, 0, 50),
    (200, 10, 0, 50),
    (200, 20, 0, 100),
    (500, 20, 0, 50),
    (500, 20, 20, 20),
]


@dataclass
class Row:
    backend: str
    config: ExperimentConfig
    bound_ms: float
    wall_ms: float
    nullpool_wall_ms: float
    connect_ms: float | None
    lent: float | None  # connections lent out on average while requests queued (median over runs)
    closed: int  # connections the pool closed while requests queued (median over runs)

    @property
    def ratio(self) -> float:
        return self.wall_ms / self.bound_ms


def measure(backends: Backends, repeats: int) -> list[Row]:
    sandbox = backends.open_sandbox()
    rows: list[Row] = []
    try:
        for requests, size, overflow, delay in SETTINGS:
            config = ExperimentConfig.parse(
                requests=requests, delay_ms=delay, pool_size=size, max_overflow=overflow, pool_timeout_s=10.0
            )
            runs: list[LabRun] = [
                sandbox.run(run_experiment(config, compare_nullpool=True), timeout=120) for _ in range(repeats)
            ]
            connects = [ms for run in runs if run.nullpool for ms in run.nullpool.connect_ms]
            lent = [x for run in runs if (x := run.pooled.lent_while_queued) is not None]
            rows.append(
                Row(
                    backend=backends.status.database,
                    config=config,
                    bound_ms=config.bound_s * 1000,
                    wall_ms=statistics.median(run.pooled.wall_s for run in runs) * 1000,
                    nullpool_wall_ms=statistics.median(run.nullpool.wall_s for run in runs if run.nullpool) * 1000,
                    connect_ms=statistics.median(connects) if connects else None,
                    lent=statistics.median(lent) if lent else None,
                    closed=round(statistics.median(run.pooled.closed_while_queued for run in runs)),
                )
            )
            assert all(run.pooled.completed == requests for run in runs), "every request should complete"
    finally:
        backends.release(sandbox)
    return rows


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'backend':<11} {'K':>4} {'C':>3} {'D ms':>5} {'bound ms':>9} {'pool ms':>8} {'ratio':>6} "
        f"{'≤1.3×':>6} {'lent':>5} {'closed':>6} {'NullPool ms':>12} {'connect ms':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        c = r.config
        connect = f"{r.connect_ms:.1f}" if r.connect_ms is not None else "–"
        lent = f"{r.lent:.1f}" if r.lent is not None else "–"
        print(
            f"{r.backend:<11} {c.requests:>4} {c.connections_at_once:>3} {c.delay_ms:>5g} {r.bound_ms:>9.0f} "
            f"{r.wall_ms:>8.0f} {r.ratio:>6.2f} {'yes' if r.ratio <= TARGET_RATIO else 'no':>6} {lent:>5} "
            f"{r.closed:>6} {r.nullpool_wall_ms:>12.0f} {connect:>11}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting (the median is shown)")
    args = parser.parse_args()

    rows: list[Row] = []
    embedded = Backends.build(Settings())
    try:
        rows += measure(embedded, args.repeats)
    finally:
        embedded.close()
        embedded.runtime.stop()

    url = normalise_database_url(os.environ.get("DATABASE_URL") or DEFAULT_PG_URL)
    services = Backends.build(Settings(database_url=url))
    try:
        if services.status.database == "PostgreSQL":
            rows += measure(services, args.repeats)
        else:
            print(f"PostgreSQL skipped: {services.status.database_note}")
    finally:
        services.close()
        services.runtime.stop()

    print(f"Pool vs its bound ⌈K/C⌉·D (C = pool_size + max_overflow), median of {args.repeats} runs\n")
    print_table(rows)
    print(
        "\nlent: connections lent out on average while requests queued (sampled every "
        f"{SAMPLE_EVERY_S * 1000:g} ms); closed: connections the pool closed while requests queued. "
        "A QueuePool closes an overflow connection returned while it already holds pool_size idle ones, "
        "and requests already queued wait for a returned connection rather than open a new one, so with "
        "max_overflow > 0 'lent' can fall to pool_size: compare the wall time with the bound for that C too."
    )


if __name__ == "__main__":
    main()
