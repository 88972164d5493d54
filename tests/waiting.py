"""Waiting on a condition, never on a fixed budget: the one helper every test uses to wait.

The machine is shared and has two cores: how long something takes varies many-fold. A test
waits until what it expects has happened, with a generous limit that only a real failure
reaches, and then says what never happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from streamlit.testing.v1 import AppTest

T = TypeVar("T")

#: How long a test waits for something that should happen (seconds): far past any loaded machine.
WITHIN_S = 60.0


def eventually(condition: Callable[[], T], what: str, *, within_s: float = WITHIN_S, every_s: float = 0.05) -> T:
    """Call ``condition`` until it returns something truthy, and return that; fail naming ``what`` past ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting, after {within_s:g} s, for: {what}")
        time.sleep(every_s)


async def eventually_async(
    condition: Callable[[], Awaitable[T]], what: str, *, within_s: float = WITHIN_S, every_s: float = 0.05
) -> T:
    """:func:`eventually` on an event loop: ``condition`` is awaited, and the wait never blocks the loop."""
    deadline = time.monotonic() + within_s
    while True:
        found = await condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting, after {within_s:g} s, for: {what}")
        await asyncio.sleep(every_s)


def rerun_until(
    at: AppTest, condition: Callable[[AppTest], object], what: str, *, within_s: float = WITHIN_S
) -> AppTest:
    """Rerun the page until ``condition(at)`` holds: in AppTest a job's live fragment never redraws by itself."""

    def rerun() -> object:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return condition(at)

    if not condition(at):
        eventually(rerun, what, within_s=within_s)
    return at
