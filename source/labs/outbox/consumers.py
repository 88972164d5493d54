"""Two ways to receive the outbox's events, side by side, and consumers that stay through Redis outages.

- **Pub/Sub** (``PSUBSCRIBE events:*``): fire-and-forget. A subscriber hears what is published
  while it listens; an event published while nobody listens is gone.
- **A Stream with a consumer group** (``XREADGROUP``): entries stay in the stream; each is
  handed to one consumer of the group and stays *pending* until that consumer ``XACK``\\s it.
  If a consumer dies holding entries, another takes them over with ``XAUTOCLAIM`` once they
  have been idle long enough. Its effect goes through the :class:`Inbox`, so it happens once.

A consumer that stays: when Redis restarts, freezes or goes away, the read fails; the consumer
says "reconnecting", waits (tenacity: exponential backoff with jitter) and connects again,
counting each reconnection (:func:`stay_connected`). A Redis that restarted *without
persistence* has lost the stream and its group: the consumer creates the group again (and
counts that too), and :func:`lose_stream` measures what such a restart loses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import AsyncRetrying, retry_if_exception_type

from source.labs.outbox.backoff import retry_delay
from source.labs.outbox.inbox import Inbox
from source.labs.outbox.publish import CHANNEL_PREFIX, STREAM
from source.platform.errors import explain
from source.platform.redis_namespace import NamespacedRedis

GROUP = "projector"
#: A pending entry idle this long belongs to a consumer presumed dead: it may be taken over.
CLAIM_IDLE_MS = 2_000
BATCH = 100
#: Redis went away (restarted, stopped, frozen): reconnect. Any other error is a bug, and ends the job.
RECONNECT_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
#: The reconnection backoff: the first wait, and the longest (seconds).
RECONNECT_FIRST_S = 0.1
RECONNECT_CAP_S = 5.0
#: How often a reconnection's wait looks whether Stop was pressed (seconds).
STOP_LOOK_S = 0.1
#: A consumer's read gives up this long after Redis stopped answering (a frozen server), then it reconnects.
READ_TIMEOUT_S = 3.0


class StopSignal(Protocol):
    """What a consumer loop watches between reads: an ``asyncio.Event``, or a job's Stop (``jobs.py``)."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Delivery:
    """One message as a consumer received it."""

    via: str  # "pubsub" or "stream"
    event_id: str
    event_type: str
    aggregate_id: str
    sequence: int
    at: datetime
    outcome: str  # "heard", "applied", "duplicate (ignored)", "malformed (dropped)", "taken over"


class Feed:
    """The last deliveries and running counts, for the page's live feed."""

    def __init__(self, size: int = 200) -> None:
        self.recent: deque[Delivery] = deque(maxlen=size)
        self.counts: dict[str, int] = {}

    def add(self, delivery: Delivery) -> None:
        self.recent.append(delivery)
        key = f"{delivery.via}: {delivery.outcome}"
        self.counts[key] = self.counts.get(key, 0) + 1


def parse_message(text: Any) -> dict[str, Any] | None:
    """The event in a message, or None when the message is not a well-formed event."""
    try:
        event = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        return None
    return event


def _delivery(via: str, event: dict[str, Any] | None, outcome: str) -> Delivery:
    event = event or {}
    return Delivery(
        via=via,
        event_id=str(event.get("id", "?")),
        event_type=str(event.get("type", "?")),
        aggregate_id=str(event.get("aggregate_id", "?")),
        sequence=int(event.get("sequence", 0)) if isinstance(event.get("sequence"), int) else 0,
        at=datetime.now(UTC),
        outcome=outcome,
    )


@dataclass
class Link:
    """How one consumer's connection to Redis is doing, for the page: listening, or reconnecting."""

    name: str
    state: str = "connecting"  # "listening", "reconnecting", "stopped"
    #: Failures in a row in this outage: the backoff grows with them.
    failures: int = 0
    reconnections: int = 0
    #: The stream's group was gone (Redis lost its data) and was created again.
    groups_recreated: int = 0
    down_since: datetime | None = None
    last_error: str | None = None
    #: The lab's "Redis restarts": the consumer's next look finds its connection gone, wherever it was.
    dropped: bool = False

    def connected(self) -> None:
        if self.down_since is not None:
            self.reconnections += 1
        self.state, self.failures, self.down_since = "listening", 0, None

    def drop(self) -> None:
        """What a restart of Redis does to this consumer: its connection is gone (it finds out at its next look)."""
        self.dropped = True

    def check(self) -> None:
        """Raise as a read does when the connection was closed under the consumer."""
        if self.dropped:
            self.dropped = False
            raise RedisConnectionError("Connection closed by server: Redis restarted.")

    def lost(self, exc: BaseException) -> None:
        self.state, self.failures, self.last_error = "reconnecting", self.failures + 1, explain(exc)
        self.down_since = self.down_since or datetime.now(UTC)

    def describe(self) -> str:
        """E.g. "stream: reconnecting since 10:42:07 (try 3) · 2 reconnections"."""
        text = f"{self.name}: {self.state}"
        if self.state == "reconnecting" and self.down_since is not None:
            text += f" since {self.down_since.astimezone():%H:%M:%S} (try {self.failures + 1})"
        if self.reconnections:
            text += f" · {self.reconnections} reconnection(s)"
        if self.groups_recreated:
            text += f" · group re-created {self.groups_recreated}×"
        return text


async def stay_connected(link: Link, session: Callable[[], Awaitable[None]], stop: StopSignal) -> None:
    """Run ``session`` until Stop; each time Redis goes away, wait and run it again.

    tenacity drives it: it retries on connection errors only (anything else is a bug and is
    raised), waits an exponential backoff with jitter between tries, counted from this
    outage's first failure, and stops only when Stop is pressed. ``session`` returns when Stop
    is pressed, and raises when the connection is lost.
    """

    async def pause(seconds: float) -> None:  # a wait that Stop cuts short
        for _ in range(max(1, math.ceil(seconds / STOP_LOOK_S))):
            if stop.is_set():
                return
            await asyncio.sleep(min(seconds, STOP_LOOK_S))

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(RECONNECT_ERRORS),
        wait=lambda _state: retry_delay(link.failures, RECONNECT_FIRST_S, RECONNECT_CAP_S),
        stop=lambda _state: stop.is_set(),
        sleep=pause,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                if stop.is_set():
                    break
                try:
                    await session()
                except RECONNECT_ERRORS as exc:
                    link.lost(exc)
                    raise
    except RECONNECT_ERRORS:
        if not stop.is_set():
            raise  # tenacity gives up only on Stop: not reached
    finally:
        link.state = "stopped"


def consumer_client(redis: Any) -> Any:
    """A client of the consumers' own on the same Redis, in the same sandbox namespace, that gives up at once.

    The app's shared client retries a lost connection by itself for seconds, silently; the
    consumers want to see the outage, say "reconnecting", count it and choose their own
    backoff (:func:`stay_connected`). And their blocking reads hold their own connections,
    not the shared pool's. Give them back with ``connection_pool.disconnect()``.
    """
    pool = redis.connection_pool
    kwargs = {**pool.connection_kwargs, "retry": Retry(NoBackoff(), 0), "socket_timeout": READ_TIMEOUT_S}
    own = Redis(connection_pool=ConnectionPool(connection_class=pool.connection_class, max_connections=8, **kwargs))
    return NamespacedRedis(own, redis.prefix) if isinstance(redis, NamespacedRedis) else own


async def listen_pubsub(
    redis: Any, feed: Feed, stop: StopSignal, ready: asyncio.Event | None = None, link: Link | None = None
) -> None:
    """Subscribe to every event channel and record what arrives until ``stop`` is set (raises if Redis goes away)."""
    pubsub = redis.pubsub()
    try:
        await pubsub.psubscribe(CHANNEL_PREFIX + "*")
        if link is not None:
            link.connected()
        if ready is not None:
            ready.set()
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if link is not None:
                link.check()
            if message is None:
                continue
            event = parse_message(message.get("data"))
            feed.add(_delivery("pubsub", event, "heard" if event else "malformed (dropped)"))
    finally:
        with contextlib.suppress(Exception):
            await pubsub.punsubscribe()  # say so to the server (fakeredis keeps a closed subscriber otherwise)
        with contextlib.suppress(Exception):
            await pubsub.aclose()


class StreamConsumer:
    """One consumer of the group ``projector`` on the stream ``outbox:events``."""

    def __init__(
        self, redis: Any, feed: Feed, name: str = "consumer-1", inbox: Inbox | None = None, link: Link | None = None
    ) -> None:
        self.redis = redis
        self.feed = feed
        self.name = name
        self.inbox = inbox or Inbox(redis, GROUP)
        self.link = link or Link("stream")
        #: Fault: read (and apply) the next batch, then "die" without XACK.
        self.crash_before_ack = False

    async def ensure_group(self) -> bool:
        """Create the group at the start of the stream (so entries written before it are read too).

        True if it was created now (False: it existed already).
        """
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return False
        return True

    async def run(self, stop: StopSignal) -> None:
        """Read, apply once, acknowledge; take over idle entries of dead consumers now and then.

        Raises if Redis goes away (:func:`stay_connected` runs it again); if the group is gone
        (Redis restarted without persistence), creates it again and goes on.
        """
        if await self.ensure_group() and self.link.down_since is not None:
            self.link.groups_recreated += 1  # back after an outage, and the group was gone with the stream
        self.link.connected()
        last_takeover = 0.0
        while not stop.is_set():
            self.link.check()
            try:
                if time.monotonic() - last_takeover > CLAIM_IDLE_MS / 2000:
                    last_takeover = time.monotonic()
                    await self.take_over()
                started = time.monotonic()
                reply = await self.redis.xreadgroup(GROUP, self.name, {STREAM: ">"}, count=BATCH, block=500)
            except ResponseError as exc:
                # NOGROUP: the stream and its group are gone; UNBLOCKED: they went while this read waited.
                if "NOGROUP" not in str(exc) and not str(exc).startswith("UNBLOCKED"):
                    raise
                if await self.ensure_group():  # start again from what is there
                    self.link.groups_recreated += 1
                continue
            entries = _entries(reply)
            if entries:
                await self.handle(entries, "applied")
            elif time.monotonic() - started < 0.1:
                await asyncio.sleep(0.2)  # fakeredis answers an empty BLOCK at once: do not spin

    async def take_over(self) -> int:
        """``XAUTOCLAIM``: entries idle for ``CLAIM_IDLE_MS`` in a dead consumer's hands become ours."""
        reply = await self.redis.xautoclaim(STREAM, GROUP, self.name, min_idle_time=CLAIM_IDLE_MS, count=BATCH)
        entries = list(reply[1]) if isinstance(reply, list | tuple) and len(reply) > 1 else []
        if entries:
            await self.handle(entries, "taken over, applied")
        return len(entries)

    async def handle(self, entries: list[tuple[str, dict[str, Any]]], how: str) -> None:
        done: list[str] = []
        for entry_id, fields in entries:
            event = parse_message((fields or {}).get("message"))
            if event is None:
                self.feed.add(_delivery("stream", None, "malformed (dropped)"))
            else:
                applied = await self.inbox.apply_once(event["id"], event["type"])
                outcome = how if applied else "duplicate (ignored)"
                self.feed.add(_delivery("stream", event, outcome))
            done.append(entry_id)
        if self.crash_before_ack:
            self.crash_before_ack = False
            self.name = _next_name(self.name)  # the old consumer is "dead"; its entries stay pending
            return
        if done:
            await self.redis.xack(STREAM, GROUP, *done)


def _next_name(name: str) -> str:
    base, _, n = name.rpartition("-")
    return f"{base}-{int(n) + 1}" if n.isdigit() else f"{name}-2"


def _entries(reply: Any) -> list[tuple[str, dict[str, Any]]]:
    """XREADGROUP's entries for our one stream, whichever reply shape (RESP2 list or RESP3 dict)."""
    if not reply:
        return []
    entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
    return [(entry_id, fields) for entry_id, fields in entries]


@dataclass(frozen=True)
class StreamLoss:
    """What a Redis restart without persistence took from the stream, measured just before."""

    at: datetime
    #: Entries the stream held; those no consumer of the group had read yet (their effect will never
    #: happen); those read but not acknowledged (applied, or in a consumer's hands).
    entries: int
    unread: int
    unacknowledged: int


async def lose_stream(redis: Any) -> StreamLoss:
    """Do to the stream what a Redis restart without persistence does (it and its group are gone), and count.

    The outbox table says these events were published: nothing in it will send them again. A
    stream that must survive a restart needs a Redis that persists it (AOF), or a way to
    replay from the outbox.
    """
    entries = int(await redis.xlen(STREAM))
    unread, unacknowledged = entries, 0
    if entries:
        for group in await redis.xinfo_groups(STREAM):
            if _text(group.get("name")) == GROUP:
                unacknowledged = int(group.get("pending") or 0)
                last = _text(group.get("last-delivered-id")) or "0-0"
                unread = len(await redis.xrange(STREAM, min=f"({last}", max="+")) if last != "0-0" else entries
    await redis.delete(STREAM)
    return StreamLoss(datetime.now(UTC), entries, unread, unacknowledged)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")
