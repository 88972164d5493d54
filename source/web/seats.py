"""Drawing a page takes no seat; acting does: the context that tells the two apart, and the fragment that keeps it.

A Streamlit run is a page being *drawn* (the script from the top, or one fragment again), with the
callbacks of the widgets the learner just used running *before* it. Actions live in those callbacks
(:mod:`source.web.actions`). So while a page is drawn, :func:`source.web.sandbox` hands a learner
without a seat the shared read-only visitor's sandbox (see :mod:`source.platform.visitor`), and in a
callback it takes a seat. ``app.py`` draws the whole page inside :func:`drawing`; a fragment's rerun
does not run ``app.py``, so every fragment goes through :func:`fragment`, which draws it inside
:func:`drawing` too (``tests/test_layers.py`` checks that no page uses ``st.fragment`` directly).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, TypeVar, overload

import streamlit as st
from streamlit.errors import StreamlitAPIException

from source.web.fragments import in_fragment_run, request_fragments

F = TypeVar("F", bound=Callable[..., Any])

_DRAWING: ContextVar[bool] = ContextVar("persistence_lab_drawing", default=False)

#: Session-state key: a click inside a fragment just took this learner's seat.
SEAT_TAKEN_KEY = "plab_seat_taken_in_fragment"


def seat_taken() -> None:
    """Called when an action takes a seat. Inside a fragment's rerun, the rest of the page (the sidebar, the
    panels drawn from the visitor's sandbox) is stale: the fragment then asks for the whole page once."""
    if in_fragment_run():
        st.session_state[SEAT_TAKEN_KEY] = True


@contextlib.contextmanager
def drawing() -> Iterator[None]:
    """Everything inside only draws: a learner without a seat is shown the visitor's sandbox."""
    token = _DRAWING.set(True)
    try:
        yield
    finally:
        _DRAWING.reset(token)


def is_drawing() -> bool:
    """True while a page or a fragment is drawn; False in a widget's callback (an action)."""
    return _DRAWING.get()


Every = int | float | timedelta | str | None


@overload
def fragment(func: F, *, run_every: Every = None, key: str | None = None) -> F: ...
@overload
def fragment(func: None = None, *, run_every: Every = None, key: str | None = None) -> Callable[[F], F]: ...
def fragment(func: F | None = None, *, run_every: Every = None, key: str | None = None) -> F | Callable[[F], F]:
    """``st.fragment`` whose every run (the page's, or its own rerun) only draws: it never takes a seat.

    Used like ``st.fragment``: ``@fragment``, ``@fragment(run_every="1s")`` or ``fragment(f, run_every=…)``.
    The callbacks of the widgets inside it still run before it, outside :func:`drawing`: they act.
    A fragment drawn with a ``key`` is a panel that a click elsewhere may redraw with :func:`redraw`.
    """

    def wrap(f: F) -> F:
        @functools.wraps(f)
        def drawn(*args: Any, **kwargs: Any) -> Any:
            if st.session_state.pop(SEAT_TAKEN_KEY, False) and in_fragment_run():
                st.rerun(scope="app")  # drawn for a visitor until this click: draw the whole page, seated
            with drawing():
                return f(*args, **kwargs)

        return st.fragment(drawn, run_every=run_every, key=key)  # type: ignore[return-value]

    return wrap(func) if func is not None else wrap


def redraw(*keys: str) -> None:
    """Redraw the panels drawn with these fragment keys, and nothing else: the click changed what they show.

    Called at the end of a widget's callback (the click's own panel among ``keys`` if it is to be drawn
    again), or from a fragment's own run that finds its work done (a job's progress, at the job's end).
    The whole page is drawn instead when the click just took the learner's seat (everything was drawn
    for a visitor), and when one of the panels is not on the page now (the page stopped before it).
    """
    if not in_fragment_run():
        return  # a whole page is being drawn, or about to be
    if st.session_state.pop(SEAT_TAKEN_KEY, False):
        st.rerun(scope="app")
    try:
        if is_drawing():
            request_fragments(list(keys))  # from a fragment's own run
        else:
            st.rerun(list(keys))  # from a widget's callback: Streamlit's own keyed rerun
    except StreamlitAPIException:
        st.rerun(scope="app")  # a panel the last run did not draw: only the whole page draws it
    except (AttributeError, TypeError):
        st.rerun(scope="app")  # a Streamlit whose script runner no longer takes the request: the whole page
