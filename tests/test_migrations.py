"""Alembic owns the schema: its head must equal the models, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from source import Backends, Base, Sandbox
from source.platform.migrate import migration_head


def test_migration_head_equals_the_models(backends: Backends, sandbox: Sandbox) -> None:
    """Autogenerate, run against a freshly migrated sandbox, finds nothing to add or change."""

    async def diff() -> list[Any]:
        engine = sandbox.engine
        if sandbox.schema:
            # Inspect the learner's schema as if it were the default one.
            url = backends.settings.database_url
            assert url is not None
            engine = create_async_engine(url, connect_args={"server_settings": {"search_path": sandbox.schema}})
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync_conn: compare_metadata(
                        MigrationContext.configure(sync_conn, opts={"compare_type": True}), Base.metadata
                    )
                )
        finally:
            if engine is not sandbox.engine:
                await engine.dispose()

    assert sandbox.run(diff()) == []


def test_sandbox_records_the_head_revision(sandbox: Sandbox) -> None:
    async def version() -> str:
        table = f'"{sandbox.schema}".alembic_version' if sandbox.schema else "alembic_version"
        async with sandbox.engine.connect() as conn:
            return str((await conn.execute(text(f"SELECT version_num FROM {table}"))).scalar_one())

    assert sandbox.run(version()) == migration_head() == "0003"
