"""A cached read checked against the database right after it: fresh, stale or missing, as the page shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from source.labs.caching.cache import RedisCache
from source.labs.caching.dtos import ScoreRow, UserRow
from source.labs.caching.lookup import Lookup

T = TypeVar("T")


@dataclass(frozen=True)
class Fetched(Generic[T]):
    """A cached read, and what the database said right after it (outside the timed part)."""

    value: T | None
    lookup: Lookup
    stale: bool
    verdict: str

    def row(self, action: str) -> dict[str, object]:
        """One line of the page's read log."""
        lk = self.lookup
        return {
            "action": action,
            "outcome": lk.outcome.upper(),
            "total (ms)": round(lk.total_ms, 3),
            "Redis (ms)": round(lk.cache_ms, 3),
            "database (ms)": round(lk.db_ms, 3),
            "checked against the database": self.verdict,
            "value": _summary(self.value),
        }

    def message(self, action: str) -> str:
        lk = self.lookup
        why = f" ({lk.reason})" if lk.reason else ""
        return f"{action}: **{lk.outcome.upper()}** in {lk.total_ms:.2f} ms — {self.verdict}{why}"


def judge(cache: RedisCache, value: Any, truth: Any, lookup: Lookup | None, what: str) -> Fetched[Any]:
    """Compare what the cache served with the database's ``truth``; a stale answer is counted."""
    if lookup is None:
        raise RuntimeError("a cached read always records its lookup")
    stale = value != truth
    if stale:
        cache.metrics.record("stale")
        verdict = (
            f"STALE: the database has no such {what} any more"
            if truth is None
            else f"STALE: the database holds a newer {what} than the one served"
        )
    else:
        verdict = f"matches the database's {what}" if value is not None else f"no such {what}"
    return Fetched(value, lookup, stale, verdict)


def _summary(value: object) -> str:
    if isinstance(value, UserRow):
        return f"{value.name} (updated {value.updated_at:%H:%M:%S.%f})"
    if isinstance(value, ScoreRow):
        return f"AI-R {value.air_score:g} (created {value.created_at:%H:%M:%S.%f})"
    return "none"
