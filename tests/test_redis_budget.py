"""The Redis budget a click's calls share, on its own: a late answer is not an outage, a silent Redis costs one wait.

No server here: the "Redis" is a coroutine that answers, answers late, refuses or never answers,
so each state of the budget (closed, suspect while its probe decides, open until it answers)
is reached on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from redis.exceptions import ResponseError

from source.platform.redis_budget import RedisBudget, RedisUnanswered
from tests.waiting import eventually_async


class FakeRedis:
    """A server whose PING answers at once, or never (``frozen``)."""

    def __init__(self) -> None:
        self.frozen = False
        self.pings = 0

    async def ping(self) -> bool:
        self.pings += 1
        if self.frozen:
            await asyncio.sleep(3600)  # no answer: the probe's own limit gives up on it
        return True


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def silent() -> None:
    await asyncio.sleep(3600)  # a frozen Redis: the answer never comes


async def answered() -> str:
    return "OK"


def test_one_late_answer_costs_one_wait_and_the_probe_clears_it() -> None:
    """A busy machine answered one call late: the probe hears Redis at once, and the next call goes ahead."""

    async def scenario() -> None:
        redis = FakeRedis()
        budget = RedisBudget(redis.ping, call_s=0.05)
        with pytest.raises(TimeoutError):
            await budget.call(silent)
        assert budget.timed_out == 1
        assert await budget.call(answered) == "OK", "the probe heard Redis: this call was sent"
        assert (budget.open, budget.since, budget.skipped) == (False, None, 0)
        assert redis.pings == 1

    run(scenario)


def test_a_frozen_redis_opens_the_budget_and_calls_then_skip_it_at_once() -> None:
    async def scenario() -> None:
        redis = FakeRedis()
        redis.frozen = True
        budget = RedisBudget(redis.ping, call_s=0.05)
        with pytest.raises(TimeoutError):
            await budget.call(silent)
        with pytest.raises(RedisUnanswered, match="Redis is not answering right now"):
            await budget.call(answered)  # waits for the probe's verdict (within its own limit), then skips

        async def opened() -> bool:
            return budget.open

        await eventually_async(opened, "the probe to get no answer either")
        sent: list[str] = []

        async def recorded() -> str:
            sent.append("sent")
            return "OK"

        for _ in range(5):
            with pytest.raises(RedisUnanswered):
                await budget.call(recorded)
        with pytest.raises(RedisUnanswered):
            budget.check()
        assert sent == [], "nothing is sent while the budget is open"
        assert budget.timed_out == 1, "one call waited for the frozen Redis, and only one"
        assert budget.skipped >= 6
        redis.frozen = False

        async def closed() -> bool:
            return not budget.open and budget.since is None

        await eventually_async(closed, "the probe to hear Redis again")
        assert await budget.call(recorded) == "OK"
        assert sent == ["sent"]

    run(scenario)


def test_an_error_reply_is_an_answer_not_an_outage() -> None:
    async def scenario() -> None:
        budget = RedisBudget(FakeRedis().ping, call_s=0.05)

        async def refused() -> None:
            raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

        with pytest.raises(ResponseError):
            await budget.call(refused)
        assert (budget.open, budget.since, budget.timed_out) == (False, None, 0)
        assert await budget.call(answered) == "OK"

    run(scenario)


def test_the_health_check_opens_the_budget_at_once() -> None:
    """The app's health check already waited for its PING: no learner's call needs to find it out again."""

    async def scenario() -> None:
        redis = FakeRedis()
        redis.frozen = True
        budget = RedisBudget(redis.ping, call_s=0.05)
        budget.failed(ConnectionError("no answer within 2 s"), confirmed=True)
        assert budget.open
        with pytest.raises(RedisUnanswered):
            await budget.call(answered)
        assert budget.timed_out == 0
        redis.frozen = False

        async def closed() -> bool:
            return not budget.open

        await eventually_async(closed, "the probe to hear Redis again")

    run(scenario)
