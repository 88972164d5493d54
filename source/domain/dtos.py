"""Pydantic DTOs: what crosses the boundary between a page and the data layer.

Pages hand plain values to these models; validation happens here, once, with messages
a learner can act on. The ORM objects never leave a session: pages get DTOs back.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails

from source.domain.errors import InvalidInput


def printable(text: str) -> str:
    """Refuse control characters (NUL, escape, line breaks...) in a one-line text field.

    PostgreSQL refuses a NUL byte in text ("invalid byte sequence") while SQLite stores it,
    so without this check the two backends would disagree about the same input.
    """
    if isinstance(text, str):
        for char in text:
            if unicodedata.category(char) == "Cc":
                raise ValueError(f"must not contain control characters (found U+{ord(char):04X})")
    return text


Printable = AfterValidator(printable)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), Printable]
OccupationCode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20), Printable]
EducationLevel = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50), Printable]
YEARS_MAX = 70
Years = Annotated[float, Field(ge=0, le=YEARS_MAX, allow_inf_nan=False)]
Email = Annotated[EmailStr, BeforeValidator(printable)]


class UserCreate(BaseModel):
    """A new user as typed into a form. The email is checked for shape, not delivery."""

    email: Email
    name: Name
    occupation_code: OccupationCode | None = None
    education_level: EducationLevel | None = None
    years_experience: Years | None = None

    @field_validator("email")
    @classmethod
    def _lowercase(cls, email: str) -> str:
        """Stored in lower case, so the UNIQUE index (which compares exact text) sees
        ``Ada@InnovateAI.com`` and ``ada@innovateai.com`` as the same address."""
        return email.lower()


class UserUpdate(BaseModel):
    """The editable profile fields (the email is the identity: it is not edited here)."""

    name: Name
    occupation_code: OccupationCode | None = None
    education_level: EducationLevel | None = None
    years_experience: Years | None = None


class UserRow(BaseModel):
    """A user as a page shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    name: str
    occupation_code: str | None
    education_level: str | None
    years_experience: float | None
    created_at: datetime
    updated_at: datetime


class CascadeReport(BaseModel):
    """What a delete removed, counted in the database before and after."""

    user_email: str
    assessments_removed: int
    scores_removed: int
    statements: list[str] = []


class QueryResult(BaseModel):
    """A query's SQL as the database received it, and the rows it returned (maybe one page of them)."""

    sql: str
    columns: list[str]
    rows: list[list[Any]]
    total: int = 0  # rows the whole query has (more than ``rows`` when this is one page)
    offset: int = 0  # rows skipped before this page


class ProfileSave(BaseModel):
    """A saved profile, and the UPDATE statements the database received (none if nothing changed)."""

    row: UserRow
    updates: list[str]


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], **values: Any) -> M:
    """Validate ``values`` into ``model`` or raise :class:`InvalidInput` with a readable message."""
    # Blank text fields mean "not given"; surrounding spaces are never meant.
    cleaned = {k: (v.strip() or None) if isinstance(v, str) else v for k, v in values.items()}
    try:
        return model(**cleaned)
    except ValidationError as exc:
        problems = [_problem(err).rstrip(".") for err in exc.errors()]
        raise InvalidInput("Please fix: " + "; ".join(problems) + ".") from None


def _problem(err: ErrorDetails) -> str:
    """One refusal as a learner reads it: the field, what is wrong, and what was given."""
    field = (".".join(str(p) for p in err["loc"]) or "input").replace("_", " ")
    given = err.get("input")
    context = err.get("ctx") or {}
    if given is None:
        return f"{field}: is required"
    if err["type"] in ("greater_than_equal", "less_than_equal", "finite_number"):
        return f"{field}: must be between 0 and {YEARS_MAX} (got {given!r})"
    if err["type"] == "string_too_long":
        return f"{field}: at most {context.get('max_length')} characters (got {len(str(given))})"
    if err["type"] == "value_error":
        return f"{field}: " + str(context.get("error", err["msg"])).removeprefix("value is not a valid email address: ")
    return f"{field}: {err['msg']}"


def parse_id(value: str, what: str = "user") -> str:
    """Ids are UUIDs; anything else is rejected before it reaches the database."""
    text = (value or "").strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise InvalidInput(f"'{shown}' is not a {what} id. Ids look like 0f8c…-…: a UUID.") from None
