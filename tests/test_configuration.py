"""Configuration as hosting providers write it, and start-up that never breaks on what it finds."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from source import Backends, Settings, explain, web
from source.platform import sandbox as sandbox_module
from source.platform.config import parse_database_url, parse_redis_url, safe_url
from source.platform.connect import in_short
from tests.conftest import PG_URL, REDIS_URL, assert_no_exception, check_services, open_app, page_text
from tests.waiting import eventually

PASSWORD = "Hid@den9:/#?x"  # noqa: S105 - a made-up password with the characters hosts leave unencoded


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://probe:{PASSWORD}@db.example.com:5432/lab?sslmode=require",
        f"postgres://probe:{PASSWORD}@db.example.com/lab",
        f"redis://:{PASSWORD}@cache.example.com:6379/0",
    ],
)
def test_no_part_of_a_password_with_unencoded_characters_is_ever_shown(url: str) -> None:
    shown = safe_url(url)
    assert "***" in shown
    for part in ("Hid", "den9", "@den9", "x"):
        assert part not in shown.replace("example", ""), shown
    assert "example.com" in shown, "the host is still named"


def test_the_password_reaches_the_driver_intact() -> None:
    from sqlalchemy.engine import make_url

    database_url, _ = parse_database_url(f"postgresql://probe:{PASSWORD}@db.example.com:5432/lab")
    redis_url, _ = parse_redis_url(f"redis://probe:{PASSWORD}@cache.example.com:6379/0")
    assert database_url is not None
    assert redis_url is not None
    assert make_url(database_url).password == PASSWORD
    assert make_url(database_url).host == "db.example.com"
    from redis.asyncio.connection import parse_url

    assert parse_url(redis_url)["password"] == PASSWORD


@pytest.mark.parametrize(
    ("query", "kept", "ignored"),
    [
        ("sslmode=require", "ssl=require", None),
        ("sslmode=verify-full&channel_binding=require", "ssl=verify-full", "channel_binding"),
        ("options=-c%20search_path%3Dx&connect_timeout=10", None, "connect_timeout, options"),
    ],
)
def test_libpq_options_are_translated_for_asyncpg(query: str, kept: str | None, ignored: str | None) -> None:
    url, notes = parse_database_url(f"postgresql://u:p@h:5432/db?{query}")
    assert url is not None
    assert url.startswith("postgresql+asyncpg://")
    assert "sslmode" not in url
    if kept:
        assert url.endswith("?" + kept)
    assert (ignored is None) == (notes == [])
    if ignored:
        assert ignored in notes[0]


@pytest.mark.services
def test_sslmode_in_the_url_reaches_postgresql_as_asyncpg_understands_it() -> None:
    """``?sslmode=disable`` connects; ``?sslmode=require`` against a server without TLS says so."""
    plain = Settings(database_url=parse_database_url(PG_URL + "?sslmode=disable")[0], redis_url=REDIS_URL)
    b = Backends.build(plain)
    try:
        check_services(b)
    finally:
        b.close()
        b.runtime.stop()
    strict = Backends.build(Settings(database_url=parse_database_url(PG_URL + "?sslmode=require")[0]))
    try:
        note = strict.status.database_note or ""
        assert "unexpected keyword" not in note, note
        if strict.shared_engine is None:  # the local server has no TLS: the refusal is about TLS itself
            assert "SSL" in note or "ssl" in note, note
    finally:
        strict.close()
        strict.runtime.stop()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://lab:pw@db.example.com:notaport/lab", "port"),
        ("postgresql//lab:pw@db.example.com/lab", "scheme"),
        ("postgresql://lab:pw@db.example.com:99999/lab", "port"),
    ],
)
def test_a_malformed_database_url_falls_back_and_says_why(url: str, why: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    at = open_app("views/lab1_data_models.py")
    assert_no_exception(at)
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "DATABASE_URL cannot be used" in warnings, warnings
    assert why in warnings, warnings
    assert "SQLite ·" in page_text(at), "the lab runs on the embedded database instead"
    assert "pw" not in page_text(at).replace("pwd", "") + warnings


def test_unreachable_configured_servers_never_ask_the_learner_to_set_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://lab:s3cret@127.0.0.1:1/nowhere")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    at = open_app("views/home.py")
    assert_no_exception(at)
    shown = page_text(at)
    assert "Set `DATABASE_URL`" not in shown
    assert "configured for its own servers" in shown
    assert "The configured PostgreSQL is unreachable" in shown
    assert "127.0.0.1" not in shown, "the learners are told which server failed, never where it is"
    assert "nowhere" not in shown


def test_learners_see_which_backend_runs_never_its_address(app_env: str) -> None:
    at = open_app("views/home.py")
    assert_no_exception(at)
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    if app_env == "services":
        assert "PostgreSQL · configured" in sidebar
        assert "Redis · configured" in sidebar
    else:
        assert "SQLite · a file per learner in the lab's data folder" in sidebar
    assert "127.0.0.1" not in page_text(at)
    assert "postgres" not in page_text(at).replace("PostgreSQL", "")


def test_the_settings_are_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    at = open_app("views/lab1_data_models.py")
    first = web.backends()
    reads: list[object] = []
    load = Settings.load

    def counted(secrets: object = None) -> Settings:
        reads.append(secrets)
        return load(secrets)  # type: ignore[arg-type]

    monkeypatch.setattr(Settings, "load", counted)
    monkeypatch.setenv("DATABASE_URL", "postgresql://lab:pw@127.0.0.1:1/nowhere")  # changed while the app is live
    at.run()
    at.switch_page("views/home.py").run()
    assert_no_exception(at)
    assert reads == [], "no rerun reads the settings again"
    assert web.backends() is first, "one set of backends per process: no second one for the new setting"
    assert "SQLite ·" in page_text(at), "the live app keeps the backends it started with"
    assert "unreachable" not in " ".join(w.value for w in at.sidebar.warning)


def test_rebuilding_the_backends_shuts_the_old_ones_down_and_keeps_linked_sandboxes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    open_app("views/lab1_data_models.py")
    old = web.backends()
    linked = [(box.directory, old.sandboxes.token_of(box)) for box in old.sandboxes.live]
    assert linked, "the page opened a sandbox"
    web.rebuild_backends()
    assert not old.runtime.alive, "the old event loop was stopped"
    assert old.open_sandboxes == 0
    assert all(folder is not None and folder.exists() for folder, _ in linked), "a restart keeps linked sandboxes"
    new = web.backends()
    assert new is not old, "the next page reads the settings again"
    for folder, token in linked:
        found, _ = new.sandboxes.find(token)
        assert found is not None, "the link finds its sandbox in the new backends"
        assert found.directory == folder


def test_start_up_that_fails_stops_its_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_: object) -> Backends:
        raise RuntimeError("cannot build")

    monkeypatch.setattr(Backends, "_build", classmethod(broken))

    def loops() -> int:
        return sum(1 for t in threading.enumerate() if t.name == "persistence-lab-loop")

    before = loops()
    for _ in range(3):  # three reruns, each trying again
        with pytest.raises(RuntimeError):
            Backends.build(Settings())
    assert loops() == before, "a failed start leaves no loop thread behind"


@pytest.mark.services
def test_the_orphan_sweep_skips_schemas_it_does_not_recognise() -> None:
    b = Backends.build(Settings(database_url=PG_URL, redis_url=REDIS_URL))
    suffix = uuid.uuid4().hex[:8]
    foreign = {
        f"plab_foreign_{suffix}": "belongs to another tool",
        f"plab_bare_{suffix}": None,
        f"plab_bad_{suffix}": "persistence-lab sandbox created yesterday-ish",
    }
    orphan = f"plab_orphan_{suffix}"

    async def create() -> None:
        async with b.admin_engine().begin() as conn:
            for name, comment in {
                **foreign,
                orphan: "persistence-lab sandbox created 2020-01-01T00:00:00+00:00",
            }.items():
                await conn.execute(text(f'CREATE SCHEMA "{name}"'))
                if comment is not None:
                    await conn.execute(text(f"COMMENT ON SCHEMA \"{name}\" IS '{comment}'"))

    async def existing() -> set[str]:
        conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""), timeout=5)
        try:
            rows = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", f"%{suffix}")
            return {r["nspname"] for r in rows}
        finally:
            await conn.close()

    async def drop() -> None:
        async with b.admin_engine().begin() as conn:
            for name in [*foreign, orphan]:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))

    try:
        check_services(b)
        b.runtime.run(create())
        assert b.runtime.run(b.sweep_stale_schemas()) >= 1
        assert b.runtime.run(existing()) == set(foreign), "only the app's own old schema was dropped"
        # And a whole start-up with them present goes through.
        again = Backends.build(Settings(database_url=PG_URL, redis_url=REDIS_URL))
        again.close()
        again.runtime.stop()
    finally:
        b.runtime.run(drop())
        b.close()
        b.runtime.stop()


def test_a_sandbox_whose_migration_fails_cleans_up_after_itself(
    backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[tuple[str | None, Path | None]] = []
    original_init = sandbox_module.Sandbox.__init__

    def remember(self: sandbox_module.Sandbox, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append((self.schema, self.directory))

    def fail(*_: object) -> None:
        raise RuntimeError("migration failed half-way")

    monkeypatch.setattr(sandbox_module.Sandbox, "__init__", remember)

    async def fail_to_copy(*_: object) -> bool:
        raise RuntimeError("copying the template failed")

    monkeypatch.setattr(sandbox_module, "upgrade_to_head", fail)
    monkeypatch.setattr(sandbox_module, "copy_template", fail_to_copy)  # a new SQLite sandbox is a copy
    live_before = backends.open_sandboxes
    with pytest.raises(RuntimeError):
        backends.open_sandbox()
    assert "Something unexpected" in explain(RuntimeError())
    assert backends.open_sandboxes == live_before, "a failed sandbox does not count as open"
    ((schema, directory),) = made

    async def schema_left() -> bool:
        async with backends.admin_engine().connect() as conn:
            found = await conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema})
            return found.first() is not None

    def gone() -> bool:
        return not backends.runtime.run(schema_left()) if schema else directory is not None and not directory.exists()

    eventually(gone, "the half-made sandbox's schema or folder to be removed", every_s=0.1)


def test_too_many_clients_is_explained_in_plain_words() -> None:
    message = explain(asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"))
    assert "no free connections" in message


@pytest.mark.parametrize(
    ("failure", "kept"),
    [
        (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)"), "Connect call failed"),
        (ConnectionError('PostgreSQL server at "10.1.2.3:5432" rejected SSL upgrade'), "rejected SSL upgrade"),
        (OSError("Connect call failed ('::1', 1, 0, 0)"), "Connect call failed"),
        (OSError("could not reach db.internal.example:6543"), "could not reach"),
        (TimeoutError(), "no answer within the time limit"),
    ],
)
def test_a_failure_is_told_without_the_servers_address(failure: BaseException, kept: str) -> None:
    said = in_short(failure, "postgresql://lab:pw@db.internal.example:6543/x")
    assert kept in said
    for address in ("127.0.0.1", "10.1.2.3", "::1", "db.internal.example", "6543", "5432"):
        assert address not in said, said
