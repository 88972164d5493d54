"""Widgets the labs share: a whole-number input that a forged value cannot break, and a paged table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import streamlit as st

#: Characters Markdown gives a meaning to; a backslash before each makes it plain text.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def whole_number_input(  # noqa: PLR0913 - Streamlit's own arguments, plus the bounds
    where: Any, label: str, bounds: tuple[int, int], value: int, *, key: str, help: str | None = None, step: int = 1
) -> int:
    """A number input for a whole number within ``bounds`` (inclusive).

    It is a *float* input shown without decimals: Streamlit resets a float input to its
    default when a client sends infinity, NaN or a value out of range, whereas a whole-number
    input would raise while reading the value (``int(inf)``) and take the page down.
    """
    low, high = bounds
    chosen = where.number_input(
        label, float(low), float(high), float(value), step=float(step), format="%.0f", key=key, help=help
    )
    return round(float(chosen))


def paged_table(rows: Sequence[dict[str, Any]], *, key: str, page_rows: int, noun: str = "row") -> None:
    """``rows`` one page at a time, as a static table: only that page is sent on each rerun.

    A static table (``st.table``) draws in the browser several times faster than the
    interactive grid (``st.dataframe``), which matters for a table redrawn on every click.
    It renders Markdown in its cells, so text is escaped: a name such as ``**x**`` shows
    exactly as the database holds it.
    """
    pages = max(1, (len(rows) + page_rows - 1) // page_rows)
    page = 1
    if pages > 1:
        page = whole_number_input(st, f"Page (of {pages})", (1, pages), 1, key=f"{key}_page")
    first = (page - 1) * page_rows
    shown = rows[first : first + page_rows]
    st.table([{name: literal(value) for name, value in row.items()} for row in shown], hide_index=True)
    st.caption(f"{len(rows)} {noun}(s); showing {first + 1}–{first + len(shown)}.")


def literal(value: object) -> object:
    """``value`` as a table cell shows it: text with Markdown's special characters escaped."""
    if isinstance(value, str):
        return MARKDOWN_SPECIAL.sub(r"\\\1", value) if value else value
    return value
