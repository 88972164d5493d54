"""The floor app's database side, built once per process (a module, as the lab's ``source/`` is).

SQLAlchemy's async ORM (``AsyncSession``) over aiosqlite, on one background event loop thread
reached with ``asyncio.run_coroutine_threadsafe``, as ``source/platform/runtime.py`` does: the lab's
stack, doing only what the click needs. ``FLOOR_DB`` is the SQLite file, with the lab's pragmas
(WAL, busy_timeout, foreign keys).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

from sqlalchemy import DateTime, Float, String, event, func, literal_column, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

T = TypeVar("T")
DB = os.environ.get("FLOOR_DB") or os.path.join(tempfile.gettempdir(), f"floor-{os.getpid()}.db")
SHOWN = ("email", "name", "occupation_code", "education_level", "years_experience", "created_at")
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=5000", "PRAGMA foreign_keys=ON")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    occupation_code: Mapped[str | None] = mapped_column(String(20))
    education_level: Mapped[str | None] = mapped_column(String(50))
    years_experience: Mapped[float | None] = mapped_column(Float)
    created_at = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at = mapped_column(DateTime(timezone=True), server_default=func.now())


_loop = asyncio.new_event_loop()
threading.Thread(target=_loop.run_forever, name="floor-loop", daemon=True).start()
_engine = create_async_engine(f"sqlite+aiosqlite:///{DB}", pool_size=3, max_overflow=2)
_sessions = async_sessionmaker(_engine, expire_on_commit=False)
_newest = select(User).order_by(literal_column("users.rowid").desc())


@event.listens_for(_engine.sync_engine, "connect")
def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run_coroutine_threadsafe(coro, _loop).result(60)


async def _create_all() -> None:
    async with _engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


_run(_create_all())


async def _orm_insert(row: dict[str, Any]) -> None:
    async with _sessions() as session:
        session.add(User(**row))
        await session.commit()


async def _orm_newest(n: int) -> list[dict[str, Any]]:
    async with _sessions() as session:
        return [{k: getattr(u, k) for k in SHOWN} for u in (await session.scalars(_newest.limit(n))).all()]


def insert(row: dict[str, Any]) -> None:
    """One INSERT in one transaction."""
    _run(_orm_insert(row))


def newest(n: int) -> list[dict[str, Any]]:
    """The ``n`` newest users, as rows of the shown columns."""
    return _run(_orm_newest(n))
