"""The code shown is the code that ran: each function's real source, read once per process."""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any

import streamlit as st

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
            st.code(_source(obj), language="python", wrap_lines=True)
