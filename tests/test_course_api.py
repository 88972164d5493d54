"""The course's names work outside the app, as the curriculum's notebook uses them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, ROOT, unavailable

SCRIPT = ROOT / "tests" / "course" / "curriculum_sections_4_5.py"


@pytest.fixture(params=["embedded", "services"])
def course_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The environment a notebook would have: no URLs, or a PostgreSQL database of its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PYTHONPATH"] = str(ROOT)
    if request.param == "embedded":
        yield env
        return
    # A fresh database, so the curriculum's fixed emails meet no earlier run's rows.
    name = f"plab_course_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:  # no server: skip here, fail in CI
        unavailable(f"PostgreSQL unreachable for the course API test: {exc}")
    env["DATABASE_URL"] = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield env
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(statement: str) -> None:
    url = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database, timeout=10
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def test_curriculum_sections_4_and_5_run_as_written_outside_the_app(course_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], env=course_env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    assert seen["found"] == "alex.smith@innovateai.com"
    assert seen["by_email"] == "Jane Doe"
    assert seen["users"] == ["alex.smith@innovateai.com", "jane.doe@innovateai.com"]
    assert seen["alex_scores"] == ["DATA_SCI", "SW_ENG"], "both of Alex's scores, loaded eagerly"
    assert seen["scores_per_user"] == {"Alex Smith": 2, "Jane Doe": 1}
    assert seen["latest"] == "DATA_SCI", "the score written last is the latest"
    assert seen["duplicate"] is None, "a second Alex is refused by the UNIQUE email and reported as None"
