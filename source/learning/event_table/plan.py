"""Reading a query plan: does an index serve "pending, oldest first", or does the database read everything?

Four verdicts, best first: ``served`` (an index finds the pending rows already in age
order), ``sorts`` (an index finds them, then they are sorted), ``walks`` (an index gives
the order, but every row is read and its status checked), ``full scan`` (no index at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["served", "sorts", "walks", "full scan"]


@dataclass(frozen=True)
class PlanReading:
    lines: list[str]  # the plan as the database printed it
    verdict: Verdict
    index: str | None  # the index the plan uses, if any


def _verdict(full: bool, filtered: bool, walked: bool, sorts: bool) -> Verdict:
    if full:
        return "full scan"
    if filtered:
        return "sorts" if sorts else "served"
    return "walks" if walked else "full scan"


def read_sqlite(details: list[str], pending_only: set[str]) -> PlanReading:
    """``EXPLAIN QUERY PLAN`` rows: ``SCAN t``, ``SEARCH t USING INDEX ix (status=?)``, ``USE TEMP B-TREE``."""
    full = filtered = walked = sorts = False
    index = None
    for detail in details:
        if m := re.match(r"SEARCH \S+ USING (?:COVERING )?INDEX (\S+)", detail):
            filtered, index = True, m.group(1)
        elif m := re.match(r"SCAN \S+ USING (?:COVERING )?INDEX (\S+)", detail):
            index = m.group(1)
            filtered = filtered or index in pending_only  # a partial index holds only pending rows
            walked = True
        elif re.match(r"SCAN \S+$", detail):
            full = True
        if "TEMP B-TREE" in detail:
            sorts = True
    return PlanReading(details, _verdict(full, filtered, walked, sorts), index)


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node]
    for child in node.get("Plans", []):
        found += _nodes(child)
    return found


def read_postgres(plan: Any, text_lines: list[str], pending_only: set[str], status_column: str) -> PlanReading:
    """``EXPLAIN (FORMAT JSON)`` output, read node by node; ``text_lines`` is what the learner sees."""
    root = plan[0]["Plan"] if isinstance(plan, list) else plan["Plan"]
    full = filtered = walked = sorts = False
    index = None
    for node in _nodes(root):
        kind = node.get("Node Type", "")
        if kind == "Seq Scan":
            full = True
        elif kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
            index = node.get("Index Name")
            if status_column in str(node.get("Index Cond", "")) or index in pending_only:
                filtered = True
            else:
                walked = True
        elif kind in ("Sort", "Incremental Sort"):
            sorts = True
    return PlanReading(text_lines, _verdict(full, filtered, walked, sorts), index)
