"""What a page shows after an action, kept with the learner's sandbox instead of their browser session.

A refresh, a reconnect or the same link in another tab starts a new Streamlit session, and session
state goes with the old one. The sandbox stays as long as the learner's link. So the results a page
draws after an action (a join's page of rows, the last delete, a fetch, a design being drafted and
what its check found) are kept here, per sandbox, and the page reads them back from here.
"""

from __future__ import annotations

from typing import Any

from source.web import sandbox

#: The name of the sandbox's page memory among its services.
SERVICE = "web.kept"


def _memory() -> dict[str, Any]:
    memory: dict[str, Any] = sandbox().service(SERVICE, lambda _: {})
    return memory


def put(key: str, value: Any) -> None:
    """Keep ``value`` for this learner's pages under ``key`` (replacing what was there)."""
    _memory()[key] = value


def get(key: str, default: Any = None) -> Any:
    """What is kept under ``key`` for this learner, or ``default``."""
    return _memory().get(key, default)


def drop(key: str) -> None:
    _memory().pop(key, None)
