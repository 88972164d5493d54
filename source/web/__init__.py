"""Streamlit glue: one set of backends per process, one sandbox per browser session.

This is the only module that knows about Streamlit's caches. Pages call
:func:`sandbox` to get the learner's own sandbox and :func:`attempt` to run an action so
that any failure becomes a clear message on the page instead of a traceback.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import streamlit as st

from source.platform.backends import Backends
from source.platform.config import Settings
from source.platform.errors import explain
from source.platform.sandbox import Sandbox

T = TypeVar("T")


def _secrets() -> dict[str, Any]:
    try:
        return {k: st.secrets[k] for k in ("DATABASE_URL", "REDIS_URL") if k in st.secrets}
    except Exception:  # noqa: BLE001 - no secrets file is the normal case
        return {}


@st.cache_resource(show_spinner="Starting the lab's database and Redis…")
def _backends(database_url: str | None, redis_url: str | None) -> Backends:
    """Process-wide: built once per distinct pair of URLs, shared by every viewer."""
    return Backends.build(Settings(database_url=database_url, redis_url=redis_url))


def backends() -> Backends:
    settings = Settings.load(_secrets())
    return _backends(settings.database_url, settings.redis_url)


def _release(sandbox: Sandbox) -> None:
    sandbox.backends.release(sandbox)


@st.cache_resource(scope="session", on_release=_release, show_spinner="Preparing your own sandbox…")
def _session_sandbox(_backends: Backends, backends_id: int) -> Sandbox:
    """Per browser session: released (schema dropped, file deleted) when the session ends."""
    return _backends.open_sandbox()


def sandbox() -> Sandbox:
    """This learner's sandbox, created on first use."""
    b = backends()
    return _session_sandbox(b, id(b))


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` in this learner's sandbox on the app's event loop."""
    try:
        box = sandbox()
    except BaseException:
        coro.close()  # it will never run: say so, instead of leaving it unawaited
        raise
    return box.run(coro, timeout)


def attempt(action: Callable[[], T], *, where: Any = None) -> tuple[bool, T | None]:
    """Call ``action``; on failure show one clear sentence and return ``(False, None)``."""
    try:
        return True, action()
    except Exception as exc:  # noqa: BLE001 - the learner sees a message, never a traceback
        (where or st).error(explain(exc), icon="⚠️")
        return False, None


_source_lock = threading.Lock()


@functools.cache
def _source(obj: Any) -> str:
    """The source of ``obj``, read once per process.

    For a class, ``inspect.getsource`` parses its whole module with ``ast.parse``. On
    Python 3.11 two threads parsing at once can fail with "AST constructor recursion depth
    mismatch", and every learner's page runs on its own thread: so one thread reads at a time.
    """
    with _source_lock:
        return inspect.getsource(obj)


def show_source(*objects: Any, label: str = "The code that ran") -> None:
    """Show the real source of the functions a page calls (never a pasted copy)."""
    with st.expander(label):
        for obj in objects:
            st.code(_source(obj), language="python")


def sidebar_status() -> None:
    """Which backends are live, why a fallback happened, and the learner's reset button."""
    b = backends()
    status = b.status
    with st.sidebar:
        st.subheader("Backends")
        st.markdown(f"**Database:** {status.database} · {status.database_where}")
        if status.database_note:
            st.warning(status.database_note)
        st.markdown(f"**Redis:** {status.redis} · {status.redis_where}")
        if status.redis_note:
            st.warning(status.redis_note)
        ok, box = attempt(sandbox)
        if not ok or box is None:
            return
        where = f"schema `{box.schema}`" if box.schema else "its own SQLite file"
        st.caption(f"Your sandbox `{box.id}`: {where}, Redis keys `{box.key_prefix}*`. Nobody else sees it.")
        if st.button("Reset my sandbox", key="sidebar_reset", help="Empties your database and your Redis keys only."):
            ok, _ = attempt(lambda: box.run(box.reset()))
            if ok:
                st.success("Your sandbox is empty again and migrated to the newest schema.")
