"""The C library's allocator, told to keep fewer separate heaps (glibc only; elsewhere nothing happens).

On the embedded default every learner's SQLite connection runs on its own aiosqlite thread, and glibc's
malloc gives threads that allocate at the same time separate heaps ("arenas", up to eight per core).
Memory freed in one arena is reused only by allocations that land in that same arena, so with many
threads the process kept far more than it used: measured with ``bench.cloud_memory``, one arena took the
growth per exercised learner from 1.29 MB to under 1 MB.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

#: glibc's ``mallopt`` parameter for the most arenas it may create (``M_ARENA_MAX`` in malloc.h).
M_ARENA_MAX = -8
#: Arenas the process may use (unless ``MALLOC_ARENA_MAX`` is set in its environment).
MALLOC_ARENAS = 1

_done = False


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL(name)
        if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version"):
            return libc
    return None


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's arenas for the threads started from now on, once per process; whether it was done."""
    global _done
    if _done or os.environ.get("MALLOC_ARENA_MAX"):  # made once; an operator's own setting is kept
        return _done
    libc = _glibc()
    if libc is None:
        return False
    _done = bool(libc.mallopt(M_ARENA_MAX, arenas))
    if not _done:
        log.info("glibc refused to cap its malloc arenas at %d", arenas)
    return _done
