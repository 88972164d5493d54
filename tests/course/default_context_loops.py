"""The default context's pool, one per event loop, as a script and as a notebook use it.

Run as a script (a fresh interpreter, no Streamlit, no sandbox), with DATABASE_URL / REDIS_URL
or the embedded defaults. ``runs``: three successive ``asyncio.run`` calls, each a new loop
that writes, publishes and reads through the course's names; before each, it looks for any
connection (PostgreSQL) or connection thread (SQLite) the previous loop left behind. ``one-loop``:
the same work three times on one loop, as Jupyter's single loop runs cells. It prints one JSON
line with what it saw, for the test to check.
"""

import asyncio
import json
import sys
import threading
import time
from typing import Any

import asyncpg
from sqlalchemy import event, func, select

from source import AIRScore, create_sample_users, current_sandbox, event_publisher, get_session, initialize_db
from source.labs.outbox.writes import calculate_many_scores

#: How many times (every 20 ms) to look again for what a closed loop left, before counting it.
LOOKS = 250
#: Connections each loop's engine opened, by loop.
opened: dict[int, int] = {}


def _count_connections() -> None:
    """Count the connections the current loop's engine opens (its pool reuses them)."""
    engine = current_sandbox().engine.sync_engine
    key = id(asyncio.get_running_loop())
    if key not in opened:
        opened[key] = 0
        event.listen(engine, "connect", lambda *_: opened.__setitem__(key, opened[key] + 1))


async def leftovers() -> int:
    """What an earlier loop left open: PostgreSQL connections to this database, or SQLite connection threads."""
    box = current_sandbox()
    if box.dialect != "postgresql":
        for _ in range(LOOKS):  # a closed connection's thread ends a moment after the close
            if not (alive := _sqlite_threads()):
                break
            await asyncio.sleep(0.02)
        return alive
    url = box.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(url)
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    try:
        for _ in range(LOOKS):  # a closed connection's server process ends a moment after the close
            if not (alive := int(await conn.fetchval(query))):
                break
            await asyncio.sleep(0.02)
        return alive
    finally:
        await conn.close()


def _sqlite_threads() -> int:
    return sum(1 for t in threading.enumerate() if "_connection_worker_thread" in t.name)


async def work(round_: int) -> dict[str, Any]:
    """What a notebook cell does: migrate, write scores and their events, publish them, read 100 times."""
    seen: dict[str, Any] = {"leftovers": await leftovers()}
    _count_connections()
    await initialize_db()
    users = await create_sample_users()
    await calculate_many_scores(users[0][1], 200)
    stats = await event_publisher(interval_seconds=0, max_events=100, stream=False)
    started = time.perf_counter()
    for _ in range(100):
        async with get_session() as session:
            scores = await session.scalar(select(func.count()).select_from(AIRScore))
    seen.update(
        round=round_,
        published=stats.published,
        scores=int(scores or 0),
        reads_ms=(time.perf_counter() - started) * 1000,
        opened=opened[id(asyncio.get_running_loop())],
        backend=current_sandbox().backend,
    )
    return seen


async def one_loop() -> list[dict[str, Any]]:
    return [await work(n) for n in range(3)]


if __name__ == "__main__":
    if sys.argv[1] == "runs":
        found = [asyncio.run(work(n)) for n in range(3)]
        found.append({"leftovers": asyncio.run(leftovers())})
    else:
        found = asyncio.run(one_loop())
    print(json.dumps(found))
