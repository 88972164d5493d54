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
from source.platform import backends as backends_module
from source.platform.admission import MemoryAdmission

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("PLAB_REQUIRE_SERVICES") == "1"
BACKEND_KINDS = ["embedded", "services"]
#: The memory budget of the backends the tests build (MB): see ``roomy_memory_budget``.
TEST_MEMORY_MB = 1_000_000.0


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


@pytest.fixture(scope="session", autouse=True)
def roomy_memory_budget() -> Iterator[None]:
    """Backends built by the tests get a budget no test reaches.

    The test process is not a hosted app: it holds every test's imports, app sessions and
    clients, and may well pass the 600 MB a deployment keeps to. The budget itself is tested
    with an RSS the test sets (``test_memory_admission.py``).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backends_module, "MemoryAdmission", lambda _budget, live: MemoryAdmission(TEST_MEMORY_MB, live))
        yield


@pytest.fixture(scope="session", autouse=True)
def components_scanned_once() -> Iterator[None]:
    """Streamlit's scan of the installed packages for custom components runs once for the whole session.

    Each ``AppTest``'s first run reads the metadata of every installed distribution to find
    components (over a second on this machine, for nearly every test), and the answer cannot
    change while the tests run: the first scan's answer is handed to every later one.
    """
    try:
        from streamlit.components.v2 import manifest_scanner
    except ImportError:  # a Streamlit without components v2 has no scan to repeat
        yield
        return
    found = manifest_scanner.scan_component_manifests()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest_scanner, "scan_component_manifests", lambda max_workers=None: list(found))
        yield


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


def open_app(page: str | None = None, timeout: float = 60, *, seated: bool = True) -> AppTest:
    """The whole app (navigation shell and sidebar included), switched to ``page``.

    ``seated``: the learner's link already names a sandbox of their own, as it does after their first
    action (most tests open a page to act on it). ``seated=False`` opens it as a passer-by, drawn from
    the shared read-only visitor's sandbox until an action takes a seat (``tests/test_seats.py``).
    """
    configure_app()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if seated:
        give_seat(at)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def give_seat(at: AppTest) -> AppTest:
    """Put a link to a new sandbox of its own in ``at``'s address (before its first run): a learner who has acted."""
    b = web.backends()
    at.query_params[web.TOKEN_PARAM] = b.sandboxes.issue(b.open_sandbox())
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
