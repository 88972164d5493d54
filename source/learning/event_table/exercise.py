"""The exercise end to end: probe the design, assess it, and remember a learner's own pass in their progress."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from source.learning import measurements, progress
from source.learning.event_table.design import EventTableDesign
from source.learning.event_table.findings import Assessment, assess
from source.learning.event_table.probe import Facts, run_probes
from source.platform.context import current_sandbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    design: EventTableDesign
    facts: Facts
    assessment: Assessment
    saved: bool  # whether a pass could be written to the learner's progress

    @property
    def passed(self) -> bool:
        return self.assessment.passed


async def check_design(design: EventTableDesign, *, learners_own: bool = True) -> Report:
    """Create the design's table in the sandbox and report what a publisher would run into.

    Only a learner's own design counts toward their progress: an instructor's demo of the
    example design (``learners_own=False``) is checked the same way and recorded nowhere else.
    """
    sandbox = current_sandbox()
    facts = await run_probes(design)
    verdict = assess(design, facts)
    saved = True
    if verdict.passed and learners_own:
        try:
            await progress.complete_exercise(sandbox, design.summary())
        except Exception as exc:  # noqa: BLE001 - the check itself succeeded; say the save did not
            log.warning("exercise pass not saved: %s", exc)
            saved = False
    missing = sum(f.severity == "missing" for f in verdict.findings)
    values = {
        "events_written": (facts.inserted, "events"),
        "insert_ms": (facts.insert_ms, "ms"),
        "missing": (missing, "findings"),
    }
    if facts.claim is not None:
        values["claim_ms"] = (facts.claim.ms, "ms")
    await measurements.record_run(sandbox, "create", values)
    return Report(design=design, facts=facts, assessment=verdict, saved=saved)
