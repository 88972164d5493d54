"""Connecting at start-up: a configured server is probed, and one that does not answer is replaced.

A lab that cannot reach its PostgreSQL or Redis still starts, on the embedded default (SQLite,
fakeredis), and says why. Every probe is bounded, and a probe cut short disposes what it built.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import fakeredis
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from source.platform.config import Settings, safe_url, split_url
from source.platform.engines import postgres_engine

log = logging.getLogger(__name__)

#: How long start-up waits for a configured server before falling back (seconds).
PROBE_TIMEOUT = 5.0
#: How long one Redis command may wait for its answer (seconds).
REDIS_SOCKET_TIMEOUT_S = 10.0


async def on_loop(factory: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``factory`` from inside the event loop, so what it builds belongs to that loop."""
    return factory(*args, **kwargs)


async def connect_database(settings: Settings) -> tuple[AsyncEngine | None, str | None]:
    url = settings.database_url
    if not url:
        return None, None
    if not url.startswith("postgresql"):
        log.warning("DATABASE_URL names an unsupported database (%s); using SQLite", safe_url(url))
        return None, "DATABASE_URL names a database this lab does not support; using SQLite."
    engine = postgres_engine(
        url,
        statement_timeout_s=settings.statement_timeout_s,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except BaseException as exc:
        await engine.dispose()
        if not isinstance(exc, Exception):
            raise  # cancelled: the engine is disposed, the cancellation goes on
        log.warning("PostgreSQL at %s is unreachable (%s); using SQLite instead", safe_url(url), describe(exc))
        return None, f"The configured PostgreSQL is unreachable ({in_short(exc, url)}); using SQLite instead."
    return engine, None


async def connect_redis(url: str | None) -> tuple[Any, str | None]:
    if url:
        client = aioredis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=10
        )
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await client.ping()
            return client, None
        except Exception as exc:  # noqa: BLE001
            await client.aclose()
            log.warning("Redis at %s is unreachable (%s); using fakeredis instead", safe_url(url), describe(exc))
            note = f"The configured Redis is unreachable ({in_short(exc, url)}); using fakeredis instead."
            return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True), note
    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True), None


def describe(exc: BaseException) -> str:
    """A one-line, password-free description of a connection failure."""
    if isinstance(exc, TimeoutError):
        return "no answer within the time limit"
    text_ = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text_}"[:200] if text_ else type(exc).__name__


#: Addresses as drivers quote them: ``('127.0.0.1', 1)``, ``"127.0.0.1:5432"``, ``[::1]:6379``, ``db.host:5432``.
_ADDRESSES = (
    re.compile(r"\('[^']*'(,\s*\d+)*\)"),
    re.compile(r"\"[^\"\s]*:\d+\""),
    re.compile(r"\[[0-9a-fA-F:]+\](:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\b[\w-]+(\.[\w-]+)+:\d+\b"),
)


def in_short(exc: BaseException, url: str | None = None) -> str:
    """The failure in a sentence fit for a page every learner reads: the driver's reason, without the address."""
    text = describe(exc)
    for pattern in _ADDRESSES:
        text = pattern.sub("(the server)", text)
    host = split_url(url).host if url else None
    return text.replace(host, "(the server)") if host else text
