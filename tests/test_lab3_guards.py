"""Lab 3's limits: the simulated round trip, bad input, and jobs that run on in the background until stopped."""

from __future__ import annotations

import asyncio
import re
import statistics
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest

from source import Backends, InvalidInput, LabError, NotFound, Sandbox
from source.domain.dtos import parse, parse_id
from source.domain.repositories import UserRepository
from source.labs.repository import actions, jobs, measure, plans, scaling, seeding, trap
from source.labs.repository.measure import LoadSettings, run_strategy
from source.labs.repository.seeding import SeedReport, SeedRequest
from source.platform.jobs import Job, Progress
from tests.waiting import eventually, eventually_async


def seed(sandbox: Sandbox, users: int, scores: int) -> None:
    sandbox.run(seeding.seed(SeedRequest(users=users, scores_per_user=scores)))


def test_the_round_trip_adds_at_least_n_times_the_delay(sandbox: Sandbox) -> None:
    seed(sandbox, 20, 1)
    run = sandbox.run(run_strategy("lazy", settings=LoadSettings(round_trip_ms=5)))
    assert run.queries == 21
    assert all(r.injected_ms >= 5 for r in run.log.records), "every statement waited its round trip"
    assert run.injected_ms >= 21 * 5
    assert run.wall_ms >= 21 * 5
    eager = sandbox.run(run_strategy("selectin", settings=LoadSettings(round_trip_ms=5)))
    assert eager.queries == 2, "2 round trips instead of 21"
    assert all(r.injected_ms >= 5 for r in eager.log.records), "each of them waited its round trip"


def test_the_round_trip_does_not_slow_another_sandbox(backends: Backends, sandbox: Sandbox) -> None:
    """The round trip is an ``asyncio.sleep``: while one learner's N+1 waits, another's work goes on.

    Were it a blocking sleep, each of the other learner's awaits would wait up to 5 ms behind it:
    their 110 statements (several awaits each) would take many times their baseline.
    """
    other = backends.open_sandbox()
    try:
        seed(sandbox, 300, 1)
        seed(other, 10, 2)

        async def baseline() -> float:
            """110 statements: each one would wait behind a blocking sleep, if there were one."""
            started = time.perf_counter()
            for _ in range(10):
                await run_strategy("lazy")
            return time.perf_counter() - started

        alone = [other.run(baseline()) for _ in range(3)]

        async def slow() -> float:
            await run_strategy("lazy", settings=LoadSettings(round_trip_ms=5))  # >= 301 x 5 ms
            return time.perf_counter()

        async def beside_it() -> tuple[list[float], float]:
            times = [await baseline() for _ in range(3)]
            return times, time.perf_counter()

        slow_future = backends.runtime.submit(sandbox.bind(slow()))
        beside, other_done = backends.runtime.submit(other.bind(beside_it())).result(120)
        slow_done = slow_future.result(120)
        alone.append(other.run(baseline()))
    finally:
        backends.release(other)
    assert other_done < slow_done, "the other learner finished while the N+1 was still waiting on round trips"
    typical_alone, typical_beside = statistics.median(alone), statistics.median(beside)
    assert typical_beside < 4 * typical_alone + 0.2, f"{beside} s beside the N+1 vs {alone} s alone"


@pytest.mark.parametrize("value", ["", "42", "not-a-uuid", "0f8c' OR 1=1 --"])
def test_a_malformed_user_id_is_refused_before_any_sql(value: str) -> None:
    with pytest.raises(InvalidInput, match="is not a user id"):
        parse_id(value)


def test_an_unknown_user_id_is_reported(sandbox: Sandbox) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    for action in (measure.fetch_user(unknown, "lazy"), measure.fetch_user(unknown, "eager")):
        with pytest.raises(NotFound, match="No user has the id"):
            sandbox.run(action)
    with pytest.raises(NotFound):
        sandbox.run(seeding.add_sample_scores(unknown))


@pytest.mark.parametrize(
    ("users", "scores", "fragment"),
    [(0, 5, "users"), (2001, 5, "users"), (10, 21, "scores per user"), (10, -1, "scores per user")],
)
def test_sizes_out_of_range_are_refused(users: int, scores: int, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse(SeedRequest, users=users, scores_per_user=scores)


def test_a_round_trip_out_of_range_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidInput, match="round trip ms"):
        parse(LoadSettings, round_trip_ms=6, threshold=2)
    with pytest.raises(InvalidInput, match="threshold"):
        parse(LoadSettings, round_trip_ms=0, threshold=1)


def test_seeding_twice_is_refused_and_keeps_the_first_seed(sandbox: Sandbox) -> None:
    seed(sandbox, 30, 2)
    with pytest.raises(InvalidInput, match="already holds 30 seeded users"):
        seed(sandbox, 50, 1)
    assert sandbox.run(seeding.seeded_count()) == 30
    assert sandbox.run(seeding.remove_seeded()) == 30
    seed(sandbox, 50, 1)
    assert sandbox.run(seeding.seeded_count()) == 50


def test_an_empty_sandbox_gets_a_clear_message_everywhere(sandbox: Sandbox) -> None:
    actions: list[Callable[[], Coroutine[Any, Any, object]]] = [
        lambda: measure.compare_strategies(LoadSettings()),
        lambda: scaling.run_scaling(0.0),
        trap.trigger_missing_greenlet,
        trap.trigger_raiseload,
        plans.query_plans,
    ]
    for action in actions:
        with pytest.raises(InvalidInput, match=r"(?i)seed|sample users"):
            sandbox.run(action())
    assert sandbox.run(seeding.remove_seeded()) == 0


@dataclass
class HeldBatch:
    """The seed under test, and whether its second batch's statement ran to its end."""

    job: Job[SeedReport] | None = None
    finished: bool = False


@pytest.fixture
def held_second_batch(monkeypatch: pytest.MonkeyPatch) -> HeldBatch:
    """Seeding writes its first batch of users; its second batch's statement is in flight until Stop is pressed."""
    held_batch = HeldBatch()
    real = UserRepository.bulk_insert_users
    calls = 0

    async def held(self: UserRepository, users: list[dict[str, object]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            return await real(self, users)

        async def stop_pressed() -> bool:
            return held_batch.job is not None and held_batch.job.progress.stopping

        await eventually_async(stop_pressed, "Stop to be pressed")  # in flight: a cancellation would end it here
        await real(self, users)
        held_batch.finished = True
        return None

    monkeypatch.setattr(UserRepository, "bulk_insert_users", held)
    return held_batch


def test_a_stopped_seed_leaves_nothing_behind_and_says_so(sandbox: Sandbox, held_second_batch: HeldBatch) -> None:
    runner = jobs.SeedRunner.of(sandbox)
    job = held_second_batch.job = runner.start(SeedRequest(users=2000, scores_per_user=20))
    eventually(lambda: job.progress.done == seeding.BATCH_USERS, "the seed to write its first batch")
    with pytest.raises(LabError, match="already running"):
        runner.start(SeedRequest(users=10, scores_per_user=1))
    with pytest.raises(LabError, match="A seed is running in your sandbox"):
        sandbox.run(actions.remove_seeded())
    assert runner.stop()
    eventually(lambda: runner.running() is None, "the stopped seed to end")
    assert held_second_batch.finished, "Stop let the statement in flight end instead of cancelling the driver in it"
    assert runner.last is None, "no report was invented for a stopped seed"
    assert not runner.last_failed
    assert runner.last_note == (
        f"Seeding was stopped after {seeding.BATCH_USERS} of 2,000 users. It writes in one transaction, which was "
        "rolled back: nothing was added."
    )
    assert sandbox.run(seeding.seeded_count()) == 0, "one transaction: the batches written before the stop are gone"


def test_a_job_runs_on_with_nobody_watching(sandbox: Sandbox) -> None:
    """Nothing polls the job (the learner left the page): it still ends, and keeps its result for their return."""
    seed(sandbox, 40, 2)
    runner = jobs.ComparisonRunner.of(sandbox)
    actions.start_comparison(runner, round_trip_ms=1.0, threshold=3)
    done = eventually(lambda: runner.job is not None and not runner.job.running, "the comparison to end")
    assert done
    assert runner.running() is None
    assert runner.last is not None
    assert [run.queries for run in runner.last.runs] == [41, 41, 2, 1]
    assert runner.last_note is None
    assert jobs.ComparisonRunner.of(sandbox) is runner, "a learner who comes back finds the same runner"


def test_bad_inputs_are_refused_before_a_job_starts(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidInput, match="users"):
        actions.start_seed(jobs.SeedRunner.of(sandbox), users=0, scores_per_user=1)
    with pytest.raises(InvalidInput, match="round trip ms"):
        actions.start_comparison(jobs.ComparisonRunner.of(sandbox), round_trip_ms=6.0, threshold=3)
    with pytest.raises(InvalidInput, match="round trip ms"):
        actions.start_scaling(jobs.ScalingRunner.of(sandbox), round_trip_ms=-1.0)
    assert all(kind.of(sandbox).job is None for kind in (jobs.SeedRunner, jobs.ComparisonRunner, jobs.ScalingRunner))


def test_one_lab3_job_at_a_time_per_sandbox_stop_and_reset_end_it(sandbox: Sandbox) -> None:
    seed(sandbox, 200, 1)
    comparison = jobs.ComparisonRunner.of(sandbox)
    job = actions.start_comparison(comparison, round_trip_ms=5.0, threshold=3)  # >= 201 x 5 ms per lazy strategy
    with pytest.raises(LabError, match="A comparison is already running"):
        actions.start_comparison(comparison, round_trip_ms=5.0, threshold=3)
    scaling_runner = jobs.ScalingRunner.of(sandbox)
    with pytest.raises(LabError, match="Your sandbox is running the comparison already"):
        actions.start_scaling(scaling_runner, round_trip_ms=5.0)
    eventually(lambda: job.progress.phase.startswith("Loading every user"), "the comparison to start")
    assert comparison.stop()
    eventually(lambda: comparison.running() is None, "the stopped comparison to end")
    assert comparison.last is None
    assert comparison.last_note is not None
    stopped = r"The comparison was stopped after \d of 4 strategies; nothing was recorded\."
    assert re.fullmatch(stopped, comparison.last_note), comparison.last_note

    scaling_job = actions.start_scaling(scaling_runner, round_trip_ms=5.0)  # its turn, now that nothing runs
    eventually(lambda: scaling_job.progress.done > 0, "the scaling experiment to start")
    sandbox.run(sandbox.reset())
    assert not scaling_job.running, "the reset waited until the experiment had ended"
    assert jobs.ScalingRunner.of(sandbox) is not scaling_runner, "the reset sandbox starts with a fresh runner"


def test_recorded_actions_wait_while_the_comparison_times_the_sandbox(sandbox: Sandbox) -> None:
    """Plans, fetches and the traps are refused while the comparison runs: they would run among its timed statements."""
    seed(sandbox, 200, 1)
    user_id = sandbox.run(seeding.some_users(1))[0][1]
    runner = jobs.ComparisonRunner.of(sandbox)
    job = actions.start_comparison(runner, round_trip_ms=5.0, threshold=3)  # >= 201 x 5 ms per lazy strategy
    eventually(lambda: job.progress.phase.startswith("Loading every user"), "the comparison to start")
    recorded: list[Callable[[], Coroutine[Any, Any, object]]] = [
        actions.query_plans,
        lambda: actions.fetch_user(user_id, "lazy"),
        actions.read_without_await,
        actions.lazy_loop_under_raiseload,
    ]
    for action in recorded:
        with pytest.raises(LabError, match="Wait until the comparison has ended, or press its Stop"):
            sandbox.run(action())
    eventually(lambda: runner.running() is None, "the comparison to end")
    assert runner.last_note is None, runner.last_note
    assert runner.last is not None
    assert [run.queries for run in runner.last.runs] == [201, 201, 2, 1], "undisturbed"
    assert sandbox.run(actions.query_plans()).plans, "their turn, once it has ended"


def test_a_job_past_the_time_limit_says_what_to_try(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs.ComparisonRunner, "time_limit_s", 0.05)
    runner = jobs.ComparisonRunner.of(sandbox)

    async def endless(_: Progress) -> measure.Comparison:
        await asyncio.sleep(3600)
        raise AssertionError("never reached")

    runner.launch(endless)
    eventually(lambda: runner.running() is None, "the comparison to be stopped by its limit")
    assert runner.last_failed
    assert runner.last_note == (
        "This took longer than the lab's 0.05 s limit and was stopped. "
        "Try fewer users or a shorter simulated round trip."
    )


def test_at_most_two_lab3_jobs_run_at_once_whatever_their_kind(backends: Backends, sandbox: Sandbox) -> None:
    """Three learners start a seed, a comparison and the scaling experiment: the third waits for a place."""
    others = [backends.open_sandbox(), backends.open_sandbox()]
    release = threading.Event()
    started: list[str] = []

    def held(kind: str) -> Callable[[Progress], Coroutine[Any, Any, Any]]:
        async def work(_: Progress) -> None:
            started.append(kind)
            await asyncio.to_thread(release.wait)  # Stop cancels this wait at once

        return work

    try:
        jobs.SeedRunner.of(sandbox).launch(held("seed"))
        comparison = jobs.ComparisonRunner.of(others[0])
        comparison.launch(held("comparison"))
        eventually(lambda: len(started) == 2, "two jobs to start")
        third = jobs.ScalingRunner.of(others[1]).launch(held("scaling"))
        eventually(lambda: third.progress.phase.startswith("Waiting for a free slot"), "the third job to wait")
        assert sorted(started) == ["comparison", "seed"], "the third one waits while two run"
        assert comparison.stop()
        eventually(lambda: "scaling" in started, "the third job to start once a place is free")
        assert not third.progress.phase.startswith("Waiting")
    finally:
        release.set()
        for other in others:
            backends.release(other)
