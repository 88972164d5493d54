"""Lab 2's experiments on both backends: a real pool queues, times out and reuses connections."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from source import Backends, InvalidInput, LabError, Sandbox, use_sandbox
from source.labs.pooling import experiment as pool_lab
from source.labs.pooling.experiment import ExperimentConfig, ExperimentGate, Progress


def config(
    requests: int = 20, delay_ms: float = 20, pool_size: int = 2, max_overflow: int = 0, timeout: float = 10.0
) -> ExperimentConfig:
    return ExperimentConfig(requests, delay_ms, pool_size, max_overflow, timeout)


def test_sample_users_twice_creates_two_then_none(sandbox: Sandbox) -> None:
    first = sandbox.run(pool_lab.initialise_with_samples())
    second = sandbox.run(pool_lab.initialise_with_samples())
    assert [u.name for u in first.users] == ["Alex Smith", "Jane Doe"]
    assert [u.created_now for u in first.users] == [True, True]
    assert [u.created_now for u in second.users] == [False, False]
    assert [u.id for u in second.users] == [u.id for u in first.users], "the same two rows, found again"
    assert first.revision is not None
    assert second.revision == first.revision


def test_pool_status_counts_a_borrowed_connection(sandbox: Sandbox) -> None:
    async def borrow_and_read() -> tuple[pool_lab.PoolStatus | None, pool_lab.PoolStatus | None]:
        async with sandbox.engine.connect():
            during = await pool_lab.read_pool_status(sandbox.engine)
        after = await pool_lab.read_pool_status(sandbox.engine)
        return during, after

    during, after = sandbox.run(borrow_and_read())
    assert during is not None
    assert after is not None
    assert during.size >= 1
    assert during.checked_out >= 1
    assert after.checked_in >= 1, "the connection went back into the pool"
    assert during.opened == during.checked_in + during.checked_out


def test_a_small_pool_makes_requests_queue(sandbox: Sandbox) -> None:
    progress = Progress()
    run = sandbox.run(pool_lab.run_experiment(config(), progress=progress))
    result = run.pooled
    assert run.nullpool is None
    assert (result.completed, result.timeouts, result.errors) == (20, 0, 0)
    assert len(result.waits_ms) == 20
    assert result.max_wait_ms > 0, "18 of the 20 requests had to wait for one of the two connections"
    assert result.connections_opened == 2, "a pool of 2 opens 2 connections and reuses them"
    assert len(result.connect_ms) == 2, "both openings were timed"
    assert all(ms > 0 for ms in result.connect_ms), "both openings were timed"
    assert result.peak_in_use == 2
    assert result.bound_s == pytest.approx(math.ceil(20 / 2) * 0.020)
    assert result.throughput_rps > 0
    assert progress.done == progress.total == 20
    assert progress.in_use == 0
    assert progress.waiting == 0
    assert progress.open_connections == 0, "the experiment's engine was disposed: no connection left open"


def test_the_pool_is_sampled_while_it_fills_and_drains(sandbox: Sandbox) -> None:
    result = sandbox.run(pool_lab.run_experiment(config(requests=30, delay_ms=20, pool_size=2, max_overflow=1))).pooled
    timeline = result.timeline
    assert len(timeline) >= 3
    assert [s.t_ms for s in timeline] == sorted(s.t_ms for s in timeline)
    assert max(s.checked_out for s in timeline) == 3, "pool_size 2 + max_overflow 1, all lent out at the peak"
    assert max(s.overflow_in_use for s in timeline) == 1
    assert all(s.checked_out <= 3 and s.overflow_in_use <= 1 for s in timeline), "never beyond the cap"
    assert max(s.waiting for s in timeline) > 0, "30 requests queued for 3 connections"
    last = timeline[-1]
    assert (last.checked_out, last.waiting) == (0, 0), "drained: every connection back, nobody waiting"


def test_overflow_adds_connections_beyond_pool_size(sandbox: Sandbox) -> None:
    result = sandbox.run(pool_lab.run_experiment(config(pool_size=2, max_overflow=3))).pooled
    assert result.completed == 20
    assert result.peak_in_use == 5, "pool_size 2 + max_overflow 3 lets five requests hold a connection"
    assert 5 <= result.connections_opened <= 20, "overflow connections are opened on demand, never one per request"
    assert result.concurrency == 5


def test_connections_lent_while_queued_is_weighted_by_time(sandbox: Sandbox) -> None:
    result = sandbox.run(pool_lab.run_experiment(config(requests=4, delay_ms=5))).pooled
    sample = pool_lab.PoolSample
    # 3 connections lent for 30 ms while requests wait, then 1 for 10 ms, then nobody waits.
    timeline = [sample(0, 3, 1, 5), sample(30, 1, 0, 2), sample(40, 2, 0, 0), sample(90, 0, 0, 0)]
    assert replace(result, timeline=timeline).lent_while_queued == pytest.approx((3 * 30 + 1 * 10) / 40)
    assert replace(result, timeline=[sample(0, 2, 0, 0), sample(5, 0, 0, 0)]).lent_while_queued is None


def test_a_tiny_pool_timeout_gives_real_timeouts(sandbox: Sandbox) -> None:
    result = sandbox.run(
        pool_lab.run_experiment(config(requests=20, delay_ms=200, pool_size=1, max_overflow=0, timeout=0.1))
    ).pooled
    assert result.timeouts > 0
    assert result.completed >= 1, "the first request got the only connection"
    assert result.completed + result.timeouts == 20
    assert result.errors == 0
    assert len(result.timeout_waits_ms) == result.timeouts
    assert not result.bound_applies, "the bound assumes every request is served"
    assert result.bound_ratio is None


def test_a_new_connection_per_request_opens_one_each_time(sandbox: Sandbox) -> None:
    run = sandbox.run(pool_lab.run_experiment(config(requests=10, delay_ms=5), compare_nullpool=True))
    fresh = run.nullpool
    assert fresh is not None
    assert fresh.strategy == "new connection per request"
    assert fresh.completed == 10
    assert fresh.errors == 0
    assert fresh.connections_opened == 10
    assert len(fresh.connect_ms) == 10
    assert all(ms > 0 for ms in fresh.connect_ms)
    assert fresh.peak_in_use <= 2, "the same cap as the pool it is compared with"
    assert run.pooled.connections_opened == 2


def test_nullpool_concurrency_never_exceeds_its_cap() -> None:
    biggest = config(pool_size=pool_lab.MAX_POOL_SIZE, max_overflow=pool_lab.MAX_OVERFLOW)
    assert biggest.nullpool_concurrency <= pool_lab.MAX_NULLPOOL_CONCURRENCY


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("Concurrent requests", {"requests": 0}),
        ("Concurrent requests", {"requests": pool_lab.MAX_REQUESTS + 1}),
        ("Concurrent requests", {"requests": 2.5}),
        ("Concurrent requests", {"requests": True}),
        ("Concurrent requests", {"requests": "20"}),
        ("Hold time", {"delay_ms": 0}),
        ("Hold time", {"delay_ms": pool_lab.MAX_DELAY_MS + 1}),
        ("Hold time", {"delay_ms": float("nan")}),
        ("pool_size", {"pool_size": 0}),
        ("pool_size", {"pool_size": pool_lab.MAX_POOL_SIZE + 1}),
        ("max_overflow", {"max_overflow": -1}),
        ("max_overflow", {"max_overflow": pool_lab.MAX_OVERFLOW + 1}),
        ("pool_timeout", {"timeout": 0.05}),
        ("pool_timeout", {"timeout": 11}),
        ("pool_timeout", {"timeout": float("inf")}),
    ],
)
def test_out_of_range_inputs_are_refused_with_a_clear_message(field: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput, match=field) as caught:
        config(**kwargs)  # type: ignore[arg-type]
    assert "between" in str(caught.value)


def test_the_limits_themselves_are_accepted() -> None:
    top = config(
        requests=pool_lab.MAX_REQUESTS,
        delay_ms=pool_lab.MAX_DELAY_MS,
        pool_size=pool_lab.MAX_POOL_SIZE,
        max_overflow=pool_lab.MAX_OVERFLOW,
        timeout=pool_lab.MAX_POOL_TIMEOUT_S,
    )
    assert top.connections_at_once == pool_lab.MAX_POOL_SIZE + pool_lab.MAX_OVERFLOW
    low = config(requests=1, delay_ms=1, pool_size=1, max_overflow=0, timeout=pool_lab.MIN_POOL_TIMEOUT_S)
    assert low.requests == 1
    assert isinstance(low.requests, int)


def test_the_gate_limits_experiments_and_connections(sandbox: Sandbox) -> None:
    async def scenario() -> tuple[str, str]:
        gate = ExperimentGate(max_experiments=1, max_connections=10)
        async with gate.admit(2):
            with pytest.raises(LabError) as too_many:
                async with gate.admit(2, timeout=0.05):
                    pass
        budget = ExperimentGate(max_experiments=2, max_connections=10)
        async with budget.admit(8):
            with pytest.raises(LabError) as too_big:
                async with budget.admit(5, timeout=0.05):
                    pass
            async with budget.admit(2, timeout=0.05):
                assert budget.running == 2
                assert budget.connections == 10
        assert budget.running == 0
        assert budget.connections == 0
        return str(too_many.value), str(too_big.value)

    first, second = sandbox.run(scenario())
    assert "try again" in first
    assert "try again" in second


def test_experiments_beyond_the_limit_wait_their_turn(backends: Backends) -> None:
    boxes = [backends.open_sandbox() for _ in range(3)]

    async def in_sandbox(box: Sandbox) -> pool_lab.LabRun:
        async with use_sandbox(box):
            return await pool_lab.run_experiment(config(requests=10, delay_ms=20))

    async def three_learners_at_once() -> tuple[list[pool_lab.LabRun], int, int]:
        gate = pool_lab.experiment_gate()
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
    assert 1 <= most <= pool_lab.MAX_EXPERIMENTS_AT_ONCE
    assert left == 0


def endless() -> ExperimentConfig:
    """Far longer than any test waits: 500 requests through one connection, 200 ms each."""
    return config(requests=pool_lab.MAX_REQUESTS, delay_ms=pool_lab.MAX_DELAY_MS, pool_size=1, timeout=10.0)


def wait_until(check: Callable[[], bool], what: str, limit_s: float = 10.0) -> None:
    """Poll ``check`` (a liveness bound, not a speed target: the experiment alone would run for a minute)."""
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"still waiting for: {what}"
        time.sleep(0.01)


def gate_running(sandbox: Sandbox) -> int:
    async def read() -> int:
        return pool_lab.experiment_gate().running

    return sandbox.run(read())


def test_cancelling_an_abandoned_experiment_frees_its_slot_and_connections(sandbox: Sandbox) -> None:
    progress = Progress()
    future = pool_lab.start(sandbox, pool_lab.run_experiment(endless(), progress=progress))
    wait_until(lambda: progress.in_use == 1, "the experiment to hold its connection")
    assert gate_running(sandbox) == 1
    assert progress.open_connections == 1

    future.cancel()  # what wait_with_progress does when Streamlit stops the page's script

    wait_until(lambda: gate_running(sandbox) == 0, "the gate slot to be given back")
    wait_until(lambda: progress.open_connections == 0, "the experiment's connection to be closed")
    assert progress.phase == "Stopped", "it was stopped, not run to the end"


def test_wait_with_progress_cancels_the_experiment_when_the_page_stops(sandbox: Sandbox) -> None:
    progress = Progress()
    future = pool_lab.start(sandbox, pool_lab.run_experiment(endless(), progress=progress))

    class PageStopped(BaseException):
        """Stands in for Streamlit's StopException / RerunException (both BaseException)."""

    def tick() -> None:
        if progress.in_use:
            raise PageStopped

    with pytest.raises(PageStopped):
        pool_lab.wait_with_progress(future, tick, every_s=0.01)
    assert future.cancelled()
    wait_until(lambda: gate_running(sandbox) == 0, "the gate slot to be given back")
    wait_until(lambda: progress.open_connections == 0, "the experiment's connection to be closed")


def test_a_new_experiment_in_the_same_sandbox_stops_the_previous_one(sandbox: Sandbox) -> None:
    first_progress = Progress()
    first = pool_lab.start(sandbox, pool_lab.run_experiment(endless(), progress=first_progress))
    wait_until(lambda: first_progress.in_use == 1, "the first experiment to hold its connection")

    second = sandbox.run(pool_lab.run_experiment(config(requests=10, delay_ms=5)))

    assert second.pooled.completed == 10
    with pytest.raises(LabError, match="newer one started"):
        first.result(timeout=10)
    assert first_progress.phase == "Stopped"
    assert first_progress.open_connections == 0
    assert first_progress.in_use == 0
    assert gate_running(sandbox) == 0


def test_the_page_waits_longer_than_every_stage_of_an_experiment() -> None:
    stages = pool_lab.REPLACE_WAIT_S + pool_lab.ADMISSION_TIMEOUT_S + pool_lab.EXPERIMENT_TIME_LIMIT_S
    assert stages < pool_lab.WAIT_TIMEOUT_S, "otherwise the page would give up on an experiment still in time"
