"""When a seat goes back: a sandbox acted in only briefly and then left is released after a short grace.

A seat (a sandbox) is taken by a learner's first action, never by a visit. Some learners click once and
leave: a link opened in a class, tried, closed. Holding their seat for the whole idle expiry (an hour by
default) would tell the next learner "the lab is full" for nothing. So the registry tells apart:

* a sandbox whose activity spans less than :data:`BRIEF_S` from its first action to its last, and then
  nothing for :data:`GRACE_S`: released after the grace (a few minutes, not an hour);
* a sandbox in real use: kept until the idle expiry, as before.

A learner who comes back to a released seat is told why, and their next action takes a new one.
"""

from __future__ import annotations

#: Activity spanning less than this from the first action to the last is a brief try (seconds).
BRIEF_S = 120.0
#: How long a brief try's seat is kept after its last activity (seconds).
GRACE_S = 300.0


def release_reason(opened: float, last_used: float, now: float, idle_s: float) -> str | None:
    """Why a sandbox (not busy) is due for release at ``now``, or ``None`` if it is kept.

    ``opened`` is when its first action took the seat, ``last_used`` its latest activity
    (both ``time.monotonic()``), ``idle_s`` the idle expiry of sandboxes in real use.
    """
    quiet = now - last_used
    if quiet > idle_s:
        return f"Your previous sandbox was released after {idle_s / 60:g} minutes without a click."
    if last_used - opened < BRIEF_S and quiet > GRACE_S:
        return (
            f"Your previous sandbox was used for under {BRIEF_S / 60:g} minutes and then left for "
            f"{GRACE_S / 60:g}, so its seat went to the next learner."
        )
    return None
