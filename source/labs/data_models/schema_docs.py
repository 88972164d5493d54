"""The schema described from the real metadata: an ER diagram and the DDL per dialect.

Nothing here is written by hand: change a model and both the diagram and the DDL change.
The models do not change while the app runs, so each is computed once per process.
"""

from __future__ import annotations

import functools

from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from source.domain.models import Base

DIALECTS: dict[str, Dialect] = {
    "SQLite": sqlite.dialect(),
    "PostgreSQL": postgresql.dialect(),  # type: ignore[no-untyped-call]
}


@functools.cache
def ddl(dialect_name: str, metadata: MetaData = Base.metadata) -> str:
    """CREATE TABLE and CREATE INDEX statements as ``dialect_name`` would run them."""
    dialect = DIALECTS[dialect_name]
    parts: list[str] = []
    for table in metadata.sorted_tables:
        parts.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            parts.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";")
    return "\n\n".join(parts)


@functools.cache
def er_diagram_dot(metadata: MetaData = Base.metadata) -> str:
    """A Graphviz diagram: one box per table (PK, FK and type per column), one arrow per FK."""
    lines = [
        "digraph schema {",
        "  rankdir=LR; node [shape=plain fontname=Helvetica fontsize=10]; edge [fontname=Helvetica fontsize=9];",
    ]
    for table in metadata.sorted_tables:
        rows = [f'<tr><td bgcolor="#dbe8f7" colspan="2"><b>{table.name}</b></td></tr>']
        for col in table.columns:
            marks = ("PK " if col.primary_key else "") + ("FK " if col.foreign_keys else "")
            name = f"<u>{col.name}</u>" if col.primary_key else col.name
            rows.append(
                f'<tr><td align="left" port="{col.name}">{marks}{name}</td>'
                f'<td align="left" port="{col.name}_r"><font color="#555555">{col.type}</font></td></tr>'
            )
        body = "".join(rows)
        lines.append(f'  {table.name} [label=<<table border="0" cellborder="1" cellspacing="0">{body}</table>>];')
    for table in metadata.sorted_tables:
        for fk in table.foreign_keys:
            # Leave from the right of the FK cell, arrive at the left of the PK cell; the crow's
            # foot sits on the "many" side.
            lines.append(
                f"  {table.name}:{fk.parent.name}_r:e -> {fk.column.table.name}:{fk.column.name}:w"
                ' [label="many-to-one" dir=both arrowtail=crow arrowhead=tee];'
            )
    lines.append("}")
    return "\n".join(lines)


@functools.cache
def table_summary(metadata: MetaData = Base.metadata) -> tuple[dict[str, object], ...]:
    """Per table: columns, indexes and foreign keys, for a compact overview table."""
    return tuple(
        {
            "table": t.name,
            "columns": len(t.columns),
            "indexes": ", ".join(sorted(str(i.name) for i in t.indexes)),
            "foreign keys": ", ".join(f"{fk.parent.name} → {fk.target_fullname}" for fk in t.foreign_keys),
        }
        for t in metadata.sorted_tables
    )
