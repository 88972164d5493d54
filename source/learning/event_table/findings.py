"""What the probes found, one finding per property a publisher and its consumers rely on.

Each finding says what is missing, why it matters, and what would go wrong, with the
evidence from the run. ``missing`` findings fail the exercise; ``advice`` does not.
"""

from __future__ import annotations

from pydantic import BaseModel

from source.learning.event_table.advice import Finding, advice
from source.learning.event_table.design import EventTableDesign
from source.learning.event_table.plan import Verdict
from source.learning.event_table.probe import Facts


class Assessment(BaseModel):
    findings: list[Finding]

    @property
    def passed(self) -> bool:
        return not any(f.severity == "missing" for f in self.findings)

    def by_code(self, code: str) -> Finding:
        return next(f for f in self.findings if f.code == code)


PLAN_WORDS: dict[Verdict, str] = {
    "served": "an index finds the pending events already in age order: no scan, no sort",
    "sorts": "an index finds the pending events, then the database sorts them all before taking the oldest",
    "walks": "an index gives the age order, but every event (published ones too) is read to check its status",
    "full scan": "no index helps: the database reads every row of the table",
}


def _present(design: EventTableDesign, role: str, code: str, noun: str, why: str, consequence: str) -> Finding:
    col = design.column(role)
    if col is None:
        return Finding(code=code, severity="missing", title=f"No {noun}", why=why, consequence=consequence)
    return Finding(code=code, severity="ok", title=f"{noun[0].upper()}{noun[1:]}: `{col.name}`")


def assess(design: EventTableDesign, facts: Facts) -> Assessment:
    """Turn what happened into findings, in the order a learner should fix them."""
    if facts.refused:
        return Assessment(
            findings=[
                Finding(
                    code="refused",
                    severity="missing",
                    title="The table refused ordinary events",
                    why="A publisher's table must accept every event the application writes.",
                    consequence="The business change and its event share a transaction: a refused event "
                    "rolls the business change back too.",
                    evidence=facts.refused,
                )
            ]
        )
    return Assessment(
        findings=[
            _claimable(design, facts),
            _index(facts),
            _event_id(design, facts),
            _aggregate(design, facts),
            _present(
                design,
                "event type",
                "event_type",
                "event type column",
                "Consumers route on it (score.calculated, user.created).",
                "Every consumer would have to open every payload to decide whether it cares.",
            ),
            _present(
                design,
                "payload",
                "payload",
                "payload column",
                "It carries what happened (which score, which user).",
                "Consumers learn that something happened but not what.",
            ),
            *_retries(design, facts),
            *advice(design, facts),
        ]
    )


def _claimable(design: EventTableDesign, facts: Facts) -> Finding:
    status, created = design.column("status"), design.column("created at")
    if status is None or created is None or "pending" not in design.status_values:
        lacking = [w for w, ok in (("a status column", status), ("a created-at column", created)) if ok is None]
        if "pending" not in design.status_values:
            lacking.append("a 'pending' status value")
        return Finding(
            code="claim",
            severity="missing",
            title="The publisher cannot ask for 'pending, oldest first'",
            why="A publisher claims the oldest events still waiting: it needs " + " and ".join(lacking) + ".",
            consequence="Without it events cannot be found in order, so none would ever be published.",
        )
    claim = facts.claim
    if claim is None:
        return Finding(code="claim", severity="missing", title="The claim query could not run")
    ordered = claim.got == claim.expected
    locked = (
        ""
        if claim.second_disjoint is None
        else " A second publisher claiming at the same time "
        + (
            "skipped those locked rows and got the next ones (SKIP LOCKED)."
            if claim.second_disjoint
            else "got the same ones."
        )
    )
    return Finding(
        code="claim",
        severity="ok" if ordered else "missing",
        title="The claim returns the oldest pending events" if ordered else "The claim returned the wrong events",
        why="" if ordered else "Status and created-at must say which events wait and in what order.",
        evidence=f"{len(claim.got)} events claimed in {claim.ms:.1f} ms; "
        + ("they were the oldest pending ones, in order." if ordered else "not the oldest pending ones.")
        + locked,
    )


def _index(facts: Facts) -> Finding:
    plan = facts.plan
    if plan is None:
        return Finding(code="index", severity="missing", title="No plan to read: the claim could not run")
    served = plan.verdict == "served"
    return Finding(
        code="index",
        severity="ok" if served else ("advice" if plan.verdict == "sorts" else "missing"),
        title="An index serves 'pending, oldest first'"
        if served
        else "The claim is not fully served by an index"
        if plan.verdict == "sorts"
        else "No index serves 'pending, oldest first'",
        why="" if served else "The publisher runs this query every poll, and the table keeps every published event.",
        consequence=""
        if served
        else "Each poll costs more as history grows; an index on (status, created-at), or on created-at for "
        "pending rows only, finds the next batch directly.",
        evidence=f"The plan: {PLAN_WORDS[plan.verdict]}" + (f" (index `{plan.index}`)." if plan.index else "."),
    )


def _event_id(design: EventTableDesign, facts: Facts) -> Finding:
    col = design.column("event id")
    why = "Delivery is at least once: after a crash the publisher re-sends, and consumers drop what they have seen."
    if col is None:
        return Finding(
            code="event_id",
            severity="missing",
            title="No unique event id",
            why=why,
            consequence="Consumers have nothing to deduplicate on: a re-sent score is counted twice.",
        )
    if facts.duplicate_id_refused:
        return Finding(
            code="event_id",
            severity="ok",
            title=f"A unique event id: `{col.name}`",
            evidence="A duplicate was refused.",
        )
    return Finding(
        code="event_id",
        severity="missing",
        title=f"`{col.name}` is not unique",
        why=why + " That only works if no two events share an id.",
        consequence="Two events with one id: a consumer would drop the second as a duplicate.",
        evidence="An event with an id already in the table was accepted: make it the primary key, or UNIQUE.",
    )


def _aggregate(design: EventTableDesign, facts: Facts) -> Finding:
    col = design.column("aggregate id")
    if col is None:
        return Finding(
            code="aggregate",
            severity="missing",
            title="No aggregate id",
            why="Events about one user (or one assessment) must be applied in order; the aggregate id names whose "
            "event it is, so a broker can keep each aggregate's events in one ordered partition.",
            consequence="Score 2 could overtake score 1 for the same user, and a consumer would keep the older score.",
        )
    if facts.null_aggregate_refused is False:
        return Finding(
            code="aggregate",
            severity="advice",
            title=f"`{col.name}` allows NULL",
            why="An event without an aggregate belongs to no ordered stream.",
            evidence="An event with no aggregate id was accepted.",
        )
    return Finding(
        code="aggregate", severity="ok", title=f"An aggregate id: `{col.name}`", evidence="NULL was refused."
    )


def _retries(design: EventTableDesign, facts: Facts) -> list[Finding]:
    attempts = _present(
        design,
        "attempts",
        "attempts",
        "attempts counter",
        "When the broker is down, sends fail; the publisher counts tries to back off and, past a limit, "
        "park the event.",
        "A poison event is retried forever, at full speed, ahead of everything behind it.",
    )
    if attempts.severity == "ok":
        after = facts.attempts_after_retry
        if after == "1":
            attempts.evidence = "attempts + 1 after a failed send gave 1."
        else:
            attempts.severity = "missing"
            attempts.title = "The attempts counter does not count"
            attempts.why = "attempts + 1 must give a number."
            attempts.consequence = "The retry limit never triggers."
            attempts.evidence = f"After one failed send attempts is {after}: NULL + 1 is NULL. Give it NOT NULL and 0."
    error = _present(
        design,
        "last error",
        "last_error",
        "last-error column",
        "It keeps why the last send failed.",
        "An operator sees a stuck event but not why it is stuck.",
    )
    return [attempts, error]
