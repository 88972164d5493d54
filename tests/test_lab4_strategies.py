"""Lab 4's strategy lab on both backends: the same workload under five strategies; stale reads
for TTL-only, none for the strategies that invalidate or write through; bounded inputs."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from source import Sandbox
from source.domain.errors import InvalidInput, LabError
from source.domain.models import User
from source.labs.caching.jobs import StrategyRunner
from source.labs.caching.strategies import (
    EMAIL_DOMAIN,
    MAX_KEYS,
    MAX_OPERATIONS,
    STRATEGIES,
    generate,
    parse_workload,
    run_strategy_lab,
)
from source.platform.jobs import Progress
from source.platform.session import get_session
from tests.waiting import eventually


def leftovers(sandbox: Sandbox) -> int:
    """The workload's users still in the sandbox."""

    async def count() -> int:
        async with get_session() as session:
            return int(await session.scalar(select(func.count()).where(User.email.like(f"%{EMAIL_DOMAIN}"))) or 0)

    return sandbox.run(count())


@pytest.mark.usefixtures("patient_cache")  # not about timeouts (see conftest)
def test_same_workload_stale_only_without_invalidation(sandbox: Sandbox) -> None:
    config = parse_workload(operations=400, keys=10, read_share=0.8, skew=1.0, ttl_ms=60_000, seed=3)
    progress = Progress()
    run = sandbox.run(run_strategy_lab(config, progress), timeout=240)
    assert progress.done == progress.total == 400 * len(STRATEGIES)
    by_name = {r.strategy: r for r in run.results}
    assert list(by_name) == list(STRATEGIES)
    ops = generate(config)
    reads, writes = sum(op.kind == "read" for op in ops), sum(op.kind == "write" for op in ops)
    for result in run.results:
        assert (result.reads, result.writes) == (reads, writes), "every strategy faced the same operations"
    assert by_name["cache-aside, TTL only"].stale_reads > 0, "a TTL longer than the run hides every write"
    for name in ("no cache", "cache-aside + invalidation", "write-through", "write-behind"):
        assert by_name[name].stale_reads == 0, by_name[name]
    for name in ("no cache", "cache-aside + invalidation", "write-through"):
        assert by_name[name].behind_acknowledged == 0, name
    none = by_name["no cache"]
    assert none.hits == 0
    assert none.db_reads == reads, "without a cache every read is one SELECT"
    assert none.db_writes == writes
    assert by_name["cache-aside + invalidation"].db_reads < reads
    assert by_name["write-through"].hit_ratio >= by_name["cache-aside + invalidation"].hit_ratio
    behind = by_name["write-behind"]
    assert behind.db_writes < writes, "write-behind batches and coalesces its writes"
    assert behind.max_unflushed >= 1
    assert leftovers(sandbox) == 0, "the workload's users are removed after the run"


@pytest.mark.usefixtures("patient_cache")  # not about timeouts (see conftest)
def test_short_ttl_bounds_staleness(sandbox: Sandbox) -> None:
    config = parse_workload(operations=200, keys=5, read_share=0.9, skew=0.0, ttl_ms=10, seed=11)
    run = sandbox.run(run_strategy_lab(config, Progress(), ("cache-aside, TTL only",)), timeout=120)
    result = run.results[0]
    assert result.reads + result.writes == 200
    assert result.db_reads > 5, "a 10 ms TTL sends reads back to the database"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"operations": MAX_OPERATIONS + 1}, "Operations: input should be less than or equal to 3000"),
        ({"keys": 0}, "Keys: input should be greater than or equal to 1"),
        ({"keys": MAX_KEYS + 1}, "Keys: input should be less than or equal to 200"),
        ({"read_share": 1.5}, "Share of reads"),
        ({"ttl_ms": 0}, "TTL (ms): input should be greater than or equal to 10"),
        ({"ttl_ms": -100}, "TTL (ms)"),
        ({"skew": -1}, "Zipf skew s"),
    ],
)
def test_workload_out_of_range_is_refused(values: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_workload(**values)
    assert message in str(caught.value)


def test_unknown_strategy_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidInput, match="Choose one or more"):
        sandbox.run(run_strategy_lab(parse_workload(), Progress(), ("write-around",)))


def test_zipf_skew_concentrates_traffic() -> None:
    flat = generate(parse_workload(operations=2000, keys=20, skew=0.0))
    steep = generate(parse_workload(operations=2000, keys=20, skew=2.0))
    top = max(sum(op.key == k for op in steep) for k in range(20))
    assert top > 2000 * 0.5, "with s = 2 the most popular key takes over half the traffic"
    assert max(sum(op.key == k for op in flat) for k in range(20)) < 2000 * 0.1


@pytest.mark.usefixtures("patient_cache")  # not about timeouts (see conftest)
def test_the_run_as_a_job_keeps_its_result_refuses_a_second_and_stops(sandbox: Sandbox) -> None:
    runner = StrategyRunner.of(sandbox)
    small = {"operations": 100, "keys": 5, "ttl_ms": 60_000}
    job = runner.start(["no cache"], **small)
    with pytest.raises(LabError, match="already going"):
        runner.start(["no cache"], **small)
    eventually(lambda: runner.running() is None, "the strategy run to end")
    assert job.progress.done == job.progress.total == 100
    assert runner.last is not None
    assert [r.strategy for r in runner.last.results] == ["no cache"]
    assert StrategyRunner.of(sandbox) is runner, "a learner who comes back finds the same runner and its result"

    big = runner.start(list(STRATEGIES), operations=MAX_OPERATIONS, keys=20, ttl_ms=60_000)
    eventually(lambda: big.progress.done > 0, "the big run to get going")
    assert runner.stop()
    eventually(lambda: runner.running() is None, "the stopped run to end")
    assert big.progress.done < big.progress.total
    assert runner.last_note is not None
    assert runner.last_note.startswith(f"The run was stopped after {big.progress.done:,} of {big.progress.total:,}")
    assert "previous result is kept" in runner.last_note
    assert not runner.last_failed, "a stop is not a failure"
    assert [r.strategy for r in runner.last.results] == ["no cache"], "the previous result is kept"
    assert leftovers(sandbox) == 0, "the stopped run removed its users"


@pytest.mark.parametrize(
    ("strategies", "workload", "message"),
    [
        ([], {}, "Choose one or more"),
        (["write-around"], {}, "Choose one or more"),
        (list(STRATEGIES), {"operations": MAX_OPERATIONS + 1}, "Operations: input should be less than or equal"),
    ],
)
def test_a_bad_run_is_refused_before_it_starts(
    sandbox: Sandbox, strategies: list[str], workload: dict[str, int], message: str
) -> None:
    runner = StrategyRunner.of(sandbox)
    with pytest.raises(InvalidInput, match=message):
        runner.start(strategies, **workload)
    assert runner.running() is None, "nothing was started"
