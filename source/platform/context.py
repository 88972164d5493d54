"""Which sandbox the running coroutine works in: a context variable, set per call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

_current: ContextVar[Sandbox] = ContextVar("persistence_lab_sandbox")

#: What the course's names act on when no sandbox is active (a notebook, a script).
_default_context: Callable[[], Sandbox] | None = None


def set_default_context(factory: Callable[[], Sandbox]) -> None:
    """Say what :func:`current_sandbox` returns outside a sandbox (see ``default_context``)."""
    global _default_context
    _default_context = factory


def current_sandbox() -> Sandbox:
    """The sandbox the running coroutine works in (set by :meth:`Sandbox.run`).

    Outside the app, with no sandbox active, it is the default context: the same settings
    (``DATABASE_URL`` / ``REDIS_URL``, else the embedded defaults) on the caller's own loop.
    """
    try:
        return _current.get()
    except LookupError:
        if _default_context is not None:
            return _default_context()
        raise LookupError(
            "No sandbox is active. Run the coroutine through Sandbox.run(...) "
            "or inside 'async with use_sandbox(sandbox):'."
        ) from None


@asynccontextmanager
async def use_sandbox(sandbox: Sandbox) -> AsyncIterator[Sandbox]:
    token = _current.set(sandbox)
    try:
        yield sandbox
    finally:
        _current.reset(token)
