"""The course's composition root: its labs in order, what each brings, and how labs hear of one another.

The only module that knows every lab. Each lab keeps its own knowledge check (``checks.py``)
and demos (``presets.py``); here they are listed, with the page each lab lives on. Labs never
import one another: where one lab must react to another's work (Lab 4's cache drops a user that
Lab 1 changed), the reaction is wired here, through the service layer's hooks.
"""

from __future__ import annotations

from source.labs.caching import checks as caching_checks
from source.labs.caching import presets as caching_presets
from source.labs.caching.sandbox_cache import invalidate_user
from source.labs.data_models import checks as data_models_checks
from source.labs.data_models import presets as data_models_presets
from source.labs.outbox import checks as outbox_checks
from source.labs.outbox import presets as outbox_presets
from source.labs.pooling import checks as pooling_checks
from source.labs.pooling import presets as pooling_presets
from source.labs.repository import checks as repository_checks
from source.labs.repository import presets as repository_presets
from source.learning.catalogue import Catalogue, Lab, Objective
from source.services import users

COURSE = Catalogue(
    labs=[
        Lab(
            "lab1",
            "1 · Data models",
            "views/lab1_data_models.py",
            "🧱",
            data_models_checks.build,
            data_models_presets.PRESETS,
        ),
        Lab(
            "lab2",
            "2 · Async connectivity & pooling",
            "views/lab2_connectivity.py",
            "🔌",
            pooling_checks.build,
            pooling_presets.PRESETS,
        ),
        Lab(
            "lab3",
            "3 · Repository & N+1",
            "views/lab3_repository.py",
            "🔁",
            repository_checks.build,
            repository_presets.PRESETS,
        ),
        Lab(
            "lab4",
            "4 · Caching with Redis",
            "views/lab4_caching.py",
            "⚡",
            caching_checks.build,
            caching_presets.PRESETS,
        ),
        Lab("lab5", "5 · Outbox pattern", "views/lab5_outbox.py", "📬", outbox_checks.build, outbox_presets.PRESETS),
        Lab(
            # No preset: the exercise's passing design is an answer, not a demo anyone who opens Instructor may run.
            "create",
            "Create · Design an event table",
            "views/create_exercise.py",
            "🛠️",
        ),
    ],
    objectives=[
        Objective("Remember", "List SQLAlchemy relationship types and Redis data structures.", ("lab1", "lab4")),
        Objective("Understand", "Explain async database patterns and connection pooling.", ("lab2",)),
        Objective("Apply", "Implement the repository pattern with SQLAlchemy 2.0.", ("lab3",)),
        Objective("Analyze", "Compare caching strategies for different access patterns.", ("lab4",)),
        Objective("Create", "Design event tables for pub/sub.", ("create", "lab5")),
    ],
)

# A committed change to a user makes Lab 4's cached copy stale: drop it (best effort, bounded).
if invalidate_user not in users.AFTER_WRITE:
    users.AFTER_WRITE.append(invalidate_user)
