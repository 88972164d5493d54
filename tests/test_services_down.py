"""A database or Redis that goes away mid-session gives a clear message, not a traceback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from source import Backends, Settings, explain
from source.users import list_users
from tests.conftest import PG_URL, REDIS_URL, check_services, open_app, unavailable
from tests.tcp_proxy import TcpProxy


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
        pg_proxy.close()
        redis_proxy.close()
        b.close()
        b.runtime.stop()


def test_database_gone_mid_session_is_explained(proxied: tuple[Backends, TcpProxy, TcpProxy]) -> None:
    backends, pg_proxy, _ = proxied
    sb = backends.open_sandbox()
    assert sb.run(list_users()) == []
    pg_proxy.cut()
    with pytest.raises(Exception) as caught:  # any driver error: the message is the point
        sb.run(list_users(), timeout=30)
    message = explain(caught.value)
    assert message.startswith("The database did not answer"), message


def test_redis_gone_mid_session_is_explained(proxied: tuple[Backends, TcpProxy, TcpProxy]) -> None:
    backends, _, redis_proxy = proxied
    sb = backends.open_sandbox()
    sb.run(sb.redis.set(sb.key("k"), "v"))
    redis_proxy.cut()
    with pytest.raises(Exception) as caught:
        sb.run(sb.redis.get(sb.key("k")), timeout=30)
    message = explain(caught.value)
    assert message.startswith("Redis did not answer"), message


def test_page_shows_a_message_when_the_database_goes_away(monkeypatch: pytest.MonkeyPatch) -> None:
    pg = make_url(PG_URL)
    proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432)
    try:
        monkeypatch.setenv("DATABASE_URL", pg.set(host="127.0.0.1", port=proxy.port).render_as_string(False))
        monkeypatch.delenv("REDIS_URL", raising=False)
        at = open_app()
        if any("unreachable" in w.value for w in at.sidebar.warning):
            unavailable(" ".join(w.value for w in at.sidebar.warning))
        at.switch_page("views/lab1_data_models.py").run()
        assert not at.exception
        proxy.cut()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("did not answer" in e.value for e in at.error), [e.value for e in at.error]
    finally:
        proxy.close()
