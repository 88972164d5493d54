"""Lab 5's demos for the instructor: a backlog to drain, and a publisher meeting a broker that is down."""

from __future__ import annotations

import contextlib
import time

from source.domain.errors import InvalidInput
from source.labs.outbox import actions, writes
from source.learning.presets import Preset
from source.services.samples import create_sample_users


async def _story_user() -> str:
    """Alex Smith's id, created if needed."""
    return (await create_sample_users())[0][1]


async def backlog() -> str:
    """5,000 scores and their events, written by Lab 5's own business function in three transactions."""
    user_id, started = await _story_user(), time.perf_counter()
    for count in (2000, 2000, 1000):
        await writes.calculate_many_scores(user_id, count)
    took = (time.perf_counter() - started) * 1000
    return f"A backlog of 5,000 pending events (each with its score) waits for the publisher ({took:,.0f} ms)."


async def broker_down() -> str:
    """The publisher's broker points where nothing listens; 20 new events; the publisher starts and fails."""
    user_id = await _story_user()
    await actions.set_broker_down(True)
    await writes.calculate_many_scores(user_id, 20)
    with contextlib.suppress(InvalidInput):  # already running: it will meet the dead broker all the same
        await actions.start_publisher()
    return (
        "The broker is down and the publisher is running: on Lab 5's page the breaker opens, the events wait "
        "without spending a try, and the publisher probes the broker with a growing pause."
    )


PRESETS = (
    Preset(
        "lab5_backlog",
        "lab5",
        "Lab 5 · A backlog of 5,000 pending events",
        "5,000 SCORE_CALCULATED events still pending in the outbox, for the publisher to drain.",
        backlog,
    ),
    Preset(
        "lab5_broker_down",
        "lab5",
        "Lab 5 · The broker is down",
        "The publisher's broker points where nothing listens, 20 new events wait, and the publisher runs: "
        "the breaker opens and the events wait, spending no try, until the broker is back.",
        broker_down,
    ),
)
