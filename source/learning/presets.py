"""Instructor presets: one click sets up a lab's demo in the instructor's own sandbox.

Each preset calls the lab's own source functions (or the seeder for the data a demo needs)
and returns one sentence saying what is now there. A lab adds its presets to :data:`PRESETS`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from source.labs.caching import demo as caching_demo
from source.labs.data_models import users
from source.labs.outbox import control as outbox_control
from source.labs.outbox import writes as outbox_writes
from source.labs.pooling import experiment as pool_lab
from source.labs.pooling.config import ExperimentConfig
from source.labs.pooling.initialise import initialise_with_samples
from source.labs.repository import seeding as repository_seeding
from source.learning.event_table.design import parse_design
from source.learning.event_table.example import PASSING_DESIGN
from source.learning.event_table.exercise import check_design
from source.platform.errors import InvalidInput


@dataclass(frozen=True)
class Preset:
    id: str
    lab: str
    title: str
    explanation: str
    run: Callable[[], Awaitable[str]]


async def lab1_story_users() -> str:
    report = await initialise_with_samples()
    counts = [await users.add_sample_children(u.id, 2, 3) for u in report.users]
    return f"Alex Smith and Jane Doe are there, with {counts[0][0]} assessments and {counts[0][1]} scores each."


async def _pool(config: ExperimentConfig) -> str:
    run = await pool_lab.run_experiment(config, compare_nullpool=True)
    pooled, nullpool = run.pooled, run.nullpool
    text = f"Pooled: {pooled.wall_s * 1000:.0f} ms against a bound of {pooled.bound_s * 1000:.0f} ms"
    text += f", {pooled.timeouts} timeout(s)" if pooled.timeouts else ""
    return text + (f"; a new connection per request: {nullpool.wall_s * 1000:.0f} ms." if nullpool else ".")


async def lab2_pressure() -> str:
    return await _pool(ExperimentConfig(requests=200, delay_ms=20, pool_size=5, max_overflow=0, pool_timeout_s=5.0))


async def lab2_timeouts() -> str:
    return await _pool(ExperimentConfig(requests=100, delay_ms=100, pool_size=2, max_overflow=0, pool_timeout_s=0.5))


async def lab3_thousand_users() -> str:
    report = await repository_seeding.seed(repository_seeding.SeedRequest(users=1000, scores_per_user=5))
    return (
        f"{report.users:,} users with {report.scores:,} AI-R scores, ready for an N+1 loop "
        f"({report.seconds * 1000:.0f} ms)."
    )


async def lab4_cold_cache() -> str:
    """Alex and Jane with a score each, every user's cached keys deleted and the counters zeroed."""
    await caching_demo.add_samples()
    everyone = await users.list_users()
    for user in everyone:
        await caching_demo.invalidate(user.id)
    await caching_demo.reset_counts()
    return f"Cold cache: {len(everyone)} user(s), none cached, counters at zero: the next read of each is a miss."


async def _story_user() -> str:
    """Alex Smith's id, created if needed."""
    return (await initialise_with_samples()).users[0].id


async def lab5_backlog() -> str:
    """5,000 scores and their events, written by Lab 5's own business function in three transactions."""
    user_id, started = await _story_user(), time.perf_counter()
    for count in (2000, 2000, 1000):
        await outbox_writes.calculate_many_scores(user_id, count)
    took = (time.perf_counter() - started) * 1000
    return f"A backlog of 5,000 pending events (each with its score) waits for the publisher ({took:,.0f} ms)."


async def lab5_broker_down() -> str:
    """The publisher's broker points where nothing listens; 20 new events; the publisher starts and fails."""
    user_id = await _story_user()
    await outbox_control.set_broker_down(True)
    await outbox_writes.calculate_many_scores(user_id, 20)
    with contextlib.suppress(InvalidInput):  # already running: it will meet the dead broker all the same
        await outbox_control.start_publisher()
    return "The broker is down and the publisher is running: watch attempts grow and back off on Lab 5's page."


async def create_passing_design() -> str:
    """The Create exercise's example design, built in the sandbox and put through every check."""
    report = await check_design(parse_design(PASSING_DESIGN))
    facts, missing = report.facts, [f for f in report.assessment.findings if f.severity == "missing"]
    plan = (
        f"; the publisher's claim reads {facts.plan.index or 'no index'} (plan: {facts.plan.verdict})"
        if facts.plan is not None
        else ""
    )
    outcome = "passes every check" if report.passed else f"misses {len(missing)} check(s)"
    return (
        f"`{report.design.table}` {outcome}: {facts.inserted:,} events written in {facts.insert_ms:,.0f} ms"
        f"{plan}. The Create page builds a learner's design the same way."
    )


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
        "lab4_cold",
        "lab4",
        "Lab 4 · A cold cache",
        "Alex and Jane with a score each, none of their keys cached, the hit and miss counters at zero.",
        lab4_cold_cache,
    ),
    Preset(
        "lab5_backlog",
        "lab5",
        "Lab 5 · A backlog of 5,000 pending events",
        "5,000 SCORE_CALCULATED events still pending in the outbox, for the publisher to drain.",
        lab5_backlog,
    ),
    Preset(
        "lab5_broker_down",
        "lab5",
        "Lab 5 · The broker is down",
        "The publisher's broker points where nothing listens, 20 new events wait, and the publisher runs: "
        "attempts grow and back off.",
        lab5_broker_down,
    ),
    Preset(
        "create_passing",
        "create",
        "Create · A design that passes",
        "The exercise's example outbox table, built in your sandbox, written to, claimed and checked: "
        "what a passing design looks like.",
        create_passing_design,
    ),
]


def find(preset_id: str) -> Preset:
    return next(p for p in PRESETS if p.id == preset_id)
