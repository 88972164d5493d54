"""Lab 4's demo for the instructor: a cold cache, counters at zero."""

from __future__ import annotations

from source.labs.caching import actions
from source.learning.presets import Preset
from source.services import users


async def cold_cache() -> str:
    """Alex and Jane with a score each, every user's cached keys deleted and the counters zeroed."""
    await actions.add_samples()
    everyone = await users.list_users()
    for user in everyone:
        await actions.invalidate(user.id)
    await actions.reset_counts()
    return f"Cold cache: {len(everyone)} user(s), none cached, counters at zero: the next read of each is a miss."


PRESETS = (
    Preset(
        "lab4_cold",
        "lab4",
        "Lab 4 · A cold cache",
        "Alex and Jane with a score each, none of their keys cached, the hit and miss counters at zero.",
        cold_cache,
    ),
)
