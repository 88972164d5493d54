"""Knowledge-check questions as data, and the grader that explains *why*.

Two kinds of question: multiple choice, where every option carries the reason it is right
or wrong, and numeric, where the answer is computed from the learner's own measurements
and accepted within a stated tolerance. A third kind, :class:`Locked`, stands for a
numeric question whose measurement the learner has not made yet.
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


class Grade(BaseModel):
    question_id: str
    status: Literal["correct", "wrong", "invalid"]
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


def grade(question: MultipleChoice | Numeric | Locked, raw: object) -> Grade:
    """Grade one answer. Malformed or missing answers are ``invalid``, never ``wrong``."""
    if isinstance(question, Locked):
        return Grade(question_id=question.id, status="invalid", message=f"Not yet: {question.unlock_by}")
    if isinstance(question, MultipleChoice):
        return _grade_choice(question, raw)
    return _grade_number(question, raw)


def _grade_choice(question: MultipleChoice, raw: object) -> Grade:
    if raw is None or raw == "":
        return Grade(question_id=question.id, status="invalid", message="Pick one of the options first.")
    chosen = next((o for o in question.options if o.id == raw), None)
    if chosen is None:
        return Grade(question_id=question.id, status="invalid", message="That is not one of the options; pick one.")
    if chosen.correct:
        return Grade(question_id=question.id, status="correct", message=f"Correct. {chosen.why}")
    right = question.right
    return Grade(
        question_id=question.id,
        status="wrong",
        message=f"Not quite. {chosen.why} The answer is **{right.text}**: {right.why}",
    )


def _grade_number(question: Numeric, raw: object) -> Grade:
    value = parse_number(raw, question.unit)
    if isinstance(value, str):
        return Grade(question_id=question.id, status="invalid", message=value)
    said = f"You said {value:,.4g} {question.unit}; the answer is {question.answer:,.4g} {question.unit}"
    accepted = f"(accepted {question.tolerance_text()})"
    if abs(value - question.answer) <= question.tolerance:
        return Grade(
            question_id=question.id, status="correct", message=f"Correct. {said} {accepted}. {question.working}"
        )
    hint = ""
    if question.answer and value and any(math.isclose(value / question.answer, f, rel_tol=0.05) for f in (1000, 0.001)):
        hint = f" Check the unit: the question asks for {question.unit}."
    return Grade(
        question_id=question.id, status="wrong", message=f"Not quite. {said} {accepted}. {question.working}{hint}"
    )
