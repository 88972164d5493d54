"""Where the learning layer keeps its state: the learner's own Redis keys.

Progress and measurements live in the sandbox's Redis namespace, not in its database:
they are a few small records per learner, need no schema (so no migration competes with
the labs' own), and go when the sandbox goes (release or *Reset my sandbox*), exactly
like the learner's data. They survive a page refresh because the sandbox does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from source.platform.errors import ServiceUnavailable

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

#: How long any learning-layer Redis call may take before it is given up (seconds).
REDIS_TIMEOUT_S = 2.0


def client(sandbox: Sandbox) -> Any:
    """The sandbox's namespaced Redis client: plain key names ("progress:checks") stay inside its prefix."""
    return sandbox.redis


async def ready(sandbox: Sandbox) -> None:
    """Refuse at once when the app's health check says Redis is not answering.

    The check is shared and cached for a few seconds, so a page with a knowledge check and
    the sidebar's progress waits for Redis at most once, instead of once per call.
    """
    health = await sandbox.health()
    if not health.redis_ok:
        raise ServiceUnavailable("Redis is not answering right now, so your progress cannot be read or saved.")
