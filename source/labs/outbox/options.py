"""The publisher's knobs, validated once with Pydantic: every value has a bound a learner can read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from source.domain.dtos import parse


class PublisherOptions(BaseModel):
    """How one publisher claims, publishes, retries and gives up."""

    model_config = ConfigDict(frozen=True)

    #: Events claimed (and published, and marked) per transaction.
    max_events: int = Field(default=500, ge=1, le=1000)
    #: Tries an event may fail *by its own fault* (refused, not encodable) before the dead letter.
    #: An outage of the broker spends none: the breaker makes the whole publisher wait instead.
    max_attempts: int = Field(default=5, ge=1, le=20)
    #: Backoff (an event's next try, and the breaker's next probe): about ``backoff_base · 2^(n-1)``
    #: seconds plus up to ``backoff_base`` of jitter, capped.
    backoff_base: float = Field(default=1.0, ge=0.001, le=60.0)
    backoff_cap: float = Field(default=30.0, ge=0.001, le=3600.0)
    #: How long the broker may take to answer one batch; past it the outcome is unknown (seconds).
    publish_timeout: float = Field(default=2.0, gt=0, le=30.0)
    #: How long one claim may be held: past it, PostgreSQL ends the claim's transaction.
    lease_seconds: float = Field(default=15.0, ge=1.0, le=300.0)
    #: Also append every event to a Redis Stream (kept even when nobody listens).
    stream: bool = True
    #: Roughly how many entries the stream keeps (``XADD … MAXLEN ~``), so it cannot fill Redis.
    stream_maxlen: int = Field(default=10_000, ge=100, le=100_000)

    def retry_budget_s(self) -> float:
        """How long an event's tries can last at most before the dead letter (every backoff, jitter at its top).

        An outage longer than this would have dead-lettered events when outages spent tries.
        """
        return float(
            sum(
                min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1) + self.backoff_base)
                for attempt in range(1, self.max_attempts)
            )
        )


def publisher_options(**values: Any) -> PublisherOptions:
    """Options from plain values; a value out of range becomes one clear :class:`InvalidInput`."""
    return parse(PublisherOptions, **values)
