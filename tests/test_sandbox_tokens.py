"""A sandbox belongs to the learner's link, not to a browser session: refresh-proof, unguessable, bounded.

A refresh or a reconnect starts a new Streamlit session; the ``?lab=`` token in the page's
address brings the learner back to their sandbox. A token the process never issued (guessed,
mistyped, or from before a restart) gets a fresh sandbox and a note, never anyone's data.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from source import Backends, Settings
from source.domain.dtos import UserCreate, parse
from source.platform.errors import LabFull, explain
from source.platform.registry import TOKEN_PATTERN
from source.services.users import create_user, list_users
from source.web import TOKEN_PARAM
from tests.conftest import ROOT, assert_no_exception, check_services, configure_app, page_text, settings_for
from tests.test_lab1_page import create_user as create_user_on_page
from tests.test_lab1_page import users_table
from tests.waiting import eventually

LAB1 = "views/lab1_data_models.py"


def visit(token: str | None = None) -> AppTest:
    """A new browser session on Lab 1 (a refresh, a new tab, another learner), with or without a link."""
    configure_app()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if token is not None:
        at.query_params[TOKEN_PARAM] = token
    at.run()
    at.switch_page(LAB1).run()
    assert_no_exception(at)
    return at


def emails(at: AppTest) -> list[str]:
    table = users_table(at)
    return [] if table is None else list(table["email"])


def sandbox_id(at: AppTest) -> str:
    text = page_text(at)
    start = text.index("Your sandbox `") + len("Your sandbox `")
    return text[start : text.index("`", start)]


def test_a_refresh_returns_to_the_same_sandbox_and_a_new_browser_gets_its_own(app_env: str) -> None:
    first = create_user_on_page(visit(), "stay@innovateai.com", "Stays")
    token = first.query_params[TOKEN_PARAM]
    assert TOKEN_PATTERN.fullmatch(token), f"the page's address carries a sandbox token: {token!r}"
    assert sandbox_id(first) not in token, "the public id shown on the page is not the secret"

    refreshed = visit(token)
    assert emails(refreshed) == ["stay@innovateai.com"], "a refresh keeps the learner's data"
    assert sandbox_id(refreshed) == sandbox_id(first)
    assert refreshed.query_params[TOKEN_PARAM] == token

    stranger = visit()
    assert emails(stranger) == [], "a browser without the link starts empty"
    assert TOKEN_PARAM not in stranger.query_params, "and takes no seat until it acts"
    create_user_on_page(stranger, "own@innovateai.com", "Own")
    assert emails(stranger) == ["own@innovateai.com"]
    assert sandbox_id(stranger) != sandbox_id(first)
    assert stranger.query_params[TOKEN_PARAM] != token


@pytest.mark.parametrize(
    ("token", "note"),
    [
        ("'; DROP SCHEMA public; --", "not one this lab hands out"),
        ("../../etc/passwd", "not one this lab hands out"),
        (secrets.token_urlsafe(16), "does not exist here"),
    ],
    ids=["injection", "path", "guessed"],
)
def test_a_malformed_or_guessed_token_gets_a_fresh_sandbox_and_a_note(app_env: str, token: str, note: str) -> None:
    owner = create_user_on_page(visit(), "owner@innovateai.com", "Owner")
    intruder = visit(token)
    assert emails(intruder) == [], "never someone else's data"
    assert any(note in i.value for i in intruder.sidebar.info), [i.value for i in intruder.sidebar.info]
    create_user_on_page(intruder, "intruder@innovateai.com", "Intruder")  # the first action takes a seat
    assert emails(intruder) == ["intruder@innovateai.com"]
    assert sandbox_id(intruder) != sandbox_id(owner)
    assert intruder.query_params[TOKEN_PARAM] != token, "the address now carries the new sandbox's own token"
    assert emails(visit(owner.query_params[TOKEN_PARAM])) == ["owner@innovateai.com"], "the owner's data is intact"


def test_start_over_gives_the_seat_back_and_the_old_link_stops_working(app_env: str) -> None:
    at = create_user_on_page(visit(), "old@innovateai.com", "Old")
    old_token, old_id = at.query_params[TOKEN_PARAM], sandbox_id(at)

    at.sidebar.button(key="sidebar_start_over").click().run()
    assert emails(at) == ["old@innovateai.com"], "nothing happens before the learner confirms"
    at.sidebar.button(key="sidebar_start_over_yes").click().run()
    assert_no_exception(at)
    assert emails(at) == []
    assert TOKEN_PARAM not in at.query_params, "a visitor again: the next action takes a new seat"
    assert any("started over" in i.value for i in at.sidebar.info)
    create_user_on_page(at, "new@innovateai.com", "New")
    assert emails(at) == ["new@innovateai.com"]
    assert sandbox_id(at) != old_id
    assert at.query_params[TOKEN_PARAM] != old_token

    back = visit(old_token)
    assert emails(back) == []
    assert any("You started over" in i.value for i in back.sidebar.info), [i.value for i in back.sidebar.info]


def test_idle_sandboxes_are_released_and_busy_ones_kept(backends: Backends) -> None:
    registry = backends.sandboxes
    idle, busy = backends.open_sandbox(), backends.open_sandbox()
    untokened = backends.open_sandbox()  # a rerun cut short before its token reached the browser
    token = registry.issue(idle)
    idle.run(create_user(parse(UserCreate, email="idle@innovateai.com", name="Idle")))
    busy.busy += 1  # a call still running in it
    try:
        later = time.monotonic() + registry.idle_s + 1
        assert registry.expire_idle(now=later) == 2
        eventually(lambda: idle.released and untokened.released, "both idle sandboxes to be released")
        assert not busy.closed, "a sandbox in use is never expired"
        found, why = registry.find(token)
        assert found is None
        assert why is not None
        assert "60 minutes without a click" in why
        if idle.directory is not None:
            assert not idle.directory.exists()
    finally:
        busy.busy -= 1
        backends.release(busy)


def test_the_housekeeping_task_expires_idle_sandboxes_by_itself(backend_kind: str) -> None:
    b = Backends.build(replace(settings_for(backend_kind), idle_minutes=0.01, sweep_interval_s=0.2))
    try:
        if backend_kind == "services":
            check_services(b)
        sb = b.open_sandbox()
        eventually(lambda: sb.released, "a sandbox idle past PLAB_IDLE_MINUTES to be released without anyone asking")
        assert b.open_sandboxes == 0
    finally:
        b.close()
        b.runtime.stop()


def test_the_lab_refuses_new_sandboxes_past_its_cap_with_a_clear_message(backend_kind: str) -> None:
    b = Backends.build(replace(settings_for(backend_kind), max_sandboxes=3))
    opened = []
    try:
        if backend_kind == "services":
            check_services(b)
        errors: list[BaseException] = []

        def arrive() -> None:
            try:
                opened.append(b.open_sandbox())
            except LabFull as exc:
                errors.append(exc)

        threads = [threading.Thread(target=arrive) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(opened) == 3, "never more live sandboxes than the cap, even when learners arrive together"
        assert len(errors) == 2
        assert "the lab is full" in explain(errors[0]).lower()
        assert "try again in a few minutes" in explain(errors[0]).lower()
        b.release(opened.pop())
        opened.append(b.open_sandbox())  # a released place is free again
    finally:
        b.close()
        b.runtime.stop()


def test_tokens_are_unguessable_and_public_ids_are_not_tokens(backends: Backends) -> None:
    sb = backends.open_sandbox()
    try:
        tokens = {backends.sandboxes.issue(sb) for _ in range(100)}
        assert len(tokens) == 100
        assert all(TOKEN_PATTERN.fullmatch(t) for t in tokens)  # 22 URL-safe characters: 128 bits
        assert all(sb.id not in t for t in tokens)
        assert all(backends.sandboxes.find(t)[0] is sb for t in tokens)
        assert sb.run(list_users()) == []
    finally:
        backends.release(sb)


def test_budgets_come_from_the_environment_with_safe_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAB_MAX_SANDBOXES", "42")
    monkeypatch.setenv("PLAB_IDLE_MINUTES", "15")
    monkeypatch.setenv("PLAB_DB_POOL_SIZE", "-3")
    monkeypatch.setenv("PLAB_STATEMENT_TIMEOUT_S", "soon")
    settings = Settings.load()
    assert (settings.max_sandboxes, settings.idle_minutes) == (42, 15.0)
    assert settings.db_pool_size == Settings().db_pool_size
    assert settings.statement_timeout_s == Settings().statement_timeout_s
    assert any("PLAB_DB_POOL_SIZE" in n for n in settings.notes)
    assert any("PLAB_STATEMENT_TIMEOUT_S" in n for n in settings.notes)
