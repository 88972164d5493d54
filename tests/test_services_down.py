"""A database or Redis that goes away mid-session gives a clear message, not a traceback."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from source import Backends, Settings, explain, web
from source.services.users import list_users
from tests.conftest import PG_URL, REDIS_URL, check_services, open_app, page_text, unavailable
from tests.tcp_proxy import TcpProxy
from tests.waiting import rerun_until


@pytest.fixture
def proxied() -> Iterator[tuple[Backends, TcpProxy, TcpProxy]]:
    pg, rd = make_url(PG_URL), make_url(REDIS_URL)
    pg_proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432)
    redis_proxy = TcpProxy(rd.host or "127.0.0.1", rd.port or 6379)
    settings = Settings(
        database_url=pg.set(host="127.0.0.1", port=pg_proxy.port).render_as_string(hide_password=False),
        redis_url=rd.set(host="127.0.0.1", port=redis_proxy.port).render_as_string(hide_password=False),
    )
    b = Backends.build(settings)
    try:
        check_services(b)
        yield b, pg_proxy, redis_proxy
    finally:
        left = [(sb.schema, sb.key_prefix) for sb in b._sandboxes]
        pg_proxy.close()
        redis_proxy.close()
        b.close()
        b.runtime.stop()
        clean_up(left)


def clean_up(left: list[tuple[str | None, str]]) -> None:
    """Drop what a sandbox could not release while its server was 'gone', over a direct line."""
    if not left:
        return
    direct = Backends.build(Settings(database_url=PG_URL, redis_url=REDIS_URL))

    async def drop() -> None:
        async with direct.admin_engine().begin() as conn:
            for schema, _ in left:
                if schema:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        for _, prefix in left:
            if not prefix:
                continue
            keys = [k async for k in direct.redis.scan_iter(match=prefix + "*")]
            if keys:
                await direct.redis.delete(*keys)

    try:
        direct.runtime.run(drop())
    finally:
        direct.close()
        direct.runtime.stop()


def test_database_gone_mid_session_is_explained(proxied: tuple[Backends, TcpProxy, TcpProxy]) -> None:
    backends, pg_proxy, _ = proxied
    sb = backends.open_sandbox()
    assert sb.run(list_users()) == []
    pg_proxy.cut()
    with pytest.raises((DBAPIError, OSError)) as caught:  # a driver error or a dropped socket
        sb.run(list_users(), timeout=30)
    message = explain(caught.value)
    assert message.startswith("The database did not answer"), message


def test_redis_gone_mid_session_is_explained(proxied: tuple[Backends, TcpProxy, TcpProxy]) -> None:
    backends, _, redis_proxy = proxied
    sb = backends.open_sandbox()
    sb.run(sb.redis.set("k", "v"))
    redis_proxy.cut()
    with pytest.raises(RedisError) as caught:
        sb.run(sb.redis.get("k"), timeout=30)
    message = explain(caught.value)
    assert message.startswith("Redis did not answer"), message


def test_page_shows_a_message_when_the_database_goes_away(monkeypatch: pytest.MonkeyPatch) -> None:
    pg = make_url(PG_URL)
    proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432)
    left: list[tuple[str | None, str]] = []
    try:
        monkeypatch.setenv("DATABASE_URL", pg.set(host="127.0.0.1", port=proxy.port).render_as_string(False))
        monkeypatch.delenv("REDIS_URL", raising=False)
        at = open_app()
        if any("unreachable" in w.value for w in at.sidebar.warning):
            unavailable(" ".join(w.value for w in at.sidebar.warning))
        at.switch_page("views/lab1_data_models.py").run()
        assert not at.exception
        schema = re.search(r"plab_[0-9a-f]{12}", page_text(at))
        left = [(schema.group(0), "")] if schema else []  # its Redis is fakeredis: no keys to remove
        proxy.cut()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("did not answer" in e.value for e in at.error), [e.value for e in at.error]
        shown = page_text(at)
        assert "no users yet" not in shown, "a failed read must not claim the table is empty"
        assert "table is empty" not in shown

        # The status follows: within a few seconds the sidebar and the home page say it is down.
        at.switch_page("views/home.py").run()
        rerun_until(
            at,
            lambda page: (
                "not answering" in page_text(page) and any("not answering" in e.value for e in page.sidebar.error)
            ),
            "the page and its sidebar to say the database is down",  # each reads the health check (a few seconds old)
        )
        assert any("not answering" in e.value for e in at.sidebar.error), [e.value for e in at.sidebar.error]
        assert any("PostgreSQL is not answering right now" in e.value for e in at.main.error)
        assert "Set `DATABASE_URL`" not in page_text(at)
    finally:
        # The app's sandbox cannot be released over the cut line: shut these backends down now (the failed
        # release is logged within this test), then drop the schema over a direct line.
        web.rebuild_backends()
        proxy.close()
        clean_up(left)
