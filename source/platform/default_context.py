"""The course API outside the app: with no sandbox active, the names act on a default context.

In a notebook or a script there is no learner and no background loop: ``await initialize_db()``
and ``async for session in get_session()`` run on the caller's own event loop. The default
context is a :class:`Sandbox` built from the same settings as the app (``DATABASE_URL`` /
``REDIS_URL``, else the embedded defaults), one per event loop, so Jupyter's single loop and a
script's successive ``asyncio.run`` calls both work. On the embedded default every loop shares
one SQLite file for the whole process, so data survives from one ``asyncio.run`` to the next.

Each context keeps a connection pool, as the app does: a call reuses a connection (and the
statements it prepared) instead of opening a new one. A pooled connection belongs to the loop
that opened it, so the pool and the Redis client are closed *with* their loop: ``asyncio.run``
(and ``asyncio.Runner``) close every async generator still open on the loop before closing it
(``loop.shutdown_asyncgens()``), and each context keeps one open for exactly that moment.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import shutil
import tempfile
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path

from source.platform.backends import SQLITE_FOLDER_PREFIX, Backends
from source.platform.config import Settings
from source.platform.context import set_default_context
from source.platform.sandbox import Sandbox

#: The id (and Redis prefix ``plab:default:``) of every default context.
DEFAULT_ID = "default"


@dataclass
class _LoopContext:
    """One event loop's default context, and the generator that closes it when the loop shuts down."""

    sandbox: Sandbox
    closer: AsyncGenerator[None, None]


_contexts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopContext] = weakref.WeakKeyDictionary()


@functools.cache
def _process_folder() -> Path:
    """Where the embedded default keeps its SQLite file; removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix=SQLITE_FOLDER_PREFIX + "default-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def default_sandbox() -> Sandbox:
    """The default context of the running event loop, built on first use."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "The course API is asynchronous: call it with 'await' inside a coroutine "
            "(a notebook cell, or a function run with asyncio.run)."
        ) from None
    found = _contexts.get(loop)
    if found is None or found.sandbox.closed:
        folder = _process_folder()
        backends, engine = Backends.on_current_loop(Settings.load(), folder / "lab.db")
        sqlite_folder = (
            folder if backends.shared_engine is None and engine.url.database == str(folder / "lab.db") else None
        )
        sandbox = Sandbox(backends, DEFAULT_ID, engine, directory=sqlite_folder)
        found = _contexts[loop] = _LoopContext(sandbox, _close_with_loop(sandbox, backends))
        # Start it now (it runs straight to its ``yield``): from here on the loop knows it, and
        # its shutdown closes it. Nothing in it awaits before the ``yield``, so one step does it.
        with contextlib.suppress(StopIteration):
            found.closer.asend(None).send(None)
    return found.sandbox


async def _close_with_loop(sandbox: Sandbox, backends: Backends) -> AsyncGenerator[None, None]:
    """Wait, suspended, until the loop shuts down; then close the context's pool and Redis client."""
    try:
        yield
    finally:
        sandbox.closed = True  # a later call on another loop builds a new context
        await sandbox.engine.dispose()
        await backends.redis.aclose()


set_default_context(default_sandbox)
