"""Instructor presets: one click sets up a lab's demo in the instructor's own sandbox.

A preset calls its lab's own source functions and returns one sentence saying what is now
there. Each lab lists its presets in its own ``presets.py``; the course (``source/course.py``)
collects them, and the instructor page finds them there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    id: str
    lab: str
    title: str
    explanation: str
    run: Callable[[], Awaitable[str]]
