"""Seats are taken by learners, not visits: pages are drawn from a shared read-only sandbox until the first action.

A passer-by (a link preview, a tab opened and closed, someone reading the story) costs no schema, no
file and no seat: every page is drawn from the process's visitor's sandbox, which nothing can write to.
The first action takes a seat; a seat used only briefly and then left goes back after a short grace.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from streamlit.runtime.caching.cache_resource_api import clear_session_cache
from streamlit.testing.v1 import AppTest

from source import web
from source.domain.models import User
from source.labs.data_models import checks as checks_lab1
from source.platform.backends import Backends
from source.platform.orphans import SQLITE_FOLDER_PREFIX
from source.platform.seats import BRIEF_S, GRACE_S, release_reason
from source.platform.visitor import VISITOR_PREFIX
from source.web import TOKEN_PARAM
from tests.conftest import APPTEST_SESSION_ID, ROOT, assert_no_exception, configure_app, open_app, page_text

PAGES = [
    "views/home.py",
    "views/join_class.py",
    "views/lab1_data_models.py",
    "views/lab2_connectivity.py",
    "views/lab3_repository.py",
    "views/lab4_caching.py",
    "views/lab5_outbox.py",
    "views/create_exercise.py",
    "views/instructor.py",
]
IDLE_S = 3600.0


# -- the release rule, on a clock of our own ---------------------------------------------------
def test_a_seat_used_briefly_and_left_goes_back_after_the_grace() -> None:
    opened = 1000.0
    last = opened + BRIEF_S / 2  # two clicks a minute apart, then nothing
    assert release_reason(opened, last, last + GRACE_S - 1, IDLE_S) is None, "kept during the grace"
    why = release_reason(opened, last, last + GRACE_S + 1, IDLE_S)
    assert why is not None
    assert "next learner" in why


def test_a_seat_in_real_use_keeps_the_idle_expiry() -> None:
    opened = 1000.0
    last = opened + BRIEF_S + 1  # worked for more than the brief span
    assert release_reason(opened, last, last + GRACE_S + 1, IDLE_S) is None, "no grace rule for real work"
    assert release_reason(opened, last, last + IDLE_S - 1, IDLE_S) is None
    why = release_reason(opened, last, last + IDLE_S + 1, IDLE_S)
    assert why is not None
    assert "60 minutes without a click" in why


def test_a_brief_try_still_on_screen_keeps_its_seat() -> None:
    opened = 1000.0
    last = opened + 10
    assert release_reason(opened, last, last + GRACE_S + 1, IDLE_S, open_pages=1) is None, "the learner is reading"
    assert release_reason(opened, last, last + IDLE_S + 1, IDLE_S, open_pages=1) is not None, "idle expiry still holds"


def test_the_registry_releases_a_brief_try_and_keeps_real_work(backends: Backends) -> None:
    brief, working = backends.open_sandbox(), backends.open_sandbox()
    try:
        t0 = brief.opened
        brief.last_used = t0 + 10
        working.opened, working.last_used = t0, t0 + BRIEF_S + 30
        backends.sandboxes.presence.arrive(brief)  # its page still open in a tab
        backends.sandboxes.expire_idle(now=t0 + BRIEF_S + 30 + GRACE_S + 1)
        assert not brief.closed
        backends.sandboxes.presence.leave(brief)  # the tab closed
        backends.sandboxes.expire_idle(now=t0 + BRIEF_S + 30 + GRACE_S + 1)
        assert brief.closed
        assert not working.closed
    finally:
        backends.release(working)
        backends.release(brief)


# -- the visitor's sandbox --------------------------------------------------------------------
def test_the_visitor_sandbox_refuses_every_write(backends: Backends) -> None:
    v = backends.visitor()

    async def try_writes() -> tuple[int, list[str]]:
        refused = []
        async with v.engine.connect() as conn:
            users = int((await conn.execute(select(func.count()).select_from(User))).scalar_one())
        try:
            async with v.engine.begin() as conn:
                await conn.execute(insert(User).values(name="Nosy", email="nosy@innovateai.com"))
        except Exception as exc:  # noqa: BLE001 - what the database said is the point
            refused.append(str(exc))
        for write in (v.redis.set("k", "v"), v.redis.hset("h", "f", "v"), v.redis.sadd("s", "m")):
            try:
                await write
            except Exception as exc:  # noqa: BLE001
                refused.append(str(exc))
        return users, refused

    users, refused = v.run(try_writes())
    assert users == 0
    assert len(refused) == 4, refused
    assert "read-only" in refused[0] or "readonly" in refused[0]
    assert v.run(v.redis.get("k")) is None, "reads work; nothing was written"


# -- pages: a visit takes no seat ---------------------------------------------------------------
def _no_trace_of_visitors(b: Backends, tmp: Path) -> None:
    """No seat, no schema and no sandbox file; the visitor's own schema and Redis namespace still empty."""
    assert b.seats_taken == 0
    v = b.visitor()

    async def leftovers() -> tuple[list[str], int]:
        keys = [k async for k in b.redis.scan_iter(match=f"{VISITOR_PREFIX}*")]
        async with v.engine.connect() as conn:
            users = int((await conn.execute(select(func.count()).select_from(User))).scalar_one())
        return keys, users

    keys, users = b.runtime.run(leftovers())
    assert (keys, users) == ([], 0)
    assert list(tmp.glob(f"{SQLITE_FOLDER_PREFIX}*")) == [], "no sandbox file"


def visitor(page: str) -> AppTest:
    configure_app()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    if page != "views/home.py":
        at.switch_page(page).run()
    assert_no_exception(at)
    return at


def test_every_page_is_drawn_for_a_visitor_without_a_seat(
    app_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    web.release_every_sandbox()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a sandbox's SQLite file would go
    opened: list[object] = []
    real_open = Backends.open_sandbox

    def counted(self: Backends, *args: Any, **kwargs: Any) -> Any:
        opened.append(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Backends, "open_sandbox", counted)
    for page in PAGES:
        at = visitor(page)
        assert not at.error, (page, [e.value for e in at.error])
        assert TOKEN_PARAM not in at.query_params, page
        assert "your first action takes one" in page_text(at), page
    assert opened == [], "no schema or file was made for a visit"
    _no_trace_of_visitors(web.backends(), tmp_path)


def test_the_first_action_takes_a_seat_and_start_over_gives_it_back(app_env: str) -> None:
    at = visitor("views/lab1_data_models.py")
    b = web.backends()
    assert b.seats_taken == 0
    at.text_input(key="lab1_email").input("first@innovateai.com")
    at.text_input(key="lab1_name").input("First")
    at.button(key="lab1_create").click().run()
    assert_no_exception(at)
    assert b.seats_taken == 1
    assert TOKEN_PARAM in at.query_params
    text_ = page_text(at)
    assert "You have a seat: 1 of" in text_
    assert "first@innovateai.com" in text_
    box, _ = b.sandboxes.find(at.query_params[TOKEN_PARAM])
    assert box is not None
    assert b.sandboxes.presence.pages(box) == 1, "its page is open in this session"
    at.button(key="sidebar_start_over").click().run()
    at.button(key="sidebar_start_over_yes").click().run()
    assert_no_exception(at)
    assert TOKEN_PARAM not in at.query_params
    assert "your first action takes one" in page_text(at)
    assert "first@innovateai.com" not in page_text(at)
    clear_session_cache(APPTEST_SESSION_ID)  # what Streamlit does when the tab closes
    assert b.sandboxes.presence.pages(box) == 0


def test_a_visitors_knowledge_check_answer_takes_a_seat_and_counts(app_env: str) -> None:
    """A learner who answers expects the answer kept: it is their first action, so it takes a seat."""
    at = visitor("views/lab1_data_models.py")
    b = web.backends()
    question = checks_lab1.CHOICES[0]
    at.radio(key=f"kc_{question.id}").set_value(question.right.id)
    at.button(key=f"kc_{question.id}_submit").click().run()
    assert_no_exception(at)
    assert question.right.why in " ".join(s.value for s in at.success)
    assert b.seats_taken == 1, "an answer is an action: it took a seat"
    assert "Knowledge checks passed: 1/" in " ".join(c.value for c in at.sidebar.caption)


def test_a_malformed_answer_takes_no_seat(app_env: str) -> None:
    at = visitor("views/lab1_data_models.py")
    at.button(key=f"kc_{checks_lab1.CHOICES[0].id}_submit").click().run()
    assert "Pick one of the options first." in " ".join(i.value for i in at.info)
    assert web.backends().seats_taken == 0


@pytest.mark.parametrize(
    ("page", "action"),
    [
        ("views/lab2_connectivity.py", "lab2_init"),
        ("views/lab3_repository.py", "lab3_samples"),
        ("views/lab3_repository.py", "lab3_seed"),  # a background job: started in the seat the click takes
        ("views/lab4_caching.py", "lab4_samples"),
        ("views/lab5_outbox.py", "lab5_samples"),
        ("views/instructor.py", "ins_preset_lab1_story"),
    ],
)
def test_a_visitors_first_action_on_each_lab_works_in_the_seat_it_takes(app_env: str, page: str, action: str) -> None:
    at = visitor(page)
    b = web.backends()
    assert b.seats_taken == 0
    at.button(key=action).click().run()
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert b.seats_taken == 1
    assert TOKEN_PARAM in at.query_params
    assert "You have a seat: 1 of" in page_text(at)


# -- what a visitor's page says: no sandbox they do not have -------------------------------------
#: Sentences only a learner with a seat may read: a visitor has no sandbox, their first action makes it.
SANDBOX_CLAIMS = (
    "Your sandbox has no users",
    "your own SQLite file",
    "Your tables live in schema",
    "Kept in your sandbox",
)


def _seated_claim(page: str, backend_kind: str) -> str | None:
    """The sentence a seated learner's page says about their (empty) sandbox, if it says one on this backend."""
    claims = {
        "views/home.py": "Kept in your sandbox",
        "views/lab1_data_models.py": "Your sandbox has no users yet: create one above.",
        "views/lab2_connectivity.py": "your own SQLite file" if backend_kind == "embedded" else None,
        "views/lab3_repository.py": "Your tables live in schema" if backend_kind == "services" else None,
        "views/lab4_caching.py": "Your sandbox has no users yet: add the samples above",
        "views/lab5_outbox.py": "Your sandbox has no users yet: add the course's two sample users",
    }
    return claims[page]


def _main_text(at: AppTest) -> str:
    return "\n".join(
        str(getattr(el, "value", ""))
        for kind in ("markdown", "caption", "info", "warning", "success", "error")
        for el in getattr(at.main, kind)
    )


@pytest.mark.parametrize(
    "page",
    [
        "views/home.py",
        "views/lab1_data_models.py",
        "views/lab2_connectivity.py",
        "views/lab3_repository.py",
        "views/lab4_caching.py",
        "views/lab5_outbox.py",
    ],
)
def test_a_visitors_page_claims_no_sandbox_and_a_seated_learners_names_theirs(app_env: str, page: str) -> None:
    looking = _main_text(visitor(page))
    for claim in SANDBOX_CLAIMS:
        assert claim not in looking, (page, claim)
    seated = open_app(page)
    assert_no_exception(seated)
    if (theirs := _seated_claim(page, app_env)) is not None:
        assert theirs in _main_text(seated), (page, theirs)
        assert "takes a seat" in looking, (page, "where a learner reads of their sandbox, a visitor reads of the seat")
        assert "takes a seat" not in _main_text(seated), page
