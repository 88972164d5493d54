"""Streamlit glue: one set of backends per process, one sandbox per learner.

This is the only package that knows about Streamlit. Pages call :func:`sandbox` to get the
learner's own sandbox, :func:`run` to run a coroutine in it, and :func:`attempt` to run an
action so that any failure becomes a clear message on the page instead of a traceback.

A learner is not a browser session: a refresh or a reconnect starts a new session, and
Streamlit clears session-scoped caches on every disconnect. So the sandbox is found through
a token kept in the page's address (``?lab=…``); the session keeps a copy for the page
switches that drop the address's query string.
"""

from __future__ import annotations

import atexit
import contextlib
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import streamlit as st

from source.platform.backends import Backends
from source.platform.config import Settings
from source.platform.errors import explain
from source.platform.health import HEALTH_TIMEOUT_S, Health
from source.platform.sandbox import Sandbox
from source.web.code_view import show_source

__all__ = [
    "attempt",
    "backends",
    "health",
    "page_sandbox",
    "release_every_sandbox",
    "run",
    "sandbox",
    "show_source",
    "sidebar_status",
    "start_over",
]

T = TypeVar("T")

#: The query parameter that carries the learner's sandbox token.
TOKEN_PARAM = "lab"  # noqa: S105 - a parameter's name, not a secret
#: Session-state keys: the token (for page switches), and a note to show once.
TOKEN_KEY = "plab_sandbox_token"  # noqa: S105 - a key's name, not a secret
NOTE_KEY = "plab_sandbox_note"
#: Which sidebar action ("reset" or "start over") waits for the learner to confirm it.
CONFIRM_KEY = "plab_sidebar_confirm"
#: Settings that may come from Streamlit secrets besides the two URLs.
SETTINGS_PREFIX = "PLAB_"

#: How long a shutting-down process waits for its sandboxes to be released (seconds).
RELEASE_AT_EXIT_S = 10.0

_built: weakref.WeakSet[Backends] = weakref.WeakSet()


def _secrets() -> dict[str, Any]:
    try:
        keys = [k for k in st.secrets if k in ("DATABASE_URL", "REDIS_URL") or k.startswith(SETTINGS_PREFIX)]
        return {k: st.secrets[k] for k in keys}
    except Exception:  # noqa: BLE001 - no secrets file is the normal case
        return {}


@st.cache_resource(show_spinner="Starting the lab's database and Redis…")
def _backends(key: str, _settings: Settings) -> Backends:
    """Process-wide: built once per distinct configuration (``key``), shared by every viewer."""
    built = Backends.build(_settings)
    _built.add(built)
    # Tokens live in this process only: when it ends, nobody can come back to its sandboxes.
    atexit.register(_release_at_exit, weakref.ref(built))
    return built


def _release_at_exit(ref: weakref.ref[Backends]) -> None:
    """Drop this process's sandboxes as it shuts down (bounded; the orphan sweep is the backstop)."""
    b = ref()
    if b is not None:
        with contextlib.suppress(Exception):
            b.release_all(timeout=RELEASE_AT_EXIT_S)


def backends() -> Backends:
    settings = Settings.load(_secrets())
    return _backends(repr(settings), settings)


def sandbox() -> Sandbox:
    """This learner's sandbox: the one their page's address names, or a new one.

    A token this process never issued (guessed, mistyped, or from before a restart) never
    reaches anybody's data: the learner gets a new, empty sandbox and a note saying why.
    Raises :class:`~source.platform.errors.LabFull` when the process holds all it may.
    """
    b = backends()
    asked = st.query_params.get(TOKEN_PARAM)
    found, why = b.sandboxes.find(asked)
    token = asked
    remembered = st.session_state.get(TOKEN_KEY)
    if found is None and remembered and remembered != asked:
        found, _ = b.sandboxes.find(remembered)  # a page switch dropped the query string
        token, why = remembered, (None if found is not None else why)
    if found is None:
        found = b.open_sandbox()
        token = b.sandboxes.issue(found)
        if why:
            st.session_state[NOTE_KEY] = f"{why} This is a new, empty sandbox."
    _remember(str(token))
    return found


def _remember(token: str) -> None:
    st.session_state[TOKEN_KEY] = token
    if st.query_params.get(TOKEN_PARAM) != token:
        st.query_params[TOKEN_PARAM] = token


def start_over() -> Sandbox:
    """A new, empty sandbox under a new token; the old one is released in the background."""
    b = backends()
    old = sandbox()
    new = b.open_sandbox()
    _remember(b.sandboxes.issue(new))
    b.release_soon(old, "You started over with a new sandbox; the old one was released.")
    return new


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` in this learner's sandbox on the app's event loop."""
    try:
        box = sandbox()
    except BaseException:
        coro.close()  # it will never run: say so, instead of leaving it unawaited
        raise
    return box.run(coro, timeout)


def health() -> Health | None:
    """Whether the database and Redis answer right now (``None`` if the check itself failed)."""
    try:
        b = backends()
        return b.runtime.run(b.check_health(), timeout=HEALTH_TIMEOUT_S + 3)
    except Exception:  # noqa: BLE001 - no answer is shown as "unknown", never as a traceback
        return None


def attempt(action: Callable[[], T], *, where: Any = None) -> tuple[bool, T | None]:
    """Call ``action``; on failure show one clear sentence and return ``(False, None)``."""
    try:
        return True, action()
    except Exception as exc:  # noqa: BLE001 - the learner sees a message, never a traceback
        (where or st).error(explain(exc), icon="⚠️")
        return False, None


def page_sandbox() -> Sandbox:
    """This learner's sandbox for a page; if it cannot be opened, one sentence says why and the page stops."""
    ok, box = attempt(sandbox)
    if not ok or box is None:
        st.stop()
    return box


def release_every_sandbox() -> int:
    """Release every sandbox of every backends this process built (tests; an instructor's reset)."""
    return sum(b.release_all() for b in list(_built))


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
