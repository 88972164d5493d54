"""Counting the SQL that really ran, with SQLAlchemy's own cursor events.

Every figure such as "3 queries" on a page comes from here: a listener on the engine
sees each statement just before the driver sends it to the database.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class QueryLog:
    """The statements one block of code sent, in order."""

    statements: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    elapsed_ms: float = 0.0

    @property
    def count(self) -> int:
        return len(self.statements)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        self.statements.append(" ".join(statement.split()))


@asynccontextmanager
async def capture_queries(engine: AsyncEngine) -> AsyncIterator[QueryLog]:
    """Record every statement ``engine`` executes inside the ``async with`` block.

    A learner's sandbox has an engine of its own (on PostgreSQL, a view of the shared one
    with its own event listeners), so other learners' queries never land in this log.
    """
    log = QueryLog()
    target = engine.sync_engine
    event.listen(target, "before_cursor_execute", log._before)
    try:
        yield log
    finally:
        event.remove(target, "before_cursor_execute", log._before)
        log.elapsed_ms = (time.perf_counter() - log.started) * 1000
