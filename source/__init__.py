"""Persistence Lab: the data layer of InnovateAI's assessment platform, for learning.

``from source import *`` gives the course's names with working behaviour.
"""

from source.domain.models import AIRScore, Assessment, Base, DomainEvent, EventType, TimestampMixin, User
from source.domain.repositories import UserRepository
from source.domain.samples import create_sample_airscore, create_sample_user, create_sample_users
from source.platform.backends import Backends, BackendStatus
from source.platform.config import Settings
from source.platform.context import current_sandbox, use_sandbox
from source.platform.default_context import default_sandbox
from source.platform.errors import DuplicateEmail, InvalidInput, LabError, NotFound, explain
from source.platform.runtime import AsyncRuntime
from source.platform.sandbox import Sandbox
from source.platform.session import get_session, initialize_db

__all__ = [
    "AIRScore",
    "Assessment",
    "AsyncRuntime",
    "BackendStatus",
    "Backends",
    "Base",
    "DomainEvent",
    "DuplicateEmail",
    "EventType",
    "InvalidInput",
    "LabError",
    "NotFound",
    "Sandbox",
    "Settings",
    "TimestampMixin",
    "User",
    "UserRepository",
    "create_sample_airscore",
    "create_sample_user",
    "create_sample_users",
    "current_sandbox",
    "default_sandbox",
    "explain",
    "get_session",
    "initialize_db",
    "use_sandbox",
]
