"""Lab 5: the transactional outbox, published for real to Redis, under faults, at near-driver speed.

Modules, one idea each: ``writes`` (business change + event in one transaction), ``inputs``
(no NUL or control character gets in), ``claim`` (which events a publisher may take, in
aggregate order), ``publish`` (the Redis pipeline), ``backoff`` (retry delays), ``breaker``
(an outage of the broker is not an event's failure), ``publisher`` (claim-publish-mark),
``dead_letter`` (requeue, skip), ``retention``, ``history`` (the claim's plan with and without
history), ``metrics``, ``inbox`` and ``consumers`` (receiving, exactly-once effects, reconnecting),
``faults``, ``jobs`` (the publisher and the consumers as background jobs per sandbox) and
``actions`` (what the page calls).
"""

from source.labs.outbox.actions import event_publisher
from source.labs.outbox.options import PublisherOptions
from source.labs.outbox.publisher import OutboxPublisher
from source.labs.outbox.writes import calculate_and_store_airscore, complete_assessment

__all__ = [
    "OutboxPublisher",
    "PublisherOptions",
    "calculate_and_store_airscore",
    "complete_assessment",
    "event_publisher",
]
