"""Two ways to receive the outbox's events, side by side.

- **Pub/Sub** (``PSUBSCRIBE events:*``): fire-and-forget. A subscriber hears what is published
  while it listens; an event published while nobody listens is gone.
- **A Stream with a consumer group** (``XREADGROUP``): entries stay in the stream; each is
  handed to one consumer of the group and stays *pending* until that consumer ``XACK``\\s it.
  If a consumer dies holding entries, another takes them over with ``XAUTOCLAIM`` once they
  have been idle long enough. Its effect goes through the :class:`Inbox`, so it happens once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from redis.exceptions import ResponseError

from source.labs.outbox.inbox import Inbox
from source.labs.outbox.publish import CHANNEL_PREFIX, STREAM

GROUP = "projector"
#: A pending entry idle this long belongs to a consumer presumed dead: it may be taken over.
CLAIM_IDLE_MS = 2_000
BATCH = 100


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


async def listen_pubsub(redis: Any, feed: Feed, stop: StopSignal, ready: asyncio.Event | None = None) -> None:
    """Subscribe to every event channel and record what arrives until ``stop`` is set."""
    pubsub = redis.pubsub()
    try:
        await pubsub.psubscribe(CHANNEL_PREFIX + "*")
        if ready is not None:
            ready.set()
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
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

    def __init__(self, redis: Any, feed: Feed, name: str = "consumer-1", inbox: Inbox | None = None) -> None:
        self.redis = redis
        self.feed = feed
        self.name = name
        self.inbox = inbox or Inbox(redis, GROUP)
        #: Fault: read (and apply) the next batch, then "die" without XACK.
        self.crash_before_ack = False

    async def ensure_group(self) -> None:
        """Create the group at the start of the stream (so entries written before it are read too)."""
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)

    async def run(self, stop: StopSignal) -> None:
        """Read, apply once, acknowledge; take over idle entries of dead consumers now and then."""
        await self.ensure_group()
        last_takeover = 0.0
        while not stop.is_set():
            if time.monotonic() - last_takeover > CLAIM_IDLE_MS / 2000:
                last_takeover = time.monotonic()
                await self.take_over()
            started = time.monotonic()
            reply = await self.redis.xreadgroup(GROUP, self.name, {STREAM: ">"}, count=BATCH, block=500)
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
