"""What a passer-by costs: anonymous visits over the websocket take no seat, and what they cost the server.

A link shared in a class is opened by link previews, bots and learners who glance and close the tab.
Each visit here is one websocket session (``bench/_streamlit_ws.py``) that opens one page, waits for
the run to finish and closes, as a tab opened and closed does; the visits go round every page of the
app. The app runs on its own temporary folder, its own PostgreSQL database (``--backend services``),
its own Redis and a cap of ``--seats`` sandboxes (``PLAB_MAX_SANDBOXES``).

Reported: the visits, how many sandboxes they made (PostgreSQL schemas ``plab_…`` in the app's own
database, SQLite sandbox folders in its own temporary folder: both should be 0), keys under the
visitors' Redis prefix (0), the server's CPU per visit and its RSS before and after the visits, then
whether a learner's first action (Lab 1's *Create user*) still gets a seat, and what that seat cost.

Run from the repository root:
``python -m bench.passers_by [--visits 60] [--seats 40] [--backend embedded|services] [--at-once 6]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import redis

from bench._common import PG_URL, ROOT, free_port, print_table, streamlit_process
from bench._streamlit_ws import FINISHED, Session

#: Every page's address (the home page is the app's root).
PAGES = ["", "join", "data-models", "pooling", "repository", "caching", "outbox", "create", "instructor"]
#: The longest one visit may take (a loaded machine; the visits are checked, not timed).
VISIT_TIMEOUT_S = 120.0
SANDBOX_FOLDER_PREFIX = "persistence-lab-"  # source.platform.orphans.SQLITE_FOLDER_PREFIX
VISITOR_PREFIX = "plab:visitor:"
SEATED_TEXT = "You have a seat"
VISITOR_TEXT = "your first action takes one"


@dataclass
class Services:
    """The app's own backends for one measurement: a temporary folder, and for ``services`` a database and a Redis."""

    tmp: Path
    database_url: str | None = None
    redis_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, seats: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(TMPDIR=str(self.tmp), PLAB_MAX_SANDBOXES=str(seats), **self.extra)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env


@contextlib.contextmanager
def own_services(backend: str) -> Iterator[Services]:
    """A private temporary folder; on ``services`` also a new PostgreSQL database and a private redis-server."""
    tmp = Path(tempfile.mkdtemp(prefix="plab-passers-by-"))
    if backend != "services":
        try:
            yield Services(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    name = f"plab_passers_{uuid.uuid4().hex[:8]}"
    admin = PG_URL.replace("+asyncpg", "")
    asyncio.run(_sql(admin, f'CREATE DATABASE "{name}"'))
    port = free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: --backend services needs a private instance")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("the private redis-server did not start")
            time.sleep(0.05)
        database = PG_URL.rsplit("/", 1)[0] + f"/{name}"
        yield Services(tmp, database, f"redis://127.0.0.1:{port}/0")
    finally:
        server.terminate()
        server.wait(timeout=10)
        asyncio.run(_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(tmp, ignore_errors=True)


async def _sql(url: str, statement: str) -> list[Any]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return list(await conn.fetch(statement))
    finally:
        await conn.close()


@dataclass
class Traces:
    """What the app has made so far: sandboxes (schemas or folders) and keys under the visitors' prefix."""

    sandboxes: int
    visitor_keys: int


def traces(services: Services) -> Traces:
    if services.database_url:
        rows = asyncio.run(
            _sql(
                services.database_url.replace("+asyncpg", ""),
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'plab\\_%'",
            )
        )
        made = len(rows)
    else:
        made = len(list(services.tmp.rglob(f"{SANDBOX_FOLDER_PREFIX}*")))
    keys = 0
    if services.redis_url:
        keys = sum(1 for _ in redis.Redis.from_url(services.redis_url).scan_iter(match=f"{VISITOR_PREFIX}*"))
    return Traces(made, keys)


async def visit(url: str, page: str) -> list[str]:
    """One passer-by: open ``page``, wait for its run, close. Returns what went wrong (nothing, normally)."""
    session = Session(url, page, VISIT_TIMEOUT_S)
    try:
        run = await session.open()
    finally:
        await session.close()
    wrong = [f"{page or 'home'}: {e[:160]}" for e in run.exceptions + run.errors()]
    if run.status not in FINISHED:
        wrong.append(f"{page or 'home'}: the run ended with status {run.status}")
    if "lab=" in session.query:
        wrong.append(f"{page or 'home'}: the visit was given a sandbox token")
    if not any(VISITOR_TEXT in text for text in run.texts):
        wrong.append(f"{page or 'home'}: the sidebar does not say the visitor is looking around")
    return wrong


async def visits(url: str, count: int, at_once: int) -> list[str]:
    """``count`` passers-by, round every page, ``at_once`` at a time."""
    gate = asyncio.Semaphore(at_once)

    async def one(n: int) -> list[str]:
        async with gate:
            return await visit(url, PAGES[n % len(PAGES)])

    return [w for wrong in await asyncio.gather(*(one(n) for n in range(count))) for w in wrong]


async def first_action(url: str) -> tuple[bool, str]:
    """A learner opens Lab 1 and creates a user: does the click take a seat and succeed?"""
    session = Session(url, "data-models", VISIT_TIMEOUT_S)
    try:
        await session.open()
        email = f"first.{uuid.uuid4().hex[:6]}@example.com"
        run = await session.click("lab1_create", {"lab1_email": email, "lab1_name": "First"})
    finally:
        await session.close()
    created = any(f"Created `{email}`" in body for body in run.successes())
    seated = "lab=" in session.query and any(SEATED_TEXT in text for text in run.texts)
    said = "; ".join(body[:120] for _, body in run.alerts) or "no message"
    return created and seated, said


@dataclass
class Result:
    visits: int
    wrong: list[str]
    before: Traces
    after: Traces
    seated: bool
    said: str
    after_seat: Traces
    cpu_ms_per_visit: float
    rss_before_mb: float
    rss_after_mb: float
    rss_seat_mb: float


def rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / 2**20


def measure(backend: str, count: int, seats: int, at_once: int, root: Path = ROOT) -> Result:
    """Start the app (``root``'s checkout) on its own services, send ``count`` passers-by, then one learner's
    first action."""
    with own_services(backend) as services, streamlit_process(services.env(seats), root, timeout=120) as running:
        url, _, _, process = running
        server = psutil.Process(process.pid)
        # One visit to every page first: the process builds its backends and the visitors' sandbox, and imports
        # every page's modules, once, as for its first viewers.
        warm = asyncio.run(visits(url, len(PAGES), 1)) if root == ROOT else []
        before, rss_before, cpu_before = traces(services), rss_mb(server), server.cpu_times()
        wrong = warm + asyncio.run(visits(url, count, at_once))
        cpu_after = server.cpu_times()
        after, rss_after = traces(services), rss_mb(server)
        seated, said = asyncio.run(first_action(url))
        after_seat, rss_seat = traces(services), rss_mb(server)
    busy = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return Result(
        count, wrong, before, after, seated, said, after_seat, busy * 1000 / count, rss_before, rss_after, rss_seat
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=60)
    parser.add_argument("--seats", type=int, default=40, help="PLAB_MAX_SANDBOXES")
    parser.add_argument("--backend", choices=["embedded", "services"], default="embedded")
    parser.add_argument("--at-once", type=int, default=6, help="visits in flight at the same time")
    parser.add_argument("--reference", type=Path, help="another checkout to measure the same way (no warm-up)")
    args = parser.parse_args()
    root = args.reference or ROOT
    r = measure(args.backend, args.visits, args.seats, args.at_once, root)
    for line in r.wrong[:10]:
        print(f"  {line}", file=sys.stderr)
    print(f"\n{r.visits} anonymous visits over the websocket on {args.backend}, every page in turn, {args.seats} seats")
    print(f"(app: {'this checkout' if root == ROOT else root})")
    print_table(
        ["what", "value"],
        [
            ["visits that went wrong", len(r.wrong)],
            ["sandboxes made by the visits (schemas or SQLite folders)", r.after.sandboxes - r.before.sandboxes],
            ["keys under the visitors' Redis prefix", r.after.visitor_keys if args.backend == "services" else "–"],
            ["server CPU per visit", f"{r.cpu_ms_per_visit:.0f} ms"],
            ["server RSS before / after the visits", f"{r.rss_before_mb:,.0f} / {r.rss_after_mb:,.0f} MB"],
            ["per visit (RSS growth / visits)", f"{(r.rss_after_mb - r.rss_before_mb) * 1024 / r.visits:,.0f} kB"],
            ["the next learner's first action", "took a seat" if r.seated else f"refused: {r.said[:90]}"],
            ["sandboxes after it", r.after_seat.sandboxes],
            ["server RSS after it", f"{r.rss_seat_mb:,.0f} MB"],
        ],
    )


if __name__ == "__main__":
    main()
