"""Lab 2's experiments on both backends: a real pool queues, times out and reuses connections."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from source import Backends, InvalidInput, LabError, Sandbox, use_sandbox
from source.domain.models import User
from source.instruments.admission import AdmissionGate
from source.instruments.pool_probe import PoolSample, PoolStatus, read_pool_status
from source.labs.pooling import actions, config, experiment, initialise, jobs, report
from source.labs.pooling.config import ExperimentConfig
from source.labs.pooling.requests import Traffic
from source.labs.pooling.results import LabRun
from tests.waiting import eventually


def settings(
    requests: int = 20, delay_ms: float = 20, pool_size: int = 2, max_overflow: int = 0, timeout: float = 10.0
) -> ExperimentConfig:
    return ExperimentConfig.parse(
        requests=requests, delay_ms=delay_ms, pool_size=pool_size, max_overflow=max_overflow, pool_timeout_s=timeout
    )


def test_sample_users_twice_creates_two_then_none(sandbox: Sandbox) -> None:
    first = sandbox.run(initialise.initialise_with_samples())
    second = sandbox.run(initialise.initialise_with_samples())
    assert [u.name for u in first.users] == ["Alex Smith", "Jane Doe"]
    assert [u.created_now for u in first.users] == [True, True]
    assert [u.created_now for u in second.users] == [False, False]
    assert [u.id for u in second.users] == [u.id for u in first.users], "the same two rows, found again"
    assert first.revision is not None
    assert second.revision == first.revision


def test_pool_status_counts_a_borrowed_connection(sandbox: Sandbox) -> None:
    async def borrow_and_read() -> tuple[PoolStatus | None, PoolStatus | None]:
        async with sandbox.engine.connect():
            during = await read_pool_status(sandbox.engine)
        after = await read_pool_status(sandbox.engine)
        return during, after

    during, after = sandbox.run(borrow_and_read())
    assert during is not None
    assert after is not None
    assert during.checked_out >= 1
    assert after.checked_in >= 1, "the connection went back into the pool"
    assert after.checked_out == during.checked_out - 1


def test_the_experiment_engine_sees_the_learners_own_tables(sandbox: Sandbox) -> None:
    """Built by the composition root with the sandbox's schema, like every other engine."""
    sandbox.run(initialise.initialise_with_samples())

    async def count_users() -> int:
        engine = sandbox.experiment_engine(pool_size=1, max_overflow=0, pool_timeout=5.0)
        try:
            async with engine.connect() as conn:
                return int(await conn.scalar(select(func.count()).select_from(User)) or 0)
        finally:
            await engine.dispose()

    assert sandbox.run(count_users()) == 2, "Alex and Jane, in this sandbox's own schema or file"


def test_a_small_pool_makes_requests_queue(sandbox: Sandbox) -> None:
    traffic = Traffic()
    run = sandbox.run(experiment.run_experiment(settings(), traffic=traffic))
    result = run.pooled
    assert run.nullpool is None
    assert (result.completed, result.timeouts, result.errors) == (20, 0, 0)
    assert len(result.waits_ms) == 20
    assert result.max_wait_ms is not None
    assert result.max_wait_ms >= 20 * 0.9, "the later requests waited at least one hold for a connection"
    assert result.connections_opened == 2, "a pool of 2 opens 2 connections and reuses them"
    assert len(result.connect_ms) == 2, "both openings were timed"
    assert result.peak_in_use == 2
    assert result.wall_s >= result.bound_s * 0.95, "no run beats ⌈K/C⌉·D"
    assert result.bound_s == pytest.approx(math.ceil(20 / 2) * 0.020)
    assert (traffic.progress.done, traffic.progress.total) == (20, 20)
    assert (traffic.in_use, traffic.waiting) == (0, 0)
    assert traffic.open_connections == 0, "the experiment's engine was disposed: no connection left open"


def test_the_pool_is_sampled_while_it_fills_and_drains(sandbox: Sandbox) -> None:
    run = sandbox.run(experiment.run_experiment(settings(requests=30, delay_ms=20, pool_size=2, max_overflow=1)))
    timeline = run.pooled.timeline
    assert len(timeline) >= 3
    assert [s.t_ms for s in timeline] == sorted(s.t_ms for s in timeline)
    assert max(s.checked_out for s in timeline) == 3, "pool_size 2 + max_overflow 1, all lent out at the peak"
    assert max(s.overflow_in_use for s in timeline) == 1
    assert all(s.checked_out <= 3 and s.overflow_in_use <= 1 for s in timeline), "never beyond the cap"
    assert max(s.waiting for s in timeline) > 0, "30 requests queued for 3 connections"
    last = timeline[-1]
    assert (last.checked_out, last.waiting) == (0, 0), "drained: every connection back, nobody waiting"


def test_overflow_adds_connections_beyond_pool_size(sandbox: Sandbox) -> None:
    result = sandbox.run(experiment.run_experiment(settings(pool_size=2, max_overflow=3))).pooled
    assert result.completed == 20
    assert result.peak_in_use == 5, "pool_size 2 + max_overflow 3 lets five requests hold a connection"
    assert 5 <= result.connections_opened < 20, "overflow connections are opened on demand, never one per request"


def test_connections_lent_while_queued_is_weighted_by_time(sandbox: Sandbox) -> None:
    result = sandbox.run(experiment.run_experiment(settings(requests=4, delay_ms=5))).pooled
    # 3 connections lent for 30 ms while requests wait, then 1 for 10 ms, then nobody waits.
    timeline = [PoolSample(0, 3, 1, 5), PoolSample(30, 1, 0, 2), PoolSample(40, 2, 0, 0), PoolSample(90, 0, 0, 0)]
    assert replace(result, timeline=timeline).lent_while_queued == pytest.approx((3 * 30 + 1 * 10) / 40)
    assert replace(result, timeline=[PoolSample(0, 2, 0, 0), PoolSample(5, 0, 0, 0)]).lent_while_queued is None


def test_a_tiny_pool_timeout_gives_real_timeouts(sandbox: Sandbox) -> None:
    result = sandbox.run(
        experiment.run_experiment(settings(requests=20, delay_ms=200, pool_size=1, max_overflow=0, timeout=0.1))
    ).pooled
    assert result.timeouts > 0
    assert result.completed >= 1, "the first request got the only connection"
    assert result.completed + result.timeouts == 20
    assert result.errors == 0
    assert min(result.timeout_waits_ms) >= 100 * 0.9, "each gave up after pool_timeout, not before"
    assert result.bound_ratio is None, "the bound assumes every request is served"


def test_a_new_connection_per_request_opens_one_each_time(sandbox: Sandbox) -> None:
    run = sandbox.run(experiment.run_experiment(settings(requests=10, delay_ms=5), compare_nullpool=True))
    fresh = run.nullpool
    assert fresh is not None
    assert (fresh.completed, fresh.errors) == (10, 0)
    assert fresh.connections_opened == 10
    assert len(fresh.connect_ms) == 10, "every opening was timed"
    assert fresh.peak_in_use <= 2, "the same cap as the pool it is compared with"
    assert run.pooled.connections_opened == 2


def test_a_new_connection_per_request_never_holds_more_than_its_cap(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MAX_NULLPOOL_CONCURRENCY", 3)
    run = sandbox.run(experiment.run_experiment(settings(requests=15, delay_ms=20, pool_size=5), compare_nullpool=True))
    assert run.pooled.peak_in_use == 5
    assert run.nullpool is not None
    assert run.nullpool.peak_in_use == 3, "capped below the pool's five, as a shared server needs"
    assert max(s.checked_out for s in run.nullpool.timeline) <= 3, "never more than three connections open"


def test_progress_counts_each_run_from_zero() -> None:
    traffic = Traffic(runs=2)
    progress = traffic.progress
    assert "Waiting for a free experiment slot" in progress.describe()
    assert "0 of 0" not in progress.describe()
    traffic.begin("pooled", 1, 100)
    progress.done, traffic.timeouts = 96, 40
    assert progress.fraction == pytest.approx(0.48)
    assert "Run 1 of 2, pooled · 96 of 200 requests finished · 0 waiting for a connection, 40 gave up" in (
        progress.describe()
    )
    traffic.begin("a new connection per request", 2, 100)
    assert "40 gave up" not in progress.describe(), "the second run does not repeat the first one's timeouts"
    assert "Run 2 of 2, a new connection per request · 100 of 200 requests finished" in progress.describe()
    assert progress.fraction == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("label", "values"),
    [
        ("Concurrent requests", {"requests": 0}),
        ("Concurrent requests", {"requests": config.MAX_REQUESTS + 1}),
        ("Concurrent requests", {"requests": 2.5}),
        ("Concurrent requests", {"requests": True}),
        ("Concurrent requests", {"requests": "20"}),
        ("Hold time", {"delay_ms": 0}),
        ("Hold time", {"delay_ms": config.MAX_DELAY_MS + 1}),
        ("Hold time", {"delay_ms": float("nan")}),
        ("pool_size", {"pool_size": 0}),
        ("pool_size", {"pool_size": config.MAX_POOL_SIZE + 1}),
        ("max_overflow", {"max_overflow": -1}),
        ("max_overflow", {"max_overflow": config.MAX_OVERFLOW + 1}),
        ("pool_timeout", {"timeout": 0.05}),
        ("pool_timeout", {"timeout": 11}),
        ("pool_timeout", {"timeout": float("inf")}),
    ],
)
def test_out_of_range_inputs_are_refused_with_a_clear_message(label: str, values: dict[str, object]) -> None:
    with pytest.raises(InvalidInput, match=label) as caught:
        settings(**values)  # type: ignore[arg-type]
    assert "between" in str(caught.value)
    assert "(got " in str(caught.value), "the message repeats what was typed"


def test_the_limits_themselves_are_accepted() -> None:
    top = settings(
        requests=config.MAX_REQUESTS,
        delay_ms=config.MAX_DELAY_MS,
        pool_size=config.MAX_POOL_SIZE,
        max_overflow=config.MAX_OVERFLOW,
        timeout=config.MAX_POOL_TIMEOUT_S,
    )
    assert top.connections_at_once == config.MAX_POOL_SIZE + config.MAX_OVERFLOW
    low = settings(requests=1, delay_ms=1, pool_size=1, max_overflow=0, timeout=config.MIN_POOL_TIMEOUT_S)
    assert low.requests == 1
    assert isinstance(low.requests, int)


def test_the_gate_limits_experiments_and_connections(sandbox: Sandbox) -> None:
    async def scenario() -> tuple[str, str]:
        gate = AdmissionGate(max_jobs=1, max_connections=10)
        async with gate.admit(2, timeout=1):
            with pytest.raises(LabError) as too_many:
                async with gate.admit(2, timeout=0.05):
                    pass
        budget = AdmissionGate(max_jobs=2, max_connections=10)
        async with budget.admit(8, timeout=1):
            with pytest.raises(LabError) as too_big:
                async with budget.admit(5, timeout=0.05):
                    pass
            async with budget.admit(2, timeout=0.05):
                assert (budget.running, budget.connections) == (2, 10)
        assert (budget.running, budget.connections) == (0, 0)
        return str(too_many.value), str(too_big.value)

    first, second = sandbox.run(scenario())
    assert "try again" in first
    assert "try again" in second


def test_experiments_beyond_the_limit_wait_their_turn(backends: Backends) -> None:
    boxes = [backends.open_sandbox() for _ in range(3)]

    async def in_sandbox(box: Sandbox) -> LabRun:
        async with use_sandbox(box):
            return await experiment.run_experiment(settings(requests=10, delay_ms=20))

    async def three_learners_at_once() -> tuple[list[LabRun], int, int]:
        gate = experiment.experiment_gate()
        most = 0

        async def watch() -> None:
            nonlocal most
            while True:
                most = max(most, gate.running)
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        runs = await asyncio.gather(*(in_sandbox(box) for box in boxes))
        watcher.cancel()
        return list(runs), most, gate.running

    try:
        runs, most, left = backends.runtime.run(three_learners_at_once())
    finally:
        for box in boxes:
            backends.release(box)
    assert [r.pooled.completed for r in runs] == [10, 10, 10]
    assert 1 <= most <= config.MAX_EXPERIMENTS_AT_ONCE
    assert left == 0


# -- in the background of a sandbox, as the page runs it --------------------------------------
def endless() -> ExperimentConfig:
    """Far longer than any test waits: 500 requests through one connection, 200 ms each."""
    return settings(requests=config.MAX_REQUESTS, delay_ms=config.MAX_DELAY_MS, pool_size=1, timeout=10.0)


def gate_running(sandbox: Sandbox) -> int:
    async def read() -> int:
        return experiment.experiment_gate().running

    return sandbox.run(read())


def test_a_background_experiment_finishes_and_its_result_is_kept(sandbox: Sandbox) -> None:
    runner = jobs.ExperimentRunner.of(sandbox)
    job = runner.start(settings(requests=10, delay_ms=5), compare_nullpool=False)
    eventually(lambda: runner.running() is None, "the experiment to finish")
    assert job.progress.phase == "Done"
    assert runner.last is not None
    assert runner.last.pooled.completed == 10
    assert jobs.ExperimentRunner.of(sandbox) is runner, "a learner who comes back finds the same runner and its result"


def test_stop_frees_the_slot_and_the_connections_and_keeps_the_last_result(sandbox: Sandbox) -> None:
    runner = jobs.ExperimentRunner.of(sandbox)
    runner.start(settings(requests=5, delay_ms=5), compare_nullpool=False)
    eventually(lambda: runner.running() is None, "a first experiment to finish")
    kept = runner.last
    job = runner.start(endless(), compare_nullpool=False)
    eventually(
        lambda: runner.traffic is not None and runner.traffic.in_use == 1, "the experiment to hold its connection"
    )
    assert gate_running(sandbox) == 1
    with pytest.raises(LabError, match="already running"):
        runner.start(settings(), compare_nullpool=False)

    job.stop()

    eventually(lambda: runner.running() is None, "the stopped experiment to end")
    assert gate_running(sandbox) == 0, "its slot was given back"
    assert runner.traffic is not None
    assert runner.traffic.open_connections == 0, "its connection was closed"
    assert job.progress.phase == "Stopped"
    assert runner.last is kept, "the last finished result stays on the page"
    assert runner.last_note is not None
    assert "stopped" in runner.last_note


def test_a_reset_stops_the_running_experiment_first(backends: Backends) -> None:
    box = backends.open_sandbox()
    try:
        runner = jobs.ExperimentRunner.of(box)
        job = runner.start(endless(), compare_nullpool=False)
        eventually(
            lambda: runner.traffic is not None and runner.traffic.in_use == 1, "the experiment to hold its connection"
        )
        box.run(box.reset())
        assert not job.running, "reset waited until the experiment had ended"
        assert runner.traffic is not None
        assert runner.traffic.open_connections == 0
        assert gate_running(box) == 0
        assert jobs.ExperimentRunner.of(box) is not runner, "the reset sandbox starts with a fresh runner"
    finally:
        backends.release(box)


def test_an_experiment_larger_than_the_connection_budget_is_refused_before_it_starts(sandbox: Sandbox) -> None:
    """On PostgreSQL every app process shares max_connections: experiments get a budget (a setting)."""
    budget = experiment.connection_budget(sandbox)
    big = settings(pool_size=config.MAX_POOL_SIZE, max_overflow=config.MAX_OVERFLOW)
    if big.connections_at_once <= budget:
        pytest.skip(f"the largest pool ({big.connections_at_once}) fits this backend's budget of {budget}")

    async def attempt() -> None:
        async with use_sandbox(sandbox):
            await experiment.run_experiment(big)

    with pytest.raises(LabError, match="PLAB_EXPERIMENT_CONNECTIONS"):
        sandbox.run(attempt())
    assert sandbox.run(_gate_running()) == 0, "nothing was admitted"


async def _gate_running() -> int:
    return experiment.experiment_gate().running


# -- what the page's panels call (source/labs/pooling/actions.py) -------------------------------
#: The experiment form as the page hands it over: whole-number boxes send floats (see whole_number_input).
FORM: dict[str, object] = {
    "requests": 10.0,
    "delay_ms": 5.0,
    "pool_size": 2.0,
    "max_overflow": 0.0,
    "pool_timeout_s": 5.0,
    "compare_nullpool": False,
}


def test_the_form_starts_an_experiment_with_whole_numbers(sandbox: Sandbox) -> None:
    runner = jobs.ExperimentRunner.of(sandbox)
    actions.start_experiment(runner, **{**FORM, "compare_nullpool": True})
    eventually(lambda: runner.running() is None, "the experiment to finish")
    assert runner.last is not None, runner.last_note
    chosen = runner.last.pooled.config
    assert (chosen.requests, chosen.pool_size, chosen.max_overflow) == (10, 2, 0)
    assert isinstance(chosen.requests, int), "20.0 from a whole-number box is the whole number 20"
    assert runner.last.nullpool is not None, "the checkbox asked for the NullPool run"


@pytest.mark.parametrize(
    ("label", "values"),
    [
        ("Concurrent requests", {"requests": float("inf")}),
        ("Concurrent requests", {"requests": 2.5e9}),
        ("pool_size", {"pool_size": float("nan")}),
        ("pool_size", {"pool_size": "5"}),
        ("pool_timeout", {"pool_timeout_s": 0.0}),
    ],
)
def test_a_bad_form_value_is_refused_in_words_and_starts_nothing(
    sandbox: Sandbox, label: str, values: dict[str, object]
) -> None:
    runner = jobs.ExperimentRunner.of(sandbox)
    with pytest.raises(InvalidInput, match=label):
        actions.start_experiment(runner, **{**FORM, **values})
    assert runner.job is None, "nothing was started"


def test_initialise_says_which_sample_users_are_new(sandbox: Sandbox) -> None:
    first = sandbox.run(actions.initialise())
    second = sandbox.run(actions.initialise())
    assert first.outcome.text.startswith("Your sandbox is at migration `")
    assert first.outcome.kind == "success"
    assert [line.split("**")[1] for line in first.users] == ["Alex Smith", "Jane Doe"]
    assert all(line.endswith("_created now_") for line in first.users)
    assert all(line.endswith("_already existed_") for line in second.users)


def test_the_pool_reading_says_what_its_overflow_counter_means(sandbox: Sandbox) -> None:
    reading = sandbox.run(actions.read_pool())
    assert reading.status is not None, "the sandbox's engine has a QueuePool on both backends"
    status = reading.status
    assert f"overflow {status.overflow} with size {status.size} means" in reading.said
    assert f"{status.opened} connection" in reading.said


def test_the_notes_follow_the_learners_backend(sandbox: Sandbox, backends: Backends) -> None:
    notes = actions.backend_notes(sandbox)
    if sandbox.backend == "SQLite":
        assert notes.storage is not None
        assert "temporary *file*" in notes.storage
        assert notes.connections is not None
        assert "one writer at a time" in notes.connections
        assert "your own SQLite file" in notes.live_pool
    else:
        assert (notes.storage, notes.connections) == (None, None)
        assert "**shared** PostgreSQL pool" in notes.live_pool
    assert f"holding at most {experiment.connection_budget(sandbox)} connections together" in notes.limits
    if sandbox.backend == "SQLite":  # a visitor's page reads the shared read-only file: not a file of their own
        looking = actions.backend_notes(backends.visitor()).live_pool
        assert "your own SQLite file" not in looking
        assert "read-only SQLite file every visitor's page is drawn from" in looking


def test_the_nullpool_run_is_compared_in_words(sandbox: Sandbox) -> None:
    run = sandbox.run(experiment.run_experiment(settings(requests=4, delay_ms=5), compare_nullpool=True))
    assert run.nullpool is not None
    slower = replace(run.nullpool, wall_s=run.pooled.wall_s + 0.25)
    faster = replace(run.nullpool, wall_s=max(0.0, run.pooled.wall_s - 0.25))
    assert report.versus_pooled(slower, run.pooled).startswith("250 ms slower than the pooled run, which opened 2")
    assert " faster than the pooled run" in report.versus_pooled(faster, run.pooled)
    assert report.failures(run) == []
    failed = replace(run.pooled, errors=3, first_error="refused")
    assert report.failures(replace(run, pooled=failed)) == ["3 requests failed (pool): refused"]
