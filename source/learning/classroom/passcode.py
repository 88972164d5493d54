"""The instructor's passcode: checked in constant time, with repeated wrong tries slowed down.

A wrong passcode gets one sentence. From the :data:`FREE_TRIES`-th wrong try on, a client must wait
before its next try is even looked at: 1 s, then 2, 4, 8 … up to :data:`MAX_WAIT_S`. A client is
whatever the web layer can tell apart (the connection's address, else the browser session); an
attacker who keeps changing it still meets the process-wide budget: after :data:`BURST` wrong tries
within :data:`WINDOW_S`, every try waits. Memory is bounded: at most :data:`MAX_CLIENTS` clients are
remembered (the longest quiet forgotten first). The passcode itself is never stored here, never
shown and never logged; a right passcode forgets the client's wrong tries.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from source.platform.config import Secret

FREE_TRIES = 3
MAX_WAIT_S = 60.0
MAX_CLIENTS = 1024
BURST = 30
WINDOW_S = 60.0

NOT_ENABLED = (
    "Class mode is not enabled on this app: set PLAB_INSTRUCTOR_PASSCODE (in the environment, or as a root "
    "secret beside DATABASE_URL) and restart the app."
)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str
    wait_s: float = 0.0


@dataclass
class _Tries:
    wrong: int = 0
    not_before: float = 0.0


class PasscodeGate:
    """Per-client slowing of wrong tries, and a process-wide budget; thread-safe (sessions are threads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, _Tries] = OrderedDict()
        self._recent: deque[float] = deque(maxlen=BURST)

    def check(self, passcode: Secret | None, guess: object, client: str) -> Verdict:
        """Whether ``guess`` is the passcode, or why it was not even looked at."""
        if passcode is None:
            return Verdict(False, NOT_ENABLED)
        now = self._clock()
        with self._lock:
            tries = self._clients.get(client)
            wait = max(tries.not_before - now if tries is not None else 0.0, self._flood_wait(now))
            if wait > 0:
                return Verdict(False, f"Too many wrong passcodes: wait {math.ceil(wait)} s, then try again.", wait)
        if isinstance(guess, str) and guess and passcode.matches(guess):
            with self._lock:
                self._clients.pop(client, None)
            return Verdict(True, "Class mode is unlocked in this browser tab.")
        return self._wrong(client, now)

    def _flood_wait(self, now: float) -> float:
        if len(self._recent) < BURST:
            return 0.0
        return WINDOW_S - (now - self._recent[0])

    def _wrong(self, client: str, now: float) -> Verdict:
        with self._lock:
            tries = self._clients.pop(client, None) or _Tries()
            tries.wrong += 1
            slowed = tries.wrong >= FREE_TRIES
            wait = min(MAX_WAIT_S, 2.0 ** (tries.wrong - FREE_TRIES)) if slowed else 0.0
            tries.not_before = now + wait
            self._clients[client] = tries  # the newest at the end: the longest quiet is forgotten first
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)
            self._recent.append(now)
        later = f" Tries from here are slowed down: the next is looked at in {math.ceil(wait)} s." if slowed else ""
        return Verdict(False, "That is not the instructor passcode." + later, wait)

    def forget(self) -> None:
        """Forget every client's tries (tests)."""
        with self._lock:
            self._clients.clear()
            self._recent.clear()
