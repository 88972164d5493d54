"""Knowledge-check questions as data, and the grader that teaches instead of telling.

Two kinds of question: multiple choice, where every option carries the reason it is right
or wrong, and numeric, where the answer is computed from the learner's own measurements
and accepted within a stated tolerance. A third kind, :class:`Locked`, stands for a
numeric question whose measurement the learner has not made yet.

A first wrong answer gets a hint toward the idea (why that choice does not hold; whether a
number is too high or too low), never the answer. The answer and its working appear after a
second wrong try, or when the learner asks (*Show me*): the question is then *revealed*, and
a revealed question no longer counts as passed, whatever is answered after.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, Field, model_validator


class Option(BaseModel):
    id: str
    text: str
    correct: bool = False
    why: str = Field(min_length=1, description="why this option is right, or why it is not")


class _Base(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    lab: str
    objective: str
    prompt: str
    #: A nudge toward the idea for a first wrong answer; never the answer itself.
    hint: str = ""


class MultipleChoice(_Base):
    kind: Literal["choice"] = "choice"
    options: list[Option] = Field(min_length=2)

    @model_validator(mode="after")
    def _one_right_answer(self) -> MultipleChoice:
        if sum(o.correct for o in self.options) != 1:
            raise ValueError(f"question {self.id} needs exactly one correct option")
        if len({o.id for o in self.options}) != len(self.options):
            raise ValueError(f"question {self.id} repeats an option id")
        return self

    @property
    def right(self) -> Option:
        return next(o for o in self.options if o.correct)


class Numeric(_Base):
    kind: Literal["number"] = "number"
    answer: float
    unit: str
    tolerance_abs: float = Field(default=0.0, ge=0)
    tolerance_rel: float = Field(default=0.0, ge=0, le=0.5)
    working: str = Field(description="how the answer follows from the learner's numbers")
    measured_from: str = Field(description="which of the learner's runs the numbers come from")

    @property
    def tolerance(self) -> float:
        return max(self.tolerance_abs, self.tolerance_rel * abs(self.answer))

    def tolerance_text(self) -> str:
        if self.tolerance == 0:
            return "exactly"
        if self.tolerance_rel and self.tolerance_rel * abs(self.answer) >= self.tolerance_abs:
            return f"within ±{self.tolerance_rel * 100:g} %"
        return f"within ±{self.tolerance_abs:g} {self.unit}"


class Locked(_Base):
    """A numeric question waiting for a measurement: says what to run to unlock it."""

    kind: Literal["locked"] = "locked"
    unlock_by: str


#: How many wrong tries a question takes before its answer is shown.
TRIES_BEFORE_REVEAL = 2


class Grade(BaseModel):
    question_id: str
    #: ``wrong``: a hint, try again; ``revealed``: the answer is shown, the question cannot be passed any more.
    status: Literal["correct", "wrong", "invalid", "revealed"]
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "correct"


_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def parse_number(raw: object, unit: str) -> float | str:
    """The learner's typed answer as a float, or a sentence saying what is wrong with it."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return "Type a number first."
    if isinstance(raw, bool):
        return "Type a number, not yes or no."
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        text = str(raw).strip()
        shown = text if len(text) <= 40 else text[:37] + "…"
        if unit and text.lower().endswith(unit.lower()):
            text = text[: -len(unit)].strip()
        text = text.replace(" ", "").replace("_", "")
        if _THOUSANDS.match(text):
            text = text.replace(",", "")
        elif "," in text:
            return f"'{shown}' has a comma: write decimals with a dot (2.5) and thousands without a separator."
        try:
            value = float(text)
        except ValueError:
            return f"'{shown}' is not a number. Type digits only, e.g. 250" + (f" (in {unit})." if unit else ".")
    if not math.isfinite(value):
        return "Type a finite number."
    return value


def grade(question: MultipleChoice | Numeric | Locked, raw: object, *, tries: int = 1) -> Grade:
    """Grade one answer, the learner's ``tries``-th (counting this one).

    Malformed or missing answers are ``invalid``, never ``wrong``, and do not count as a try.
    A wrong answer gets a hint; from the :data:`TRIES_BEFORE_REVEAL`-th on, the answer too.
    """
    if isinstance(question, Locked):
        return Grade(question_id=question.id, status="invalid", message=f"Not yet: {question.unlock_by}")
    if isinstance(question, MultipleChoice):
        return _grade_choice(question, raw, tries)
    return _grade_number(question, raw, tries)


def reveal(question: MultipleChoice | Numeric | Locked) -> Grade:
    """The answer and why (*Show me*): the question is revealed, not passed."""
    if isinstance(question, Locked):
        return Grade(question_id=question.id, status="invalid", message=f"Not yet: {question.unlock_by}")
    return Grade(question_id=question.id, status="revealed", message=_answer(question))


def _answer(question: MultipleChoice | Numeric) -> str:
    if isinstance(question, MultipleChoice):
        return f"The answer is **{question.right.text}**: {question.right.why}"
    return (
        f"The answer is {question.answer:,.4g} {question.unit} (accepted {question.tolerance_text()}). "
        f"{question.working}"
    )


def _wrong(question: MultipleChoice | Numeric, said: str, tries: int) -> Grade:
    if tries >= TRIES_BEFORE_REVEAL:
        return Grade(question_id=question.id, status="revealed", message=f"Not quite. {said} {_answer(question)}")
    hint = f" Hint: {question.hint}" if question.hint else ""
    return Grade(
        question_id=question.id, status="wrong", message=f"Not quite. {said}{hint} Try once more, or press *Show me*."
    )


def _grade_choice(question: MultipleChoice, raw: object, tries: int) -> Grade:
    if raw is None or raw == "":
        return Grade(question_id=question.id, status="invalid", message="Pick one of the options first.")
    chosen = next((o for o in question.options if o.id == raw), None)
    if chosen is None:
        return Grade(question_id=question.id, status="invalid", message="That is not one of the options; pick one.")
    if chosen.correct:
        return Grade(question_id=question.id, status="correct", message=f"Correct. {chosen.why}")
    return _wrong(question, chosen.why, tries)


def _grade_number(question: Numeric, raw: object, tries: int) -> Grade:
    value = parse_number(raw, question.unit)
    if isinstance(value, str):
        return Grade(question_id=question.id, status="invalid", message=value)
    if abs(value - question.answer) <= question.tolerance:
        said = (
            f"You said {value:,.4g} {question.unit}, accepted {question.tolerance_text()} of the value from your run."
        )
        return Grade(question_id=question.id, status="correct", message=f"Correct. {said} {question.working}")
    said = f"{value:,.4g} {question.unit} is too {'high' if value > question.answer else 'low'}."
    if question.answer and value and any(math.isclose(value / question.answer, f, rel_tol=0.05) for f in (1000, 0.001)):
        said += f" Check the unit: the question asks for {question.unit}."
    return _wrong(question, said, tries)
