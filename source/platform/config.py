"""Settings: which database and which Redis this process talks to, chosen by URL."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url

#: Names looked up in the environment first, then in Streamlit secrets.
DATABASE_URL_KEY = "DATABASE_URL"
REDIS_URL_KEY = "REDIS_URL"


@dataclass(frozen=True)
class Settings:
    """Where the data lives. ``None`` means "use the embedded default".

    The embedded defaults need no server at all: SQLite through aiosqlite for the
    database, and fakeredis (an in-process Redis) for the cache and the event bus.
    """

    database_url: str | None = None
    redis_url: str | None = None

    @classmethod
    def load(cls, secrets: Mapping[str, Any] | None = None) -> Settings:
        """Read the URLs from the environment, falling back to Streamlit secrets."""
        secrets = secrets or {}

        def pick(key: str) -> str | None:
            value = os.environ.get(key) or secrets.get(key)
            return str(value).strip() or None if value else None

        return cls(database_url=normalise_database_url(pick(DATABASE_URL_KEY)), redis_url=pick(REDIS_URL_KEY))


def normalise_database_url(url: str | None) -> str | None:
    """Accept the URL forms hosting providers hand out and pick the async driver.

    ``postgres://`` and ``postgresql://`` become ``postgresql+asyncpg://``; ``sqlite://``
    becomes ``sqlite+aiosqlite://``. The lab is asynchronous end to end, so a
    synchronous driver would never work here.
    """
    if not url:
        return None
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str | None) -> str:
    """A URL fit to show on a page: the password is replaced by ``***``."""
    if not url:
        return "(none)"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL must still never leak
        return "(unparsable URL)"
