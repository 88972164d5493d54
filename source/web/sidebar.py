"""The sidebar: which backends are live and answering, the learner's sandbox, Reset and Start over."""

from __future__ import annotations

from typing import Any

import streamlit as st

from source.platform.backends import Backends
from source.platform.health import Health
from source.web import NOTE_KEY, attempt, backends, health, reset, sandbox, start_over
from source.web.confirm import confirmed_button


def navigation_links(sections: dict[str, list[Any]]) -> None:
    """Every page, by section, as links in the sidebar.

    Streamlit's own sidebar menu puts its section headings inside the list of links (``<ul>`` with
    ``<div>`` children), which screen readers cannot announce as a list (axe: ``list``, ``listitem``);
    a heading and plain links per section read correctly.
    """
    with st.sidebar:
        for title, pages in sections.items():
            st.markdown(f"**{title}**")
            for page in pages:
                st.page_link(page, label=page.title, icon=page.icon)


def sidebar_status() -> None:
    """Which backends are live and answering, the learner's sandbox, Reset and Start over."""
    with st.sidebar:
        st.subheader("Backends")
        ok, b = attempt(backends)
        if not ok or b is None:
            return
        status, now = b.status, health()
        for kind, where, note, up, detail in (
            (status.database, status.database_where, status.database_note, *_answer(now, "database")),
            (status.redis, status.redis_where, status.redis_note, *_answer(now, "redis")),
        ):
            label = "Database" if kind in ("PostgreSQL", "SQLite") else "Redis"
            st.markdown(f"**{label}:** {kind} · {where}")
            (st.caption if up else st.error)(f"{'🟢 answering' if up else '🔴 not answering'}: {detail}")
            if note:
                st.warning(note)
        for note in status.config_notes:
            st.warning(note)
        _sandbox_panel(b)


def _answer(now: Health | None, which: str) -> tuple[bool, str]:
    if now is None:
        return False, "the health check itself did not finish"
    ok, detail = (now.database_ok, now.database_detail) if which == "database" else (now.redis_ok, now.redis_detail)
    return ok, f"{detail} (checked every few seconds)"


def _sandbox_panel(b: Backends) -> None:
    ok, box = attempt(sandbox)
    if not ok or box is None:
        return
    if note := st.session_state.get(NOTE_KEY):  # kept for the session: it explains why the sandbox is new
        st.info(note)
    where = f"schema `{box.schema}`" if box.schema else "its own SQLite file"
    st.caption(f"Your sandbox `{box.id}`: {where}, Redis keys `{box.key_prefix}*`. Nobody else sees it.")
    st.caption(
        "This page's address (its `?lab=…` part) brings you back to this sandbox after a refresh, in another "
        f"tab or after your laptop sleeps, until it has been idle for {b.settings.idle_minutes:g} minutes. "
        "Keep it to yourself: whoever has the address has the sandbox."
    )
    st.caption(b.durability)
    # Both ask first: one stray click must not empty a learner's work.
    confirmed_button(
        st,
        "Reset my sandbox",
        key="sidebar_reset",
        question="Reset empties your users, scores, events, Redis keys and progress, here, at this address.",
        yes="Yes, reset",
        action=reset,
        help="Asks first, then empties your database and your Redis keys only.",
    )
    confirmed_button(
        st,
        "Start over",
        key="sidebar_start_over",
        question="Start over leaves this sandbox (it is released) and opens a new, empty one at a new address.",
        yes="Yes, start over",
        action=_start_over,
        help="Asks first, then gives you a new, empty sandbox and a new address.",
    )


def _start_over() -> None:
    start_over()
    st.session_state[NOTE_KEY] = "You started over: this is a new, empty sandbox with a new address."
