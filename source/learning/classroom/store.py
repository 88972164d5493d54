"""The Redis a class lives in: the process's one shared client, behind the short budget every click shares.

Not a sandbox's namespaced client: a class belongs to no learner. On the embedded default it is the
process's in-process fakeredis; with ``REDIS_URL`` it is that Redis, so every app process sees the
same classes. Every call goes through the server's :class:`~source.platform.redis_budget.RedisBudget`:
a Redis that does not answer costs a learner's click one short wait at most, and the instructor's
dashboard says so in a sentence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import NoScriptError

from source.platform.errors import ServiceUnavailable
from source.platform.redis_budget import NO_ANSWER, RedisBudget, budget_of

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

T = TypeVar("T")


@dataclass(frozen=True)
class Script:
    """A Lua script, sent by its SHA1 (and in full once, when the server does not know it yet)."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest())


class ClassStore:
    """Calls on the shared Redis, each within the budget (``timeout_s``: a longer limit for the instructor)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.budget: RedisBudget = budget_of(client)

    @classmethod
    def of(cls, sandbox: Sandbox) -> ClassStore:
        """The store a sandbox's host shares with every other sandbox (not the sandbox's own namespace)."""
        return cls(sandbox.host.redis)

    async def call(self, op: Callable[[Any], Awaitable[T]], *, timeout_s: float | None = None) -> T:
        """``op(client)`` within the budget; :class:`ServiceUnavailable` (a sentence) when Redis does not answer."""
        self.budget.check()
        try:
            return await self.budget.call(lambda: op(self.client), timeout_s=timeout_s)
        except NO_ANSWER as exc:
            raise ServiceUnavailable(
                "Redis is not answering right now (no answer in time), so the class was not read or updated; "
                "it is tried again as soon as Redis answers."
            ) from exc

    async def script(
        self, script: Script, keys: Sequence[str], args: Sequence[Any], *, timeout_s: float | None = None
    ) -> Any:
        """Run ``script`` atomically on ``keys`` (one round trip once the server has cached it)."""

        async def run(client: Any) -> Any:
            try:
                return await client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                return await client.eval(script.source, len(keys), *keys, *args)

        return await self.call(run, timeout_s=timeout_s)
