"""A learner's progress (labs visited, checks passed, the Create exercise), kept in their sandbox.

Stored in the sandbox's Redis namespace (see :mod:`source.learning.store` for why), so it
survives a page refresh with the sandbox and is private to the learner.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pydantic import BaseModel

from source.learning import store

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

VISITED = "progress:visited"
CHECKS = "progress:checks"  # hash: question id -> lab
EXERCISE = "progress:exercise"  # the summary of the last design that passed


class Progress(BaseModel):
    visited: set[str] = set()
    passed: dict[str, set[str]] = {}  # lab -> ids of the questions answered correctly
    exercise: str | None = None

    def passed_in(self, lab: str) -> int:
        return len(self.passed.get(lab, set()))

    @property
    def passed_total(self) -> int:
        return sum(len(ids) for ids in self.passed.values())


async def visit(sandbox: Sandbox, page: str) -> None:
    await store.ready(sandbox)
    async with asyncio.timeout(store.REDIS_TIMEOUT_S):
        await store.client(sandbox).sadd(VISITED, page)


async def pass_check(sandbox: Sandbox, lab: str, question_id: str) -> None:
    """Remember a correct answer. A later wrong answer does not take it back."""
    await store.ready(sandbox)
    async with asyncio.timeout(store.REDIS_TIMEOUT_S):
        await store.client(sandbox).hset(CHECKS, question_id, lab)


async def complete_exercise(sandbox: Sandbox, summary: str) -> None:
    await store.ready(sandbox)
    async with asyncio.timeout(store.REDIS_TIMEOUT_S):
        await store.client(sandbox).set(EXERCISE, summary[:500])


async def load(sandbox: Sandbox) -> Progress:
    await store.ready(sandbox)
    redis = store.client(sandbox)
    async with asyncio.timeout(store.REDIS_TIMEOUT_S):
        visited = await redis.smembers(VISITED)
        checks = await redis.hgetall(CHECKS)
        exercise = await redis.get(EXERCISE)
    passed: dict[str, set[str]] = {}
    for question_id, lab in checks.items():
        passed.setdefault(lab, set()).add(question_id)
    return Progress(visited=set(visited), passed=passed, exercise=exercise)
