"""Every destructive action asks first: one component for delete, reset, start over and clean-up.

The first click only asks: a warning says what will go, and the keyboard focus moves to *Yes*
(so the answer is one key press away, not eighteen tabs). *Yes* runs the action in its callback
and shows its outcome in place; the question is gone by then. *Cancel* just forgets the question.
Keys: ``<key>`` for the first button, ``<key>_yes`` and ``<key>_cancel`` for the answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import streamlit as st
import streamlit.components.v1 as components

from source.platform.outcome import Outcome
from source.web.actions import act, show_outcome

#: Moves the focus to the button whose key it is given, once Streamlit has drawn it (tries for 2 s).
_FOCUS = """<script>
const wanted = %s;
let tries = 0;
const look = () => {
  const button = window.parent.document.querySelector(`.st-key-${wanted} button`);
  if (button) { button.focus(); } else if (tries++ < 40) { setTimeout(look, 50); }
};
look();
</script>"""


def confirmed_button(  # noqa: PLR0913 - what is asked, and what happens, both need saying
    where: Any,
    label: str,
    *,
    key: str,
    question: str,
    yes: str,
    action: Callable[[], str | Outcome | None],
    help: str,
    about: str = "",
) -> None:
    """A button for something that cannot be undone: it asks ``question`` first, and ``yes`` runs ``action``.

    ``about`` names what the question is about (a user's id): when it changes, an open question
    no longer applies and the first button shows again.
    """
    asking = f"{key}_asking"
    if st.session_state.get(asking) == (about or True):
        where.warning(question, icon="⚠️")
        left, right = where.columns(2)
        left.button(yes, key=f"{key}_yes", type="primary", on_click=_answered, args=(key, action))
        right.button("Cancel", key=f"{key}_cancel", on_click=st.session_state.pop, args=(asking, None))
        with where.container():
            components.html(_FOCUS % json.dumps(f"{key}_yes"), height=0)
    else:
        where.button(label, key=key, help=help, on_click=st.session_state.__setitem__, args=(asking, about or True))
    show_outcome(f"{key}_outcome", where)


def _answered(key: str, action: Callable[[], str | Outcome | None]) -> None:
    st.session_state.pop(f"{key}_asking", None)  # the question goes before the answer is shown
    act(f"{key}_outcome", action)
