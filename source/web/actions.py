"""Actions run from a widget's callback, with their outcome shown where the action lives.

A callback runs *before* the page script, so the page that follows already shows the
action's effect: no second rerun (``st.rerun()``) to redraw it. A callback may also clear
or refill widgets, which a script may not do once they are drawn. Its outcome (a success
sentence, or the one-sentence explanation of a failure) waits in session state under a
key until the page shows it in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from source.platform.errors import explain


def act(outcome_key: str, action: Callable[[], str | None]) -> bool:
    """Run ``action``; keep its success sentence, or the explanation of its failure, for :func:`show_outcome`."""
    try:
        message = action()
    except Exception as exc:  # noqa: BLE001 - the learner sees a message, never a traceback
        st.session_state[outcome_key] = ("error", explain(exc))
        return False
    st.session_state[outcome_key] = ("success", message) if message else None
    return True


def show_outcome(outcome_key: str, where: Any = None) -> None:
    """Show (once) what the last action under ``outcome_key`` reported."""
    outcome = st.session_state.pop(outcome_key, None)
    if outcome is None:
        return
    kind, message = outcome
    target = where or st
    if kind == "error":
        target.error(message, icon="⚠️")
    else:
        target.success(message)
