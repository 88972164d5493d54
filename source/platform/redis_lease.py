"""Every key a sandbox writes expires, unless its sandbox is alive to renew it: a dead process leaves no keys behind.

A sandbox's keys used to live until the sandbox was released. A process killed with ``kill -9``
releases nothing: its schemas are swept later by the next process, but its Redis keys stayed
for ever (the ones written without a TTL). So every key a sandbox writes carries a *lease*:

* a write that may leave a key without a TTL (``HSET``, ``RPUSH``, ``XADD``, ``SET`` without
  ``EX``/``PX``, a script's keys…) is followed, in the same round trip, by
  ``PEXPIREAT key <lease deadline> NX``. ``NX`` only sets an expiry on a key that has none, so a
  TTL the lab chose (a cached user's 3,600 s, a lock's 2 s) is never touched;
* while the sandbox lives, its host renews the lease (the housekeeping round, every few seconds,
  renews it once half of it has gone): one script moves every key whose expiry is one of the
  deadlines this lease handed out, or that has none, to the new deadline. A key whose expiry
  the lab set itself is recognised by its deadline (not one of ours) and left alone.

When the process dies, nobody renews: every key goes within :data:`LEASE_S` at the latest.

A sandbox can move between processes (a restart, another process behind a load balancer resumes it
from the shared directory). The process that resumes it must recognise the deadlines the first one
handed out, without asking it: so every deadline lies on a grid shared by every process
(:data:`GRID_STEPS` steps per lease, plus :data:`GRID_OFFSET_MS`), and a renewal treats every grid
point a lease could have handed out since as its own. A TTL a lab chose lands on that grid by chance
once in tens of thousands of keys (and is then kept for a lease instead of its own TTL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from source.platform.redis_command_names import text_of
from source.platform.redis_scripts import trust_script

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

#: How long a sandbox's keys outlive the last renewal (seconds): an hour, like the idle expiry of a sandbox.
LEASE_S = 3600.0
#: The longest one renewal may take before it is left to the next one (seconds).
RENEW_TIMEOUT_S = 30.0
#: Keys renewed per script call (one SCAN page).
RENEW_BATCH = 500
#: A lease's deadlines fall on a grid of this many steps per lease, shared by every process.
GRID_STEPS = 60
#: ... offset from whole steps, so a key a lab expired at a whole second (``EXAT``) is not taken for a lease.
GRID_OFFSET_MS = 7

#: Commands that may create a key or leave it without an expiry; each is followed by the lease's ``PEXPIREAT … NX``.
#: Commands that only change a key that exists (``LTRIM``, ``HDEL``, ``XACK``…) keep the expiry it has.
LEASED_COMMANDS = frozenset(
    {"SET", "SETNX", "GETSET", "APPEND", "INCR", "INCRBY", "INCRBYFLOAT", "DECR", "DECRBY", "MSET", "MSETNX"}
    | {"HSET", "HSETNX", "HMSET", "HINCRBY", "HINCRBYFLOAT", "ZADD", "ZINCRBY", "LPUSH", "RPUSH", "SADD"}
    | {"XADD", "XGROUP CREATE", "PERSIST", "EVAL", "EVALSHA", "FCALL"}
)
#: ``SET`` with one of these options sets its own expiry (or keeps the one the key had).
_SET_EXPIRY = frozenset({"EX", "PX", "EXAT", "PXAT", "KEEPTTL"})

#: KEYS: the keys of one SCAN page. ARGV[1]: the new deadline (ms); ARGV[2..]: deadlines this lease
#: handed out before. A key with no expiry, or with one of those deadlines, gets the new one.
RENEW = """
local ours = {}
for i = 2, #ARGV do ours[tonumber(ARGV[i])] = true end
local renewed = 0
for _, key in ipairs(KEYS) do
  local at = redis.call('PEXPIRETIME', key)
  if at == -1 or ours[at] then
    redis.call('PEXPIREAT', key, ARGV[1])
    renewed = renewed + 1
  end
end
return renewed
"""
trust_script(RENEW)  # touches only the KEYS it is given: allowed in a sandbox


def needs_lease(name: str, command: Sequence[Any]) -> bool:
    """Whether command ``name`` (sent as ``command``) may leave its keys without an expiry."""
    if name not in LEASED_COMMANDS:
        return False
    if name == "SET":
        return not any(text_of(word).upper() in _SET_EXPIRY for word in command[3:])
    return True


def _now_ms() -> int:
    return int(time.time() * 1000)


def _step_ms(lease_s: float) -> int:
    return max(1, int(lease_s * 1000) // GRID_STEPS)


def grid_deadline(now_ms: int, lease_s: float) -> int:
    """The last grid point at most ``lease_s`` after ``now_ms``: the deadline any process hands out then."""
    step = _step_ms(lease_s)
    return (now_ms + int(lease_s * 1000) - GRID_OFFSET_MS) // step * step + GRID_OFFSET_MS


def grid_window(now_ms: int, lease_s: float) -> list[int]:
    """Every deadline still ahead that any process could have handed out with this lease."""
    step, last = _step_ms(lease_s), grid_deadline(now_ms, lease_s)
    return list(range(last - GRID_STEPS * step - step, last + 1, step))


class KeyLease:
    """One sandbox's lease: the deadline its keys carry, and the deadlines it handed out before."""

    def __init__(self, lease_s: float = LEASE_S) -> None:
        self.lease_s = lease_s
        self.deadline_ms = grid_deadline(_now_ms(), lease_s)
        #: Every deadline handed out that has not passed yet: a key may carry any of them.
        self.issued: list[int] = [self.deadline_ms]
        self.renewals = 0
        #: The sandbox's namespaced client without the lease (the renewal sets every expiry itself).
        self.client: Redis | None = None
        self._renewing: asyncio.Task[int] | None = None

    def due(self) -> bool:
        """Half of the lease has gone: time to renew it."""
        return self.deadline_ms - _now_ms() < self.lease_s * 500

    async def renew(self) -> int:
        """Move every key of the sandbox to a new deadline; returns how many.

        The new deadline is handed out first, so a write meanwhile already carries it; the old
        ones are remembered until they pass, so a key written with one of them is renewed next time.
        """
        redis = self.client
        if redis is None:
            raise RuntimeError("a lease renews through its sandbox's client: set KeyLease.client first")
        before, now = list(self.issued), _now_ms()
        self.deadline_ms = grid_deadline(now, self.lease_s)
        self.issued = [d for d in before if d > now] + [self.deadline_ms]
        # Deadlines another process handed out for this sandbox (before a restart, behind a balancer).
        before = sorted({*before, *(d for d in grid_window(now, self.lease_s) if d > now)})
        script = redis.register_script(RENEW)
        renewed = 0
        cursor = 0
        while True:
            cursor, names = await redis.scan(cursor=cursor, count=RENEW_BATCH)
            if names:
                renewed += int(await script(keys=list(names), args=[self.deadline_ms, *before]))
            if cursor == 0:
                break
        self.renewals += 1
        return renewed

    def renew_soon(self) -> None:
        """Renew in the background if it is due and no renewal runs: a write in use keeps its sandbox's keys alive.

        The app's housekeeping renews every live sandbox anyway; this keeps a notebook's or a
        script's keys alive while they are used, where no housekeeping runs.
        """
        if self.client is None or not self.due() or (self._renewing is not None and not self._renewing.done()):
            return
        with contextlib.suppress(RuntimeError):  # no running loop: the next write tries again
            self._renewing = asyncio.get_running_loop().create_task(self._renew_quietly())

    async def _renew_quietly(self) -> int:
        try:
            async with asyncio.timeout(RENEW_TIMEOUT_S):
                return await self.renew()
        except Exception as exc:  # noqa: BLE001 - the next write, or the housekeeping, tries again
            log.warning("renewing a sandbox's Redis lease failed: %s", exc)
            return 0
