"""Shared fixtures: every behavioural test runs once per backend pair.

``embedded`` is SQLite + fakeredis and always runs. ``services`` is PostgreSQL + Redis:
on a laptop without them it is skipped with the reason; with PLAB_REQUIRE_SERVICES=1
(as ``.ci/run`` sets) an unreachable service is a failure, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from streamlit.runtime.caching.cache_resource_api import clear_session_cache
from streamlit.testing.v1 import AppTest

from source import Backends, Sandbox, Settings, web
from source.labs.caching.dtos import MAX_OP_TIMEOUT_S
from source.labs.caching.sandbox_cache import cache_for

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("PLAB_REQUIRE_SERVICES") == "1"
BACKEND_KINDS = ["embedded", "services"]


def settings_for(kind: str) -> Settings:
    return Settings() if kind == "embedded" else Settings(database_url=PG_URL, redis_url=REDIS_URL)


def unavailable(reason: str) -> None:
    """Skip on a laptop; fail where the services are promised (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"PLAB_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def check_services(b: Backends) -> None:
    notes = [n for n in (b.status.database_note, b.status.redis_note) if n]
    if notes:
        unavailable("real services unreachable: " + " ".join(notes))


@pytest.fixture(scope="session", params=BACKEND_KINDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def backends(backend_kind: str) -> Iterator[Backends]:
    b = Backends.build(settings_for(backend_kind))
    try:
        if backend_kind == "services":
            check_services(b)
        yield b
    finally:
        b.close()
        b.runtime.stop()


@pytest.fixture
def sandbox(backends: Backends) -> Iterator[Sandbox]:
    sb = backends.open_sandbox()
    yield sb
    backends.release(sb)


@pytest.fixture
def box(sandbox: Sandbox) -> Iterator[Sandbox]:
    """A sandbox for Lab 5's tests, without the outbox's stream, group and inbox keys before and after."""
    from tests.lab5_support import forget_outbox_keys  # it imports this module: imported when used

    sandbox.run(forget_outbox_keys(sandbox.redis))
    yield sandbox
    sandbox.run(forget_outbox_keys(sandbox.redis))


@pytest.fixture
def patient_cache(sandbox: Sandbox) -> Sandbox:
    """The sandbox, its Lab 4 cache giving every Redis call the longest time the settings allow.

    For tests that are not about timeouts: on a loaded machine a healthy Redis can answer later
    than the default 0.25 s, and the cache then rightly counts an error and reads the database
    instead. The fault tests keep their short limits.
    """
    cache = cache_for(sandbox)
    cache.configure(cache.settings.model_copy(update={"op_timeout_s": MAX_OP_TIMEOUT_S}))
    return sandbox


#: What streamlit.testing names every AppTest session: they all share this one id.
APPTEST_SESSION_ID = "test session id"


@pytest.fixture(autouse=True)
def fresh_app_session() -> Iterator[None]:
    """End AppTest's session around each test, and release every sandbox the app opened.

    Every AppTest uses the same session id, so its session-scoped resources are cleared
    here. Sandboxes belong to tokens, not sessions, and live in the app's process-wide
    registry: a new ``AppTest`` has no token, so it gets a new sandbox anyway, and this
    releases the old ones (schema dropped, file deleted) so none outlives its test.
    """
    clear_session_cache(APPTEST_SESSION_ID)
    yield
    clear_session_cache(APPTEST_SESSION_ID)
    web.release_every_sandbox()


@pytest.fixture
def app_env(backend_kind: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the app at one backend pair through the environment, as a deployment would."""
    if backend_kind == "services":
        monkeypatch.setenv("DATABASE_URL", PG_URL)
        monkeypatch.setenv("REDIS_URL", REDIS_URL)
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.delenv("REDIS_URL", raising=False)
    return backend_kind


def configure_app(secrets: Mapping[str, Any] | None = None) -> None:
    """Make the app's backends follow the configuration this test set (environment, or AppTest's secrets).

    The app reads its settings once per process, as a deployment does. A test that runs it
    with other settings than the test before has the process's backends rebuilt, as a
    restart would (the old ones release their sandboxes and stop their loop first).
    """
    if repr(web.backends().settings) != repr(Settings.load(secrets)):  # the notes too, which == leaves out
        web.release_every_sandbox()  # a stopping process keeps linked sandboxes for the next: a test does not
        web.rebuild_backends()


def open_app(page: str | None = None, timeout: float = 60) -> AppTest:
    """The whole app (navigation shell and sidebar included), switched to ``page``."""
    configure_app()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def page_text(at: AppTest) -> str:
    """Everything a learner can read on the page, as one string."""
    parts: list[str] = []
    for root in (at.main, at.sidebar):
        for kind in ("markdown", "caption", "success", "info", "warning", "error", "text", "code", "metric"):
            for el in getattr(root, kind):
                parts.append(str(getattr(el, "value", "")) + " " + str(getattr(el, "label", "") or ""))
    return "\n".join(parts)
