"""What the instructor's live dashboard costs: server CPU and bytes per refresh at 30 and 100 members, and Redis memory.

A class is filled the way learners fill it, through the same scripts their clicks run
(``source/learning/classroom/feed.py``): each member joins, opens a few pages, answers the
multiple-choice questions of every lab (about a quarter wrongly, one in ten after *Show me*) and
records runs of every lab with realistic values (Lab 2: 3 runs, Lab 3: 2, Lab 4: 2, Lab 5: 1,
Create: 1). The members are stand-ins for sandboxes (an id and the shared Redis), so a class of
100 takes a second to fill, and the app's server is not busy with them while it is measured.

Then one instructor, over the websocket (``bench/_streamlit_ws.py``: the BackMsg a browser sends),
opens the Instructor page, types the passcode, and asks the dashboard's fragment to redraw itself
``--refreshes`` times, as the browser's ``run_every`` timer does: the rerun is scoped to the
fragment, with the widget values the page holds. Per refresh: the server process's CPU time
(``psutil``, user + system, over all the refreshes divided by their number), the bytes the server
sent (every ForwardMsg frame, as received: Streamlit replaces a large message the browser already
holds by a reference to it) and the time to the fragment's ``script_finished``. Two cases:

* *quiet*: nothing changed between two refreshes (the class's version has not moved: the
  dashboard redraws from the snapshot it kept, after one ``GET``);
* *active*: one member answered a question just before each refresh (the version moved: the
  dashboard reads the class again, two pipelined round trips).

Both in the normal view (display names, CSV buttons) and in projector mode (``?board=<code>``:
anonymous labels, large type), with the Lab 2 plot (the most points: 3 runs per member, two series)
on screen. Last, what the class costs in Redis: ``MEMORY USAGE`` of every key of the class (and
its members' seat keys), in total and per member.

The class lives in Redis, so this needs a real Redis the benchmark can fill (the app's embedded
fakeredis is inside the app's process): it runs on PostgreSQL + Redis (``TEST_DATABASE_URL``,
``TEST_REDIS_URL``).

Run from the repository root: ``python -m bench.class_dashboard [--members 30,100] [--refreshes 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psutil
from redis.asyncio import Redis
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

from bench._common import REDIS_URL, backend_env, print_table, streamlit_process
from bench._streamlit_ws import FINISHED, Session
from source.course import COURSE
from source.learning.classroom import classes, feed, keys, membership
from source.learning.classroom.keys import ClassKeys
from source.learning.classroom.store import ClassStore
from source.learning.questions import MultipleChoice

PASSCODE = "bench-passcode-0"
TIMEOUT_S = 60.0
BOARD_LAB = "lab2"


# -- filling a class ---------------------------------------------------------------------------
@dataclass
class _Host:
    redis: Any


@dataclass
class Member:
    """What a hook needs of a sandbox: its id, the shared Redis, and a place for its remembered seat."""

    id: str
    host: _Host
    services: dict[str, Any] = field(default_factory=dict)

    def service(self, key: str, make: Any, stop: Any = None) -> Any:
        return self.services.setdefault(key, make(self))


def _lab_runs(rng: random.Random) -> dict[str, list[dict[str, tuple[float, str]]]]:
    """Runs of every lab with the values each lab records (``source/labs/*/record.py``), plausibly filled."""
    runs: dict[str, list[dict[str, tuple[float, str]]]] = {"lab2": [], "lab3": [], "lab4": [], "lab5": [], "create": []}
    for _ in range(3):
        k, c, d = 100, rng.choice([2, 5, 10]), 20
        bound = math.ceil(k / c) * d
        wall = bound * rng.uniform(1.02, 1.4)
        runs["lab2"].append(
            {
                "requests": (k, "requests"),
                "connections": (c, "connections"),
                "hold_ms": (d, "ms"),
                "wall_ms": (wall, "ms"),
                "bound_ms": (bound, "ms"),
                "completed": (k, "requests"),
                "timeouts": (0, "requests"),
                "throughput_rps": (k / wall * 1000, "req/s"),
                "connections_opened": (c, "connections"),
                "nullpool_wall_ms": (wall * 1.3, "ms"),
                "nullpool_connections_opened": (k, "connections"),
            }
        )
    for users in (rng.choice([100, 200, 500]), 1000):
        values: dict[str, tuple[float, str]] = {"users": (users, "users")}
        for key, queries, per_user_ms in (("lazy", users + 1, 0.4), ("per_user", users + 1, 0.35)):
            values[f"{key}_queries"] = (queries, "statements")
            values[f"{key}_ms"] = (users * per_user_ms * rng.uniform(0.8, 1.3), "ms")
        for key, queries in (("selectin", 2), ("joined", 1)):
            values[f"{key}_queries"] = (queries, "statements")
            values[f"{key}_ms"] = (users * 0.03 * rng.uniform(0.8, 1.3), "ms")
        values["eager_queries"], values["eager_ms"] = values["selectin_queries"], values["selectin_ms"]
        runs["lab3"].append(values)
    for _ in range(2):
        reads, hits = 20, rng.randint(5, 19)
        runs["lab4"].append(
            {
                "reads": (reads, "reads"),
                "hits": (hits, "reads"),
                "misses": (reads - hits, "reads"),
                "errors": (0, "reads"),
                "bypassed": (0, "reads"),
                "cache_ms": (rng.uniform(0.2, 0.6), "ms"),
                "db_ms": (rng.uniform(2, 6), "ms"),
                "avg_ms": (rng.uniform(0.8, 3), "ms"),
            }
        )
    runs["lab5"].append(
        {"published": (500, "events"), "publish_ms": (rng.uniform(40, 200), "ms"), "batches": (2, "batches")}
    )
    runs["create"].append(
        {
            "events_written": (1000, "events"),
            "insert_ms": (rng.uniform(80, 300), "ms"),
            "missing": (rng.choice([0, 0, 1, 2]), "findings"),
            "claim_ms": (rng.uniform(1, 5), "ms"),
        }
    )
    return runs


async def fill(client: Redis, code: str, members: int) -> list[Member]:
    """``members`` learners join ``code`` and do a class's worth of work each, through the hooks' scripts."""
    questions = [q for lab in COURSE.labs for q in COURSE.questions_for(lab, []) if isinstance(q, MultipleChoice)]
    pages = [lab.title for lab in COURSE.labs.values()]
    crowd = []
    for n in range(members):
        rng = random.Random(n)  # noqa: S311 - made-up data
        member = Member(f"bench{uuid.uuid4().hex[:8]}", _Host(client))
        await membership.join(member, code, f"Learner{n:03d}")  # type: ignore[arg-type]
        for page in rng.sample(pages, 3):
            await feed.visited(member, page, next(lab.id for lab in COURSE.labs.values() if lab.title == page))  # type: ignore[arg-type]
        for q in questions:
            if rng.random() < 0.1:
                await feed.answered(member, q.id, q.lab, "shown")  # type: ignore[arg-type]
            if rng.random() < 0.25:
                wrong = rng.choice([o for o in q.options if not o.correct])
                await feed.answered(member, q.id, q.lab, "wrong", wrong.id)  # type: ignore[arg-type]
            await feed.answered(member, q.id, q.lab, "right")  # type: ignore[arg-type]
        for lab, runs in _lab_runs(rng).items():
            for i, values in enumerate(runs):
                await feed.measured(member, lab, f"{n}-{lab}-{i}", values)  # type: ignore[arg-type]
        crowd.append(member)
    return crowd


async def redis_memory(client: Redis, code: str, crowd: list[Member]) -> tuple[int, int]:
    """Bytes (``MEMORY USAGE … SAMPLES 0``) and count of every key of the class and of its members' seats."""
    names = [k async for k in client.scan_iter(match=ClassKeys(code).pattern, count=1000)]
    names += [keys.seat(m.id) for m in crowd]
    used = [await client.memory_usage(name, samples=0) for name in names]
    return sum(u or 0 for u in used), len(names)


# -- the instructor's websocket ----------------------------------------------------------------
class CountingSession(Session):
    """A :class:`Session` that also counts the bytes the server sent."""

    received = 0

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    self.received += len(raw)
                    self._handle(ForwardMsg.FromString(raw))
        except Exception as exc:  # noqa: BLE001 - recorded; the next refresh reports it
            self.closed = f"{type(exc).__name__}: {exc}"
        else:
            self.closed = "the server closed the websocket"
        self.finished.set()


@dataclass
class Cost:
    cpu_ms: float
    kilobytes: float
    p50_ms: float


async def open_board(url: str, code: str, projector: bool) -> CountingSession:
    """The Instructor page, unlocked, showing ``code``'s dashboard with the Lab 2 plot."""
    session = CountingSession(url, "instructor", TIMEOUT_S)
    await session.open(f"board={code}" if projector else "")
    run = await session.click("ins_passcode_submit", {"ins_passcode": PASSCODE})
    if run.status not in FINISHED or "ins_board_lab" not in session.widgets:
        raise SystemExit(f"the dashboard did not open (status {run.status}, errors {run.errors()[:1]})")
    radio = session.widgets["ins_board_lab"]  # the normal view opens on the newest class: the one just started
    session.values[radio.id] = WidgetState(id=radio.id, string_value=COURSE.labs[BOARD_LAB].title)
    await session.rerun(list(session.values.values()))
    return session


async def refreshes(session: CountingSession, server: psutil.Process, count: int, touch: Any) -> Cost:
    """``count`` refreshes of the dashboard's fragment; ``touch()`` (a learner's write) before each, if given."""
    fragment = session.widgets["ins_board_lab"].fragment_id
    cpu, sent, elapsed = 0.0, 0, []
    for i in range(count):
        if touch is not None:
            await touch(i)
        before, received = server.cpu_times(), session.received
        started = time.perf_counter()
        run = await session.rerun(list(session.values.values()), fragment)
        elapsed.append((time.perf_counter() - started) * 1000)
        after = server.cpu_times()
        if run.status not in FINISHED or run.exceptions or run.errors():
            raise SystemExit(f"a refresh failed: {run.status} {run.exceptions[:1]} {run.errors()[:1]}")
        cpu += (after.user + after.system) - (before.user + before.system)
        sent += session.received - received
    return Cost(cpu * 1000 / count, sent / count / 1024, statistics.median(elapsed))


async def measure(url: str, server: psutil.Process, sizes: list[int], count: int) -> tuple[list[list[Any]], list[Any]]:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    store = ClassStore(client)
    rows: list[list[Any]] = []
    memory: list[Any] = []
    try:
        for members in sizes:
            info = await classes.start_class(store, f"Bench {members}", 1, max(members, 2))
            try:
                started = time.perf_counter()
                crowd = await fill(client, info.code, members)
                filled_s = time.perf_counter() - started
                used, names = await redis_memory(client, info.code, crowd)
                memory.append(
                    [members, names, f"{used / 1024:,.0f} KB", f"{used / members / 1024:,.1f} KB", f"{filled_s:.1f} s"]
                )
                for projector in (False, True):
                    session = await open_board(url, info.code, projector)
                    try:
                        await refreshes(session, server, 3, None)  # warm: caches, the browser's message cache

                        async def touch(i: int, crowd: list[Member] = crowd) -> None:
                            member = crowd[i % len(crowd)]
                            await feed.answered(member, "lab1_rel_type", "lab1", "wrong", f"bench{i % 3}")  # type: ignore[arg-type]

                        for case, poke in (("quiet", None), ("active", touch)):
                            cost = await refreshes(session, server, count, poke)
                            view = "projector" if projector else "normal"
                            rows.append(
                                [
                                    members,
                                    view,
                                    case,
                                    f"{cost.cpu_ms:.1f} ms",
                                    f"{cost.kilobytes:,.1f} KB",
                                    f"{cost.p50_ms:.0f} ms",
                                ]
                            )
                            print(f"  {members} members, {view}, {case}: {rows[-1][3:]}", file=sys.stderr)
                    finally:
                        await session.close()
            finally:
                await classes.end_class(store, info.code)
    finally:
        await client.aclose()
    return rows, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="30,100", help="comma-separated class sizes (default 30,100)")
    parser.add_argument("--refreshes", type=int, default=30, help="refreshes measured per case (default 30)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.members.split(",")]
    env = {**backend_env("services"), "PLAB_INSTRUCTOR_PASSCODE": PASSCODE}
    with streamlit_process(env) as (url, _, _, process):
        server = psutil.Process(process.pid)
        with contextlib.suppress(KeyboardInterrupt):
            rows, memory = asyncio.run(measure(url, server, sizes, args.refreshes))
    print(f"\nThe dashboard's refresh (its fragment, Lab 2 plotted) on PostgreSQL + Redis, {args.refreshes} each")
    print("(quiet: nothing changed since the last refresh; active: one learner answered before each)")
    print_table(["members", "view", "case", "server CPU per refresh", "bytes sent per refresh", "p50"], rows)
    print("\nWhat the class costs in Redis (MEMORY USAGE of every key of the class and its seats)")
    print_table(["members", "keys", "total", "per member", "filled in"], memory)


if __name__ == "__main__":
    main()
