"""Hit, miss, error and stale counts kept in Redis, so every process serving a sandbox adds to
the same figures (fakeredis has no ``INFO``, and ``INFO`` would count the whole server anyway),
and the *window* the page teaches with: the learner's last reads since the counters were reset,
each timed, from which the tiles (H included), the T_avg formula and the knowledge check are
all computed, so the three can never disagree.

A read must not pay a second round trip to count itself: that would make every hit twice
as slow. So counts gather in process for a moment and reach Redis as one batch of ``HINCRBY``
(after ``FLUSH_DELAY_S``, or before anyone reads them). When Redis does not answer, the counts
stay in process, are still reported, and are marked as such.

``HINCRBY`` is not idempotent, and "no answer in time" does not mean "not done": a slow Redis
may have added a batch whose reply came too late. So each batch is numbered and added by a
small Lua script that skips a number Redis has seen: a batch sent again is never counted twice.
Every call shares the click's Redis budget, so counting never makes a page wait for a frozen Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Literal

from redis.exceptions import RedisError

from source.platform.errors import ServiceUnavailable
from source.platform.redis_budget import RedisBudget
from source.platform.redis_namespace import trust_script

FIELDS = ("hits", "misses", "errors", "bypassed", "stale", "repaired", "waited", "refreshes")
FLUSH_DELAY_S = 0.05
#: How many recent reads the window keeps (with their timings, for the T_avg formula).
SAMPLES_KEPT = 500
#: What a read that could not use Redis is, on the page: it went to the database, like a miss.
NO_CACHE: tuple[str, ...] = ("error", "bypassed")
#: Whatever a Redis that is down, frozen or refusing makes a counting call raise.
COUNTING_FAILED: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError, ServiceUnavailable)
#: How long Redis remembers the last batch number of each counter (renewed by every batch).
BATCH_MEMORY_MS = 3_600_000

#: KEYS: the counts hash, the hash of batch numbers. ARGV: counter id, batch number, memory in
#: ms, then field and amount pairs. Adds the batch unless this counter's number is not new.
ADD_BATCH_ONCE = """
if tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""
trust_script(ADD_BATCH_ONCE)  # touches only the KEYS it is given: allowed in a sandbox

#: How one cached read was answered.
ReadOutcome = Literal["hit", "miss", "bypassed", "error"]


@dataclass(slots=True)
class ReadSample:
    """One cached read, timed: the Redis part and (when it went there) the database part."""

    outcome: ReadOutcome
    cache_ms: float
    db_ms: float
    total_ms: float
    #: The audit found it stale (it served an older value than the database held).
    stale: bool = False


@dataclass(frozen=True)
class CacheCounts:
    hits: int = 0
    misses: int = 0
    errors: int = 0
    bypassed: int = 0
    stale: int = 0
    repaired: int = 0
    waited: int = 0
    refreshes: int = 0
    #: Counts that could not be written to Redis yet (it did not answer): they live in this process.
    in_process: int = 0
    from_redis: bool = True

    @property
    def requests(self) -> int:
        return self.hits + self.misses + self.bypassed + self.errors

    @property
    def hit_ratio(self) -> float | None:
        """H = hits / all requests (None before the first request)."""
        return self.hits / self.requests if self.requests else None

    def note(self) -> str:
        text = (
            f"Also counted in Redis since the reset (`HINCRBY` on your sandbox's `cache:stats` hash, which every "
            f"process serving your sandbox adds to): {self.requests:,} reads, {self.hits:,} hits, "
            f"{self.misses:,} misses, {self.errors:,} errors, {self.bypassed:,} bypassed, {self.stale:,} stale; "
            f"{self.repaired:,} repaired, {self.waited:,} waited for another reader's load, "
            f"{self.refreshes:,} early refreshes."
        )
        if not self.from_redis:
            text += f" Redis is not answering: {self.in_process} count(s) are kept in this process until it does."
        return text


@dataclass(frozen=True)
class ReadWindow:
    """The learner's last reads since the counters were reset: what the tiles, the formula and the check use.

    H is hits over *every* read of the window: a read that could not use Redis (an error, or
    bypassed) went to the database, like a miss, and T_db is averaged over all of those.
    """

    reads: int = 0
    hits: int = 0
    misses: int = 0
    errors: int = 0
    bypassed: int = 0
    stale: int = 0
    t_cache_ms: float = 0.0
    t_db_ms: float = 0.0
    measured_ms: float = 0.0

    @classmethod
    def of(cls, samples: list[ReadSample]) -> ReadWindow:
        if not samples:
            return cls()
        by = Counter(s.outcome for s in samples)
        to_db = [s.db_ms for s in samples if s.outcome != "hit"]
        return cls(
            reads=len(samples),
            hits=by["hit"],
            misses=by["miss"],
            errors=by["error"],
            bypassed=by["bypassed"],
            stale=sum(s.stale for s in samples),
            t_cache_ms=statistics.fmean(s.cache_ms for s in samples),
            t_db_ms=statistics.fmean(to_db) if to_db else 0.0,
            measured_ms=statistics.fmean(s.total_ms for s in samples),
        )

    @property
    def hit_ratio(self) -> float | None:
        """H = hits / reads (None before the first read)."""
        return self.hits / self.reads if self.reads else None

    def name(self) -> str:
        """The window, as the page names it."""
        if not self.reads:
            return "No reads since the counters were reset"
        return f"Your last {self.reads:,} read(s) since the counters were reset"

    def tiles(self) -> list[tuple[str, str]]:
        """Short labels and short values: six tiles stay readable on a 1024-pixel projector."""
        h = f"{self.hit_ratio:.0%}" if self.hit_ratio is not None else "–"
        return [
            ("Hits", f"{self.hits:,}"),
            ("Misses", f"{self.misses:,}"),
            ("Errors", f"{self.errors:,}"),
            ("Bypassed", f"{self.bypassed:,}"),
            ("Stale reads", f"{self.stale:,}"),
            ("H", h),
        ]

    def formula(self) -> Formula | None:
        """The curriculum's T_avg formula filled in with this window's reads."""
        if self.hit_ratio is None:
            return None
        h = self.hit_ratio
        return Formula(
            reads=self.reads,
            hit_ratio=h,
            t_cache_ms=self.t_cache_ms,
            t_db_ms=self.t_db_ms,
            predicted_ms=h * self.t_cache_ms + (1 - h) * (self.t_cache_ms + self.t_db_ms),
            measured_ms=self.measured_ms,
        )


@dataclass(frozen=True)
class Formula:
    """T_avg = H·T_cache + (1−H)·(T_cache + T_db), every term measured on recent reads."""

    reads: int
    hit_ratio: float
    t_cache_ms: float
    t_db_ms: float
    predicted_ms: float
    measured_ms: float

    def filled_in(self) -> str:
        """The formula as LaTeX with the measured values in place."""
        h, tc, td, avg = self.hit_ratio, self.t_cache_ms, self.t_db_ms, self.predicted_ms
        return rf"= {h:.2f} \cdot {tc:.3f} + {1 - h:.2f} \cdot ({tc:.3f} + {td:.3f}) = {avg:.3f}\ \text{{ms}}"

    def measured(self) -> str:
        """What the same reads took, measured: the figure the formula predicts."""
        return (
            f"Measured over the same {self.reads} reads: **{self.measured_ms:.3f} ms** on average. The formula "
            "leaves out what a miss does after the database answers (storing the value in Redis)."
        )


class CacheMetrics:
    """Counters in one Redis hash, plus what has not reached Redis yet."""

    def __init__(self, client: Any, key: str = "cache:stats", *, budget: RedisBudget | None = None) -> None:
        self.client = client
        self.key = key
        self.timeout_s = 0.25
        #: The click's shared Redis budget (``client`` is the sandbox's own Redis), if any.
        self.budget = budget
        self._pending: Counter[str] = Counter()
        #: This counter's id and its last batch number; a batch sent but not confirmed.
        self._id = uuid.uuid4().hex
        self._numbered = 0
        self._unconfirmed: tuple[int, Counter[str]] | None = None
        self._add_once = client.register_script(ADD_BATCH_ONCE)
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self.samples: deque[ReadSample] = deque(maxlen=SAMPLES_KEPT)

    # -- counting ------------------------------------------------------------------------
    def record(self, name: str, n: int = 1) -> None:
        self._pending[name] += n
        if self._handle is None and self._task is None:
            self._handle = asyncio.get_running_loop().call_later(FLUSH_DELAY_S, self._flush_soon)

    def sample(self, sample: ReadSample) -> None:
        self.samples.append(sample)

    def window(self) -> ReadWindow:
        """The last reads since the reset (at most :data:`SAMPLES_KEPT`): one window for every figure."""
        return ReadWindow.of(list(self.samples))

    async def _bounded(self, op: Any) -> Any:
        """One counting call within ``timeout_s`` (and the click's budget): an answer, or an exception."""
        if self.budget is not None:
            return await self.budget.call(op, timeout_s=self.timeout_s)
        async with asyncio.timeout(self.timeout_s) as deadline:
            reply = await op()
        if deadline.expired():  # a client may swallow the timeout's cancellation and return without an answer
            raise TimeoutError
        return reply

    def _flush_soon(self) -> None:
        self._handle = None
        self._task = asyncio.get_running_loop().create_task(self._background_flush())

    async def _background_flush(self) -> None:
        try:
            await self.flush()
        finally:
            self._task = None

    def _turn(self) -> asyncio.Lock:
        """One flush or read at a time: a read must never see counts that are on their way."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def flush(self) -> bool:
        """Write the pending counts to Redis; on failure keep them for the next try."""
        async with self._turn():
            return await self._flush()

    async def _flush(self) -> bool:
        if self._unconfirmed is not None and not await self._send(*self._unconfirmed):
            return False  # the same batch goes again next time, never merged with newer counts
        if not self._pending:
            return True
        self._numbered += 1
        self._unconfirmed, self._pending = (self._numbered, self._pending), Counter()
        return await self._send(*self._unconfirmed)

    async def _send(self, number: int, batch: Counter[str]) -> bool:
        """Add batch ``number`` once; True when Redis confirmed it (added now or before)."""
        pairs = [item for name_n in batch.items() for item in name_n]
        confirmed = False
        try:
            reply = await self._bounded(
                lambda: self._add_once(
                    keys=[self.key, self._batches_key],
                    args=[self._id, number, BATCH_MEMORY_MS, *pairs],
                    client=self.client,
                )
            )
            confirmed = reply in (0, 1)  # trust only what Redis confirmed
        except Exception:  # noqa: BLE001, S110 - whatever failed, the batch stays in process
            pass
        if confirmed:
            self._unconfirmed = None
        return confirmed

    @property
    def _batches_key(self) -> str:
        return self.key + ":batches"

    def _in_process(self) -> Counter[str]:
        unconfirmed = self._unconfirmed[1] if self._unconfirmed is not None else Counter()
        return self._pending + unconfirmed

    # -- reading -------------------------------------------------------------------------
    async def counts(self) -> CacheCounts:
        """Redis's counts plus whatever could not be written there yet. Exact at this moment."""
        stored: dict[str, int] = {}
        from_redis = True
        async with self._turn():  # no background flush may move counts while we add them up
            await self._flush()
            try:
                raw, last = await self._bounded(self._read_both)
                stored = {_text(k): int(v) for k, v in raw.items() if _text(k) in FIELDS}
                if self._unconfirmed is not None and int(last or 0) >= self._unconfirmed[0]:
                    self._unconfirmed = None  # Redis added it after all: it is in ``stored``
            except COUNTING_FAILED:
                from_redis = False
            pending = self._in_process()
        total = {name: stored.get(name, 0) + pending.get(name, 0) for name in FIELDS}
        return CacheCounts(**total, in_process=sum(pending.values()), from_redis=from_redis)

    async def _read_both(self) -> tuple[Any, Any]:
        async with self.client.pipeline(transaction=True) as pipe:  # both at one moment
            pipe.hgetall(self.key)
            pipe.hget(self._batches_key, self._id)
            raw, last = await pipe.execute()
        return raw, last

    def formula(self) -> Formula | None:
        """The curriculum's T_avg formula filled in with the window's reads."""
        return self.window().formula()

    async def reset(self) -> None:
        self._pending.clear()
        self._unconfirmed = None
        self.samples.clear()
        with contextlib.suppress(*COUNTING_FAILED):
            await self._bounded(lambda: self.client.delete(self.key))

    async def aclose(self) -> None:
        """Stop the pending flush (the sandbox is going away)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
