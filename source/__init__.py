"""Persistence Lab: the data layer of InnovateAI's assessment platform, for learning.

``from source import *`` gives the course's names with working behaviour.
"""

from source.course import COURSE
from source.domain.errors import DuplicateEmail, InvalidInput, LabError, NotFound
from source.domain.events import DomainEventRepository
from source.domain.models import AIRScore, Assessment, Base, DomainEvent, EventType, TimestampMixin, User
from source.domain.repositories import UserRepository
from source.labs.caching.dtos import CacheSettings, ScoreRow
from source.labs.caching.repository import CachedUserRepository
from source.labs.outbox import (
    OutboxPublisher,
    PublisherOptions,
    calculate_and_store_airscore,
    complete_assessment,
    event_publisher,
)
from source.platform.backends import Backends, BackendStatus
from source.platform.config import Settings
from source.platform.context import current_sandbox, use_sandbox
from source.platform.default_context import default_sandbox
from source.platform.errors import explain
from source.platform.runtime import AsyncRuntime
from source.platform.sandbox import Sandbox
from source.platform.session import get_session, initialize_db
from source.services.samples import create_sample_airscore, create_sample_user, create_sample_users

__all__ = [
    "COURSE",
    "AIRScore",
    "Assessment",
    "AsyncRuntime",
    "BackendStatus",
    "Backends",
    "Base",
    "CacheSettings",
    "CachedUserRepository",
    "DomainEvent",
    "DomainEventRepository",
    "DuplicateEmail",
    "EventType",
    "InvalidInput",
    "LabError",
    "NotFound",
    "OutboxPublisher",
    "PublisherOptions",
    "Sandbox",
    "ScoreRow",
    "Settings",
    "TimestampMixin",
    "User",
    "UserRepository",
    "calculate_and_store_airscore",
    "complete_assessment",
    "create_sample_airscore",
    "create_sample_user",
    "create_sample_users",
    "current_sandbox",
    "default_sandbox",
    "event_publisher",
    "explain",
    "get_session",
    "initialize_db",
    "use_sandbox",
]
