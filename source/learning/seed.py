"""A realistic class-sized data set, written in bulk with Core INSERTs, with progress and bounds.

Users with plausible profiles, their assessments and AI-R scores, and the domain events
those would have announced (a USER_CREATED per user, a SCORE_CALCULATED per score), some
still pending. Sizes are bounded so one instructor cannot fill the shared host.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, insert, select

from source.domain.errors import InvalidInput
from source.domain.limits import USERS_PER_SANDBOX, too_many_users
from source.domain.models import AIRScore, Assessment, DomainEvent, EventType, User
from source.learning.measurements import record_run
from source.platform.context import current_sandbox
from source.platform.jobs import Progress

MAX_USERS = 2000
MAX_EVENTS = 10_000
BATCH = 200  # users per transaction: each one moves the progress bar
FIRST = ("Alex", "Jane", "Priya", "Tomás", "Mei", "Kwame", "Sofia", "Omar", "Lena", "Ravi", "Ana", "Yuki")
LAST = ("Smith", "Doe", "Patel", "García", "Chen", "Mensah", "Rossi", "Haddad", "Novak", "Iyer", "Silva", "Sato")
OCCUPATIONS = ("15-1252", "15-2051", "13-2011", "29-1141", "25-2031", "17-2071")
EDUCATION = ("High school", "Bachelor's", "Master's", "PhD")
COMPONENTS = ("fluency", "domain", "adaptive")


class SeedRequest(BaseModel):
    """What the instructor asked for; every size is bounded."""

    users: int = Field(ge=1, le=MAX_USERS)
    assessments_per_user: int = Field(default=2, ge=0, le=5)
    scores_per_user: int = Field(default=5, ge=0, le=10)
    pending_events: int = Field(default=0, ge=0, le=MAX_EVENTS, description="extra SCORE_CALCULATED still pending")


def parse_request(**values: Any) -> SeedRequest:
    try:
        return SeedRequest(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg'].lower()}" for e in exc.errors())
        raise InvalidInput(f"Nothing was seeded. Please fix: {problems}.") from None


@dataclass(frozen=True)
class SeedReport:
    users: int
    assessments: int
    scores: int
    events: int
    ms: float


def _people(request: SeedRequest, rng: random.Random, tag: str, start: datetime) -> list[dict[str, Any]]:
    people = []
    for i in range(request.users):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        people.append(
            {
                "id": str(uuid.uuid4()),
                "email": f"{first.lower()}.{last.lower()}.{tag}{i}@innovateai.example".replace("á", "a"),
                "name": f"{first} {last}",
                "occupation_code": rng.choice(OCCUPATIONS),
                "education_level": rng.choice(EDUCATION),
                "years_experience": round(rng.uniform(0, 30), 1),
                "created_at": start + timedelta(seconds=i),
                "updated_at": start + timedelta(seconds=i),
            }
        )
    return people


def _children(user: dict[str, Any], request: SeedRequest, rng: random.Random) -> tuple[list[Any], list[Any]]:
    assessments = [
        {
            "id": str(uuid.uuid4()),
            "user_id": user["id"],
            "component": COMPONENTS[n % 3],
            "status": "completed",
            "current_ability": round(rng.gauss(0, 1), 3),
            "items_administered": rng.randint(10, 40),
        }
        for n in range(request.assessments_per_user)
    ]
    scores = []
    for _ in range(request.scores_per_user):
        air = round(rng.uniform(40, 98), 1)
        scores.append(
            {
                "id": str(uuid.uuid4()),
                "user_id": user["id"],
                "occupation_code": user["occupation_code"],
                "air_score": air,
                "vr_score": round(rng.random(), 3),
                "hr_score": round(rng.random(), 3),
                "synergy_score": round(rng.random(), 3),
                "ci_lower": round(air - 4, 1),
                "ci_upper": round(air + 4, 1),
                "parameter_version": "v1.3",
                "calculation_metadata": {"model": "seeded"},
            }
        )
    return assessments, scores


def _event(kind: EventType, aggregate: str, payload: dict[str, Any], status: str, at: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "event_type": kind.value,
        "aggregate_type": kind.name.split("_")[0].title(),
        "aggregate_id": aggregate,
        "payload": payload,
        "status": status,
        "created_at": at,
        "updated_at": at,
        "published_at": None if status == "pending" else at,
    }


def _unless_stopped(progress: Progress) -> None:
    """End the seed between two batches if Stop was pressed: the batches written so far stay."""
    if progress.stopping:
        raise asyncio.CancelledError


async def seed(request: SeedRequest, progress: Progress | None = None) -> SeedReport:
    """Write the data set into the current sandbox, one transaction per batch of users."""
    progress = progress or Progress()
    sandbox = current_sandbox()
    async with sandbox.sessionmaker() as session:
        have = int(await session.scalar(select(func.count()).select_from(User)) or 0)
    if have + request.users > USERS_PER_SANDBOX:
        raise InvalidInput(too_many_users(have, request.users))
    rng = random.Random(request.users)  # noqa: S311 - sample data, not secrets: same size, same names
    tag = uuid.uuid4().hex[:4]  # a second seed never collides with the first one's emails
    start = datetime.now(UTC) - timedelta(days=1)
    people = _people(request, rng, tag, start)
    progress.begin("Seeding users, assessments, scores and events", len(people) + request.pending_events)
    counts = {"assessments": 0, "scores": 0, "events": 0}
    began = time.perf_counter()
    for offset in range(0, len(people), BATCH):
        batch = people[offset : offset + BATCH]
        assessments, scores, events = [], [], []
        for user in batch:
            a, s = _children(user, request, rng)
            assessments += a
            scores += s
            events.append(
                _event(EventType.USER_CREATED, user["id"], {"email": user["email"]}, "published", user["created_at"])
            )
            events += [
                _event(
                    EventType.SCORE_CALCULATED,
                    x["id"],
                    {"user_id": user["id"], "air_score": x["air_score"]},
                    "published",
                    user["created_at"],
                )
                for x in s
            ]
        _unless_stopped(progress)
        async with sandbox.engine.begin() as conn:
            await conn.execute(insert(User), batch)
            for model, rows in ((Assessment, assessments), (AIRScore, scores), (DomainEvent, events)):
                if rows:
                    await conn.execute(insert(model), rows)
        counts["assessments"] += len(assessments)
        counts["scores"] += len(scores)
        counts["events"] += len(events)
        progress.done += len(batch)
    progress.phase = "Seeding pending events"
    for offset in range(0, request.pending_events, 1000):
        n = min(1000, request.pending_events - offset)
        backlog = [
            _event(
                EventType.SCORE_CALCULATED,
                people[(offset + i) % len(people)]["id"],
                {"n": offset + i},
                "pending",
                start + timedelta(seconds=offset + i),
            )
            for i in range(n)
        ]
        _unless_stopped(progress)
        async with sandbox.engine.begin() as conn:
            await conn.execute(insert(DomainEvent), backlog)
        counts["events"] += n
        progress.done += n
    ms = (time.perf_counter() - began) * 1000
    progress.phase = "Done"
    report = SeedReport(users=len(people), ms=ms, **counts)
    await record_run(
        sandbox,
        "instructor",
        {
            "seeded_users": (report.users, "users"),
            "seeded_rows": (report.users + sum(counts.values()), "rows"),
            "seed_ms": (ms, "ms"),
        },
    )
    return report
