"""What Lab 1 records for the knowledge check and the class view: what one delete removed."""

from __future__ import annotations

from source.domain.dtos import CascadeReport
from source.learning.measurements import record_run
from source.platform.context import current_sandbox


async def cascade_delete(report: CascadeReport) -> None:
    """Lab 1: what one delete removed, as counted before and after, and the statements it sent."""
    await record_run(
        current_sandbox(),
        "lab1",
        {
            "assessments_removed": (report.assessments_removed, "rows"),
            "scores_removed": (report.scores_removed, "rows"),
            "statements": (len(report.statements), "statements"),
        },
    )
