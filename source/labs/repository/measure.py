"""Running a loading strategy under the query recorder: statements, time, round trips, verdict.

Every figure the lab shows comes from here: statements counted by SQLAlchemy's cursor events,
wall time from ``time.perf_counter``, the simulated round trip as actually slept, and the
N+1 detector's verdict on the statements that really ran.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from source.domain.errors import InvalidInput, NotFound
from source.domain.repositories import UserRepository
from source.instruments.n_plus_one import DEFAULT_THRESHOLD, Verdict, detect, readable, shape
from source.instruments.query_log import QueryLog, StatementRecord, capture_queries
from source.labs.repository import record
from source.labs.repository.strategies import STRATEGIES, Loaded
from source.platform.context import current_sandbox
from source.platform.jobs import Progress
from source.platform.session import get_session

MAX_ROUND_TRIP_MS = 5.0


class LoadSettings(BaseModel):
    """How a comparison runs: the simulated round trip per statement and the detector's threshold."""

    round_trip_ms: float = Field(0.0, ge=0, le=MAX_ROUND_TRIP_MS)
    threshold: int = Field(DEFAULT_THRESHOLD, ge=2, le=1000)


@dataclass
class StrategyRun:
    """One strategy, run once, as measured."""

    key: str
    label: str
    loaded: Loaded
    wall_ms: float
    log: QueryLog = field(repr=False)
    verdict: Verdict

    @property
    def queries(self) -> int:
        return self.log.count

    @property
    def injected_ms(self) -> float:
        return self.log.injected_ms

    @property
    def database_ms(self) -> float:
        return self.log.database_ms

    def shapes(self) -> list[tuple[int, str]]:
        """Distinct statement shapes with how often each was sent, most frequent first."""
        counts = Counter(shape(r.sql) for r in self.log.records)
        return [(n, s) for s, n in counts.most_common()]

    def row(self) -> dict[str, object]:
        findings = self.verdict.findings
        flagged = ", ".join(f"{f.relationship or f.table} ×{f.count:,}" for f in findings)
        return {
            "strategy": self.label,
            "queries": self.queries,
            "N+1 detector": f"⚠️ N+1: {flagged}" if findings else "✅ no N+1",
            "time (ms)": round(self.wall_ms, 1),
            "simulated network round trip (ms)": round(self.injected_ms, 1),
            "in the driver (ms)": round(self.database_ms, 1),
            "users": self.loaded.user_count,
            "scores": self.loaded.score_count,
            "objects loaded": self.loaded.user_count + self.loaded.score_count,
        }


async def run_strategy(key: str, limit: int | None = None, settings: LoadSettings | None = None) -> StrategyRun:
    """Run one strategy in a fresh session, recording every statement it sends."""
    settings = settings or LoadSettings()
    info = STRATEGIES[key]
    engine = current_sandbox().engine
    recorder = capture_queries(engine, round_trip_ms=settings.round_trip_ms, this_task_only=True)
    async with get_session() as session, recorder as log:
        started = time.perf_counter()
        result = await info.load(session, limit)
        wall_ms = (time.perf_counter() - started) * 1000
    return StrategyRun(key, info.label, result, wall_ms, log, detect(log, settings.threshold))


@dataclass
class Comparison:
    runs: list[StrategyRun]
    settings: LoadSettings

    @property
    def identical(self) -> bool:
        """Checked: every strategy loaded the same users (same ids, same order) and the same scores."""
        return all(run.loaded == self.runs[0].loaded for run in self.runs)


async def compare_strategies(settings: LoadSettings, progress: Progress | None = None) -> Comparison:
    """Every strategy on every user in the sandbox, one after the other."""
    progress = progress or Progress()
    async with get_session() as session:
        users = await UserRepository(session).count()
    if users == 0:
        raise InvalidInput("Your sandbox has no users yet: seed some first (section 2), then compare.")
    progress.begin("Loading every user", len(STRATEGIES), "strategies")
    runs = []
    for info in STRATEGIES.values():
        progress.phase = f"Loading every user: {info.label}"
        runs.append(await run_strategy(info.key, None, settings))
        progress.done += 1
    progress.phase = "Done"
    await record.repository_comparison(  # for the knowledge check and the class view
        users, {run.key: (run.queries, run.wall_ms) for run in runs}
    )
    return Comparison(runs, settings)


# -- one user, the codelab's way -------------------------------------------------------------
@dataclass
class UserFetch:
    way: str
    email: str
    scores: list[dict[str, object]]
    statements: list[StatementRecord]
    wall_ms: float
    verdict: Verdict

    @property
    def sql(self) -> list[str]:
        return [readable(r.sql) for r in self.statements]


async def fetch_user_lazily(user_id: str) -> tuple[str, list[dict[str, object]]]:
    """The user, then their scores with a second, lazy query (1 + N with N = 1)."""
    async with get_session() as session:
        user = await UserRepository(session).get_by_id(user_id)
        if user is None:
            raise NotFound(f"No user has the id {user_id}. Create the sample users or pick one listed below.")
        scores = await user.awaitable_attrs.scores
        return user.email, [_score_row(s) for s in scores]


async def fetch_user_eagerly(user_id: str) -> tuple[str, list[dict[str, object]]]:
    """The user with ``scores`` loaded up front by the repository (``selectinload``)."""
    async with get_session() as session:
        user = await UserRepository(session).get_user_with_scores_eager(user_id)
        if user is None:
            raise NotFound(f"No user has the id {user_id}. Create the sample users or pick one listed below.")
        return user.email, [_score_row(s) for s in user.scores]


def _score_row(score: object) -> dict[str, object]:
    keys = ("air_score", "occupation_code", "parameter_version", "created_at", "id")
    return {k: getattr(score, k) for k in keys}


async def fetch_user(user_id: str, way: str, settings: LoadSettings | None = None) -> UserFetch:
    settings = settings or LoadSettings()
    fetch = {"lazy": fetch_user_lazily, "eager": fetch_user_eagerly}[way]
    engine = current_sandbox().engine
    async with capture_queries(engine, round_trip_ms=settings.round_trip_ms, this_task_only=True) as log:
        started = time.perf_counter()
        email, scores = await fetch(user_id)
        wall_ms = (time.perf_counter() - started) * 1000
    return UserFetch(way, email, scores, log.records, wall_ms, detect(log, settings.threshold))
