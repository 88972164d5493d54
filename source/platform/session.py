"""The course's session API: ``get_session()`` and ``initialize_db()`` on the current sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from source.platform.context import current_sandbox
from source.platform.migrate import migration_head


class _SessionScope:
    """One ``AsyncSession`` on the current sandbox, closed when the block ends.

    Works both as ``async with get_session() as session:`` (the usual form) and as
    ``async for session in get_session():`` (the course notebook's form).
    """

    def __init__(self) -> None:
        self._session = current_sandbox().sessionmaker()

    async def __aenter__(self) -> AsyncSession:
        return await self._session.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._session.__aexit__(*exc)

    async def __aiter__(self) -> AsyncIterator[AsyncSession]:
        async with self._session as session:
            yield session


def get_session() -> _SessionScope:
    """An ``AsyncSession`` on the current learner's sandbox.

    The session does not commit for you: a unit of work decides when it is done and calls
    ``await session.commit()``; leaving the block without committing rolls back.
    """
    return _SessionScope()


async def initialize_db() -> str | None:
    """Create or upgrade the current sandbox's schema with Alembic; returns the revision.

    Safe to run again: Alembic records the revision it reached and skips what is done.
    """
    sandbox = current_sandbox()
    await sandbox.migrate()
    return migration_head()
