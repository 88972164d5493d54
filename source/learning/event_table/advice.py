"""A finding's shape, and the findings about defaults, a status CHECK and published-at (see :mod:`findings`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from source.learning.event_table.design import EventTableDesign
from source.learning.event_table.probe import Facts

Severity = Literal["ok", "advice", "missing"]


class Finding(BaseModel):
    code: str
    severity: Severity
    title: str
    why: str = ""  # the reason it matters
    consequence: str = ""  # what goes wrong without it
    evidence: str = ""  # what the run showed


def advice(design: EventTableDesign, facts: Facts) -> list[Finding]:
    found = []
    if facts.status_default == "NULL":
        found.append(
            Finding(
                code="status_default",
                severity="missing",
                title="An event written without a status gets NULL",
                why="The claim asks for status = 'pending'; NULL is never equal to anything.",
                consequence="Such an event is never published, silently.",
                evidence="An event inserted without a status came back with status NULL: default it to 'pending'.",
            )
        )
    if facts.created_default == "NULL":
        found.append(
            Finding(
                code="created_default",
                severity="advice",
                title="An event written without a created-at time gets NULL",
                consequence="It sorts first on one database and last on another.",
                evidence="Default it to now().",
            )
        )
    if facts.typo_refused is False:
        found.append(
            Finding(
                code="status_check",
                severity="advice",
                title="Any text is accepted as a status",
                consequence="A typo such as 'publishd' strands an event: no query looks for it.",
                evidence="'publishd' was accepted. A CHECK constraint on the status values would refuse it.",
            )
        )
    if design.column("published at") is None:
        found.append(
            Finding(
                code="published_at",
                severity="advice",
                title="No published-at time",
                consequence="You cannot measure publishing lag, nor clean up events published long ago.",
            )
        )
    return found
