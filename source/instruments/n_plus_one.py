"""An N+1 detector: the same statement shape, sent again and again, one row's worth at a time.

In the spirit of nplusone and django-zeal, it works on what really ran (a :class:`QueryLog`):
statements are grouped by *shape*, their SQL with every value, bind parameter and IN-list
replaced by a placeholder, so ``... WHERE ? = air_scores.user_id`` sent for 1,000 users is one
shape seen 1,000 times. A shape repeated at least ``threshold`` times is reported with the
relationship it loads (named through the mapper registry, from its table and foreign-key
column) and the line of code that sent it.

A statement whose IN-list holds several values loads many parents at once: that is the cure
(``selectinload`` sends one per 500 parents), so such batches are never reported.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.orm import RelationshipDirection, registry

from source.domain.models import Base
from source.instruments.query_log import Caller, QueryLog, StatementRecord

#: Report a shape once it repeats this many times (nplusone and django-zeal flag the second).
DEFAULT_THRESHOLD = 2

_SCHEMA = re.compile(r"\bplab_[0-9a-f]+\.")
_CASTS = re.compile(r"::(?:TIMESTAMP WITH(?:OUT)? TIME ZONE|\w+(?:\(\d+\))?)(?:\[\])?")
_PLACEHOLDER = re.compile(r"\$\d+|%\(\w+\)s|(?<!:):\w+|\?")
_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w.$])-?\d+(?:\.\d+)?\b")
_IN_LIST = re.compile(r"\bIN \((?:\s*\?\s*,?)+\)", re.IGNORECASE)
_BATCH = re.compile(r"\bIN \(\s*\?\s*,\s*\?", re.IGNORECASE)
_FROM = re.compile(r"\bFROM (\w+)(?: AS \w+)?", re.IGNORECASE)
_KEY = re.compile(r"\bWHERE (?:\? = (\w+)\.(\w+)|(\w+)\.(\w+) (?:= \?|IN \(…\)))", re.IGNORECASE)
_VERB = re.compile(r"^\s*(\w+)")


def without_schema(sql: str) -> str:
    """SQL without the sandbox's schema prefix (every table on PostgreSQL carries it)."""
    return _SCHEMA.sub("", sql)


_LONG_LIST = re.compile(r"(?<=\bIN )\((\s*[^(),]+(?:,\s*[^(),]+){5,})\)", re.IGNORECASE)
_LONG_ARRAY = re.compile(r"'\{([^}']{200,})\}'")


def readable(text: str) -> str:
    """SQL or a plan fit to read: no schema prefix, long IN-lists and arrays cut to a count."""

    def cut(match: re.Match[str], opening: str, closing: str) -> str:
        items = match.group(1).split(",")
        return f"{opening}{items[0].strip()}, {items[1].strip()}, … {len(items):,} values{closing}"

    text = _LONG_LIST.sub(lambda m: cut(m, "(", ")"), without_schema(text))
    return _LONG_ARRAY.sub(lambda m: cut(m, "'{", "}'"), text)


def shape(sql: str) -> str:
    """The statement with values, bind parameters and IN-lists normalised."""
    text = _CASTS.sub("", without_schema(sql))
    text = _STRING.sub("?", text)
    text = _PLACEHOLDER.sub("?", text)
    text = _NUMBER.sub("?", text)
    return _IN_LIST.sub("IN (…)", text)


def is_batch(sql: str) -> bool:
    """An IN-list of two or more values: one statement for many parents."""
    text = _PLACEHOLDER.sub("?", _CASTS.sub("", sql))
    return bool(_BATCH.search(text))


def relationship_for(table: str, column: str, mappers: registry | None = None) -> str | None:
    """Name the relationship a ``table.column = ?`` lookup loads, e.g. ``User.scores``.

    One-to-many: the table is the child's and the column its foreign key. Many-to-one:
    the table is the parent's and the column its primary key (several may match).
    """
    found = []
    for mapper in (mappers or Base.registry).mappers:
        for rel in mapper.relationships:
            target = rel.mapper.local_table
            if getattr(target, "name", None) != table:
                continue
            if rel.direction is RelationshipDirection.ONETOMANY:
                keys = {c.name for c in rel.remote_side}
            elif rel.direction is RelationshipDirection.MANYTOONE:
                keys = {c.name for c in rel.mapper.primary_key}
            else:
                continue
            if column in keys:
                found.append(f"{mapper.class_.__name__}.{rel.key}")
    return " or ".join(sorted(found)) or None


@dataclass
class Finding:
    """One repeated shape: what it loads, how often, and from where."""

    shape: str
    count: int
    table: str | None
    relationship: str | None
    #: Our frames that sent the most statements of this shape, innermost first.
    stack: tuple[Caller, ...]
    other_callers: int
    example: str

    @property
    def caller(self) -> Caller | None:
        return self.stack[0] if self.stack else None

    @property
    def message(self) -> str:
        what = f"`{self.relationship}`" if self.relationship else f"`{self.table or 'a statement'}`"
        verb = "loaded" if self.shape.upper().startswith("SELECT") else "written"
        where = f" from `{self.caller}`" if self.caller else ""
        also = f" (and {self.other_callers} other line(s))" if self.other_callers else ""
        return f"N+1: {what} {verb} {self.count:,} times{where}{also}"


@dataclass
class Verdict:
    """The detector's answer for one log."""

    findings: list[Finding] = field(default_factory=list)
    threshold: int = DEFAULT_THRESHOLD
    statements: int = 0
    batches: int = 0

    @property
    def flagged(self) -> bool:
        return bool(self.findings)

    @property
    def summary(self) -> str:
        if self.findings:
            return "; ".join(f.message for f in self.findings)
        batches = f", {self.batches} batched IN-list load(s)" if self.batches else ""
        counted = f"{self.statements} statements{batches}"
        return f"No N+1: no statement shape repeated {self.threshold} or more times ({counted})"


def detect(log: QueryLog | list[StatementRecord], threshold: int = DEFAULT_THRESHOLD) -> Verdict:
    """Group statements by shape and report each shape sent ``threshold`` times or more."""
    if threshold < 2:
        raise ValueError("An N+1 needs a shape seen at least twice: threshold must be ≥ 2")
    records = log.records if isinstance(log, QueryLog) else log
    groups: dict[str, list[StatementRecord]] = {}
    batches = 0
    for record in records:
        if is_batch(record.sql):
            batches += 1
            continue
        groups.setdefault(shape(record.sql), []).append(record)
    findings = []
    for key, group in groups.items():
        if len(group) < threshold:
            continue
        stacks = Counter(r.stack for r in group)
        stack, _ = stacks.most_common(1)[0]
        others = len({s[:1] for s in stacks}) - 1  # other lines that sent the same shape
        table, relationship = _what_it_loads(key)
        findings.append(Finding(key, len(group), table, relationship, stack, others, without_schema(group[0].sql)))
    findings.sort(key=lambda f: -f.count)
    return Verdict(findings, threshold, len(records), batches)


def _what_it_loads(statement_shape: str) -> tuple[str | None, str | None]:
    verb = _VERB.match(statement_shape)
    if verb is None or verb.group(1).upper() != "SELECT":
        target = re.search(r"\b(?:INTO|UPDATE|FROM) (\w+)", statement_shape, re.IGNORECASE)
        return (target.group(1) if target else None), None
    table = _FROM.search(statement_shape)
    key = _KEY.search(statement_shape)
    if table is None:
        return None, None
    if key is None:
        return table.group(1), None
    column = key.group(2) or key.group(4)
    return table.group(1), relationship_for(table.group(1), column)
