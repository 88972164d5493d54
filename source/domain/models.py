"""The InnovateAI schema as SQLAlchemy 2.0 typed declarative models.

Users own assessments and AI-R scores (one-to-many, deleted with their user through
``cascade="all, delete-orphan"``); ``DomainEvent`` is the outbox table that later labs
publish from. Column types, lengths and defaults follow the course schema exactly.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import now


@compiles(now, "sqlite")
def _sqlite_now_with_milliseconds(element: now, compiler: SQLCompiler, **kw: Any) -> str:
    """SQLite's ``CURRENT_TIMESTAMP`` only has whole seconds.

    Two rows written in the same second would then tie on ``created_at`` and an edit made
    within a second of creation would not move ``updated_at``. PostgreSQL's ``now()`` has
    microseconds, so on SQLite we ask for milliseconds to keep the two backends comparable.
    """
    return "STRFTIME('%Y-%m-%d %H:%M:%f', 'now')"


def new_id() -> str:
    """Primary keys are UUID4 strings, made in Python so the id is known before INSERT."""
    return str(uuid.uuid4())


_sequence_lock = threading.Lock()
_last_sequence = 0


def next_sequence() -> int:
    """A strictly increasing number for each new outbox row: the wall clock in nanoseconds,
    bumped by one when two rows would otherwise share a value.

    ``created_at`` cannot order events: PostgreSQL's ``now()`` is the same for every row of
    one transaction, and SQLite's clock here has milliseconds. The publisher orders an
    aggregate's events by this number instead.
    """
    global _last_sequence  # one counter per process, guarded by the lock
    with _sequence_lock:
        _last_sequence = max(_last_sequence + 1, time.time_ns())
        return _last_sequence


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base. ``AsyncAttrs`` adds ``await obj.awaitable_attrs.rel``.

    Under asyncio an *implicit* lazy load (plain ``user.scores`` on an unloaded relation)
    raises ``MissingGreenlet``: the ORM cannot block for I/O inside an attribute access.
    ``awaitable_attrs`` is the explicit, awaitable lazy load.
    """


class TimestampMixin:
    """``created_at``/``updated_at`` set by the database clock, not by the app server."""

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=func.now(), onupdate=func.now())


class User(Base, TimestampMixin):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(255))
    occupation_code: Mapped[str | None] = mapped_column(String(20))
    education_level: Mapped[str | None] = mapped_column(String(50))
    years_experience: Mapped[float | None] = mapped_column(Float)

    assessments: Mapped[list[Assessment]] = relationship(back_populates="user", cascade="all, delete-orphan")
    scores: Mapped[list[AIRScore]] = relationship(back_populates="user", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<User(id='{self.id}', email='{self.email}')>"


class Assessment(Base, TimestampMixin):
    __tablename__ = "assessments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="in_progress")  # in_progress, completed, cancelled
    component: Mapped[str] = mapped_column(String(50))  # fluency, domain, adaptive
    current_ability: Mapped[float] = mapped_column(Float, default=0.0)
    items_administered: Mapped[int] = mapped_column(default=0)

    user: Mapped[User] = relationship(back_populates="assessments")

    def __repr__(self) -> str:
        return f"<Assessment(id='{self.id}', user_id='{self.user_id}', status='{self.status}')>"


class AIRScore(Base, TimestampMixin):
    __tablename__ = "air_scores"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    occupation_code: Mapped[str] = mapped_column(String(20))

    air_score: Mapped[float] = mapped_column(Float)
    vr_score: Mapped[float] = mapped_column(Float)
    hr_score: Mapped[float] = mapped_column(Float)
    synergy_score: Mapped[float] = mapped_column(Float)

    ci_lower: Mapped[float] = mapped_column(Float)
    ci_upper: Mapped[float] = mapped_column(Float)

    parameter_version: Mapped[str] = mapped_column(String(20))
    calculation_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    user: Mapped[User] = relationship(back_populates="scores")

    def __repr__(self) -> str:
        return f"<AIRScore(id='{self.id}', user_id='{self.user_id}', air_score={self.air_score})>"


class EventType(StrEnum):
    """The domain events the platform announces to other services."""

    SCORE_CALCULATED = "score.calculated"
    ASSESSMENT_COMPLETED = "assessment.completed"
    PATHWAY_RECOMMENDED = "pathway.recommended"
    BATCH_COMPLETED = "batch.completed"
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"


class DomainEvent(Base, TimestampMixin):
    """The outbox: an event row written in the same transaction as the business change.

    The course's columns come first. The rest serve the publisher (Lab 5): ``sequence``
    orders one aggregate's events; ``attempts``, ``last_error`` and ``next_attempt_at``
    hold the retry state with backoff; ``claimed_by`` and ``lease_until`` record which
    publisher last held the event and how long its claim was allowed to last.
    """

    __tablename__ = "domain_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    event_type: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    aggregate_type: Mapped[str] = mapped_column(String(100), nullable=False)
    aggregate_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, published, failed, skipped
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Rows written without SQLAlchemy (no Python default) get 0 and sort first.
    sequence: Mapped[int] = mapped_column(BigInteger, default=next_sequence, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_events_status_created", "status", "created_at"),
        # The claim's two indexes are *partial*: they hold only the rows still to publish, so
        # their size follows the work left, not the history. Published rows leave them (no new
        # entry is written for the published version), and a scan no longer walks the history.
        # "The pending events in sequence order":
        Index(
            "ix_events_pending_sequence",
            "sequence",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # "The oldest event of this aggregate not yet out" (pending, or waiting as a dead letter):
        Index(
            "ix_events_unpublished_aggregate",
            "aggregate_id",
            "sequence",
            postgresql_where=text("status IN ('pending', 'failed')"),
            sqlite_where=text("status IN ('pending', 'failed')"),
        ),
    )

    def __repr__(self) -> str:
        return f"<DomainEvent(id='{self.id}', type='{self.event_type}', status='{self.status}')>"
