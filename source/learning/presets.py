"""Instructor presets: one click sets up a lab's demo in the instructor's own sandbox.

Each preset calls the lab's own source functions (or the seeder for the data a demo needs)
and returns one sentence saying what is now there. A lab adds its presets to :data:`PRESETS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from source.labs.data_models import users
from source.labs.pooling import experiment as pool_lab
from source.labs.repository import seeding as repository_seeding
from source.learning.seed import SeedRequest, seed


@dataclass(frozen=True)
class Preset:
    id: str
    lab: str
    title: str
    explanation: str
    run: Callable[[], Awaitable[str]]


async def lab1_story_users() -> str:
    report = await pool_lab.initialise_with_samples()
    counts = [await users.add_sample_children(u.id, 2, 3) for u in report.users]
    return f"Alex Smith and Jane Doe are there, with {counts[0][0]} assessments and {counts[0][1]} scores each."


async def _pool(config: pool_lab.ExperimentConfig) -> str:
    run = await pool_lab.run_experiment(config, compare_nullpool=True)
    pooled, nullpool = run.pooled, run.nullpool
    text = f"Pooled: {pooled.wall_s * 1000:.0f} ms against a bound of {pooled.bound_s * 1000:.0f} ms"
    text += f", {pooled.timeouts} timeout(s)" if pooled.timeouts else ""
    return text + (f"; a new connection per request: {nullpool.wall_s * 1000:.0f} ms." if nullpool else ".")


async def lab2_pressure() -> str:
    return await _pool(pool_lab.ExperimentConfig(200, 20, 5, 0, 5.0))


async def lab2_timeouts() -> str:
    return await _pool(pool_lab.ExperimentConfig(100, 100, 2, 0, 0.5))


async def lab3_thousand_users() -> str:
    report = await repository_seeding.seed(repository_seeding.SeedRequest(users=1000, scores_per_user=5))
    return (
        f"{report.users:,} users with {report.scores:,} AI-R scores, ready for an N+1 loop "
        f"({report.seconds * 1000:.0f} ms)."
    )


async def lab5_backlog() -> str:
    report = await seed(SeedRequest(users=50, assessments_per_user=0, scores_per_user=0, pending_events=5000))
    return f"A backlog of 5,000 pending events (and {report.users} users) waits in domain_events ({report.ms:.0f} ms)."


PRESETS = [
    Preset(
        "lab1_story",
        "lab1",
        "Lab 1 · Alex and Jane with children",
        "The story's users, 2 assessments and 3 scores each: ready for the cascade delete and the join.",
        lab1_story_users,
    ),
    Preset(
        "lab2_pressure",
        "lab2",
        "Lab 2 · A pool under pressure",
        "K = 200 requests, pool_size 5, D = 20 ms, and the same with a new connection per request.",
        lab2_pressure,
    ),
    Preset(
        "lab2_timeouts",
        "lab2",
        "Lab 2 · Pool timeouts",
        "K = 100, pool_size 2, D = 100 ms, pool_timeout 0.5 s: most requests give up.",
        lab2_timeouts,
    ),
    Preset(
        "lab3_users",
        "lab3",
        "Lab 3 · 1,000 users for N+1",
        "1,000 users × 5 AI-R scores: a loop that lazy-loads each user's scores sends 1,001 queries.",
        lab3_thousand_users,
    ),
    Preset(
        "lab5_backlog",
        "lab5",
        "Lab 5 · A backlog of 5,000 pending events",
        "5,000 SCORE_CALCULATED events still pending in the outbox, for the publisher to drain.",
        lab5_backlog,
    ),
]


def find(preset_id: str) -> Preset:
    return next(p for p in PRESETS if p.id == preset_id)
