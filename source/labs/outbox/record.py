"""What Lab 5 records for the knowledge check and the class view: a drain's events and the time its batches took."""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

from source.labs.outbox.publisher import BatchResult, OutboxPublisher
from source.learning.measurements import record_run
from source.platform.context import current_sandbox


@dataclass
class _Drain:
    published: int = 0
    batches: int = 0
    seconds: float = 0.0


_drains: weakref.WeakKeyDictionary[OutboxPublisher, _Drain] = weakref.WeakKeyDictionary()


async def timed_batch(publisher: OutboxPublisher) -> BatchResult:
    """Lab 5: run one claim-publish-mark batch and time it; a drain is recorded when the outbox runs dry.

    A drain is the batches from the first that published until the first that claimed nothing;
    its time is the sum of those batches' own durations, so idle waits never count, and neither
    do batches the broker did not take (an outage is not the publisher's speed).
    """
    began = time.perf_counter()
    result = await publisher.publish_batch()
    drain = _drains.setdefault(publisher, _Drain())
    if result.broker_wait is not None or result.held:
        return result  # the broker was unavailable: neither part of the drain's time nor its end
    if result.claimed:
        drain.batches += 1
        drain.published += result.published
        drain.seconds += time.perf_counter() - began
    elif drain.published:
        values = {
            "published": (drain.published, "events"),
            "publish_ms": (drain.seconds * 1000, "ms"),
            "batches": (drain.batches, "batches"),
        }
        _drains[publisher] = _Drain()
        await record_run(current_sandbox(), "lab5", values)
    return result
