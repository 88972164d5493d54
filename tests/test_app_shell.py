"""The navigation shell: every page renders, the sidebar says which backends are live."""

from __future__ import annotations

import pytest

from tests.conftest import assert_no_exception, open_app, page_text, unavailable

PAGES = [
    "pages/home.py",
    "pages/lab1_data_models.py",
    "pages/lab2_connectivity.py",
    "pages/lab3_repository.py",
    "pages/lab4_caching.py",
    "pages/lab5_outbox.py",
]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_error(app_env: str, page: str) -> None:
    at = open_app(page)
    assert_no_exception(at)
    assert at.title, "every page starts with its title"


def test_sidebar_names_the_live_backends(app_env: str) -> None:
    # AppTest drops the sidebar after switch_page() when a pages/ folder exists (it takes
    # the legacy multipage path), so the sidebar is checked on the first page.
    at = open_app()
    assert_no_exception(at)
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
    assert "unreachable" in warnings and "using SQLite instead" in warnings and "using fakeredis instead" in warnings
    everything = page_text(at) + warnings
    assert "s3cret-pw" not in everything, "the database password must never be rendered"
    assert "***" in warnings
