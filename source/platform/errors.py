"""Errors a learner can cause, and plain-language explanations for everything else.

Pages never show a traceback. A :class:`~source.domain.errors.LabError` carries a message
written for the learner; :func:`explain` turns any other exception (a server gone away, a timeout) into
one sentence that says what happened and what to do.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from source.domain.errors import LabError


class ServiceUnavailable(LabError):
    """The database or Redis did not answer."""


class PageWaitTimeout(ServiceUnavailable, TimeoutError):
    """The page stopped waiting for a call on the app's event loop."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The page waited {seconds:g} s for an answer and gave up; the step was stopped. "
            "The database or Redis may be overloaded or unreachable: try again in a moment."
        )


class LabFull(LabError):
    """Every sandbox this process may hold is taken."""


class PartialReset(LabError):
    """A reset left a working, migrated database, but could not clear the Redis keys."""


#: PostgreSQL's error codes for a cancelled statement and for a server out of connections.
QUERY_CANCELED = "57014"
TOO_MANY_CONNECTIONS = "53300"


def explain(exc: BaseException) -> str:
    """One sentence for the learner; never a traceback, never a password."""
    if isinstance(exc, LabError):
        return str(exc)
    said = _refused_by_the_database(exc) or _no_answer(exc)
    if said is not None:
        return said
    if isinstance(exc, RedisError):
        return f"Redis refused the command: {_first_line(exc)}."
    if isinstance(exc, SQLAlchemyError):
        return f"The database layer reported a problem: {_first_line(exc)}."
    return f"Something unexpected went wrong ({type(exc).__name__}). Nothing was changed by the failed step."


def _refused_by_the_database(exc: BaseException) -> str | None:  # noqa: PLR0911 - one return per kind
    """The database answered, and said no: a timeout it enforced, no connection left, a constraint, a lock."""
    if isinstance(exc, PoolTimeoutError):
        return f"No database connection became free in time ({_first_line(exc)})."
    if (code := _sqlstate(exc)) == QUERY_CANCELED:
        return (
            "The database stopped the statement because it ran longer than the lab's statement timeout "
            "(PLAB_STATEMENT_TIMEOUT_S). Nothing it was doing was kept; try again, or ask for less at once."
        )
    if code == TOO_MANY_CONNECTIONS or "too many clients" in str(exc):
        return (
            "The database server has no free connections left: it serves a fixed number of clients at once "
            "and all of them are taken (many learners, or several copies of the lab, share it). Wait a few "
            "seconds and try again."
        )
    if isinstance(exc, IntegrityError):
        return f"The database refused the change because it breaks a constraint: {_first_line(exc.orig)}."
    if isinstance(exc, DBAPIError) and "database is locked" in str(exc.orig):
        return (
            "Your SQLite database was busy: SQLite writes one transaction at a time, and another write in your "
            "sandbox (a seed, a workload, a publisher) held it longer than the 5 s this one waits. Nothing of "
            "this step was kept; try again when that work has finished."
        )
    if isinstance(exc, DBAPIError) and not (exc.connection_invalidated or isinstance(exc, InterfaceError)):
        # The server answered, with a refusal (a bad column, a lock, a constraint...).
        return f"The database refused the statement: {_first_line(exc.orig)}."
    return None


def _no_answer(exc: BaseException) -> str | None:
    """A server that did not answer (in time, or at all)."""
    if isinstance(exc, TimeoutError):
        # Raised by a client that gave up waiting (asyncpg's command_timeout, asyncio.timeout).
        return (
            "The database or Redis did not answer in time, so the step was stopped. The server may be "
            "overloaded or unreachable; try again in a moment."
        )
    if isinstance(exc, (DBAPIError, ConnectionError, OSError)):
        return (
            "The database did not answer. It may have restarted or gone away; "
            f"try again in a moment. ({type(exc).__name__})"
        )
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return (
            f"Redis did not answer. It may have restarted or gone away; try again in a moment. ({type(exc).__name__})"
        )
    return None


def _sqlstate(exc: BaseException) -> str | None:
    """PostgreSQL's SQLSTATE for a driver error, wrapped by SQLAlchemy or not."""
    for candidate in (getattr(exc, "orig", None), exc, exc.__cause__):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def _first_line(exc: object) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
