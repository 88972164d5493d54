"""Lab 5's inputs, checked before they reach a database: no NUL, no control character, the right shape.

PostgreSQL refuses a NUL byte in text with a driver's message, and SQLite stores it: neither
is what a learner should meet. So a code or an id that holds one (or a tab, a newline, an
escape, an invisible format character) is refused here with a sentence, before any statement.
"""

from __future__ import annotations

import uuid

from source.domain.errors import InvalidInput

#: The longest id the lab writes (a UUID's 36 characters).
ID_CHARS = 36


def _control_character(text: str) -> str | None:
    """How to name the first character of ``text`` that is not printable, e.g. "NUL (U+0000)"; None if all are."""
    for ch in text:
        if not ch.isprintable():
            return "NUL (U+0000)" if ch == "\0" else f"U+{ord(ch):04X}"
    return None


def printable(value: object, what: str) -> str:
    """``value`` as text, without surrounding spaces; refused if it holds a control character."""
    text = "" if value is None else str(value).strip(" ")
    if (found := _control_character(text)) is not None:
        raise InvalidInput(
            f"The {what} holds a control character, {found}: type it again with visible characters only. "
            "Nothing was written."
        )
    return text


def identifier(value: object, what: str) -> str:
    """An id the lab wrote (a user's, an assessment's): printable, 1 to 36 characters."""
    text = printable(value, what)
    if not 0 < len(text) <= ID_CHARS:
        raise InvalidInput(f"The {what} must be 1 to {ID_CHARS} characters (a UUID fits); got {len(text)}.")
    return text


def event_id(value: object) -> str:
    """An event's id, as a learner pastes it from a table: a UUID, written the way the lab writes it."""
    text = printable(value, "event id")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidInput(f"{text[:60]!r} is not an event id: ids look like 0f8c…-…, a UUID.") from None
