"""Lab 4's demo for the instructor: a cold cache, counters at zero."""

from __future__ import annotations

from source.domain.repositories import UserRepository
from source.labs.caching import actions
from source.labs.caching.sandbox_cache import cache_for
from source.learning.presets import Preset
from source.platform.context import current_sandbox
from source.platform.session import get_session


async def cold_cache() -> str:
    """Alex and Jane with a score each, every cached user and latest score deleted, the counters zeroed.

    The users are counted in the database (a page's list of users stops at a limit), and every
    cached key goes in one ``SCAN`` + ``UNLINK`` however many users there are.
    """
    await actions.add_samples()
    deleted = await cache_for(current_sandbox()).forget_users()
    async with get_session() as session:
        users = await UserRepository(session).count()
    await actions.reset_counts()
    return (
        f"Cold cache: {users:,} user(s), none cached, counters at zero: the next read of each is a miss "
        f"({deleted:,} cached key(s) deleted)."
    )


PRESETS = (
    Preset(
        "lab4_cold",
        "lab4",
        "Lab 4 · A cold cache",
        "Alex and Jane with a score each, none of their keys cached, the hit and miss counters at zero.",
        cold_cache,
    ),
)
