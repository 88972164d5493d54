"""The course at a glance: its labs (each with its knowledge check and demos) and the five objectives.

This module holds the shapes only. The course itself, which labs there are and what each
brings, is put together in ``source/course.py``, the one place that knows every lab: a lab
brings its own knowledge check (a function from the learner's measurements to questions)
and its own presets, and the learning layer finds them through the :class:`Catalogue`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from source.learning.measurements import Measurement
from source.learning.presets import Preset
from source.learning.questions import Locked, MultipleChoice, Numeric

AnyQuestion = MultipleChoice | Numeric | Locked
#: A lab's knowledge check: the learner's measurements of that lab in, its questions out.
Builder = Callable[[list[Measurement]], list[AnyQuestion]]


@dataclass(frozen=True)
class Lab:
    id: str
    title: str
    page: str  # the page script, as app.py registers it
    icon: str
    checks: Builder | None = None
    presets: tuple[Preset, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Objective:
    level: str
    goal: str
    labs: tuple[str, ...]


class Catalogue:
    """The labs by id, the objectives, and what the learning layer looks up in them."""

    def __init__(self, labs: Sequence[Lab], objectives: Sequence[Objective]) -> None:
        self.labs = {lab.id: lab for lab in labs}
        self.objectives = list(objectives)
        unknown = {lab for o in self.objectives for lab in o.labs} - set(self.labs)
        if unknown:
            raise ValueError(f"objectives name labs the course does not have: {sorted(unknown)}")

    def questions_for(self, lab: str, found: list[Measurement]) -> list[AnyQuestion]:
        """``lab``'s knowledge check, built from the learner's measurements of that lab."""
        entry = self.labs.get(lab)
        if entry is None or entry.checks is None:
            return []
        return entry.checks([m for m in found if m.lab == lab])

    @property
    def presets(self) -> list[Preset]:
        """Every lab's demos, in the course's order."""
        return [preset for lab in self.labs.values() for preset in lab.presets]
