"""Where the learning layer keeps its state: the learner's own Redis keys, read and written within a click's budget.

Progress and measurements live in the sandbox's Redis namespace, not in its database:
they are a few small records per learner, need no schema (so no migration competes with
the labs' own), and go when the sandbox goes (release or *Reset my sandbox*), exactly
like the learner's data. They survive a page refresh because the sandbox does.

Every call goes through the sandbox's :class:`~source.platform.redis_budget.RedisBudget`, the
one short budget a click's Redis calls share: saving progress or a measurement never makes a
page wait for a Redis that does not answer longer than the first call that finds it out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from source.platform.errors import ServiceUnavailable
from source.platform.redis_budget import NO_ANSWER

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

T = TypeVar("T")

#: How long a learning-layer Redis call outside :func:`call` may take (the Create exercise's probe uses it).
REDIS_TIMEOUT_S = 2.0


def client(sandbox: Sandbox) -> Any:
    """The sandbox's namespaced Redis client: plain key names ("progress:checks") stay inside its prefix."""
    return sandbox.redis


async def ready(sandbox: Sandbox) -> None:
    """Refuse at once when Redis is known not to answer (a call and its probe, or the app's health check, found it so).

    Never waits: the sandbox's Redis budget already knows, and its probe, in the background,
    tells it when Redis answers again.
    """
    sandbox.redis_budget.check()


async def call(sandbox: Sandbox, op: Callable[[Any], Awaitable[T]]) -> T:
    """``op(redis)`` on the sandbox's client, within the click's Redis budget (one round trip, ideally).

    Raises :class:`~source.platform.errors.ServiceUnavailable` (with a sentence for the page)
    when Redis is known not to answer, or did not answer this call in time.
    """
    await ready(sandbox)
    try:
        return await sandbox.redis_budget.call(lambda: op(client(sandbox)))
    except NO_ANSWER as exc:
        raise ServiceUnavailable(
            "Redis is not answering right now (no answer in time), so this was not read or saved; Redis is skipped "
            "until it answers again."
        ) from exc
