"""Two failures on purpose: the asyncio lazy-load trap, and ``raiseload`` catching an N+1.

Both are triggered for real and caught; the learner reads the real exception and what it means.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from sqlalchemy.exc import InvalidRequestError, MissingGreenlet, StatementError

from source.domain.errors import InvalidInput
from source.domain.repositories import UserRepository
from source.instruments.query_log import capture_queries
from source.labs.repository.strategies import load_lazy_guarded
from source.platform.context import current_sandbox
from source.platform.session import get_session

# On SQLite the refused lazy load leaves aiosqlite's cursor coroutine unawaited (SQLAlchemy
# refuses before awaiting it); Python would warn about it when it is collected. That is this
# trap working as intended, not a leak, so that one warning is silenced.
warnings.filterwarnings("ignore", message="coroutine 'Connection.cursor' was never awaited", category=RuntimeWarning)

MISSING_GREENLET_EXPLAINED = (
    "`user.scores` was never loaded, so reading it asks SQLAlchemy to run a query right there, inside "
    "an ordinary attribute access. Under asyncio nothing may wait for the database without `await`: "
    "SQLAlchemy's async layer runs the ORM in a greenlet it started itself (`greenlet_spawn`), and a plain "
    "attribute access outside that greenlet has no way to hand the wait to the event loop. So instead of "
    "blocking every other learner on this loop, it refuses with `MissingGreenlet`. The fixes: load the "
    "relationship up front (`selectinload`, `joinedload`), or make the lazy load explicit and awaitable "
    "with `await user.awaitable_attrs.scores`."
)

RAISELOAD_EXPLAINED = (
    "`raiseload('*')` marks every relationship the query did not load as *must not be lazy-loaded*: the "
    "first time the loop touches `scores`, SQLAlchemy raises instead of sending a query. A test that runs "
    "this code fails on the spot, with the relationship's name, long before 1,000 users make it slow. "
    "Put `lazy='raise'` on the relationship to make that the default for every query."
)


@dataclass(frozen=True)
class Caught:
    """A real exception, caught: its type, its first line, what it means, and the queries sent."""

    error: str
    message: str
    explanation: str
    queries_before: int


async def _first_user_query_count() -> int:
    async with get_session() as session:
        return await UserRepository(session).count()


async def trigger_missing_greenlet() -> Caught:
    """Read an unloaded relationship without ``await``, as the curriculum's ``u.scores`` does."""
    if not await _first_user_query_count():
        raise InvalidInput("The trap needs one user to load: create the sample users or seed some first.")
    async with get_session() as session, capture_queries(current_sandbox().engine, this_task_only=True) as log:
        user = (await UserRepository(session).list_all(limit=1))[0]
        try:
            _ = user.scores  # an implicit lazy load: I/O inside a plain attribute access
        except (MissingGreenlet, StatementError) as exc:
            # SQLite reports it wrapped in a StatementError, PostgreSQL bare.
            real = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
            return Caught(type(real).__name__, str(real).splitlines()[0], MISSING_GREENLET_EXPLAINED, log.count)
    raise RuntimeError("Reading an unloaded relationship without await should have raised MissingGreenlet")


async def trigger_raiseload() -> Caught:
    """The lazy loop on users loaded with ``raiseload('*')``: it stops at the first user."""
    if not await _first_user_query_count():
        raise InvalidInput("The guard needs users to loop over: create the sample users or seed some first.")
    async with get_session() as session, capture_queries(current_sandbox().engine, this_task_only=True) as log:
        try:
            await load_lazy_guarded(session)
        except InvalidRequestError as exc:
            return Caught(type(exc).__name__, str(exc).splitlines()[0], RAISELOAD_EXPLAINED, log.count)
    raise RuntimeError("raiseload('*') should have refused the lazy load")
