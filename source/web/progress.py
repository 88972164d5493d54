"""Background work shown live on a page: a progress bar that redraws itself, and a Stop button.

Long work (Lab 2's experiments) runs on the app's event loop, not in the page script, so
a click elsewhere on the page cannot cut it short. The page draws :func:`live_progress`
while the work runs: a fragment that reruns on its own every ``every_s`` seconds (only the
fragment, not the page) and, once the work has ended, reruns the whole page once so that
it shows the result and enables the controls again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import streamlit as st


class BackgroundWork(Protocol):
    """What the progress panel needs from a piece of background work."""

    @property
    def running(self) -> bool: ...

    @property
    def fraction(self) -> float: ...

    def describe(self) -> str: ...

    def stop(self) -> None: ...


@st.fragment(run_every=0.5)
def live_progress(find: Callable[[], BackgroundWork | None], *, key: str, stop_label: str = "Stop") -> None:
    """A progress bar and a Stop button for the work ``find()`` returns, redrawn twice a second.

    ``find`` is called on every redraw, so the panel follows the work even across the
    learner's other clicks. When nothing runs any more, the whole page reruns once.
    """
    work = find()
    if work is None or not work.running:
        st.rerun(scope="app")
    bar, stop = st.columns([5, 1], vertical_alignment="center")
    bar.progress(work.fraction, text=work.describe())
    if stop.button(stop_label, key=key, help="Stops it now: every connection is given back.", width="stretch"):
        work.stop()
        bar.caption("Stopping…")
