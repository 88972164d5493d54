"""Settings: which database and Redis this process talks to, and the budgets it keeps to.

URLs come as hosting providers write them: a password with an unencoded ``@``, a
``postgres://`` scheme, libpq options such as ``?sslmode=require``. They are parsed
here, once, into what the async drivers accept; anything unusable falls back to the
embedded default with a note that says why. Budgets (pool sizes, how many sandboxes,
how long a statement may run) are settings with safe defaults, read from ``PLAB_*``.
The instructor's passcode (``PLAB_INSTRUCTOR_PASSCODE``) is read the same way and kept as a
:class:`Secret`, which never prints.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import URL, make_url

#: Names looked up in the environment first, then in Streamlit secrets.
DATABASE_URL_KEY = "DATABASE_URL"
REDIS_URL_KEY = "REDIS_URL"
#: The instructor's passcode for class mode (a string, not a budget): unset, class mode is off.
INSTRUCTOR_PASSCODE_KEY = "PLAB_INSTRUCTOR_PASSCODE"
#: The folder of the embedded default's sandboxes, kept across restarts (a path, not a budget).
DATA_DIR_KEY = "PLAB_DATA_DIR"

#: libpq's ``sslmode`` values; asyncpg takes the same names through its ``ssl`` argument.
SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
#: URL options asyncpg understands as they are.
ASYNCPG_OPTIONS = {"ssl", "target_session_attrs", "prepared_statement_cache_size"}


class Secret:
    """A setting that is never shown: its ``repr`` and ``str`` are ``***``, so no page or log line can print it.

    The only way to use it is :meth:`matches`, which compares in constant time (a guess that shares
    a prefix with the secret is not answered faster than one that does not).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def matches(self, guess: str) -> bool:
        return hmac.compare_digest(self._value.encode(), guess.encode())

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.matches(self._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Where the data lives (``None``: the embedded default) and the budgets of one process.

    The embedded defaults need no server at all: SQLite through aiosqlite for the
    database, and fakeredis (an in-process Redis) for the cache and the event bus.
    Every budget is an environment variable (or a secret) named ``PLAB_`` + the field's
    name in capitals, e.g. ``PLAB_MAX_SANDBOXES``.
    """

    database_url: str | None = None
    redis_url: str | None = None
    #: Live sandboxes one process keeps at most; the next learner is asked to come back later.
    max_sandboxes: int = 300
    #: A sandbox nobody has clicked in for this long is released.
    idle_minutes: float = 60.0
    #: The shared PostgreSQL pool: connections kept open, and extra ones opened under load.
    db_pool_size: int = 5
    db_max_overflow: int = 5
    #: PostgreSQL connections all running pool experiments (Lab 2) may hold together.
    experiment_connections: int = 30
    #: The longest one SQL statement may run before the server cancels it (seconds).
    statement_timeout_s: float = 10.0
    #: How often the housekeeping task retries failed releases and expires idle sandboxes.
    sweep_interval_s: float = 30.0
    #: Where the embedded default keeps its learners' SQLite files (``PLAB_DATA_DIR``); None: <tempdir>/persistence-lab.
    data_dir: str | None = None
    #: A process whose heartbeat is older than this is taken for stopped: its jobs are reported as interrupted.
    heartbeat_grace_s: float = 30.0
    #: The passcode that unlocks class mode on the Instructor page (``PLAB_INSTRUCTOR_PASSCODE``); None: off.
    instructor_passcode: Secret | None = None
    #: What was wrong with the configuration and what the lab did instead (shown in the sidebar).
    notes: tuple[str, ...] = field(default=(), compare=False)
    #: Whether a URL was configured at all (a fallback is then not "the embedded default by choice").
    database_configured: bool = False
    redis_configured: bool = False

    @classmethod
    def load(cls, secrets: Mapping[str, Any] | None = None) -> Settings:
        """Read the URLs and budgets from the environment, falling back to Streamlit secrets."""
        secrets = secrets or {}

        def pick(key: str) -> str | None:
            value = os.environ.get(key) or secrets.get(key)
            return (str(value).strip() or None) if value else None

        notes: list[str] = []
        database_url, db_notes = parse_database_url(pick(DATABASE_URL_KEY))
        redis_url, redis_notes = parse_redis_url(pick(REDIS_URL_KEY))
        notes += db_notes + redis_notes
        budgets: dict[str, Any] = {}
        for f in fields(cls):
            if f.type not in ("int", "float") or (raw := pick("PLAB_" + f.name.upper())) is None:
                continue
            value, note = _budget(f.name, raw, f.type, f.default)
            budgets[f.name] = value
            if note:
                notes.append(note)
        passcode = pick(INSTRUCTOR_PASSCODE_KEY)
        return cls(
            data_dir=pick(DATA_DIR_KEY),
            database_url=database_url,
            redis_url=redis_url,
            instructor_passcode=Secret(passcode) if passcode else None,
            notes=tuple(notes),
            database_configured=pick(DATABASE_URL_KEY) is not None,
            redis_configured=pick(REDIS_URL_KEY) is not None,
            **budgets,
        )


def _budget(name: str, raw: str, kind: str, default: Any) -> tuple[Any, str | None]:
    """A positive number from the environment, or the default and a note saying why."""
    try:
        value = int(raw) if kind == "int" else float(raw)
    except ValueError:
        value = None
    if value is None or value <= 0:
        return default, f"PLAB_{name.upper()}={raw[:20]!r} is not a positive number; using {default}."
    return value, None


def split_url(url: str) -> URL:
    """Parse a URL whose password may hold characters that should have been percent-encoded.

    Hosting dashboards hand out passwords with ``@``, ``:``, ``/`` or ``#`` in them, not
    encoded. The credentials end at the *last* ``@`` before the host, so that is where
    this splits; user and password are then encoded and handed to SQLAlchemy's parser.
    Raises ``ValueError`` with a password-free reason when the URL cannot be used.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError("it does not start with a scheme such as postgresql://")
    query = ""
    at = rest.rfind("@")
    host_part = rest[at + 1 :]
    if "?" in host_part:
        host_part, _, query = host_part.partition("?")
    userinfo = rest[:at] if at >= 0 else ""
    user, _, password = userinfo.partition(":")
    host_port, slash, path = host_part.partition("/")
    if ":" in host_port and not host_port.startswith("["):
        port = host_port.rsplit(":", 1)[1]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("its port is not a number between 1 and 65535")
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "") + "@" if userinfo else ""
    rebuilt = f"{scheme}://{auth}{host_port}{slash}{path}" + (f"?{query}" if query else "")
    try:
        return make_url(rebuilt)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's message may quote the URL: never pass it on
        raise ValueError(f"it is not a URL SQLAlchemy can read ({type(exc).__name__})") from None


def parse_database_url(url: str | None) -> tuple[str | None, list[str]]:
    """The URL for the async driver, and notes on what was changed or could not be used.

    ``postgres://`` and ``postgresql://`` become ``postgresql+asyncpg://``; ``sqlite://``
    becomes ``sqlite+aiosqlite://``. libpq options are translated for asyncpg
    (``sslmode`` becomes ``ssl``) or dropped with a note. A URL that cannot be parsed
    gives ``None`` (the embedded SQLite) and a note saying why, never an exception.
    """
    if not url:
        return None, []
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = split_url(url)
    except ValueError as exc:
        return None, [f"DATABASE_URL cannot be used: {exc}. The lab runs on SQLite instead."]
    notes: list[str] = []
    if parsed.get_backend_name() == "postgresql":
        query, notes = _asyncpg_query(parsed.query)
        parsed = parsed.set(drivername="postgresql+asyncpg", query=query)
    elif parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False), notes


def _asyncpg_query(query: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for key, value in query.items():
        value = value[-1] if isinstance(value, tuple) else value
        if key == "sslmode" and value in SSL_MODES:
            kept["ssl"] = value
        elif key in ASYNCPG_OPTIONS:
            kept[key] = value
        else:
            dropped.append(key)
    notes = [f"DATABASE_URL options the async driver does not take were ignored: {', '.join(sorted(dropped))}."]
    return kept, notes if dropped else []


def parse_redis_url(url: str | None) -> tuple[str | None, list[str]]:
    """A Redis URL with its credentials encoded, or ``None`` (fakeredis) and why."""
    if not url:
        return None, []
    try:
        parsed = split_url(url)
    except ValueError as exc:
        return None, [f"REDIS_URL cannot be used: {exc}. The lab runs on fakeredis instead."]
    if parsed.drivername not in ("redis", "rediss", "unix"):
        return None, ["REDIS_URL must start with redis://, rediss:// or unix://; using fakeredis."]
    # redis-py parses the URL itself (and decodes the credentials): hand it the encoded form.
    return parsed.render_as_string(hide_password=False), []


def normalise_database_url(url: str | None) -> str | None:
    """The asyncpg/aiosqlite form of ``url`` (``None`` if it cannot be used)."""
    return parse_database_url(url)[0]


def safe_url(url: str | None) -> str:
    """A URL fit to show on a page: no part of the password, whatever characters it holds."""
    if not url:
        return "(none)"
    try:
        parsed = split_url(url)
    except ValueError:
        scheme = url.partition("://")[0] if "://" in url else ""
        return f"{scheme}://(unparsable URL)" if scheme.isalnum() else "(unparsable URL)"
    return parsed.set(query={}).render_as_string(hide_password=True)
