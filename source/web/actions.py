"""Every click runs its action in the widget's callback, and its outcome is shown in place.

A callback runs *before* the page script, so the page that follows already shows the
action's effect: no second rerun (``st.rerun()``) to redraw it. A callback may also clear
or refill widgets, which a script may not do once they are drawn. Its outcome (a sentence,
an :class:`~source.platform.outcome.Outcome`, or the one-sentence explanation of a failure)
waits in session state under a key until the page shows it where the action lives.

    st.button("Invalidate", key="lab4_invalidate", on_click=act, args=("lab4_invalidated", invalidate))
    show_outcome("lab4_invalidated")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from source.platform.errors import explain
from source.platform.outcome import Outcome
from source.web.seats import redraw

_ICONS = {"success": None, "info": "ℹ️", "warning": "⚠️", "error": "⚠️"}


def act(outcome_key: str, action: Callable[[], str | Outcome | None]) -> bool:
    """Run ``action``; keep what it reported, or the explanation of its failure, for :func:`show_outcome`."""
    try:
        said = action()
    except Exception as exc:  # noqa: BLE001 - the learner sees a message, never a traceback
        st.session_state[outcome_key] = Outcome(explain(exc), "error")
        return False
    st.session_state[outcome_key] = Outcome(said) if isinstance(said, str) else said
    return True


def show_outcome(outcome_key: str, where: Any = None) -> None:
    """Show (once) what the last action under ``outcome_key`` reported, coloured by its kind."""
    outcome = st.session_state.pop(outcome_key, None)
    if isinstance(outcome, Outcome):
        say(outcome, where)


def say(outcome: Outcome, where: Any = None) -> None:
    """One outcome on the page: its sentence in the box of its kind, and its detail as a caption under it."""
    target = where or st
    getattr(target, outcome.kind)(outcome.text, icon=_ICONS[outcome.kind])
    if outcome.detail:
        target.caption(outcome.detail)


def act_and_redraw(outcome_key: str, action: Callable[[], str | Outcome | None], redraws: tuple[str, ...]) -> None:
    """:func:`act`, then only the panels drawn with the fragment keys ``redraws`` are drawn again."""
    act(outcome_key, action)
    redraw(*redraws)


def button(
    where: Any,
    label: str,
    *,
    key: str,
    action: Callable[[], str | Outcome | None],
    redraws: tuple[str, ...] = (),
    **options: Any,
) -> None:
    """A button whose callback runs ``action``, with its outcome shown right under it.

    The outcome waits under ``<key>_outcome``: a button's own key is read-only in session state.
    ``redraws``: for a button in a fragment whose action changes panels drawn elsewhere, the fragment
    keys of every panel to draw again after it (its own among them), instead of its fragment alone.
    """
    if redraws:
        where.button(label, key=key, on_click=act_and_redraw, args=(f"{key}_outcome", action, redraws), **options)
    else:
        where.button(label, key=key, on_click=act, args=(f"{key}_outcome", action), **options)
    show_outcome(f"{key}_outcome", where)
