"""Which sandbox the running coroutine works in: a context variable, set per call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

_current: ContextVar[Sandbox] = ContextVar("persistence_lab_sandbox")


def current_sandbox() -> Sandbox:
    """The sandbox the running coroutine works in (set by :meth:`Sandbox.run`)."""
    try:
        return _current.get()
    except LookupError:
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
