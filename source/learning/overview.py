"""One learner's standing across the course: per lab, checks offered and passed, visited or not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from source.learning import measurements, progress
from source.learning.catalogue import Catalogue, Lab

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox


@dataclass(frozen=True)
class LabStanding:
    lab: Lab
    visited: bool
    checks: int  # questions the lab's check offers (0: no check yet)
    passed: int


@dataclass(frozen=True)
class Overview:
    labs: list[LabStanding]
    exercise: str | None  # the summary of the design that passed, if any

    @property
    def checks(self) -> int:
        return sum(s.checks for s in self.labs)

    @property
    def passed(self) -> int:
        return sum(s.passed for s in self.labs)

    @property
    def visited(self) -> int:
        return sum(s.visited for s in self.labs)

    def standing(self, lab: str) -> LabStanding:
        return next(s for s in self.labs if s.lab.id == lab)


async def load(sandbox: Sandbox, course: Catalogue) -> Overview:
    """The learner's standing in every lab of ``course``, read from their sandbox."""
    found = await measurements.load(sandbox)
    mine = await progress.load(sandbox)
    labs = []
    for lab in course.labs.values():
        offered = {q.id for q in course.questions_for(lab.id, found)}
        labs.append(
            LabStanding(
                lab=lab,
                visited=lab.id in mine.visited,
                checks=len(offered),
                passed=len(mine.passed.get(lab.id, set()) & offered),
            )
        )
    return Overview(labs=labs, exercise=mine.exercise)
