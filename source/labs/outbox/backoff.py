"""Exponential backoff with jitter, computed by tenacity and stored on the event row.

A broker failure does not make the publisher sleep in a loop: the failed events get
``next_attempt_at = now + delay`` and the claim skips them until then. So the retry state
survives a restart of the publisher, and other events keep flowing meanwhile. tenacity
supplies the delay policy (the same one its ``@retry`` decorator would use).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tenacity import RetryCallState, wait_exponential_jitter


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before try ``attempt + 1``, after ``attempt`` failed tries (1, 2, …).

    About ``base · 2^(attempt-1)``, plus a random extra of up to ``base`` so that events (and
    publishers) that failed together do not all come back at the same instant; never above ``cap``.
    """
    wait = wait_exponential_jitter(multiplier=base, max=cap, jitter=base)
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = max(1, attempt)
    return float(wait(state))


def next_attempt_at(attempt: int, base: float, cap: float, now: datetime | None = None) -> datetime:
    """When an event that has failed ``attempt`` times may be claimed again (UTC)."""
    return (now or datetime.now(UTC)) + timedelta(seconds=retry_delay(attempt, base, cap))
