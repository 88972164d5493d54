"""What a class learns from one graded answer: right, wrong (and with what), or shown.

A wrong answer is kept by what it *means*, so that the same mistake adds up across the class: the
option chosen for a multiple-choice question; for a number (each learner's right answer comes from
their own run), whether it was too high, too low or off by a factor of a thousand (a unit slip).
"""

from __future__ import annotations

import math
from typing import Literal

from source.learning.questions import Locked, MultipleChoice, Numeric, parse_number

Kind = Literal["right", "wrong", "revealed", "shown"]

#: The grader's statuses as the class counts them (``invalid`` is no try, and is not counted).
KINDS: dict[str, Kind] = {"correct": "right", "wrong": "wrong", "revealed": "revealed"}
#: A numeric answer's wrong labels, as the dashboard names them.
NUMERIC_LABELS = {
    "high": "too high",
    "low": "too low",
    "unit": "off by a factor of 1,000 (a unit slip)",
}


def kind_of(status: str) -> Kind | None:
    """The class's kind for a grade's status (None: not an answer the class counts)."""
    return KINDS.get(status)


def wrong_label(question: MultipleChoice | Numeric | Locked, raw: object) -> str:
    """The wrong answer ``raw`` as the class counts it ('' when it cannot be one)."""
    if isinstance(question, MultipleChoice):
        return str(raw) if any(o.id == raw and not o.correct for o in question.options) else ""
    if isinstance(question, Locked):
        return ""
    value = parse_number(raw, question.unit)
    if isinstance(value, str):
        return ""
    if question.answer and value and any(math.isclose(value / question.answer, f, rel_tol=0.05) for f in (1000, 0.001)):
        return "unit"
    return "high" if value > question.answer else "low"


def label_text(question: MultipleChoice | Numeric | Locked | None, label: str) -> tuple[str, str]:
    """A kept wrong answer as the dashboard shows it: what was answered, and why it is wrong."""
    if isinstance(question, MultipleChoice):
        chosen = next((o for o in question.options if o.id == label), None)
        return (chosen.text, chosen.why) if chosen is not None else (label, "")
    said = NUMERIC_LABELS.get(label, label)
    hint = question.hint if question is not None else ""
    return said, hint
