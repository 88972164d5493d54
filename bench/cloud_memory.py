"""Will the app fit Streamlit Community Cloud's smallest box (690 MB) with a class using it?

All viewers of a hosted app share one Python process. This builds the backends once in a
fresh interpreter that has imported everything the app imports (Streamlit, pandas, plotly,
every page's modules), lets N learners (default 50) arrive in waves of 10, each opening a
sandbox through the memory budget (``--budget``, ``PLAB_MEMORY_MB``: a learner past it is refused
and counted), and exercises the labs in each admitted one as a learner would: Lab 1 (three
users, children, a cascade delete), Lab 2 (a pool experiment with its NullPool comparison),
Lab 3 (100 users × 3 scores seeded and loaded four ways), Lab 4 (cached reads: a miss, then
hits), Lab 5 (100 scores and events written, drained by the publisher to Redis), the Create
exercise (1,000 events written, claimed, EXPLAINed), knowledge-check progress, and the
instructor's class view. It reports how many were admitted and refused, the process's
resident memory (RSS) at each stage, its peak, and the growth per learner, against 690 MB.
Then it releases every sandbox.

Run from the repository root: ``python -m bench.cloud_memory [--learners 50] [--budget 600]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from typing import Any

from bench._common import PG_URL, REDIS_URL, backend_kinds, measure_in_child, print_table

LIMIT_MB = 690
MB = 1024 * 1024
WAVE = 10
#: How long one wave of learners may take (a loaded machine is slow; a learner still going is counted as failed).
WAVE_TIMEOUT_S = 900


def _rss_mb() -> float:
    import psutil

    gc.collect()
    return float(psutil.Process().memory_info().rss) / MB


async def _learner(n: int) -> None:
    """One learner's session through the labs, inside their sandbox."""
    from source.course import COURSE
    from source.domain.dtos import UserCreate
    from source.labs.caching import actions as cache_actions
    from source.labs.data_models import join
    from source.labs.outbox import actions as outbox_actions
    from source.labs.outbox import writes as outbox_writes
    from source.labs.pooling import experiment as pool_lab
    from source.labs.pooling.config import ExperimentConfig
    from source.labs.repository import measure as repository_measure
    from source.labs.repository import seeding as repository_seeding
    from source.learning import class_view, measurements, overview, progress
    from source.learning.event_table.design import parse_design
    from source.learning.event_table.example import PASSING_DESIGN
    from source.learning.event_table.exercise import check_design
    from source.platform.context import current_sandbox
    from source.services import users

    box = current_sandbox()
    made = [await users.create_user(UserCreate(email=f"l{n}.u{i}@example.com", name=f"User {i}")) for i in range(3)]
    await users.add_sample_children(made[0].id, 2, 3)
    await users.delete_user(made[0].id)
    await join.run_users_join_assessments()
    await pool_lab.run_experiment(
        ExperimentConfig(requests=40, delay_ms=5, pool_size=4, max_overflow=1, pool_timeout_s=5.0),
        compare_nullpool=True,
    )
    await repository_seeding.seed(repository_seeding.SeedRequest(users=100, scores_per_user=3))
    await repository_measure.compare_strategies(repository_measure.LoadSettings())
    alex = (await cache_actions.add_samples()).ids[0]
    for _ in range(3):
        await cache_actions.fetch_user(alex)
    await outbox_writes.calculate_many_scores(alex, 100)
    await outbox_actions.event_publisher(interval_seconds=0.05, max_events=100)
    await check_design(parse_design(PASSING_DESIGN))
    for lab in ("lab1", "lab2", "create"):
        await progress.visit(box, lab)
    await progress.pass_check(box, "lab1", "lab1_rel_type")
    await overview.load(box, COURSE)
    found = await measurements.load(box)
    class_view.runs_table(found, "lab2")


def measure(kind: str, learners: int, budget_mb: float) -> dict[str, Any]:
    """Runs inside the child interpreter: one backend pair, ``learners`` sandboxes."""
    import source.web.checks
    import source.web.create_form
    import source.web.instructor
    import source.web.learning  # noqa: F401 - every module a page imports, as the app would have loaded
    from source import Backends, Settings
    from source.platform.admission import OutOfMemoryBudget

    rss_imports = _rss_mb()
    services = kind == "services"
    settings = Settings(
        database_url=PG_URL if services else None, redis_url=REDIS_URL if services else None, memory_mb=budget_mb
    )
    backends = Backends.build(settings)
    if kind == "services" and (backends.status.database_note or backends.status.redis_note):
        raise RuntimeError(f"services unreachable: {backends.status.database_note} {backends.status.redis_note}")
    try:
        warm = backends.open_sandbox()  # pays for first imports, compiled SQL, Alembic's scripts
        warm.run(_learner(-1), timeout=120)
        backends.release(warm)
        rss_before = _rss_mb()
        started = time.perf_counter()
        sandboxes: list[Any] = []
        refused: list[str] = []
        failed: list[str] = []
        for wave in range(0, learners, WAVE):
            # Learners arrive in waves and get to work; the memory budget (PLAB_MEMORY_MB) admits each one or not.
            arrived = []
            for _ in range(min(WAVE, learners - wave)):
                try:
                    arrived.append(backends.open_sandbox())
                except OutOfMemoryBudget as exc:
                    refused.append(str(exc))
            futures = [box.submit(_learner(wave + i)) for i, box in enumerate(arrived)]
            for future in futures:
                try:
                    future.result(timeout=WAVE_TIMEOUT_S)
                except Exception as exc:  # noqa: BLE001 - counted and reported: the class goes on
                    failed.append(f"{type(exc).__name__}: {str(exc)[:160]}")
            sandboxes += arrived
        exercised_s = time.perf_counter() - started
        rss_exercised = _rss_mb()
        for box in sandboxes:
            backends.release(box)
        rss_released = _rss_mb()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        return {
            "kind": kind,
            "learners": learners,
            "rss_imports_mb": rss_imports,
            "rss_before_mb": rss_before,
            "admitted": len(sandboxes),
            "refused": len(refused),
            "first_refusal": refused[0] if refused else None,
            "failed": failed,
            "budget_mb": backends.admission.budget_mb,
            "rss_exercised_mb": rss_exercised,
            "rss_released_mb": rss_released,
            "peak_mb": peak,
            "per_learner_mb": (rss_exercised - rss_before) / max(1, len(sandboxes)),
            "seconds": exercised_s,
        }
    finally:
        backends.close()
        backends.runtime.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=50, help="sandboxes open and exercised at once (default 50)")
    parser.add_argument("--budget", type=float, default=600.0, help="PLAB_MEMORY_MB of the process (default 600)")
    parser.add_argument("--child", choices=["embedded", "services"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.learners, args.budget)))
        return
    rows = []
    sentences = []
    for kind in backend_kinds():
        extra = ("--learners", str(args.learners), "--budget", f"{args.budget:g}")
        r = measure_in_child("bench.cloud_memory", kind, *extra, timeout=3600)
        if r["first_refusal"]:
            sentences.append(f"{kind}: {r['first_refusal']}")
        if r["failed"]:
            print(f"{kind}: {len(r['failed'])} learner(s) failed, e.g. {r['failed'][:2]}", file=sys.stderr)
        rows.append(
            [
                "PostgreSQL + Redis" if kind == "services" else "SQLite + fakeredis",
                f"{r['admitted']} / {r['refused']}",
                f"{r['rss_imports_mb']:.0f} MB",
                f"{r['rss_before_mb']:.0f} MB",
                f"{r['rss_exercised_mb']:.0f} MB",
                f"{r['peak_mb']:.0f} MB",
                f"{r['per_learner_mb']:.2f} MB",
                f"{r['rss_released_mb']:.0f} MB",
                f"{r['peak_mb'] / LIMIT_MB:.0%}",
                f"{r['seconds']:.0f} s",
            ]
        )
    print(
        f"\n{args.learners} learners arriving and exercising in one process "
        f"(budget {args.budget:g} MB, limit {LIMIT_MB} MB)"
    )
    print_table(
        [
            "backend",
            "admitted / refused",
            "after imports",
            "backends built",
            "exercised",
            "peak",
            "per learner",
            "after release",
            "peak / limit",
            "time",
        ],
        rows,
    )
    for sentence in sentences:
        print(f"The first learner refused read: {sentence}")


if __name__ == "__main__":
    main()
