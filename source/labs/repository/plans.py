"""Query plans: how the database answers the statements the strategies really sent.

The statements are captured while a strategy runs, then sent again prefixed with ``EXPLAIN``
(PostgreSQL) or ``EXPLAIN QUERY PLAN`` (SQLite), with the very same parameters. The plan says
whether the database used the ``ix_air_scores_user_id`` index to find each user's scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from source.domain.errors import InvalidInput
from source.instruments.n_plus_one import is_batch, readable
from source.instruments.query_log import StatementRecord, capture_queries
from source.labs.repository.strategies import STRATEGIES
from source.platform.context import current_sandbox
from source.platform.session import get_session

INDEX = "ix_air_scores_user_id"


@dataclass(frozen=True)
class Plan:
    label: str
    sql: str
    plan: str
    uses_index: bool


def _plan_text(dialect: str, rows: list[Any]) -> str:
    if dialect == "postgresql":
        return "\n".join(str(r[0]) for r in rows)
    # SQLite: (id, parent, notused, detail); indent each step under its parent.
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + str(detail))
    return "\n".join(lines)


async def _captured(key: str, limit: int | None) -> list[StatementRecord]:
    engine = current_sandbox().engine
    async with get_session() as session, capture_queries(engine, this_task_only=True) as log:
        await STRATEGIES[key].load(session, limit)
    return log.records


async def explain(record: StatementRecord, label: str) -> Plan:
    engine = current_sandbox().engine
    dialect = engine.dialect.name
    prefix = "EXPLAIN " if dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    async with engine.connect() as conn:
        rows = list((await conn.exec_driver_sql(prefix + record.sql, record.params)).all())
    text = _plan_text(dialect, rows)
    return Plan(label, readable(record.sql), readable(text), INDEX in text)


async def query_plans() -> list[Plan]:
    """The plans of a lazy per-user lookup, of selectinload's IN query and of joinedload's JOIN."""
    lazy = await _captured("lazy", 2)
    if len(lazy) < 2:
        raise InvalidInput("Query plans need at least one user: create the sample users or seed some first.")
    selectin = [r for r in await _captured("selectin", None) if "air_scores" in r.sql]
    joined = await _captured("joined", None)
    picked = [
        (lazy[1], "lazy load of one user's scores (sent N times)"),
        (next((r for r in selectin if is_batch(r.sql)), selectin[0]), "selectinload: scores for a batch of users"),
        (joined[0], "joinedload: users LEFT OUTER JOIN air_scores"),
    ]
    return [await explain(record, label) for record, label in picked]
