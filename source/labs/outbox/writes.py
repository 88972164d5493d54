"""Business writes that record their domain event in the same transaction (the outbox's first half).

The AI-R score and its ``score.calculated`` event commit together or not at all: there is no
moment at which the score exists and the event does not, so no event can be lost between
"saved" and "announced". Publishing is someone else's job (the publisher).
"""

from __future__ import annotations

import random

from sqlalchemy import func, select

from source.domain.errors import InvalidInput, NotFound
from source.domain.events import DomainEventRepository
from source.domain.models import AIRScore, Assessment, DomainEvent, EventType, User, new_id
from source.labs.outbox import inputs
from source.labs.outbox.faults import InjectedFailure
from source.platform.session import get_session

#: How many events one learner's outbox may hold: plenty to learn with, bounded for a shared host.
MAX_EVENTS = 50_000
#: How many scores one click may calculate at once.
MAX_BATCH = 2_000


async def calculate_and_store_airscore(
    user_id: str, occupation_code: str = "SW_ENG", *, fail_before_commit: bool = False
) -> tuple[AIRScore, DomainEvent]:
    """Store a new AI-R score and its ``score.calculated`` event atomically.

    With ``fail_before_commit`` the function raises after both INSERTs ran and before
    COMMIT: the rollback removes both rows.
    """
    occupation_code = inputs.printable(occupation_code, "occupation code")
    if not 0 < len(occupation_code) <= 20:
        raise InvalidInput("The occupation code must be 1 to 20 characters, e.g. SW_ENG or 15-1252.")
    user_id = inputs.identifier(user_id, "user id")
    draw = random.Random()  # noqa: S311 - sample scores, not secrets
    async with get_session() as session:
        if await session.get(User, user_id) is None:
            raise NotFound(f"No user has the id {user_id}. Create one first.")
        # 1. The business change.
        score = AIRScore(
            user_id=user_id,
            occupation_code=occupation_code,
            air_score=round(draw.uniform(60.0, 95.0), 1),
            vr_score=round(draw.uniform(0.5, 0.9), 3),
            hr_score=round(draw.uniform(0.4, 0.85), 3),
            synergy_score=round(draw.uniform(0.7, 0.99), 3),
            ci_lower=0.85,
            ci_upper=0.98,
            parameter_version="v1.3",
            calculation_metadata={"model": "deep_eval_v4", "factors": ["fluency", "domain", "adaptive"]},
        )
        session.add(score)
        await session.flush()  # the INSERT runs now and the score has its id
        # 2. Its event, in the same transaction.
        payload = {"user_id": user_id, "air_score_id": score.id, "score_value": score.air_score}
        event = await DomainEventRepository(session).record(
            EventType.SCORE_CALCULATED, "AIRScore", score.id, {**payload, "occupation": occupation_code}
        )
        if fail_before_commit:
            raise InjectedFailure(
                "Injected failure after both INSERTs and before COMMIT: the transaction was rolled back, "
                "so neither the score nor its event exists."
            )
        await session.commit()  # 3. Both rows, or neither.
        return score, event


async def calculate_many_scores(user_id: str, count: int, occupation_code: str = "SW_ENG") -> int:
    """``count`` scores and their events in one transaction: a backlog for the publisher to drain."""
    if not 1 <= count <= MAX_BATCH:
        raise InvalidInput(f"Choose between 1 and {MAX_BATCH} scores at a time.")
    user_id = inputs.identifier(user_id, "user id")
    occupation_code = inputs.printable(occupation_code, "occupation code")
    async with get_session() as session:
        if await session.get(User, user_id) is None:
            raise NotFound(f"No user has the id {user_id}. Create one first.")
        held = int(await session.scalar(select(func.count()).select_from(DomainEvent)) or 0)
        if held + count > MAX_EVENTS:
            raise InvalidInput(
                f"Your outbox holds {held:,} events; one sandbox may keep {MAX_EVENTS:,}. Clean up published events."
            )
        for i in range(count):
            score = AIRScore(
                id=new_id(),
                user_id=user_id,
                occupation_code=occupation_code,
                air_score=60.0 + i % 35,
                vr_score=0.7,
                hr_score=0.8,
                synergy_score=0.9,
                ci_lower=0.85,
                ci_upper=0.98,
                parameter_version="v1.3",
                calculation_metadata={"model": "deep_eval_v4", "batch": True},
            )
            payload = {"user_id": user_id, "air_score_id": score.id, "score_value": score.air_score}
            event = DomainEvent(
                event_type=EventType.SCORE_CALCULATED, aggregate_type="AIRScore", aggregate_id=score.id, payload=payload
            )
            session.add_all((score, event))
        await session.flush()  # every INSERT, batched by SQLAlchemy
        await session.commit()
    return count


async def complete_assessment(assessment_id: str) -> tuple[Assessment, DomainEvent]:
    """Mark an assessment completed and record ``assessment.completed`` in the same transaction."""
    assessment_id = inputs.identifier(assessment_id, "assessment id")
    async with get_session() as session:
        assessment = await session.get(Assessment, assessment_id)
        if assessment is None:
            raise NotFound(f"No assessment has the id {assessment_id}.")
        if assessment.status == "completed":
            raise InvalidInput("This assessment is already completed: completing it again would announce it twice.")
        assessment.status = "completed"
        await session.flush()
        event = await DomainEventRepository(session).record(
            EventType.ASSESSMENT_COMPLETED,
            "Assessment",
            assessment.id,
            {"user_id": assessment.user_id, "component": assessment.component, "ability": assessment.current_ability},
        )
        await session.commit()
        return assessment, event


async def recommend_pathway_steps(user_id: str, steps: int) -> list[str]:
    """``steps`` ``pathway.recommended`` events of one new pathway (one aggregate), in one transaction.

    Returns their ids in order: one aggregate's events, which must reach a consumer in this order.
    """
    user_id = inputs.identifier(user_id, "user id")
    if not 1 <= steps <= 10:
        raise InvalidInput("Choose between 1 and 10 steps.")
    pathway = new_id()
    async with get_session() as session:
        if await session.get(User, user_id) is None:
            raise NotFound(f"No user has the id {user_id}. Create one first.")
        repository = DomainEventRepository(session)
        events = [
            await repository.record(EventType.PATHWAY_RECOMMENDED, "Pathway", pathway, {"user_id": user_id, "step": n})
            for n in range(1, steps + 1)
        ]
        await session.commit()
    return [event.id for event in events]
