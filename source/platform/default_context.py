"""The course API outside the app: with no sandbox active, the names act on a default context.

In a notebook or a script there is no learner and no background loop: ``await initialize_db()``
and ``async for session in get_session()`` run on the caller's own event loop. The default
context is a :class:`Sandbox` built from the same settings as the app (``DATABASE_URL`` /
``REDIS_URL``, else the embedded defaults), one per event loop, so Jupyter's single loop and a
script's successive ``asyncio.run`` calls both work. On the embedded default every loop shares
one SQLite file for the whole process, so data survives from one ``asyncio.run`` to the next.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import shutil
import tempfile
import weakref
from pathlib import Path

from source.platform.backends import SQLITE_FOLDER_PREFIX, Backends
from source.platform.config import Settings
from source.platform.context import set_default_context
from source.platform.sandbox import Sandbox

#: The id (and Redis prefix ``plab:default:``) of every default context.
DEFAULT_ID = "default"

_contexts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Sandbox] = weakref.WeakKeyDictionary()


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
    if found is None or found.closed:
        folder = _process_folder()
        backends, engine = Backends.on_current_loop(Settings.load(), folder / "lab.db")
        sqlite_folder = (
            folder if backends.shared_engine is None and engine.url.database == str(folder / "lab.db") else None
        )
        found = _contexts[loop] = Sandbox(backends, DEFAULT_ID, engine, directory=sqlite_folder)
    return found


set_default_context(default_sandbox)
