"""A design as SQLAlchemy Core objects: ``Table``, ``Column``, ``Index``, ``CheckConstraint``.

The DDL comes from SQLAlchemy's compiler for the sandbox's own database, so every name is
quoted by the dialect and every type is one from the list: nothing the learner typed is
pasted into SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    func,
    literal,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from source.learning.event_table.design import EventTableDesign

TYPES: dict[str, Any] = {
    "uuid text (36)": lambda: String(36),
    "short text (100)": lambda: String(100),
    "long text": Text,
    "integer": Integer,
    "big integer": BigInteger,
    "timestamp": lambda: DateTime(timezone=True),
    "JSON": JSON,
    "boolean": Boolean,
}


def _server_default(default: str) -> Any:
    return {
        "none": None,
        "now()": func.now(),
        "0": text("0"),
        "'pending'": "pending",
        "false": false(),
        "empty JSON {}": text("'{}'"),
    }[default]


def to_table(design: EventTableDesign, schema: str | None) -> Table:
    """The learner's table, in ``schema`` (their PostgreSQL schema) or the SQLite file's only one."""
    columns = [
        Column(
            c.name,
            TYPES[c.type](),
            nullable=c.nullable and not c.primary_key,
            primary_key=c.primary_key,
            unique=c.unique or None,
            server_default=_server_default(c.default),
            autoincrement=False,
        )
        for c in design.columns
    ]
    table = Table(design.table, MetaData(schema=schema), *columns)
    status = design.column("status")
    if design.check_status and status is not None:
        allowed = ", ".join(f"'{v}'" for v in design.status_values)  # each value matched ^[a-z][a-z0-9_]*$
        table.append_constraint(
            CheckConstraint(text(f"{status.name} IN ({allowed})"), name=f"ck_{design.table}_status")
        )
    for n, index in enumerate(design.indexes):
        where: dict[str, Any] = {}
        if index.pending_only and status is not None:
            condition = table.c[status.name] == literal("pending", String)
            where = {"postgresql_where": condition, "sqlite_where": condition}
        Index(f"ix_{design.table}_{n}", *(table.c[c] for c in index.columns), unique=index.unique, **where)
    return table


def ddl(table: Table, dialect: Dialect) -> list[str]:
    """The CREATE TABLE and CREATE INDEX statements, as this database will receive them."""
    statements = [str(CreateTable(table).compile(dialect=dialect)).strip()]
    statements += [
        str(CreateIndex(i).compile(dialect=dialect, compile_kwargs={"literal_binds": True})) for i in table.indexes
    ]
    return statements
