"""The companion notebook runs top to bottom in a real kernel, on the embedded defaults and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator

import asyncpg
import nbformat
import pytest
from nbclient import NotebookClient
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, REDIS_URL, ROOT, unavailable
from tests.test_course_api import _admin

NOTEBOOK = ROOT / "notebooks" / "persistence_lab.ipynb"


@pytest.fixture(params=["embedded", "services"])
def kernel_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The kernel inherits this process's environment: no URLs, or a fresh PostgreSQL database and Redis."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    if request.param == "embedded":
        yield "embedded"
        return
    name = f"plab_notebook_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL unreachable for the notebook test: {exc}")
    monkeypatch.setenv("DATABASE_URL", make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    try:
        yield "services"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_the_notebook_runs_top_to_bottom_and_prints_real_figures(kernel_env: str) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]  # nbformat ships no types
    client = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    out = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert ("PostgreSQL" if kernel_env == "services" else "SQLite") in out.splitlines()[0]
    assert ("Redis" if kernel_env == "services" else "fakeredis") in out.splitlines()[1]
    assert "assessments → Assessment (ONETOMANY)" in out
    assert "user → User (MANYTOONE)" in out
    lazy = re.search(r"N\+1:\s+(\d+) users, (\d+) scores, (\d+) queries", out)
    eager = re.search(r"eager:\s+(\d+) users, (\d+) scores, (\d+) queries", out)
    assert lazy is not None, out
    assert eager is not None, out
    users = int(lazy.group(1))
    assert users == 200
    assert int(lazy.group(3)) == users + 1, "one query for the users, one per user"
    assert int(eager.group(3)) <= 3, "selectinload: the users, then their scores in IN batches"
    assert lazy.group(2) == eager.group(2) == "1000", "both ways load the same scores"
    detector = re.findall(r"^(.+?)\s+(\d+) statements .*?(⚠️ N\+1: User.scores ×200|✅ no N\+1)$", out, re.M)
    assert [(label.strip(), int(n), flag.startswith("⚠️")) for label, n, flag in detector] == [
        ("lazy loading (awaitable_attrs)", 201, True),
        ("a query per user (loop)", 201, True),
        ("selectinload", 2, False),
        ("joinedload", 1, False),
    ], "Lab 3's strategies and its detector on the same 200 users"
    pooled = re.search(r"pooled: 60 requests in \d+ ms, bound 150 ms \(([\d.]+)x\), 4 connections opened", out)
    assert pooled is not None, out
    assert "events before: 1200, after: 1201" in out, "the failed write's event rolled back with its score"
    assert "publisher: 501 events in 6 batches" in out, "the course's publisher drained the backlog (100 a batch)"
    reads = re.findall(r"^(first read|second read|third read|after invalidating)\s+(MISS|HIT) ", out, re.M)
    assert reads == [
        ("first read", "MISS"),
        ("second read", "HIT"),
        ("third read", "HIT"),
        ("after invalidating", "MISS"),
    ], "Lab 4's read-through cache, invalidated like an update would"
    assert "hits 2, misses 2, H = 0.50" in out
    assert "plan: served" in out
    assert "passes: True" in out
