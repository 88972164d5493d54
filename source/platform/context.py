"""Which sandbox the running coroutine works in: a context variable, set per call.

Outside the app (a notebook, a script) nothing sets it, and the course's names act on a
default context instead (see ``default_context``).
"""

from __future__ import annotations

from collections.abc import Callable

from source.platform.sandbox import CURRENT, Sandbox, use_sandbox

__all__ = ["current_sandbox", "set_default_context", "use_sandbox"]

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
        return CURRENT.get()
    except LookupError:
        if _default_context is not None:
            return _default_context()
        raise LookupError(
            "No sandbox is active. Run the coroutine through Sandbox.run(...) "
            "or inside 'async with use_sandbox(sandbox):'."
        ) from None
