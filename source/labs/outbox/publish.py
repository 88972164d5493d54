"""Publishing a claimed batch to Redis: one pipeline, one PUBLISH per event (and one XADD).

Each event goes to the Pub/Sub channel of its type, ``events:<type>``; ``PUBLISH`` answers
with how many subscribers heard it, and 0 means nobody did: Pub/Sub keeps nothing. With
``stream`` on, the same message is also appended to the Redis Stream ``outbox:events``,
which keeps it until consumers read and acknowledge it.

The client is the sandbox's Redis client: it puts the sandbox's prefix on every key and
channel itself, so the names here are the plain logical ones.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from json.encoder import encode_basestring_ascii as quoted
from typing import Any

CHANNEL_PREFIX = "events:"
STREAM = "outbox:events"


class Unencodable(ValueError):
    """An event that cannot be made into a message: its own fault, which its tries are for."""


def encode(event_id: str, event_type: str, aggregate_type: str, aggregate_id: str, sequence: int, payload: str) -> str:
    """The message: the event's id (consumers dedupe on it), type, aggregate, order and payload.

    ``payload`` is already JSON text (read with ``CAST(payload AS TEXT)``), so it is spliced
    in rather than parsed and dumped again; a payload that is not a JSON object (a row some
    other program wrote) cannot be, and raises :class:`Unencodable`.
    """
    if not payload.startswith("{") and not payload.lstrip().startswith("{"):
        raise Unencodable(f"its payload is not a JSON object ({payload[:40]!r}), so it cannot be encoded")
    return (
        f'{{"id":{quoted(event_id)},"type":{quoted(event_type)},"aggregate_type":{quoted(aggregate_type)},'
        f'"aggregate_id":{quoted(aggregate_id)},"sequence":{int(sequence)},"payload":{payload}}}'
    )


async def send(
    broker: Any, rows: Sequence[Any], *, stream: bool, stream_maxlen: int, refused: Container[str] = ()
) -> list[int | BaseException]:
    """Publish every row in one round trip; per event, how many subscribers heard it, or its own error.

    ``rows`` are the claim's rows: (id, event_type, aggregate_type, aggregate_id, sequence,
    attempts, payload text). An event that cannot be encoded is not sent (its error is its
    answer); the broker's reply to each command tells the others apart (a count, or an error
    for that one message). A lost connection or a timeout raises for the whole batch: nobody
    knows then which commands ran. ``refused``: the lab's fault, ids whose message the broker
    is made to refuse (their command goes out malformed and Redis answers ``ERR``).
    """
    per_event = 2 if stream else 1
    outcome: list[int | BaseException] = []
    sent: list[int] = []  # for each event sent, how many commands it took (0: not sent)
    async with broker.pipeline(transaction=False) as pipe:
        for event_id, event_type, aggregate_type, aggregate_id, sequence, _attempts, payload in rows:
            try:
                message = encode(event_id, event_type, aggregate_type, aggregate_id, sequence, payload)
            except Unencodable as exc:
                outcome.append(exc)
                sent.append(0)
                continue
            outcome.append(0)
            if event_id in refused:
                pipe.execute_command("PUBLISH", CHANNEL_PREFIX + event_type)  # no message: the broker refuses it
                sent.append(1)
                continue
            pipe.publish(CHANNEL_PREFIX + event_type, message)
            if stream:
                pipe.xadd(STREAM, {"id": event_id, "message": message}, maxlen=stream_maxlen, approximate=True)
            sent.append(per_event)
        replies = await pipe.execute(raise_on_error=False) if any(sent) else []
    at = 0
    for i, commands in enumerate(sent):
        if commands:
            mine = replies[at : at + commands]
            at += commands
            error = next((r for r in mine if isinstance(r, BaseException)), None)
            outcome[i] = error if error is not None else int(mine[0])
    return outcome
