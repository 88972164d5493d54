"""Sample data from the course story: Alex Smith, Jane Doe, their assessments and scores."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from source.domain.models import AIRScore, Assessment, User
from source.domain.repositories import UserRepository
from source.platform.session import get_session

SAMPLE_USERS = (("alex.smith@innovateai.com", "Alex Smith"), ("jane.doe@innovateai.com", "Jane Doe"))


async def create_sample_user(email: str, name: str) -> User | None:
    """Create a user with a sample profile; ``None`` if the email is already taken.

    The duplicate is detected by the database (the UNIQUE index on ``users.email``), not
    by a check-then-insert that two requests could race through.
    """
    async with get_session() as session:
        repo = UserRepository(session)
        try:
            user = await repo.create(
                User(email=email, name=name, occupation_code="SW_ENG", education_level="Masters", years_experience=5.0)
            )
            await session.commit()
            return user
        except IntegrityError:
            await session.rollback()
            return None


async def create_sample_users() -> list[tuple[str, str, bool]]:
    """Alex and Jane: ``(email, id, created_now)``. Running it twice creates nobody new."""
    out = []
    for email, name in SAMPLE_USERS:
        user = await create_sample_user(email, name)
        if user is None:
            async with get_session() as session:
                user = await UserRepository(session).get_by_email(email)
            if user is None:  # taken a moment ago, deleted since: the caller may simply run it again
                raise LookupError(f"{email} was taken and then removed while the samples were made")
            out.append((email, user.id, False))
        else:
            out.append((email, user.id, True))
    return out


def sample_score_parts() -> dict[str, Any]:
    """What every sample AI-R score shares: its components, confidence interval and model metadata."""
    return {
        "vr_score": 0.7,
        "hr_score": 0.8,
        "synergy_score": 0.9,
        "ci_lower": 0.8,
        "ci_upper": 0.9,
        "parameter_version": "v1.2",
        "calculation_metadata": {"model": "deep_eval_v3", "factors": ["fluency", "domain"]},
    }


def sample_airscore(user_id: str, occupation_code: str = "SW_ENG", air_score: float = 85.5) -> AIRScore:
    """A new (not yet added) AI-R score with its confidence interval and JSON calculation metadata."""
    return AIRScore(user_id=user_id, occupation_code=occupation_code, air_score=air_score, **sample_score_parts())


def sample_assessment(user_id: str, component: str = "fluency", status: str = "completed") -> Assessment:
    """A new (not yet added) assessment of one component."""
    return Assessment(user_id=user_id, component=component, status=status, current_ability=0.42, items_administered=12)


async def create_sample_airscore(user_id: str, occupation_code: str = "SW_ENG", air_score: float = 85.5) -> AIRScore:
    """An AI-R score with its confidence interval and JSON calculation metadata, in a transaction of its own."""
    async with get_session() as session:
        score = sample_airscore(user_id, occupation_code, air_score)
        session.add(score)
        await session.commit()
        return score


async def create_sample_assessment(user_id: str, component: str = "fluency", status: str = "completed") -> Assessment:
    """An assessment, in a transaction of its own."""
    async with get_session() as session:
        assessment = sample_assessment(user_id, component, status)
        session.add(assessment)
        await session.commit()
        return assessment
