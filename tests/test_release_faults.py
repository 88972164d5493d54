"""Releases, resets and status against servers that hang or go away: never blocking, never leaking.

The hung server is a black hole (tests/tcp_proxy.py): it accepts connections and never answers,
the way a stopped process or a dead network path behaves. A refused connection fails fast;
a black hole is what makes an unbounded wait show.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from source import Backends, Settings, explain
from source.domain.dtos import UserCreate, parse
from source.platform.errors import PartialReset
from source.services.users import create_user, list_users
from tests.conftest import PG_URL, REDIS_URL, check_services
from tests.tcp_proxy import TcpProxy
from tests.waiting import eventually

#: Bounds on condition waits (seconds): generous, because the machine is shared.
CONDITION_TIMEOUT = 90.0
#: A short statement timeout and a fast sweep, so a hung server is noticed quickly.
FAST: dict[str, Any] = {"statement_timeout_s": 1.0, "sweep_interval_s": 0.5}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = CONDITION_TIMEOUT) -> None:
    eventually(condition, what, within_s=timeout, every_s=0.1)


def schema_exists(schema: str) -> bool:
    """Asked over a direct connection, past the proxy."""

    async def query() -> bool:
        conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""), timeout=5)
        try:
            return bool(await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema))
        finally:
            await conn.close()

    return asyncio.run(query())


def redis_keys(prefix: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5)
    try:
        return list(client.scan_iter(match=prefix + "*"))
    finally:
        client.close()


@pytest.fixture
def proxies() -> Iterator[tuple[TcpProxy, TcpProxy]]:
    pg, rd = make_url(PG_URL), make_url(REDIS_URL)
    pg_proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432)
    redis_proxy = TcpProxy(rd.host or "127.0.0.1", rd.port or 6379)
    try:
        yield pg_proxy, redis_proxy
    finally:
        pg_proxy.close()
        redis_proxy.close()


def proxied_backends(proxies: tuple[TcpProxy, TcpProxy], **budgets: Any) -> Backends:
    pg_proxy, redis_proxy = proxies
    pg, rd = make_url(PG_URL), make_url(REDIS_URL)
    settings = Settings(
        database_url=pg.set(host="127.0.0.1", port=pg_proxy.port).render_as_string(hide_password=False),
        redis_url=rd.set(host="127.0.0.1", port=redis_proxy.port).render_as_string(hide_password=False),
    )
    b = Backends.build(replace(settings, **budgets))
    check_services(b)
    return b


def shut(b: Backends) -> None:
    b.close()
    b.runtime.stop()


@pytest.mark.services
def test_release_against_a_black_holed_database_returns_at_once_and_finishes_later(
    proxies: tuple[TcpProxy, TcpProxy],
) -> None:
    pg_proxy, _ = proxies
    b = proxied_backends(proxies, **FAST)
    try:
        sb = b.open_sandbox()
        sb.run(create_user(parse(UserCreate, email="kept@innovateai.com", name="Kept")))
        schema = sb.schema
        assert schema is not None
        assert schema_exists(schema)

        pg_proxy.black_hole()
        started = time.perf_counter()
        sb.close()  # what a closing tab, Start over and idle expiry call, on whatever thread they run
        returned_ms = (time.perf_counter() - started) * 1000
        print(f"release against a black-holed PostgreSQL returned to the caller in {returned_ms:.2f} ms")

        assert sb.closed, "no new work may start in a sandbox being released"
        assert not sb.released, "the release cannot have finished: the server never answered"
        # The first attempt gives up (bounded) and leaves the sandbox to the periodic sweep.
        wait_for(lambda: sb in b.sandboxes.pending, "the failed release to be queued for a retry")
        assert schema_exists(schema)

        pg_proxy.restore()
        wait_for(lambda: not schema_exists(schema), "the sweep to drop the schema once the server answers")
        wait_for(lambda: sb.released and sb not in b.sandboxes.pending, "the sandbox to be marked released")
        assert b.open_sandboxes == 0
    finally:
        pg_proxy.restore()
        shut(b)


@pytest.mark.services
def test_release_against_a_black_holed_redis_returns_at_once_and_finishes_later(
    proxies: tuple[TcpProxy, TcpProxy],
) -> None:
    _, redis_proxy = proxies
    b = proxied_backends(proxies, **FAST)
    try:
        sb = b.open_sandbox()
        sb.run(sb.redis.set("k", "v"))
        redis_proxy.black_hole()
        started = time.perf_counter()
        b.release_soon(sb)
        print(f"release against a black-holed Redis returned in {(time.perf_counter() - started) * 1000:.2f} ms")
        assert not sb.released
        wait_for(lambda: sb in b.sandboxes.pending, "the failed release to be queued for a retry")
        assert redis_keys(sb.key_prefix), "the keys are still there while Redis hangs"
        redis_proxy.restore()
        wait_for(lambda: sb.released, "the sweep to finish the release once Redis answers")
        assert redis_keys(sb.key_prefix) == []
        assert sb.schema is not None
        assert not schema_exists(sb.schema)
    finally:
        redis_proxy.restore()
        shut(b)


@pytest.mark.services
def test_status_follows_a_service_going_down_and_coming_back(proxies: tuple[TcpProxy, TcpProxy]) -> None:
    pg_proxy, redis_proxy = proxies
    b = proxied_backends(proxies, **FAST)

    def health() -> tuple[bool, bool]:
        now = b.runtime.run(b.check_health(), timeout=30)
        return now.database_ok, now.redis_ok

    try:
        assert health() == (True, True)
        pg_proxy.black_hole()
        wait_for(lambda: health() == (False, True), "the database to be reported as not answering")
        pg_proxy.restore()
        wait_for(lambda: health() == (True, True), "the database to be reported as answering again")
        redis_proxy.black_hole()
        wait_for(lambda: health() == (True, False), "Redis to be reported as not answering")
        redis_proxy.restore()
        wait_for(lambda: health() == (True, True), "Redis to be reported as answering again")
    finally:
        pg_proxy.restore()
        redis_proxy.restore()
        shut(b)


@pytest.mark.services
def test_a_hung_statement_is_stopped_by_the_statement_timeout_and_explained() -> None:
    b = Backends.build(Settings(database_url=PG_URL, redis_url=REDIS_URL, statement_timeout_s=0.5))
    try:
        check_services(b)
        sb = b.open_sandbox()

        async def slow() -> None:
            async with sb.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT pg_sleep(5)")

        with pytest.raises(Exception) as caught:  # noqa: PT011 - what matters is the message below
            sb.run(slow(), timeout=30)
        assert "statement timeout" in explain(caught.value), explain(caught.value)
        assert sb.run(list_users()) == [], "the sandbox works on after a cancelled statement"
    finally:
        shut(b)


def redis_down(b: Backends, proxies: tuple[TcpProxy, TcpProxy] | None) -> Callable[[bool], None]:
    """A switch that takes this backends' Redis away (a cut proxy, or fakeredis told to fail)."""
    if proxies is not None:
        return lambda down: proxies[1].cut() if down else None
    server = b.redis.connection_pool.connection_kwargs["server"]

    def switch(down: bool) -> None:
        server.connected = not down

    return switch


@pytest.mark.parametrize("kind", ["embedded", "services"])
def test_reset_with_redis_down_leaves_a_working_migrated_sandbox(kind: str, request: pytest.FixtureRequest) -> None:
    proxies = request.getfixturevalue("proxies") if kind == "services" else None
    b = proxied_backends(proxies) if proxies is not None else Backends.build(Settings())
    switch = redis_down(b, proxies)
    try:
        sb = b.open_sandbox()
        sb.run(create_user(parse(UserCreate, email="before@innovateai.com", name="Before")))
        switch(True)
        with pytest.raises(PartialReset) as caught:
            sb.run(sb.reset(), timeout=60)
        assert "empty and migrated again" in explain(caught.value)
        assert "Redis keys could not be cleared" in explain(caught.value)
        # The database part was done, and the sandbox works: no "relation does not exist".
        assert sb.run(list_users()) == []
        sb.run(create_user(parse(UserCreate, email="after@innovateai.com", name="After")))
        assert [u.email for u in sb.run(list_users())] == ["after@innovateai.com"]
    finally:
        switch(False)
        shut(b)
