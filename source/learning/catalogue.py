"""The course at a glance: the labs, the five objectives, and each lab's knowledge check.

A lab plugs its knowledge check in by adding a builder to :data:`CHECKS` (a function from
the learner's measurements to questions; see ``checks_lab2.py`` for one drawn from a run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from source.learning import checks_lab1, checks_lab2, checks_lab3, checks_lab4, checks_lab5
from source.learning.measurements import Measurement
from source.learning.questions import Locked, MultipleChoice, Numeric


@dataclass(frozen=True)
class Lab:
    id: str
    title: str
    page: str  # the page script, as app.py registers it
    icon: str


@dataclass(frozen=True)
class Objective:
    level: str
    goal: str
    labs: tuple[str, ...]


LABS = {
    "lab1": Lab("lab1", "1 · Data models", "views/lab1_data_models.py", "🧱"),
    "lab2": Lab("lab2", "2 · Async connectivity & pooling", "views/lab2_connectivity.py", "🔌"),
    "lab3": Lab("lab3", "3 · Repository & N+1", "views/lab3_repository.py", "🔁"),
    "lab4": Lab("lab4", "4 · Caching with Redis", "views/lab4_caching.py", "⚡"),
    "lab5": Lab("lab5", "5 · Outbox pattern", "views/lab5_outbox.py", "📬"),
    "create": Lab("create", "Create · Design an event table", "views/create_exercise.py", "🛠️"),
}

OBJECTIVES = [
    Objective("Remember", "List SQLAlchemy relationship types and Redis data structures.", ("lab1", "lab4")),
    Objective("Understand", "Explain async database patterns and connection pooling.", ("lab2",)),
    Objective("Apply", "Implement the repository pattern with SQLAlchemy 2.0.", ("lab3",)),
    Objective("Analyze", "Compare caching strategies for different access patterns.", ("lab4",)),
    Objective("Create", "Design event tables for pub/sub.", ("create", "lab5")),
]

Builder = Callable[[list[Measurement]], list[MultipleChoice | Numeric | Locked]]

#: Each lab's knowledge check. Labs without an entry have none yet.
CHECKS: dict[str, Builder] = {
    "lab1": checks_lab1.build,
    "lab2": checks_lab2.build,
    "lab3": checks_lab3.build,
    "lab4": checks_lab4.build,
    "lab5": checks_lab5.build,
}


def questions_for(lab: str, found: list[Measurement]) -> list[MultipleChoice | Numeric | Locked]:
    builder = CHECKS.get(lab)
    return builder([m for m in found if m.lab == lab]) if builder else []


def find_question(lab: str, question_id: str, found: list[Measurement]) -> MultipleChoice | Numeric | Locked | None:
    return next((q for q in questions_for(lab, found) if q.id == question_id), None)
