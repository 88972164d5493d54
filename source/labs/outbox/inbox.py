"""The idempotent consumer's inbox: each event's effect is applied once, however often it arrives.

At-least-once delivery means a consumer *will* see some events twice (a publisher that
crashed after publishing, a stream entry claimed from a dead consumer). So the consumer keeps
an inbox of the event ids it has processed, as MassTransit's inbox does, for a dedupe
window, and applies an effect only for an id it has not seen. The check, the inbox entry and
the effect go in one Redis transaction (WATCH … MULTI … EXEC): if another consumer processes
the same id in between, EXEC is refused and the check runs again. So the effect can never
happen twice, nor the inbox claim an effect that did not happen.

The inbox entry counts the deliveries of its id, and the duplicates are counted too: the page
can say how many copies of a batch whose reply never came the inbox then ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import WatchError

#: How long a processed id is remembered (seconds). A duplicate later than this would count again.
DEDUPE_WINDOW_S = 24 * 3600


class Inbox:
    """Processed ids (``inbox:<consumer>:<id>``, expiring, valued with how often the id arrived) and the
    effect: a count per event type."""

    def __init__(self, redis: Any, consumer: str = "projector", window_s: int = DEDUPE_WINDOW_S) -> None:
        self.redis = redis
        self.consumer = consumer
        self.window_s = window_s
        self.effects_key = f"effects:{consumer}"
        self.duplicates_key = f"duplicates:{consumer}"

    def key(self, event_id: str) -> str:
        return f"inbox:{self.consumer}:{event_id}"

    async def apply_once(self, event_id: str, event_type: str) -> bool:
        """Apply the event's effect unless its id is in the inbox; True if it was applied now."""
        key = self.key(event_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    if await pipe.exists(key):
                        await self.redis.incr(key)  # one more delivery of it (INCR keeps the expiry)
                        await self.redis.incr(self.duplicates_key)
                        return False  # seen before: a duplicate delivery, no effect
                    pipe.multi()
                    pipe.set(key, "1", ex=self.window_s)
                    pipe.hincrby(self.effects_key, event_type, 1)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue  # someone touched this id meanwhile: look again

    async def effects(self) -> dict[str, int]:
        """The effect so far: how many events of each type this consumer has applied."""
        raw = await self.redis.hgetall(self.effects_key)
        return {str(k): int(v) for k, v in raw.items()}

    async def duplicates(self) -> int:
        """How many deliveries the inbox ignored because their id was applied already."""
        return int(await self.redis.get(self.duplicates_key) or 0)

    async def deliveries(self, event_ids: Sequence[str]) -> list[int]:
        """How many times each of these ids reached this consumer (0: never, or longer ago than the window)."""
        if not event_ids:
            return []
        return [int(n or 0) for n in await self.redis.mget([self.key(i) for i in event_ids])]
