"""A design that passes every check of the Create exercise: the reference an instructor can demo.

It is the form's raw values (what :func:`~source.learning.event_table.design.parse_design`
takes), so it goes through the same checks as a learner's design (:func:`check_the_example`, which
never counts toward anyone's progress). It is an answer, so no page offers it to learners; the
tests and the memory benchmark use it as the passing design.
"""

from __future__ import annotations

from typing import Any

from source.learning.event_table.design import parse_design
from source.learning.event_table.exercise import check_design

#: An outbox table with an id, the event's type, its aggregate, a payload, a status that starts
#: 'pending' (checked against its values), timestamps, retry bookkeeping, and the index that
#: serves the publisher's claim: pending events, oldest first.
PASSING_DESIGN: dict[str, Any] = {
    "table": "outbox_events",
    "columns": [
        {"name": "id", "type": "uuid text (36)", "role": "event id", "nullable": False, "primary_key": True},
        {"name": "event_type", "type": "short text (100)", "role": "event type", "nullable": False},
        {"name": "aggregate_id", "type": "uuid text (36)", "role": "aggregate id", "nullable": False},
        {"name": "payload", "type": "JSON", "role": "payload", "nullable": False},
        {"name": "status", "type": "short text (100)", "role": "status", "nullable": False, "default": "'pending'"},
        {"name": "created_at", "type": "timestamp", "role": "created at", "nullable": False, "default": "now()"},
        {"name": "attempts", "type": "integer", "role": "attempts", "nullable": False, "default": "0"},
        {"name": "last_error", "type": "long text", "role": "last error"},
        {"name": "published_at", "type": "timestamp", "role": "published at"},
    ],
    "indexes": [{"columns": ["status", "created_at"]}],
    "check_status": True,
}


async def check_the_example() -> str:
    """The example design, built in the sandbox and put through every check: what a passing design looks like."""
    report = await check_design(parse_design(PASSING_DESIGN), learners_own=False)
    facts, missing = report.facts, [f for f in report.assessment.findings if f.severity == "missing"]
    plan = (
        f"; the publisher's claim reads {facts.plan.index or 'no index'} (plan: {facts.plan.verdict})"
        if facts.plan is not None
        else ""
    )
    outcome = "passes every check" if report.passed else f"misses {len(missing)} check(s)"
    return (
        f"`{report.design.table}` {outcome}: {facts.inserted:,} events written in {facts.insert_ms:,.0f} ms"
        f"{plan}. The Create page builds a learner's design the same way."
    )
