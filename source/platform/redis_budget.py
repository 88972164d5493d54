"""One short budget for every Redis call a click makes: a Redis that does not answer costs one wait, not one per call.

A frozen Redis (a stopped process, a hung host) accepts commands and never answers. A page
that gives each of its Redis calls its own time limit waits for every one of them: the
cache's lookup, its counters, the learner's progress, the measurement the knowledge check
reads. That was one to eleven seconds a click. So every such call goes through the
:class:`RedisBudget` of the Redis server it talks to, shared by every sandbox on that server:

* each call waits at most a short time (:data:`CALL_S`, or the caller's own shorter limit);
* the first call that gets no answer in time makes Redis *suspect*: a probe (``PING``, bounded
  by :data:`PROBE_S`) starts at once, and calls meanwhile wait for its verdict (within their
  own limit) instead of sending anything. A busy machine that answered one call late costs
  them a millisecond;
* if the probe gets no answer either, the budget is *open*: every call fails at once, without
  sending anything, so no other call of that click, and no other learner's page, waits for
  Redis again. The probe goes on in the background and closes the budget as soon as Redis
  answers. No click pays for it.

So a click waits for a frozen Redis at most once (its call's limit, then the probe's), and only
the click that finds it frozen. The app's health check, which waits longer for its ``PING``,
opens the budget too when it gets no answer.

Only a server that does not answer (a timeout, a refused or dropped connection) counts; a Redis
that answers with an error reply (a wrong type, a refused command) is working, and its error
goes to the caller as it is. Work that may rightly wait longer (Lab 5's blocking reads, a
sandbox's release) does not use the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from source.platform.connect import in_short
from source.platform.errors import ServiceUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

#: The longest one Redis call of a click may wait (seconds): far above a healthy answer, even on a busy machine.
CALL_S = 0.5
#: How long the probe's ``PING`` may take (seconds): a little more than a call, so that a busy machine is not
#: taken for a frozen Redis; and how long it waits between two tries while Redis does not answer.
PROBE_S = 0.75
PROBE_EVERY_S = 0.5

#: What a server that cannot be reached or does not answer raises (``asyncio.timeout`` raises TimeoutError).
NO_ANSWER: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


class RedisUnanswered(ServiceUnavailable):
    """Redis did not answer a call just now, so this call was not even sent (it would only have waited)."""

    def __init__(self, since: float, reason: str) -> None:
        self.since = since
        self.reason = reason
        at = datetime.fromtimestamp(since).strftime("%H:%M:%S")
        super().__init__(
            f"Redis is not answering right now (nothing since {at}: {reason}), so this step skipped it instead of "
            "waiting; it is tried again as soon as Redis answers."
        )


class RedisBudget:
    """The gate in front of one Redis server: closed, *suspect* while a probe decides, or open until it answers."""

    def __init__(self, ping: Callable[[], Awaitable[Any]], *, call_s: float = CALL_S) -> None:
        self._ping = ping
        self.call_s = call_s
        #: When Redis stopped answering (``time.time()``), while it is suspect or open; else None.
        self.since: float | None = None
        self.reason = ""
        #: A probe got no answer either: calls fail at once until one does.
        self.open = False
        #: Calls that waited until their limit and got no answer; calls not sent (Redis suspect or open).
        self.timed_out = 0
        self.skipped = 0
        self._probe: asyncio.Task[None] | None = None
        self._verdict: asyncio.Event | None = None  # set when the first probe has decided, either way

    async def call(self, op: Callable[[], Awaitable[T]], *, timeout_s: float | None = None) -> T:
        """``op()``'s answer within ``timeout_s`` (at most :attr:`call_s` when not given).

        Raises :class:`RedisUnanswered` without sending anything while Redis is known not to
        answer, and the original error (a timeout, a refused connection) for the call that
        finds it out.
        """
        limit = self.call_s if timeout_s is None else timeout_s
        if self.since is not None:
            await self._await_verdict(limit)
        try:
            async with asyncio.timeout(limit) as deadline:
                result = await op()
            if deadline.expired():  # the client swallowed the cancellation: no answer came in time
                raise TimeoutError
        except NO_ANSWER as exc:
            if isinstance(exc, TimeoutError | RedisTimeoutError):
                self.timed_out += 1
            self.failed(exc)
            raise
        return result

    def check(self) -> None:
        """Raise :class:`RedisUnanswered` at once while the budget is open (nothing is sent, nothing waits)."""
        if self.open and self.since is not None:
            self.skipped += 1
            raise RedisUnanswered(self.since, self.reason)

    async def _await_verdict(self, limit: float) -> None:
        """Redis is suspect: wait (at most ``limit``) for the probe; go ahead only if it heard Redis."""
        self.check()
        if self._verdict is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(limit):
                    await self._verdict.wait()
        if self.since is not None:
            self.skipped += 1
            raise RedisUnanswered(self.since, self.reason)

    def failed(self, exc: BaseException, *, confirmed: bool = False) -> None:
        """Redis did not answer: suspect it, and probe (``confirmed``: it is known already, the budget opens)."""
        if self.since is None:
            self.since, self.reason, self.open = time.time(), in_short(exc), False
            self._verdict = asyncio.Event()
        if confirmed:
            self._decide(answered=False)
        if self._probe is None or self._probe.done():
            with contextlib.suppress(RuntimeError):  # no running loop (a synchronous caller): the next call probes
                self._probe = asyncio.get_running_loop().create_task(self._probe_until_answered())

    def _decide(self, *, answered: bool) -> None:
        if answered:
            if self.open and self.since is not None:
                log.warning("Redis answers again after %.1f s", time.time() - self.since)
            self.since, self.open = None, False
        elif not self.open:
            self.open = True
            log.warning("Redis is not answering (%s): calls skip it until it answers a PING", self.reason)
        if self._verdict is not None:
            self._verdict.set()
            self._verdict = None

    async def _probe_until_answered(self) -> None:
        while self.since is not None:
            try:
                async with asyncio.timeout(PROBE_S):
                    await self._ping()
            except Exception as exc:  # noqa: BLE001 - still not answering: try again in a moment
                self.reason = in_short(exc)
                self._decide(answered=False)
                await asyncio.sleep(PROBE_EVERY_S)
                continue
            self._decide(answered=True)


_budgets: weakref.WeakKeyDictionary[Any, RedisBudget] = weakref.WeakKeyDictionary()


def budget_of(client: Any) -> RedisBudget:
    """The budget of the Redis server ``client`` talks to: one per shared client, made on first use.

    Every sandbox wraps the process's one shared client, so every learner on that server shares
    one budget: once a call found Redis frozen, nobody's page waits for it again.
    """
    found = _budgets.get(client)
    if found is None:
        ref = weakref.ref(client)

        async def ping() -> Any:
            alive = ref()
            if alive is None:
                return None  # the client is gone: nothing left to wait for
            return await alive.ping()

        found = _budgets.setdefault(client, RedisBudget(ping))
    return found
