"""What Lab 5 records for the knowledge check and the class view: a drain's events, its time, and its faults."""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

from source.labs.outbox.faults import SimulatedCrash
from source.labs.outbox.publisher import BatchResult, OutboxPublisher
from source.learning.measurements import record_run
from source.platform.context import current_sandbox
from source.platform.sandbox import Sandbox


@dataclass
class _Drain:
    published: int = 0
    batches: int = 0
    seconds: float = 0.0
    #: What the learner's faults did meanwhile: events held because the broker was away or its answer never
    #: came (they went again later, no try spent), batches that crashed after publishing and before marking
    #: (published again by a later claim), and events the broker refused until they reached the dead letter.
    held: int = 0
    crashed: int = 0
    dead_lettered: int = 0


_drains: weakref.WeakKeyDictionary[OutboxPublisher, _Drain] = weakref.WeakKeyDictionary()
_recorded: weakref.WeakKeyDictionary[Sandbox, int] = weakref.WeakKeyDictionary()


def drains_recorded(sandbox: Sandbox) -> int:
    """How many drains this process has recorded for ``sandbox``: the page redraws its knowledge check as it grows."""
    return _recorded.get(sandbox, 0)


async def timed_batch(publisher: OutboxPublisher) -> BatchResult:
    """Lab 5: run one claim-publish-mark batch and time it; a drain is recorded when the outbox runs dry.

    A drain is the batches from the first that published until the first that claimed nothing;
    its time is the sum of those batches' own durations, so idle waits never count, and neither
    do batches the broker did not take (an outage is not the publisher's speed). What the faults
    did during the drain is counted beside it, so the class view can show it next to the rate.
    """
    drain = _drains.setdefault(publisher, _Drain())
    began = time.perf_counter()
    try:
        result = await publisher.publish_batch()
    except SimulatedCrash:
        drain.crashed += 1  # the lab's crash after publishing: the batch rolls back and goes again
        raise
    drain.dead_lettered += result.dead_lettered
    if result.broker_wait is not None or result.held:
        drain.held += result.held
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
        faults = {"held": (drain.held, "events"), "crashed": (drain.crashed, "batches")}
        faults["dead_lettered"] = (drain.dead_lettered, "events")
        values.update({name: kept for name, kept in faults.items() if kept[0]})  # only what happened
        _drains[publisher] = _Drain()
        box = current_sandbox()
        await record_run(box, "lab5", values)
        _recorded[box] = _recorded.get(box, 0) + 1
    return result
