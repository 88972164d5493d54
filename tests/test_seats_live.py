"""Passers-by over the real websocket take no seat: 60 anonymous visits leave room for the next learner.

The app runs as a deployment runs it (``streamlit run``) with ``PLAB_MAX_SANDBOXES=40``, on its own
temporary folder and, for ``services``, its own PostgreSQL database and its own redis-server
(``bench/passers_by.py``). Sixty visits open the pages in turn over Streamlit's websocket and close
again, as link previews and tabs opened and closed do. Then a learner opens Lab 1 and creates a user.
"""

from __future__ import annotations

import shutil

import pytest

from bench import passers_by
from tests.conftest import BACKEND_KINDS, REQUIRE_SERVICES, unavailable
from tests.test_browser import in_own_thread

VISITS, SEATS = 60, 40


@pytest.mark.parametrize("backend", BACKEND_KINDS)
def test_sixty_passers_by_take_no_seat_and_leave_room_for_the_next_learner(backend: str) -> None:
    if backend == "services" and shutil.which("redis-server") is None:
        unavailable("redis-server is not installed: this test runs the app on a private Redis")
    try:
        r = in_own_thread(lambda: passers_by.measure(backend, VISITS, SEATS, at_once=6))
    except OSError as exc:  # PostgreSQL not there to make the app's own database
        if REQUIRE_SERVICES or backend == "embedded":
            raise
        unavailable(f"PostgreSQL did not answer: {exc}")
    assert r.wrong == [], "every visit drew its page, said the visitor is looking around, and got no token"
    assert r.after.sandboxes == r.before.sandboxes == 0, "no schema and no SQLite sandbox file for a visit"
    assert r.after.visitor_keys == 0, "nothing written under the visitors' Redis prefix"
    assert r.seated, f"the next learner's first action took a seat and created a user ({r.said})"
    assert r.after_seat.sandboxes == 1, "their seat is the one sandbox there is"
