"""What Lab 3's buttons do: one coroutine per button, and the starts of its three background jobs.

The page's panels (``source/web/lab3.py``) call only this module. A coroutine runs in the
learner's sandbox and returns what the page shows: a sentence, an :class:`Outcome`, or a
result to draw. Which sentence, and what kind of news it is, is decided here, never in the page.
A job start checks its inputs with the lab's Pydantic models first, so a bad value is refused
with its sentence before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from source.domain.dtos import parse, parse_id
from source.domain.errors import LabError
from source.labs.repository import jobs, measure, plans, scaling, seeding, trap
from source.platform.context import current_sandbox
from source.platform.jobs import Job
from source.platform.outcome import Outcome
from source.services.samples import create_sample_users

Way = Literal["lazy", "eager"]

NOT_INDEXED_NOTE = (
    "Where a plan does not use the index, the planner estimated a full scan cheaper for this many rows "
    "(compare the cost figures in the plans): one pass over a small table can beat hundreds of lookups."
)


def _not_while_timing() -> None:
    """Refuse a recorded action while the comparison or the scaling experiment is timing this sandbox.

    Its statements would run among the experiment's and change its times; and a recorder that
    starts or stops while the experiment's recorder waits out a simulated round trip breaks it.
    """
    sandbox = current_sandbox()
    for kind in (jobs.ComparisonRunner, jobs.ScalingRunner):
        if kind.of(sandbox).running() is not None:
            raise LabError(
                f"Wait until {kind.what} has ended, or press its Stop: it is timing the statements your sandbox "
                "runs, and this would run among them."
            )


# -- 1 · one user ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SamplesMade:
    """The sample users are there: Alex's id (for the User id field), and what to tell the learner."""

    user_id: str
    outcome: Outcome


async def create_samples() -> SamplesMade:
    """Alex and Jane; pressed twice, nobody new is created (the UNIQUE index on the email says so)."""
    made = await create_sample_users()
    created = [email for email, _, created_now in made if created_now]
    if created:
        said = Outcome(f"Created {' and '.join(created)}; Alex's id is filled in below.")
    else:
        already = "Alex and Jane were already in your sandbox, so nobody new was created"
        said = Outcome(f"{already}; Alex's id is filled in below.", "info")
    return SamplesMade(made[0][1], said)


async def some_users() -> str | None:
    """A line naming a few users and their ids, to copy into the User id field (``None`` if there are none)."""
    known = await seeding.some_users()
    if not known:
        return None
    # Emails in code, not plain text: Markdown would make them links, which a caption's opacity fades.
    return "Some user ids in your sandbox: " + " · ".join(f"`{email}` → `{uid}`" for email, uid in known)


async def add_sample_scores(user_text: str) -> str:
    """The codelab's three sample scores for the user whose id was typed."""
    total = await seeding.add_sample_scores(parse_id(user_text))
    return f"Added {seeding.SAMPLE_SCORES} scores: this user now has {total}."


async def fetch_user(user_text: str, way: Way) -> measure.UserFetch:
    """The typed user and their scores, fetched lazily or eagerly under the query recorder."""
    user_id = parse_id(user_text)
    _not_while_timing()
    return await measure.fetch_user(user_id, way)


# -- 2 · seed ------------------------------------------------------------------------------------
def start_seed(runner: jobs.SeedRunner, users: int, scores_per_user: int) -> Job[seeding.SeedReport]:
    """The Seed button: check the sizes, then seed in the background of the sandbox."""
    return runner.start(parse(seeding.SeedRequest, users=users, scores_per_user=scores_per_user))


def seeded(report: seeding.SeedReport) -> str:
    return (
        f"Seeded {report.users:,} users and {report.scores:,} scores in {report.seconds * 1000:.0f} ms "
        f"({report.rows_per_s:,.0f} rows/s, measured)."
    )


async def remove_seeded() -> Outcome:
    """Delete the seeded users (and their scores); refused while a seed is still writing them."""
    runner = jobs.SeedRunner.of(current_sandbox())
    if runner.running() is not None:
        raise LabError("A seed is running in your sandbox: wait for it to end, or press Stop, then remove.")
    removed = await seeding.remove_seeded()
    runner.forget()  # its report described users that are gone now
    if not removed:
        return Outcome(f"There were no seeded users (emails @{seeding.SEED_DOMAIN}) to remove.", "info")
    return Outcome(f"Removed {removed:,} seeded users and their scores.")


# -- 3 · compare, 4 · scaling ------------------------------------------------------------------------
def start_comparison(runner: jobs.ComparisonRunner, round_trip_ms: float, threshold: int) -> Job[measure.Comparison]:
    """The compare button: check the round trip and the threshold, then load in the background."""
    return runner.start(parse(measure.LoadSettings, round_trip_ms=round_trip_ms, threshold=threshold))


def comparison_check(comparison: measure.Comparison) -> Outcome:
    """Whether every strategy returned the same users and scores, as the page says it."""
    first = comparison.runs[0].loaded
    if comparison.identical:
        return Outcome(
            f"Checked: all {len(comparison.runs)} strategies returned the same {first.user_count:,} users "
            f"and the same {first.score_count:,} scores (ids compared one by one)."
        )
    return Outcome("The strategies did not return the same users and scores: the data changed while they ran.", "error")


def start_scaling(runner: jobs.ScalingRunner, round_trip_ms: float) -> Job[scaling.ScalingResult]:
    """The scaling button: check the round trip, then run the experiment in the background."""
    return runner.start(parse(measure.LoadSettings, round_trip_ms=round_trip_ms))


def scaling_caption(result: scaling.ScalingResult) -> str:
    checked = (
        "All strategies returned the same users and scores at every N (checked)."
        if result.identical
        else "The strategies did not return the same users and scores at every N: the data changed while they ran."
    )
    return (
        f"{checked} Dashed lines include the simulated round trip. Each point without a round trip is the median of "
        f"{scaling.REPEATS_WITHOUT_ROUND_TRIP} runs; with one, a single run."
    )


# -- 5 · the trap and the guard ---------------------------------------------------------------------
@dataclass(frozen=True)
class Refusal:
    """A real exception, caught on purpose: its first line, and what it means."""

    headline: str
    explanation: str


async def read_without_await() -> Refusal:
    """The curriculum's ``u.scores`` for real: ``MissingGreenlet``."""
    _not_while_timing()
    caught = await trap.trigger_missing_greenlet()
    return Refusal(f"`{caught.error}`: {caught.message}", caught.explanation)


async def lazy_loop_under_raiseload() -> Refusal:
    """The lazy loop under ``raiseload('*')``: refused at the first user."""
    _not_while_timing()
    caught = await trap.trigger_raiseload()
    return Refusal(
        f"`{caught.error}`: {caught.message}",
        f"{caught.explanation} Statements sent before it stopped: **{caught.queries_before}** (the users).",
    )


# -- 6 · plans ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanShown:
    headline: str
    sql: str
    plan: str


@dataclass(frozen=True)
class PlanReport:
    plans: list[PlanShown]
    #: Why a plan may not use the index (``None`` when every one does).
    note: str | None


async def query_plans() -> PlanReport:
    """The plans of the statements the strategies sent, each saying whether it used the index."""
    _not_while_timing()
    found = await plans.query_plans()
    shown = [
        PlanShown(f"**{p.label}**: {'uses' if p.uses_index else 'does not use'} `{plans.INDEX}`", p.sql, p.plan)
        for p in found
    ]
    return PlanReport(shown, None if all(p.uses_index for p in found) else NOT_INDEXED_NOTE)
