"""Redis going down is not an error: every cache call is bounded in time, and after a failure
the cache is bypassed for a cool-down, then tried again by a single probe.

The cache's calls also share the sandbox's :class:`~source.platform.redis_budget.RedisBudget`
with everything else a click asks of Redis (its counters, the learner's progress): when any of
them has just gone unanswered, a read does not even try, and is *bypassed* at once.

Without the time bound, a black-holed Redis (it accepts the connection and never answers)
would hold every read for the client's socket timeout. Without the cool-down, every read
during an outage would pay that bound again. With both, a read costs at most one bound
while Redis is failing and nothing extra while the cache is bypassed; when Redis answers
the probe, caching resumes by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from source.platform.connect import describe
from source.platform.errors import ServiceUnavailable
from source.platform.redis_budget import RedisBudget, RedisUnanswered

T = TypeVar("T")

#: What an unreachable, refusing or silent Redis raises (asyncio.timeout raises TimeoutError).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


class CacheUnavailable(ServiceUnavailable):
    """The cache could not be used for this call; a read falls back to the database."""

    def __init__(self, bypassed: bool, reason: str) -> None:
        super().__init__(reason)
        self.bypassed = bypassed
        self.reason = reason

    def __str__(self) -> str:
        if self.bypassed:
            return f"The cache is bypassed for a moment after Redis failed ({self.reason})."
        return f"Redis did not answer within the cache's time limit ({self.reason})."


class Breaker:
    """A circuit breaker: closed (use Redis), open (bypass it), probing (one caller tries)."""

    def __init__(self, cooldown_s: float = 1.0) -> None:
        self.cooldown_s = cooldown_s
        self.open_until = 0.0
        self.tripped = False
        self.last_error: str | None = None
        self.failures = 0

    @property
    def state(self) -> str:
        if not self.tripped:
            return "closed"
        return "open" if time.monotonic() < self.open_until else "probing"

    def allows(self) -> bool:
        if not self.tripped:
            return True
        now = time.monotonic()
        if now < self.open_until:
            return False
        self.open_until = now + self.cooldown_s  # this caller probes; the others keep bypassing
        return True

    def failed(self, exc: BaseException) -> None:
        self.tripped = True
        self.failures += 1
        self.open_until = time.monotonic() + self.cooldown_s
        self.last_error = describe(exc)

    def succeeded(self) -> None:
        self.tripped = False
        self.open_until = 0.0

    def reset(self) -> None:
        self.succeeded()
        self.last_error = None


async def guarded(
    breaker: Breaker, timeout_s: float, op: Callable[[], Awaitable[T]], budget: RedisBudget | None = None
) -> T:
    """Run one Redis call within ``timeout_s``, through the breaker (and the click's ``budget``, if the
    call goes to the sandbox's own Redis); raise CacheUnavailable if not."""
    if not breaker.allows():
        raise CacheUnavailable(True, breaker.last_error or "Redis is being bypassed")
    try:
        if budget is not None:
            result = await budget.call(op, timeout_s=timeout_s)
        else:
            async with asyncio.timeout(timeout_s) as deadline:
                result = await op()
            if deadline.expired():  # the client swallowed the timeout's cancellation: no answer came
                raise TimeoutError
    except RedisUnanswered as exc:  # another call found Redis silent a moment ago: this one skips it
        raise CacheUnavailable(True, exc.reason) from exc
    except OUTAGE_ERRORS as exc:
        breaker.failed(exc)
        raise CacheUnavailable(False, describe(exc)) from exc
    except RedisError as exc:  # Redis answered with a refusal: not an outage, still no cache here
        raise CacheUnavailable(False, describe(exc)) from exc
    if breaker.tripped:
        breaker.succeeded()
    return result
