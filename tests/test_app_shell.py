"""The navigation shell: every page renders, the sidebar says which backends are live."""

from __future__ import annotations

import pytest

from tests.conftest import assert_no_exception, open_app, page_text, unavailable
from tests.test_lab1_page import create_user, users_table

PAGES = [
    "views/home.py",
    "views/lab1_data_models.py",
    "views/lab2_connectivity.py",
    "views/lab3_repository.py",
    "views/lab4_caching.py",
    "views/lab5_outbox.py",
]


@pytest.mark.render
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_and_names_the_live_backends(app_env: str, page: str) -> None:
    at = open_app(page)
    assert_no_exception(at)
    assert at.title, "every page starts with its title"
    text = page_text(at)
    if app_env == "services" and "unreachable" in text:
        unavailable("real services unreachable from the app")
    expected = ("PostgreSQL", "Redis") if app_env == "services" else ("SQLite", "fakeredis")
    for word in expected:
        assert f"{word} ·" in text, f"sidebar should name {word} as live"


def test_unreachable_services_fall_back_and_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://lab:s3cret-pw@127.0.0.1:1/nowhere")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    at = open_app()
    assert_no_exception(at)
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "unreachable" in warnings
    assert "using SQLite instead" in warnings
    assert "using fakeredis instead" in warnings
    everything = page_text(at) + warnings
    assert "s3cret-pw" not in everything, "the database password must never be rendered"
    assert "127.0.0.1" not in everything, "nor where the server is: that is for the log"


def test_sidebar_reset_empties_my_sandbox(app_env: str) -> None:
    at = create_user(open_app("views/lab1_data_models.py"), "reset.me@innovateai.com", "Reset Me")
    table = users_table(at)
    assert table is not None
    assert list(table["email"]) == ["reset.me@innovateai.com"]

    at.sidebar.button(key="sidebar_reset").click().run()
    assert_no_exception(at)
    assert any("empties your users" in w.value for w in at.sidebar.warning), "it asks first"
    at.sidebar.button(key="sidebar_reset_cancel").click().run()
    table = users_table(at)
    assert table is not None, "Cancel keeps everything"
    assert list(table["email"]) == ["reset.me@innovateai.com"]

    at.sidebar.button(key="sidebar_reset").click().run()
    at.sidebar.button(key="sidebar_reset_yes").click().run()

    assert_no_exception(at)
    assert any("empty again" in s.value for s in at.sidebar.success)
    assert not any("empties your users" in w.value for w in at.sidebar.warning), "the question is gone once answered"
    assert users_table(at) is None, "no users left after the reset"
