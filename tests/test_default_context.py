"""The default context (a notebook, a script) keeps a pool per event loop, and closes it with its loop.

A notebook runs every cell on one loop; a script may call ``asyncio.run`` several times, each
with a new loop. Both must reuse connections (the speed of the app) and leave nothing open
behind a loop that has ended: on the embedded defaults and on PostgreSQL + Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, REDIS_URL, ROOT, unavailable
from tests.test_course_api import _admin

SCRIPT = ROOT / "tests" / "course" / "default_context_loops.py"
#: A loop's pool opens a handful of connections however many calls it serves (PostgreSQL: 5 + 5 at most).
MOST_CONNECTIONS = 10


@pytest.fixture(params=["embedded", "services"])
def script_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """No URLs (SQLite file + fakeredis), or a fresh PostgreSQL database of its own and the real Redis."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PYTHONPATH"] = str(ROOT)
    if request.param == "embedded":
        yield env
        return
    name = f"plab_loops_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL unreachable for the default context test: {exc}")
    env["DATABASE_URL"] = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    env["REDIS_URL"] = REDIS_URL
    try:
        yield env
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _run(mode: str, env: dict[str, str]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), mode], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def test_successive_asyncio_runs_each_pool_their_connections_and_close_them_with_their_loop(
    script_env: dict[str, str],
) -> None:
    *runs, after = _run("runs", script_env)
    assert [r["round"] for r in runs] == [0, 1, 2]
    assert [r["leftovers"] for r in runs] == [0, 0, 0], "each loop closed its pool before the next began"
    assert after["leftovers"] == 0, "and the last one too, when asyncio.run ended"
    assert [r["scores"] for r in runs] == [200, 400, 600], "the same database from one loop to the next"
    assert all(r["published"] >= 200 for r in runs), "the course's publisher drained each round"
    for r in runs:
        assert 1 <= r["opened"] <= MOST_CONNECTIONS, f"a pool, not a connection per call: {r}"
    expected = "PostgreSQL" if "DATABASE_URL" in script_env else "SQLite"
    assert {r["backend"] for r in runs} == {expected}


def test_one_loop_like_jupyters_keeps_one_pool_for_every_cell(script_env: dict[str, str]) -> None:
    rounds = _run("one-loop", script_env)
    assert [r["scores"] for r in rounds] == [200, 400, 600]
    opened = [r["opened"] for r in rounds]
    assert opened[0] <= MOST_CONNECTIONS
    assert opened[2] == opened[0], f"later cells reuse the first cell's connections: {opened}"
