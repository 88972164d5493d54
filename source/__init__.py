"""Persistence Lab: the data layer of InnovateAI's assessment platform, for learning.

``from source import *`` gives the course's names with working behaviour.
"""

from .backends import Backends, BackendStatus
from .config import Settings
from .db import get_session, initialize_db
from .errors import DuplicateEmail, InvalidInput, LabError, NotFound, explain
from .models import AIRScore, Assessment, Base, DomainEvent, EventType, TimestampMixin, User
from .repositories import UserRepository
from .runtime import AsyncRuntime
from .samples import create_sample_airscore, create_sample_user, create_sample_users
from .sandbox import Sandbox, current_sandbox, use_sandbox

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
    "explain",
    "get_session",
    "initialize_db",
    "use_sandbox",
]
