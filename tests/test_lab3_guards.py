"""Lab 3's limits: the simulated round trip, bad input, and jobs that stop when nobody waits."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from source import Backends, InvalidInput, LabError, NotFound, Sandbox
from source.domain.dtos import parse, parse_id
from source.labs.repository import jobs, measure, plans, scaling, seeding, trap
from source.labs.repository.measure import LoadSettings, run_strategy
from source.labs.repository.seeding import SeedRequest

T = TypeVar("T")


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


def wait_until_running(progress: jobs.Progress, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while progress.done == 0:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.01)


def wait_until_stopped(sandbox: Sandbox, timeout: float = 10) -> None:
    slot = sandbox.services[jobs.JOB_KEY]
    deadline = time.monotonic() + timeout
    while slot.task is not None:
        assert time.monotonic() < deadline, "the job is still registered as running"
        time.sleep(0.01)


def test_a_seeding_cut_off_leaves_nothing_behind(sandbox: Sandbox) -> None:
    progress = jobs.Progress()
    future = jobs.start(sandbox, seeding.seed(SeedRequest(users=2000, scores_per_user=20), progress))
    wait_until_running(progress)
    future.cancel()  # what the page does when the learner navigates away
    with pytest.raises(LabError, match="stopped"):
        jobs.wait_with_progress(future, lambda: None, timeout_s=30)
    assert sandbox.run(seeding.seeded_count()) in (0, 2000), "one transaction: all of it or none of it"
    wait_until_stopped(sandbox)


def test_a_new_job_or_a_reset_stops_the_running_one(sandbox: Sandbox) -> None:
    seed(sandbox, 100, 1)
    first_progress = jobs.Progress()
    first = jobs.start(sandbox, scaling.run_scaling(5.0, first_progress))
    wait_until_running(first_progress)
    second = jobs.start(sandbox, scaling.run_scaling(5.0))
    with pytest.raises(LabError, match="stopped"):
        jobs.wait_with_progress(first, lambda: None, timeout_s=30)
    assert not second.done()
    sandbox.run(sandbox.reset())
    with pytest.raises(LabError, match="stopped"):
        jobs.wait_with_progress(second, lambda: None, timeout_s=30)


def test_the_page_stopping_its_wait_cancels_the_job(sandbox: Sandbox) -> None:
    seed(sandbox, 100, 1)
    progress = jobs.Progress()
    future = jobs.start(sandbox, scaling.run_scaling(5.0, progress))

    class PageStopped(Exception):
        """Stands in for Streamlit stopping the script when the learner leaves the page."""

    def tick() -> None:
        if progress.done:
            raise PageStopped

    with pytest.raises(PageStopped):
        jobs.wait_with_progress(future, tick)
    assert future.cancelled(), "leaving the page cancelled the job"
    wait_until_stopped(sandbox)
