"""Pydantic DTOs: what crosses the boundary between a page and the data layer.

Pages hand plain values to these models; validation happens here, once, with messages
a learner can act on. The ORM objects never leave a session: pages get DTOs back.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, ValidationError, field_validator

from source.platform.errors import InvalidInput

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
OccupationCode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)]
EducationLevel = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
Years = Annotated[float, Field(ge=0, le=70)]


class UserCreate(BaseModel):
    """A new user as typed into a form. The email is checked for shape, not delivery."""

    email: EmailStr
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
    """A query's SQL as the database received it, and the rows it returned."""

    sql: str
    columns: list[str]
    rows: list[list[Any]]


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], **values: Any) -> M:
    """Validate ``values`` into ``model`` or raise :class:`InvalidInput` with a readable message."""
    # Blank text fields mean "not given"; surrounding spaces are never meant.
    cleaned = {k: (v.strip() or None) if isinstance(v, str) else v for k, v in values.items()}
    try:
        return model(**cleaned)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "input"
            message = err["msg"].removeprefix("value is not a valid email address: ")
            if err.get("input") is None:
                message = "is required"
            problems.append(f"{field.replace('_', ' ')}: {message}")
        raise InvalidInput("Please fix: " + "; ".join(problems)) from None


def parse_id(value: str, what: str = "user") -> str:
    """Ids are UUIDs; anything else is rejected before it reaches the database."""
    text = (value or "").strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise InvalidInput(f"'{shown}' is not a {what} id. Ids look like 0f8c…-…: a UUID.") from None
