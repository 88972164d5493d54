"""Alembic environment: runs on a connection the app lends it (see ``db.upgrade_to_head``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from source.domain.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    schema = config.attributes.get("schema")
    if connection is None:
        # Command-line use: ``alembic -x url=sqlite:///scratch.db upgrade head``.
        url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///scratch.db")
        with create_engine(url).connect() as own:
            _run(own, None)
            own.commit()
        return
    _run(connection, schema)


def _run(connection, schema):  # type: ignore[no-untyped-def]
    # A learner's PostgreSQL schema is reached through schema_translate_map; the version
    # table is named with the schema explicitly so Alembic's own existence check finds it.
    context.configure(connection=connection, target_metadata=target_metadata, version_table_schema=schema)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
