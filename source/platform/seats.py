"""When a seat goes back: a sandbox acted in only briefly and then left is released after a short grace.

A seat (a sandbox) is taken by a learner's first action, never by a visit. Some learners click once and
leave: a link opened in a class, tried, closed. Holding their seat for the whole idle expiry (an hour by
default) would tell the next learner "the lab is full" for nothing. So the registry tells apart:

* a sandbox whose activity spans less than :data:`BRIEF_S` from its first action to its last, then
  nothing for :data:`GRACE_S`, and no page open on it any more (:class:`Presence`): released after the
  grace (a few minutes, not an hour). A learner still reading the page keeps their seat;
* a sandbox in real use: kept until the idle expiry, as before.

A learner who comes back to a released seat is told why, and their next action takes a new one.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

#: Activity spanning less than this from the first action to the last is a brief try (seconds).
BRIEF_S = 120.0
#: How long a brief try's seat is kept after its last activity (seconds).
GRACE_S = 300.0


def release_reason(opened: float, last_used: float, now: float, idle_s: float, *, open_pages: int = 0) -> str | None:
    """Why a sandbox (not busy) is due for release at ``now``, or ``None`` if it is kept.

    ``opened`` is when its first action took the seat, ``last_used`` its latest activity
    (both ``time.monotonic()``), ``idle_s`` the idle expiry of sandboxes in real use, ``open_pages``
    how many browser sessions still show a page of it (a learner reading is not a learner gone).
    """
    quiet = now - last_used
    if quiet > idle_s:
        return f"Your previous sandbox was released after {idle_s / 60:g} minutes without a click."
    if last_used - opened < BRIEF_S and quiet > GRACE_S and open_pages == 0:
        return (
            f"Your previous sandbox was used for under {BRIEF_S / 60:g} minutes and then left for "
            f"{GRACE_S / 60:g}, so its seat went to the next learner."
        )
    return None


class Presence:
    """How many browser sessions show a page of each sandbox right now (thread-safe, forgets released ones).

    The web layer counts a session in when it draws a sandbox's page and out when Streamlit ends that
    session (the tab closed, the network gone): a tab left open keeps a brief try's seat.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pages: weakref.WeakKeyDictionary[Sandbox, int] = weakref.WeakKeyDictionary()

    def arrive(self, sandbox: Sandbox) -> None:
        with self._lock:
            self._pages[sandbox] = self._pages.get(sandbox, 0) + 1

    def leave(self, sandbox: Sandbox) -> None:
        with self._lock:
            left = self._pages.get(sandbox, 0) - 1
            if left > 0:
                self._pages[sandbox] = left
            else:
                self._pages.pop(sandbox, None)

    def pages(self, sandbox: Sandbox) -> int:
        with self._lock:
            return self._pages.get(sandbox, 0)
