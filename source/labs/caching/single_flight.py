"""Stampede protection: when many readers miss the same cold key at once, one loads it.

Two layers. In this process, an ``asyncio.Lock`` per key: the first reader loads, the others
wait, then find the value in Redis (or, if Redis is failing, take the first reader's result).
Across processes (several app servers), a short Redis lock, ``SET lock:<key> <token> NX PX
<ms>`` through redis-py's ``Lock``: the process that gets it loads; the others poll the
cache until the value appears. The Redis lock expires
by itself, so a holder that crashes cannot block a key for longer than its TTL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class _Slot:
    lock: asyncio.Lock
    users: int = 0
    #: What the reader who loaded the key got, for those who queued behind it.
    value: Any = None
    loaded: bool = False


@dataclass
class Flight:
    """One reader's place in a key's flight: whether it waited, and the shared result."""

    slot: _Slot
    waited: bool

    def share(self, value: Any) -> None:
        self.slot.value, self.slot.loaded = value, True


class KeyLocks:
    """One in-process lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[Flight]:
        """Hold ``key``'s lock; the flight says whether this caller waited, and what was loaded."""
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(asyncio.Lock())
        slot.users += 1
        waited = slot.lock.locked()
        try:
            async with slot.lock:
                yield Flight(slot, waited)
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[key]

    def busy(self, key: str) -> bool:
        return key in self._slots

    def __len__(self) -> int:
        return len(self._slots)


def poll_delays(total_s: float, first_s: float = 0.005, cap_s: float = 0.05) -> list[float]:
    """Growing pauses (5 ms, 10 ms, … up to 50 ms) that add up to at most ``total_s``."""
    delays: list[float] = []
    step, spent = first_s, 0.0
    while spent + step <= total_s:
        delays.append(step)
        spent += step
        step = min(step * 2, cap_s)
    return delays
