"""Publishing a claimed batch to Redis: one pipeline, one PUBLISH per event (and one XADD).

Each event goes to the Pub/Sub channel of its type, ``events:<type>``; ``PUBLISH`` answers
with how many subscribers heard it, and 0 means nobody did: Pub/Sub keeps nothing. With
``stream`` on, the same message is also appended to the Redis Stream ``outbox:events``,
which keeps it until consumers read and acknowledge it.

The client is the sandbox's Redis client: it puts the sandbox's prefix on every key and
channel itself, so the names here are the plain logical ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from json.encoder import encode_basestring_ascii as quoted
from typing import Any

CHANNEL_PREFIX = "events:"
STREAM = "outbox:events"


def encode(event_id: str, event_type: str, aggregate_type: str, aggregate_id: str, sequence: int, payload: str) -> str:
    """The message: the event's id (consumers dedupe on it), type, aggregate, order and payload.

    ``payload`` is already JSON text (read with ``CAST(payload AS TEXT)``), so it is spliced
    in rather than parsed and dumped again.
    """
    return (
        f'{{"id":{quoted(event_id)},"type":{quoted(event_type)},"aggregate_type":{quoted(aggregate_type)},'
        f'"aggregate_id":{quoted(aggregate_id)},"sequence":{int(sequence)},"payload":{payload}}}'
    )


async def send(broker: Any, rows: Sequence[Any], *, stream: bool, stream_maxlen: int) -> list[int | BaseException]:
    """Publish every row in one round trip; per event, how many subscribers heard it, or its error.

    ``rows`` are the claim's rows: (id, event_type, aggregate_type, aggregate_id, sequence,
    attempts, payload text). A lost connection raises for the whole batch.
    """
    per_event = 2 if stream else 1
    async with broker.pipeline(transaction=False) as pipe:
        for event_id, event_type, aggregate_type, aggregate_id, sequence, _attempts, payload in rows:
            message = encode(event_id, event_type, aggregate_type, aggregate_id, sequence, payload)
            pipe.publish(CHANNEL_PREFIX + event_type, message)
            if stream:
                pipe.xadd(STREAM, {"id": event_id, "message": message}, maxlen=stream_maxlen, approximate=True)
        replies = await pipe.execute(raise_on_error=False)
    outcome: list[int | BaseException] = []
    for i in range(len(rows)):
        mine = replies[i * per_event : (i + 1) * per_event]
        error = next((r for r in mine if isinstance(r, BaseException)), None)
        outcome.append(error if error is not None else int(mine[0]))
    return outcome
