"""Alembic environment for command-line use: ``alembic -x url=sqlite:///scratch.db upgrade head``.

The app does not come through here: it runs the same steps in code, on a connection it lends
(see ``source.platform.migrate``), without reading this file again for every sandbox.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from source.platform.migrate import run_migrations

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(context, connection, config.attributes.get("schema"))  # type: ignore[arg-type]
        return
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///scratch.db")
    with create_engine(url).connect() as own:
        run_migrations(context, own, None)  # type: ignore[arg-type]
        own.commit()


run_migrations_online()
