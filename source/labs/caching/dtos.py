"""What goes into the cache: Pydantic DTOs written with ``model_dump_json`` and read back with
``model_validate_json``, and the cache's settings, validated with a message a learner can act on.

An ORM object never goes into Redis: it belongs to its session. A DTO is plain data, so
the cached text is exactly what a reader gets back, and a value that no longer matches the
model (written by an older version of the code, or damaged) is detected, not half-trusted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from source.domain.dtos import UserRow

M = TypeVar("M", bound=BaseModel)

#: The curriculum's defaults: a profile changes rarely, a latest score more often.
USER_TTL_S = 3600.0
SCORE_TTL_S = 300.0
#: Longest TTL the lab accepts (a day): long enough for any demonstration.
MAX_TTL_S = 86_400.0
#: Longest a Redis call of the cache may take before the database answers instead.
MAX_OP_TIMEOUT_S = 5.0


class ScoreRow(BaseModel):
    """An AI-R score as a page (and the cache) holds it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    occupation_code: str
    air_score: float
    vr_score: float
    hr_score: float
    synergy_score: float
    ci_lower: float
    ci_upper: float
    parameter_version: str
    calculation_metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class CacheSettings(BaseModel):
    """How the cache behaves. Every bound is here, so bad values are refused in one place."""

    model_config = ConfigDict(frozen=True)

    user_ttl_s: float = Field(USER_TTL_S, gt=0, le=MAX_TTL_S, description="TTL of a cached user")
    score_ttl_s: float = Field(SCORE_TTL_S, gt=0, le=MAX_TTL_S, description="TTL of a cached latest score")
    stampede_protection: bool = True
    early_refresh: bool = False
    #: With early refresh on, a hit on a key with less than this share of its TTL left
    #: refreshes the key in the background (the reader is answered from the cache at once).
    early_refresh_share: float = Field(0.2, gt=0, lt=1)
    #: Every Redis call of the cache gives up after this long: a black-holed Redis costs a
    #: reader at most this much before the database answers instead.
    op_timeout_s: float = Field(0.25, gt=0, le=MAX_OP_TIMEOUT_S)
    #: After a failed Redis call the cache is bypassed for this long, then tried again.
    cooldown_s: float = Field(1.0, ge=0, le=60)
    #: The cross-process stampede lock lives this long at most (its holder may crash).
    lock_ttl_s: float = Field(2.0, gt=0, le=30)


def encode(value: BaseModel) -> str:
    return value.model_dump_json()


def decode(model: type[M], raw: str | bytes) -> M | None:
    """The cached text as ``model``, or ``None`` when it does not parse (a repairable miss)."""
    try:
        return model.model_validate_json(raw)
    except (ValidationError, ValueError):
        return None


__all__ = ["MAX_OP_TIMEOUT_S", "SCORE_TTL_S", "USER_TTL_S", "CacheSettings", "ScoreRow", "UserRow", "decode", "encode"]
