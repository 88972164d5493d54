"""The sidebar: which backends are live and answering, the learner's sandbox, Reset and Start over."""

from __future__ import annotations

import streamlit as st

from source.platform.backends import Backends
from source.platform.health import Health
from source.web import NOTE_KEY, attempt, backends, health, sandbox, start_over

#: Which sidebar action ("reset" or "start over") waits for the learner to confirm it.
CONFIRM_KEY = "plab_sidebar_confirm"


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
    pending = st.session_state.get(CONFIRM_KEY)
    if pending is None:
        left, right = st.columns(2)
        # Both act only after a second click: one stray click must not empty a learner's work.
        left.button(
            "Reset my sandbox",
            key="sidebar_reset",
            help="Asks first, then empties your database and your Redis keys only.",
            on_click=st.session_state.__setitem__,
            args=(CONFIRM_KEY, "reset"),
        )
        right.button(
            "Start over",
            key="sidebar_start_over",
            help="Asks first, then gives you a new, empty sandbox and a new address.",
            on_click=st.session_state.__setitem__,
            args=(CONFIRM_KEY, "start over"),
        )
        return
    st.warning(
        "Reset empties your users, scores, events and Redis keys, here, at this address."
        if pending == "reset"
        else "Start over leaves this sandbox (it is released) and opens a new, empty one at a new address."
    )
    yes, no = st.columns(2)
    confirmed = yes.button(f"Yes, {pending}", key="sidebar_confirm", type="primary")
    no.button("Cancel", key="sidebar_cancel", on_click=st.session_state.pop, args=(CONFIRM_KEY, None))
    if not confirmed:
        return
    st.session_state.pop(CONFIRM_KEY, None)
    if pending == "reset":
        ok, _ = attempt(lambda: box.run(box.reset()))
        if ok:
            st.success("Your sandbox is empty again and migrated to the newest schema.")
        return
    ok, fresh = attempt(start_over)
    if ok and fresh is not None:
        st.session_state[NOTE_KEY] = "You started over: this is a new, empty sandbox with a new address."
        st.rerun()
