"""Which learner owns which sandbox: unguessable tokens, a cap, idle expiry and releases that retry.

A browser session is not a learner: a refresh, a reconnect or a laptop waking up starts a new
one. So a sandbox belongs to a *token* that the learner's page keeps in its address (128
random bits: nobody finds another learner's sandbox by guessing). The registry maps tokens to
sandboxes for the whole process, refuses a new sandbox past the cap, releases sandboxes
nobody has used for a while, and keeps retrying releases a server was too ill to finish.

When the sandboxes outlive the process (:mod:`source.platform.durable`), a link unknown here is
looked up in the shared directory before it is called gone, and a new link is written there.

Releases never run on the caller's thread: :meth:`SandboxRegistry.release_soon` schedules
one on the app's event loop and returns at once, so Streamlit's own server loop (which calls
a session's ``on_release``) is never held up by a database that does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

from source.platform.errors import LabFull

if TYPE_CHECKING:
    from source.platform.runtime import AsyncRuntime
    from source.platform.sandbox import Sandbox

log = logging.getLogger(__name__)

#: 16 random bytes: 128 bits, written as 22 URL-safe characters.
TOKEN_BYTES = 16
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")
#: Ended tokens remembered, so a learner coming back is told why their sandbox is gone.
REMEMBERED_ENDINGS = 2000
#: Failed releases retried at the same time by one sweep.
RETRIES_AT_ONCE = 4

GONE = "The sandbox this link pointed to does not exist here (the lab may have restarted since)."
MALFORMED = "The sandbox code in this page's address is not one this lab hands out."


class LinkStore(Protocol):
    """Where links outlive the process: the shared directory's side of the registry (``durable.py``)."""

    def resume(self, token: str) -> Sandbox | None:
        """The sandbox the directory has for ``token``, attached in this process, or ``None``."""

    def record(self, token: str, sandbox: Sandbox) -> None:
        """Write a newly issued link into the directory."""

    async def forget(self, sandbox: Sandbox) -> None:
        """Take a sandbox out of the directory before it is dropped."""

    async def detach(self, sandbox: Sandbox) -> None:
        """Let go of a sandbox in this process without dropping it (it lives on in the directory)."""

    async def expire_idle(self) -> int:
        """Let go of the sandboxes idle here; drop only those idle everywhere."""


def new_token() -> str:
    """A new link token: 128 bits from the operating system's CSPRNG."""
    return secrets.token_urlsafe(TOKEN_BYTES)


class SandboxRegistry:
    """Every live sandbox of one process, by token, within a budget."""

    def __init__(self, runtime: AsyncRuntime, max_sandboxes: int, idle_minutes: float) -> None:
        self.runtime = runtime
        self.max_sandboxes = max_sandboxes
        self.idle_s = idle_minutes * 60
        self._lock = threading.Lock()
        self._live: set[Sandbox] = set()
        self._opening = 0
        self._by_token: dict[str, Sandbox] = {}
        self._token_of: dict[Sandbox, str] = {}
        self._pending: set[Sandbox] = set()
        self._releasing: set[Sandbox] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ended: OrderedDict[str, str] = OrderedDict()
        #: The shared directory, when sandboxes outlive the process (set by the host); ``None``: memory only.
        self.links: LinkStore | None = None
        self._reserved: dict[Sandbox, str] = {}
        self._resuming: dict[str, threading.Lock] = {}

    # -- counting --------------------------------------------------------------------
    @property
    def live(self) -> set[Sandbox]:
        with self._lock:
            return set(self._live)

    @property
    def pending(self) -> set[Sandbox]:
        """Sandboxes whose release failed and will be retried by the next sweep."""
        with self._lock:
            return set(self._pending)

    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """Hold a place for a sandbox being opened; refuse when the process is full."""
        with self._lock:
            if len(self._live) + self._opening >= self.max_sandboxes:
                raise LabFull(
                    f"The lab is full: {self.max_sandboxes} learners are working in it right now. "
                    "Try again in a few minutes."
                )
            self._opening += 1
        try:
            yield
        finally:
            with self._lock:
                self._opening -= 1

    def add(self, sandbox: Sandbox) -> None:
        with self._lock:
            self._live.add(sandbox)

    # -- tokens ----------------------------------------------------------------------
    def find(self, token: str | None) -> tuple[Sandbox | None, str | None]:
        """The live sandbox for ``token``, or ``None`` and why there is none."""
        if token is None:
            return None, None
        if not TOKEN_PATTERN.fullmatch(token):
            return None, MALFORMED
        with self._lock:
            sandbox = self._by_token.get(token)
            ended = self._ended.get(token)
        if sandbox is not None and not sandbox.closed:
            sandbox.touch()
            return sandbox, None
        if ended is None and self.links is not None:
            resumed = self._resume(token)
            if resumed is not None:
                return resumed, None
        return None, ended or GONE

    def _resume(self, token: str) -> Sandbox | None:
        """The directory's sandbox for ``token``, attached once even when two tabs ask at the same time."""
        with self._lock:
            turn = self._resuming.setdefault(token, threading.Lock())
        try:
            with turn:
                with self._lock:
                    sandbox = self._by_token.get(token)
                if sandbox is not None and not sandbox.closed:
                    return sandbox  # the other tab attached it meanwhile
                if self.links is None or (sandbox := self.links.resume(token)) is None:
                    return None
                self.adopt(token, sandbox)
                return sandbox
        finally:
            with self._lock:
                self._resuming.pop(token, None)

    def adopt(self, token: str, sandbox: Sandbox) -> None:
        """Serve ``sandbox`` under a link issued before (by this process before a restart, or another one)."""
        with self._lock:
            self._by_token[token] = sandbox
            self._token_of[sandbox] = token

    def reserve(self, sandbox: Sandbox, token: str) -> None:
        """The token :meth:`issue` will hand out for ``sandbox`` (its SQLite folder is named after it)."""
        with self._lock:
            self._reserved[sandbox] = token

    def token_of(self, sandbox: Sandbox) -> str | None:
        with self._lock:
            return self._token_of.get(sandbox)

    def issue(self, sandbox: Sandbox) -> str:
        """A new token for ``sandbox``: 128 bits from the operating system's CSPRNG."""
        with self._lock:
            token = self._reserved.pop(sandbox, None) or new_token()
            self._by_token[token] = sandbox
            self._token_of[sandbox] = token
        if self.links is not None:
            self.links.record(token, sandbox)
        return token

    # -- releasing -------------------------------------------------------------------
    def release_soon(self, sandbox: Sandbox, why: str | None = None) -> Future[None] | None:
        """Schedule the release on the app's loop and return at once (from any thread).

        The token stops working immediately; ``why`` is what a learner who comes back with
        it is told. Returns the future of the release (``None`` if the loop is gone).
        """
        sandbox.closed = True
        with self._lock:
            if sandbox in self._releasing:
                return None  # already on its way out
            self._releasing.add(sandbox)
            token = self._token_of.pop(sandbox, None)
            if token is not None:
                self._by_token.pop(token, None)
                self._ended[token] = why or GONE
                while len(self._ended) > REMEMBERED_ENDINGS:
                    self._ended.popitem(last=False)
        if not self.runtime.alive:
            return None
        if self.runtime.in_loop_thread():
            task = asyncio.get_running_loop().create_task(self._release(sandbox))
            self._tasks.add(task)  # the loop only keeps a weak reference to a task
            task.add_done_callback(self._tasks.discard)
            return None
        return self.runtime.submit(self._release(sandbox))

    def detach_soon(self, sandbox: Sandbox) -> Future[None] | None:
        """Stop serving ``sandbox`` here without dropping it: its link finds it again through the directory."""
        sandbox.closed = True
        with self._lock:
            token = self._token_of.pop(sandbox, None)
            if token is not None:
                self._by_token.pop(token, None)
            self._live.discard(sandbox)
        if self.links is None or not self.runtime.alive:
            return None
        if self.runtime.in_loop_thread():
            task = asyncio.get_running_loop().create_task(self.links.detach(sandbox))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return None
        return self.runtime.submit(self.links.detach(sandbox))

    async def _release(self, sandbox: Sandbox) -> None:
        try:
            if self.links is not None:
                await self.links.forget(sandbox)  # first: a drop that fails leaves an orphan, never a dead link
            await sandbox.aclose()
        except Exception as exc:
            with self._lock:
                first = sandbox not in self._pending
                self._pending.add(sandbox)
            # The whole story once; a one-line reminder on each retry that fails again.
            log.warning("Release of %r failed; the sweep will retry it: %s", sandbox, exc, exc_info=first)
        else:
            with self._lock:
                self._pending.discard(sandbox)
        finally:
            with self._lock:
                self._live.discard(sandbox)
                self._releasing.discard(sandbox)
                self._reserved.pop(sandbox, None)

    # -- housekeeping ----------------------------------------------------------------
    def expire_idle(self, now: float | None = None) -> int:
        """Release every sandbox nobody has used for ``idle_minutes`` (none in use is touched)."""
        now = time.monotonic() if now is None else now
        idle = [s for s in self.live if s.busy == 0 and now - s.last_used > self.idle_s]
        minutes = f"{self.idle_s / 60:g}"
        for sandbox in idle:
            self.release_soon(sandbox, f"Your previous sandbox was released after {minutes} minutes without a click.")
        return len(idle)

    async def sweep(self) -> tuple[int, int]:
        """Expire idle sandboxes and retry failed releases; returns (expired, still pending)."""
        expired = self.expire_idle() if self.links is None else await self.links.expire_idle()
        gate = asyncio.Semaphore(RETRIES_AT_ONCE)

        async def retry(sandbox: Sandbox) -> None:
            async with gate:
                await self._release(sandbox)

        await asyncio.gather(*(retry(s) for s in self.pending))
        return expired, len(self.pending)
