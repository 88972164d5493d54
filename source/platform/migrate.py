"""Alembic in code: every sandbox is migrated to the newest revision on its own connection."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """Alembic configured in code: the scripts ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_to_head(connection: Connection, schema: str | None = None) -> None:
    """Bring the database (or one schema of it) to the newest migration.

    Runs inside ``AsyncConnection.run_sync``: Alembic is synchronous, and ``run_sync``
    lends it the async connection through a greenlet.
    """
    config = alembic_config()
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    command.upgrade(config, "head")


def migration_head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
