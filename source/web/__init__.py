"""Streamlit glue: one set of backends per process, one sandbox per learner.

This is the only package that knows about Streamlit. Pages call :func:`sandbox` to get the
learner's own sandbox, :func:`run` to run a coroutine in it, and :func:`attempt` to run an
action so that any failure becomes a clear message on the page instead of a traceback.

A learner is not a browser session: a refresh or a reconnect starts a new session, and
Streamlit clears session-scoped caches on every disconnect. So the sandbox is found through
a token kept in the page's address (``?lab=…``); the session keeps a copy for the page
switches that drop the address's query string.

A visit is not a learner either: while a page is only drawn (see :mod:`source.web.seats`), a
learner without a sandbox is shown the process's shared, read-only visitor's sandbox, and their
first action takes a seat (a sandbox of their own, within ``PLAB_MAX_SANDBOXES``).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
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
from source.web.seats import drawing, fragment, is_drawing, seat_taken

__all__ = [
    "attempt",
    "backends",
    "drawing",
    "fragment",
    "health",
    "no_users_yet",
    "page_sandbox",
    "rebuild_backends",
    "release_every_sandbox",
    "reset",
    "run",
    "sandbox",
    "seat",
    "show_source",
    "start_over",
]

T = TypeVar("T")

#: The query parameter that carries the learner's sandbox token.
TOKEN_PARAM = "lab"  # noqa: S105 - a parameter's name, not a secret
#: Session-state keys: the token (for page switches), and a note to show once.
TOKEN_KEY = "plab_sandbox_token"  # noqa: S105 - a key's name, not a secret
NOTE_KEY = "plab_sandbox_note"
#: A class's board on a projector (``?board=<code>``): the token stays out of an address the room can read.
BOARD_PARAM = "board"
#: Settings that may come from Streamlit secrets besides the two URLs.
SETTINGS_PREFIX = "PLAB_"

#: How long a shutting-down process waits for its sandboxes to be released (seconds).
RELEASE_AT_EXIT_S = 10.0

_built: weakref.WeakSet[Backends] = weakref.WeakSet()
#: Backends being shut down after their cache entry was dropped (see :func:`rebuild_backends`).
_shutting_down: list[threading.Thread] = []


def _secrets() -> dict[str, Any]:
    try:
        keys = [k for k in st.secrets if k in ("DATABASE_URL", "REDIS_URL") or k.startswith(SETTINGS_PREFIX)]
        return {k: st.secrets[k] for k in keys}
    except Exception:  # noqa: BLE001 - no secrets file is the normal case
        return {}


def _shut_down(b: Backends) -> None:
    """Let go of every sandbox (kept in the directory when linked), close the clients, stop the loop (bounded)."""
    with contextlib.suppress(Exception):
        b.leave(timeout=RELEASE_AT_EXIT_S)
        b.close()
    b.runtime.stop()


def _shut_down_soon(b: Backends) -> None:
    """Shut ``b`` down on a thread of its own: Streamlit may drop its cache on its own server loop,
    where a wait would freeze every learner's page."""
    thread = threading.Thread(target=_shut_down, args=(b,), name="persistence-lab-shutdown", daemon=True)
    thread.start()
    _shutting_down[:] = [t for t in _shutting_down if t.is_alive()] + [thread]


@st.cache_resource(show_spinner="Starting the lab's database and Redis…", on_release=_shut_down_soon)
def _backends() -> Backends:
    """Process-wide and built once, shared by every viewer: the settings are read here, once per process.

    A change to the URLs or budgets (environment or secrets) takes effect when the process
    restarts. Reading them on every rerun would build a second set of backends the moment a
    secret changed, while the first kept its event loop and its learners' sandboxes.
    """
    built = Backends.build(Settings.load(_secrets()))
    _built.add(built)
    # Linked sandboxes outlive the process in the shared directory; the others are released as it ends.
    atexit.register(_release_at_exit, weakref.ref(built))
    return built


def _release_at_exit(ref: weakref.ref[Backends]) -> None:
    """Let go of this process's sandboxes as it shuts down: linked ones stay in the directory for the
    next process, the rest are dropped (bounded; the orphan sweep is the backstop)."""
    b = ref()
    if b is not None:
        with contextlib.suppress(Exception):
            b.leave(timeout=RELEASE_AT_EXIT_S)


def backends() -> Backends:
    """The process's backends, built on first use from the settings of that moment."""
    return _backends()


def rebuild_backends(timeout: float = RELEASE_AT_EXIT_S + 30) -> None:
    """Shut the process's backends down and forget them, so the next page reads the settings again.

    For tests that change the configuration between runs of the app; also what Streamlit's
    *Clear caches* does, without the wait.
    """
    _backends.clear()  # its on_release shuts the old backends down
    while _shutting_down:
        _shutting_down.pop().join(timeout)


def sandbox() -> Sandbox:
    """This learner's sandbox: the one their page's address names; else, while a page is drawn, the shared
    read-only visitor's sandbox; else (an action) a new one, which takes a seat.

    A token that neither this process nor the sandbox directory knows (guessed, mistyped, or expired)
    never reaches anybody's data: the learner's next action gets a new, empty sandbox and a note says why.
    Raises :class:`~source.platform.errors.LabFull` when an action needs a seat and all are taken.
    """
    b = backends()
    found, token, why = _seat(b)
    if found is None and is_drawing():
        if why:
            st.session_state[NOTE_KEY] = f"{why} Your first action opens a new, empty sandbox."
        return b.visitor()
    if found is None:
        found = b.open_sandbox()
        token = b.sandboxes.issue(found)
        seat_taken()
        if why:
            st.session_state[NOTE_KEY] = f"{why} This is a new, empty sandbox."
        elif st.session_state.get(NOTE_KEY, "").endswith("Your first action opens a new, empty sandbox."):
            st.session_state.pop(NOTE_KEY)
    _remember(str(token))
    _on_screen(b, found)
    return found


def seat() -> Sandbox | None:
    """This learner's own sandbox if they have taken a seat; ``None`` for a visitor (nothing is opened)."""
    b = backends()
    found, token, _ = _seat(b)
    if found is not None:
        _remember(str(token))
        _on_screen(b, found)
    return found


#: What a visitor's page says it is drawn from, where a learner's would speak of their sandbox.
VISITOR_VIEW = "until then this page shows the empty, read-only lab every visitor sees"


def no_users_yet(then: str) -> str:
    """What a page with no users says, with what to do ``then`` (e.g. "create one above").

    A learner with a seat has an empty sandbox; a visitor has none: their first action makes it.
    """
    if seat() is None:
        return f"No users yet: {then}. That first action takes a seat, a sandbox of your own; {VISITOR_VIEW}."
    return f"Your sandbox has no users yet: {then}."


def _seat(b: Backends) -> tuple[Sandbox | None, str | None, str | None]:
    """The live sandbox the address (or, after a page switch, the session) names, its token, and why there is none."""
    asked = st.query_params.get(TOKEN_PARAM)
    found, why = b.sandboxes.find(asked)
    token = asked
    remembered = st.session_state.get(TOKEN_KEY)
    if found is None and remembered and remembered != asked:
        found, _ = b.sandboxes.find(remembered)  # a page switch dropped the query string
        token, why = remembered, (None if found is not None else why)
    return found, token, why


class _OnScreen:
    """This browser session shows a page of ``box``: counted in now, out when Streamlit ends the session."""

    def __init__(self, b: Backends, box: Sandbox) -> None:
        self.presence, self.box = b.sandboxes.presence, box
        self.presence.arrive(box)

    def end(self) -> None:
        self.presence.leave(self.box)  # a lock and a number: safe on Streamlit's own server loop


@st.cache_resource(scope="session", on_release=lambda watch: watch.end(), show_spinner=False)
def _watch(sandbox_id: str, _b: Backends, _box: Sandbox) -> _OnScreen:
    """One count per session and sandbox (by id; the underscored arguments are not hashed)."""
    return _OnScreen(_b, _box)


def _on_screen(b: Backends, box: Sandbox) -> None:
    """Note that this session shows ``box`` (a brief try whose page is still open keeps its seat)."""
    with contextlib.suppress(Exception):  # no session (a bare script): nothing to count
        _watch(box.id, b, box)


def _remember(token: str) -> None:
    st.session_state[TOKEN_KEY] = token
    if st.query_params.get(BOARD_PARAM):  # on a projector: the session alone keeps the token
        if TOKEN_PARAM in st.query_params:
            del st.query_params[TOKEN_PARAM]
        return
    if st.query_params.get(TOKEN_PARAM) != token:
        st.query_params[TOKEN_PARAM] = token


def start_over() -> None:
    """Give the seat back: the sandbox is released in the background, and the learner is a visitor again
    (their next action takes a new, empty sandbox under a new token)."""
    b = backends()
    old, _, _ = _seat(b)
    st.session_state.pop(TOKEN_KEY, None)
    if TOKEN_PARAM in st.query_params:
        del st.query_params[TOKEN_PARAM]
    if old is not None:
        b.release_soon(old, "You started over; the sandbox this address pointed to was released.")


def reset() -> str:
    """Empty this learner's sandbox (database, Redis keys, progress) and migrate it again."""
    box = sandbox()
    box.run(box.reset())
    return "Your sandbox is empty again and migrated to the newest schema."


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
