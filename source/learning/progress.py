"""A learner's progress (labs visited, checks passed, the Create exercise), kept in their sandbox.

Stored in the sandbox's Redis namespace (see :mod:`source.learning.store` for why), so it
survives a page refresh with the sandbox and is private to the learner. Every read and write
is one call within the click's Redis budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from source.learning import store

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

VISITED = "progress:visited"
CHECKS = "progress:checks"  # hash: question id -> lab
REVEALED = "progress:revealed"  # hash: question id -> lab, for answers shown before they were found
TRIES = "progress:tries"  # hash: question id -> wrong-or-right tries so far
EXERCISE = "progress:exercise"  # the summary of the last design that passed


class Progress(BaseModel):
    visited: set[str] = set()
    passed: dict[str, set[str]] = {}  # lab -> ids of the questions answered correctly
    revealed: dict[str, set[str]] = {}  # lab -> ids of the questions whose answer was shown
    exercise: str | None = None

    def passed_in(self, lab: str) -> int:
        return len(self.passed.get(lab, set()))

    @property
    def passed_total(self) -> int:
        return sum(len(ids) for ids in self.passed.values())


async def visit(sandbox: Sandbox, page: str) -> None:
    await store.call(sandbox, lambda redis: redis.sadd(VISITED, page))


async def count_try(sandbox: Sandbox, question_id: str) -> int:
    """Count one more graded answer to ``question_id``; returns how many there have been."""
    return int(await store.call(sandbox, lambda redis: redis.hincrby(TRIES, question_id, 1)))


async def pass_check(sandbox: Sandbox, lab: str, question_id: str) -> bool:
    """Remember a correct answer, unless its answer was shown first; True if it counts.

    A later wrong answer does not take a pass back.
    """
    if await store.call(sandbox, lambda redis: redis.hexists(REVEALED, question_id)):
        return False
    await store.call(sandbox, lambda redis: redis.hset(CHECKS, question_id, lab))
    return True


async def reveal_check(sandbox: Sandbox, lab: str, question_id: str) -> None:
    """Remember that the answer was shown: the question counts as revealed, and no later answer passes it."""
    await store.call(sandbox, lambda redis: redis.hset(REVEALED, question_id, lab))


async def complete_exercise(sandbox: Sandbox, summary: str) -> None:
    await store.call(sandbox, lambda redis: redis.set(EXERCISE, summary[:500]))


async def load(sandbox: Sandbox) -> Progress:
    """Everything at once: one round trip within the click's Redis budget."""

    async def read(redis: Any) -> list[Any]:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.smembers(VISITED)
            pipe.hgetall(CHECKS)
            pipe.hgetall(REVEALED)
            pipe.get(EXERCISE)
            return list(await pipe.execute())

    visited, checks, shown, exercise = await store.call(sandbox, read)
    return Progress(visited=set(visited), passed=_by_lab(checks), revealed=_by_lab(shown), exercise=exercise)


def _by_lab(ids: dict[str, str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for question_id, lab in ids.items():
        found.setdefault(lab, set()).add(question_id)
    return found
