"""The claim with and without history: its plan and what it read, asked of the database itself.

An outbox keeps its published events until retention deletes them, so the table grows with
history while the work (the pending events) stays small. The claim must cost what the work
costs. On PostgreSQL, ``EXPLAIN (ANALYZE, BUFFERS)`` runs the claim for real (in a
transaction that is rolled back, so nothing stays locked) and says which index it used, how
many rows it read and how many 8 KB pages it touched; on SQLite, ``EXPLAIN QUERY PLAN`` says
which index the claim searches, and the claim is timed. Add drained history and ask again.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, text

from source.domain.errors import InvalidInput
from source.domain.events import mark_published_statement
from source.domain.models import DomainEvent, new_id
from source.labs.outbox.claim import begin_claim, claim_statement
from source.labs.outbox.writes import MAX_EVENTS
from source.platform.sandbox import Sandbox

#: How many events of history one click may add.
MAX_HISTORY = 20_000
#: Marked published this many at a time, as a publisher's batches would.
HISTORY_BATCH = 500
#: How many plans the page keeps side by side.
PLANS_KEPT = 3


@dataclass(frozen=True)
class ClaimPlan:
    """One look at the claim: the table as it was, the plan, and what running the claim cost."""

    at: datetime
    backend: str
    published: int
    pending: int
    ms: float
    #: The database's own words: the plan, with what each step read.
    plan: str
    #: The index the claim walked, and (PostgreSQL) the pages it touched.
    index: str
    pages: int | None

    def headline(self) -> str:
        pages = f", {self.pages:,} pages (8 KB) touched" if self.pages is not None else ""
        return (
            f"{self.published:,} published + {self.pending:,} pending rows: the claim took {self.ms:.2f} ms "
            f"through `{self.index}`{pages}"
        )


def plans_of(sandbox: Sandbox) -> deque[ClaimPlan]:
    """The sandbox's last plans, newest last (the page shows them side by side)."""
    return sandbox.service("outbox.plans", lambda _: deque(maxlen=PLANS_KEPT))


async def explain_claim(sandbox: Sandbox, max_events: int = 500) -> ClaimPlan:
    """Run the claim under ``EXPLAIN`` (PostgreSQL: ANALYZE, BUFFERS; SQLite: QUERY PLAN, and timed)."""
    claim = claim_statement(sandbox.dialect, max_events).params(now=datetime.now(UTC))
    async with sandbox.engine.connect() as conn:
        counts = dict((await conn.execute(select(DomainEvent.status, func.count()).group_by(DomainEvent.status))).all())
        await conn.commit()
        translate = sandbox.engine.get_execution_options().get("schema_translate_map")
        sql = str(
            claim.compile(
                dialect=conn.dialect,
                compile_kwargs={"literal_binds": True},
                schema_translate_map=translate,
                render_schema_translate=bool(translate),
            )
        )
        await begin_claim(conn)
        if sandbox.dialect == "postgresql":
            lines = [r[0] for r in await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)]
            ms = _number(r"Execution Time: ([\d.]+) ms", lines) or 0.0
            hit = _number(r"Buffers: shared hit=(\d+)", lines)
            read = _number(r"Buffers: shared (?:hit=\d+ )?read=(\d+)", lines)
            pages: int | None = int((hit or 0) + (read or 0))
        else:
            lines = [str(r[-1]) for r in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
            began = time.perf_counter()
            await conn.exec_driver_sql(sql)
            ms, pages = (time.perf_counter() - began) * 1000, None
        await conn.rollback()
    index = next((m.group(1) for line in lines if (m := re.search(r"(?:USING|using) (?:INDEX )?(\w+)", line))), "none")
    plan = ClaimPlan(
        at=datetime.now(UTC),
        backend="PostgreSQL" if sandbox.dialect == "postgresql" else "SQLite",
        published=int(counts.get("published", 0)),
        pending=int(counts.get("pending", 0)),
        ms=ms,
        plan="\n".join(lines),
        index=index,
        pages=pages,
    )
    plans_of(sandbox).append(plan)
    return plan


def _number(pattern: str, lines: list[str]) -> float | None:
    """The first figure ``pattern`` finds in the plan (the top node's, which sums its children)."""
    for line in lines:
        if (found := re.search(pattern, line)) is not None:
            return float(found.group(1))
    return None


async def add_history(sandbox: Sandbox, events: int) -> int:
    """``events`` events written pending, then marked published in batches, as a drain leaves them.

    Updated rather than written as published: an UPDATE leaves the row's pending version
    behind until vacuum, which is what a real drain leaves in the table and its indexes.
    """
    if not 1 <= events <= MAX_HISTORY:
        raise InvalidInput(f"Add between 1 and {MAX_HISTORY:,} events of history at a time.")
    async with sandbox.engine.begin() as conn:
        held = int((await conn.execute(select(func.count()).select_from(DomainEvent))).scalar_one())
        if held + events > MAX_EVENTS:
            raise InvalidInput(
                f"Your outbox holds {held:,} events; one sandbox may keep {MAX_EVENTS:,}. Clean up published events."
            )
        ids = [new_id() for _ in range(events)]
        rows = [
            {"id": i, "event_type": "batch.completed", "aggregate_type": "History", "aggregate_id": i, "payload": {}}
            for i in ids
        ]
        await conn.execute(insert(DomainEvent), rows)
    mark = mark_published_statement(sandbox.dialect)
    for start in range(0, events, HISTORY_BATCH):
        async with sandbox.engine.begin() as conn:
            batch = ids[start : start + HISTORY_BATCH]
            await conn.execute(mark, {"ids": batch, "publisher": "history", "lease_until": None})
    if sandbox.dialect == "postgresql":
        async with sandbox.engine.connect() as conn:  # what autovacuum's ANALYZE does after a table grew
            table = f'"{sandbox.schema}".domain_events' if sandbox.schema else "domain_events"
            await conn.execute(text(f"ANALYZE {table}"))
            await conn.commit()
    return events
