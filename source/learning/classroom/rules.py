"""What a class may hold, and what a learner or an instructor may type: each bad input gets its own sentence.

A join code is six characters from an alphabet without look-alikes (no ``0``/``O``, no ``1``/``I``/``L``), so
it can be read off a projector and typed without a second try. A display name is what the class sees of a
learner, so it is short, printable, and not an email address or a long number (the class needs no personal
data). Every bound here is a cap that keeps one class, and all of them together, small in Redis.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ValidationError

from source.domain.errors import InvalidInput

#: Join codes: six characters that cannot be mistaken for one another on a projector.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
#: Classes running at once on one Redis (every app process together), and a class's bounds.
MAX_CLASSES = 20
MEMBERS = (2, 200)
DEFAULT_MEMBERS = 60
HOURS = (0.25, 8.0)
DEFAULT_HOURS = 2.0
#: Runs kept per lab for the class's plot (newest first), distinct wrong answers kept per question,
#: and marks kept per learner (which questions they answered, passed, were shown, answered wrong with what).
MAX_RUNS_PER_LAB = 300
MAX_WRONG_ANSWERS = 12
MAX_MARKS_PER_LEARNER = 400
#: One run's values: at most this many, names this long, and the whole record this many bytes.
MAX_RUN_VALUES = 24
MAX_VALUE_NAME = 40
MAX_RUN_BYTES = 2048
#: Names: a learner's display name and a class's name, in characters.
NAME_LENGTH = (1, 40)
CLASS_NAME_LENGTH = (1, 60)
#: A learner with no progress (a check passed, a measurement, the Create exercise) for this long is flagged.
STALLED_S = 10 * 60

_DIGITS = re.compile(r"\d{6,}")
_SPACES = re.compile(r"\s+")


def new_code() -> str:
    """A fresh join code (the caller makes sure no running class has it)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def join_code(raw: object) -> str:
    """The code as typed (any case, spaces or a dash allowed) in its canonical form, or one sentence why not."""
    typed = str(raw or "")
    code = re.sub(r"[\s-]", "", typed).upper()
    if not code:
        raise InvalidInput("Type the class's join code first: six letters and digits, like K7M2QX.")
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        shown = typed.strip()[:12]
        raise InvalidInput(
            f"'{shown}' is not a join code: a code is {CODE_LENGTH} letters and digits, like K7M2QX "
            "(there is no O, 0, I, 1 or L in a code)."
        )
    return code


def _printable_name(raw: str, what: str, bounds: tuple[int, int]) -> str:
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", raw)).strip()
    if any(unicodedata.category(c).startswith("C") for c in raw):  # Cc, Cf, Co, Cs, Cn
        raise ValueError(f"A {what} cannot contain control characters (tabs, line breaks, invisible characters).")
    if len(text) < bounds[0]:
        raise ValueError(f"Type a {what} first.")
    if len(text) > bounds[1]:
        raise ValueError(f"A {what} has at most {bounds[1]} characters; this one has {len(text)}.")
    return text


def _display_name(raw: str) -> str:
    text = _printable_name(raw, "display name", NAME_LENGTH)
    if "@" in text:
        raise ValueError("Use a first name or a nickname, not an email address: the class needs no personal data.")
    if _DIGITS.search(text):
        raise ValueError(
            "Use a first name or a nickname, not a long number (a phone or a student number): "
            "the class needs no personal data."
        )
    return text


def _class_name(raw: str) -> str:
    return _printable_name(raw, "class name", CLASS_NAME_LENGTH)


DisplayNameText = Annotated[str, AfterValidator(_display_name)]
ClassNameText = Annotated[str, AfterValidator(_class_name)]


class DisplayName(BaseModel):
    """What a class sees of a learner: a first name or a nickname, printable and short."""

    text: DisplayNameText


class ClassName(BaseModel):
    text: ClassNameText


def _first_sentence(exc: ValidationError) -> str:
    error = exc.errors()[0]
    cause = (error.get("ctx") or {}).get("error")
    return str(cause) if cause is not None else "Type plain text here."


def display_name(raw: object) -> str:
    """``raw`` as a display name (whitespace tidied), or :class:`InvalidInput` with the one problem it has."""
    try:
        return DisplayName(text=raw if isinstance(raw, str) else "").text
    except ValidationError as exc:
        raise InvalidInput(_first_sentence(exc)) from None


def class_name(raw: object) -> str:
    """``raw`` as a class's name, or :class:`InvalidInput` saying why not."""
    try:
        return ClassName(text=raw if isinstance(raw, str) else "").text
    except ValidationError as exc:
        raise InvalidInput(_first_sentence(exc)) from None


def bounded(raw: object, bounds: tuple[float, float], what: str) -> float:
    """A number typed for ``what`` within ``bounds`` (inclusive), or a sentence naming the bounds."""
    low, high = bounds
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"{what.capitalize()} must be a number from {low:g} to {high:g}.") from None
    if not low <= value <= high:  # NaN fails this too
        raise InvalidInput(f"{what.capitalize()} must be from {low:g} to {high:g}; {value:g} is outside.")
    return value
