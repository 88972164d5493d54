"""What a learner may design: names checked, types and defaults from lists, each column's role."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS as POSTGRES_RESERVED
from sqlalchemy.dialects.sqlite.base import SQLiteIdentifierPreparer

from source.domain.errors import InvalidInput

MAX_COLUMNS = 12
MAX_INDEXES = 3
MAX_INDEX_COLUMNS = 3
MAX_STATUS_VALUES = 6
NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")  # matched whole (fullmatch: "$" would let a final newline in)
STATUS_VALUE = re.compile(r"[a-z][a-z0-9_]{0,19}")
#: Words either database reserves, and a few more that make confusing column names.
RESERVED = frozenset(POSTGRES_RESERVED) | frozenset(SQLiteIdentifierPreparer.reserved_words) | {"user", "type_"}

TypeName = Literal[
    "uuid text (36)", "short text (100)", "long text", "integer", "big integer", "timestamp", "JSON", "boolean"
]
DefaultName = Literal["none", "now()", "0", "'pending'", "false", "empty JSON {}"]
Role = Literal[
    "event id",
    "event type",
    "aggregate id",
    "payload",
    "status",
    "created at",
    "attempts",
    "last error",
    "published at",
]
TYPES: tuple[str, ...] = get_args(TypeName)
DEFAULTS: tuple[str, ...] = get_args(DefaultName)
ROLES: tuple[str, ...] = get_args(Role)

TEXT = {"uuid text (36)", "short text (100)", "long text"}
WHOLE = {"integer", "big integer"}
#: Which types a default fits.
DEFAULT_FITS: dict[str, set[str]] = {
    "now()": {"timestamp"},
    "0": WHOLE,
    "'pending'": TEXT,
    "false": {"boolean"},
    "empty JSON {}": {"JSON"},
}
#: Which types a role needs, and why, in the learner's words.
ROLE_FITS: dict[str, tuple[set[str], str]] = {
    "event id": (TEXT | WHOLE, "text or a whole number"),
    "event type": (TEXT, "text"),
    "aggregate id": (TEXT | WHOLE, "text or a whole number"),
    "payload": ({"JSON", "long text"}, "JSON or long text"),
    "status": (TEXT, "text"),
    "created at": ({"timestamp"} | WHOLE, "a timestamp (or a whole-number sequence)"),
    "attempts": (WHOLE, "a whole number"),
    "last error": (TEXT, "text"),
    "published at": ({"timestamp"}, "a timestamp"),
}


class ColumnDesign(BaseModel):
    name: str
    type: TypeName
    role: Role | None = None
    nullable: bool = True
    default: DefaultName = "none"
    primary_key: bool = False
    unique: bool = False


class IndexDesign(BaseModel):
    columns: list[str] = Field(min_length=1)
    unique: bool = False
    pending_only: bool = False  # a partial index: WHERE status = 'pending'


class EventTableDesign(BaseModel):
    table: str
    columns: list[ColumnDesign]
    indexes: list[IndexDesign] = []
    status_values: list[str] = ["pending", "published", "failed"]
    check_status: bool = False

    def column(self, role: str) -> ColumnDesign | None:
        return next((c for c in self.columns if c.role == role), None)

    def summary(self) -> str:
        cols = ", ".join(f"{c.name} {c.type}" + (f" [{c.role}]" if c.role else "") for c in self.columns)
        idx = "; ".join(
            "(" + ", ".join(i.columns) + ")" + (" pending only" if i.pending_only else "") for i in self.indexes
        )
        return f"{self.table}: {cols}" + (f"; indexes {idx}" if idx else "")


def name_problem(what: str, name: str) -> str | None:
    """Why ``name`` cannot be used as a table or column name, or None if it can."""
    shown = name if len(name) <= 40 else name[:37] + "…"
    if not name:
        return f"{what} needs a name"
    if not NAME.fullmatch(name):
        return (
            f"{what} '{shown}' may use only lowercase letters, digits and _, must start with a letter, "
            "and has at most 40 characters"
        )
    if name in RESERVED:
        return f"{what} '{name}' is a reserved word in SQL; pick another (e.g. '{name}_value')"
    return None


def problems(design: EventTableDesign) -> list[str]:  # noqa: C901, PLR0912 - one check per rule reads best
    """Every rule the design breaks, each in one sentence."""
    found: list[str] = []
    if p := name_problem("The table", design.table):
        found.append(p)
    if not 1 <= len(design.columns) <= MAX_COLUMNS:
        found.append(f"An event table here has 1 to {MAX_COLUMNS} columns (you gave {len(design.columns)})")
    seen: set[str] = set()
    roles: dict[str, str] = {}
    for c in design.columns:
        if p := name_problem("Column", c.name):
            found.append(p)
        elif c.name in seen:
            found.append(f"Column '{c.name}' appears twice; every column needs its own name")
        seen.add(c.name)
        if c.default != "none" and c.type not in DEFAULT_FITS[c.default]:
            found.append(f"Column '{c.name}': the default {c.default} does not fit the type {c.type}")
        if c.primary_key and c.nullable:
            found.append(f"Column '{c.name}' is a primary key, so it cannot allow NULL: untick 'NULL allowed'")
        if c.role:
            if c.role in roles:
                found.append(f"Both '{roles[c.role]}' and '{c.name}' are marked as the {c.role}; choose one")
            roles[c.role] = c.name
            fits, words = ROLE_FITS[c.role]
            if c.type not in fits:
                found.append(f"Column '{c.name}' is the {c.role}, which needs {words}, not {c.type}")
    if not 1 <= len(design.status_values) <= MAX_STATUS_VALUES:
        found.append(f"Give 1 to {MAX_STATUS_VALUES} status values")
    for value in design.status_values:
        if not STATUS_VALUE.fullmatch(value):
            found.append(f"Status value '{value[:30]}' may use only lowercase letters, digits and _ (at most 20)")
    if len(set(design.status_values)) != len(design.status_values):
        found.append("A status value appears twice")
    if len(design.indexes) > MAX_INDEXES:
        found.append(f"At most {MAX_INDEXES} indexes")
    for n, index in enumerate(design.indexes, 1):
        if len(index.columns) > MAX_INDEX_COLUMNS:
            found.append(f"Index {n} has more than {MAX_INDEX_COLUMNS} columns")
        if missing := [c for c in index.columns if c not in seen]:
            found.append(f"Index {n} names column(s) the table does not have: {', '.join(missing)}")
        if len(set(index.columns)) != len(index.columns):
            found.append(f"Index {n} names a column twice")
        if index.pending_only and "status" not in roles:
            found.append(f"Index {n} is 'pending rows only', which needs a column marked as the status")
    return found


def parse_design(raw: dict[str, Any]) -> EventTableDesign:
    """Validate a design from the form, or raise :class:`InvalidInput` listing every problem."""
    try:
        design = EventTableDesign.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidInput(f"The design could not be read ({details}). Nothing was created.") from None
    if found := problems(design):
        raise InvalidInput("Please fix, nothing was created: " + "; ".join(found) + ".")
    return design
