"""Lab 4's cache on real Redis: a cached hit against a bare GET + JSON parse, hit against miss on
SQLite and PostgreSQL, the strategies on one workload, and a 50-way stampede with and without
protection. Run: ``python -m bench.cache [--reads 5000]``.

``--frozen``: Lab 4's *Fetch user* clicked over the websocket (Streamlit's own protocol, as
``bench/classroom_ws.py`` speaks it) by two learners of one ``streamlit run app.py`` whose Redis
is a private ``redis-server`` on its own port (never the shared one), first answering, then
frozen with ``SIGSTOP``. Each round both learners click at the same moment. A sample runs from
sending the click until the server's ``script_finished`` for the run it started (the callback,
then the whole page: sidebar, counters, TTL bars, knowledge check, progress), and counts only if
that run showed the read's message. Reports p50/p95/max per learner and phase.
``--rounds N`` (default 20), ``--backend embedded|services``, ``--reference PATH`` (another
checkout, measured first in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from bench._common import (
    PG_URL,
    REDIS_URL,
    ROOT,
    _port_open,
    backend_env,
    free_port,
    percentile,
    print_table,
    streamlit_process,
)
from bench._streamlit_ws import FINISHED, Session
from source import Backends, Sandbox, Settings
from source.labs.caching import actions, stampede
from source.labs.caching.cache import user_key
from source.labs.caching.repository import CachedUserRepository
from source.labs.caching.sandbox_cache import cache_for
from source.labs.caching.strategies import parse_workload, run_strategy_lab
from source.platform.jobs import Progress
from source.platform.session import get_session

WORKLOAD = {"operations": 2000, "keys": 50, "read_share": 0.9, "skew": 1.0, "ttl_ms": 500, "seed": 7}


async def _time_each(op: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await op()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def hit_against_bare_get(reads: int) -> tuple[float, float]:
    """Median µs of a cached hit (GET + DTO parse + counting) and of a bare GET + json.loads."""
    uid = (await actions.add_samples()).ids[0]
    cache = cache_for_current()
    async with get_session() as session:
        repo = CachedUserRepository(session, cache.client, cache=cache)
        await repo.get_by_id_cached(uid)  # warm: the value is in Redis now
        key = cache.key(user_key(uid))

        async def bare() -> Any:
            return json.loads(await cache.client.get(key))

        hits: list[float] = []
        plain: list[float] = []
        for _ in range(10):  # interleaved rounds, so drift on a shared machine hits both alike
            hits += await _time_each(lambda: repo.get_by_id_cached(uid), reads // 10)
            plain += await _time_each(bare, reads // 10)
        assert repo.last is not None
        assert repo.last.outcome == "hit"
    return statistics.median(hits), statistics.median(plain)


def cache_for_current() -> Any:
    from source.platform.context import current_sandbox

    return cache_for(current_sandbox())


async def hit_and_miss(reads: int) -> tuple[float, float]:
    """Median ms of a hit and of a miss (key deleted first; only the read is timed)."""
    uid = (await actions.add_samples()).ids[0]
    cache = cache_for_current()
    misses, hits = [], []
    for _ in range(reads):
        await cache.invalidate(user_key(uid))
        misses.append((await actions.fetch_user(uid)).lookup.total_ms)
        hits.append((await actions.fetch_user(uid)).lookup.total_ms)
    return statistics.median(hits), statistics.median(misses)


def measure(kind: str, database_url: str | None, reads: int) -> dict[str, Any]:
    backends = Backends.build(Settings(database_url=database_url, redis_url=REDIS_URL))
    sandbox: Sandbox = backends.open_sandbox()
    try:
        out: dict[str, Any] = {"kind": kind}
        if database_url is None:
            out["hit_vs_bare"] = sandbox.run(hit_against_bare_get(reads), timeout=600)
        out["hit_miss"] = sandbox.run(hit_and_miss(max(50, reads // 20)), timeout=600)
        uid = sandbox.run(actions.add_samples()).ids[0]
        out["stampede"] = [sandbox.run(stampede.run_stampede(uid, 50, p), timeout=120) for p in (True, False)]
        out["strategies"] = sandbox.run(run_strategy_lab(parse_workload(**WORKLOAD), Progress()), timeout=300)
        return out
    finally:
        backends.close()
        backends.runtime.stop()


# -- Lab 4 under a frozen Redis, over the websocket --------------------------------------------------------
#: Lab 4's address, and the keys of the two buttons a learner clicks.
LAB4, SAMPLES, FETCH = "caching", "lab4_samples", "lab4_fetch_user"
CLICK_TIMEOUT_S = 60.0


@contextlib.contextmanager
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ``redis-server`` of our own on a free port, nothing saved: yields its URL and its process."""
    if shutil.which("redis-server") is None:
        raise SystemExit("--frozen needs redis-server (Debian: apt-get install redis-server)")
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _port_open(f"redis://127.0.0.1:{port}", port):
            if time.monotonic() > deadline:
                raise TimeoutError("the private redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", server
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.kill()
        server.wait(timeout=10)


async def _fetch(learner: Session) -> float:
    """One click on *Fetch user* and its seconds until the run finished; raises if it showed no read."""
    started = time.perf_counter()
    run = await learner.click(FETCH)
    elapsed = time.perf_counter() - started
    if run.status not in FINISHED or run.exceptions:
        raise RuntimeError(f"the run did not finish cleanly: {run.status}, {run.exceptions[:1]}")
    if not any(body.startswith("fetch user: **") for _, body in run.alerts):
        raise RuntimeError(f"no read message (alerts: {[body[:80] for _, body in run.alerts]})")
    return elapsed


async def frozen_clicks(url: str, redis: subprocess.Popen[bytes], rounds: int) -> dict[str, list[float]]:
    """Two learners on Lab 4: ``rounds`` rounds of simultaneous clicks with Redis answering, then frozen."""
    learners = [Session(url, LAB4, CLICK_TIMEOUT_S) for _ in range(2)]
    samples: dict[str, list[float]] = {}
    try:
        for learner in learners:
            await learner.open()
            await learner.click(SAMPLES)
            await _fetch(learner)  # warm: a miss, then the key is cached
        for phase in ("answering", "frozen"):
            if phase == "frozen":
                os.kill(redis.pid, signal.SIGSTOP)
            for _ in range(rounds):
                first, second = await asyncio.gather(*(_fetch(learner) for learner in learners))
                samples.setdefault(f"{phase} · learner 1", []).append(first)
                samples.setdefault(f"{phase} · learner 2", []).append(second)
    finally:
        os.kill(redis.pid, signal.SIGCONT)
        await asyncio.gather(*(learner.close() for learner in learners))
    return samples


def measure_frozen(kind: str, rounds: int, reference: Path | None) -> None:
    rows: list[list[Any]] = []
    for root in ([reference] if reference else []) + [ROOT]:
        with private_redis() as (redis_url, redis):
            env = {**backend_env(kind), "REDIS_URL": redis_url}
            with streamlit_process(env, root) as (url, _, _, _):
                samples = asyncio.run(frozen_clicks(url, redis, rounds))
        app = "this checkout" if root == ROOT else str(root)
        for name, seconds in samples.items():
            ms = [x * 1000 for x in seconds]
            rows.append(
                [app, name, len(ms), f"{percentile(ms, 50):,.0f}", f"{percentile(ms, 95):,.0f}", f"{max(ms):,.0f}"]
            )
    print(f"\nLab 4 · Fetch user over the websocket, Redis answering then frozen (SIGSTOP), {kind}")
    print(f"(two learners clicking together, {rounds} rounds per phase; ms from the click to the run's end)")
    print_table(["app", "phase · learner", "clicks", "p50", "p95", "max"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--frozen", action="store_true", help="Lab 4's clicks with the app's Redis frozen")
    parser.add_argument("--rounds", type=int, default=20, help="--frozen: rounds of clicks per phase")
    parser.add_argument("--backend", choices=["embedded", "services"], default="embedded")
    parser.add_argument("--reference", type=Path, help="--frozen: another checkout, measured first")
    args = parser.parse_args()
    if args.frozen:
        measure_frozen(args.backend, args.rounds, args.reference)
        return
    if not _port_open(REDIS_URL, 6379):
        raise SystemExit(f"Redis at {REDIS_URL} is unreachable: this benchmark needs a real Redis.")
    runs = [measure("SQLite + Redis", None, args.reads)]
    if _port_open(PG_URL, 5432):
        runs.append(measure("PostgreSQL + Redis", PG_URL, args.reads))
    hit_us, bare_us = runs[0]["hit_vs_bare"]
    print(f"\nCached hit vs bare GET + json.loads (median of {args.reads} each, interleaved)")
    print_table(
        ["cached hit (µs)", "bare GET + parse (µs)", "ratio (target ≤ 1.3)"],
        [[f"{hit_us:.0f}", f"{bare_us:.0f}", f"{hit_us / bare_us:.2f}"]],
    )
    print("\nHit vs miss (median ms, page path: repository read)")
    print_table(
        ["backend", "hit", "miss", "miss / hit"],
        [
            [
                r["kind"],
                f"{r['hit_miss'][0]:.3f}",
                f"{r['hit_miss'][1]:.3f}",
                f"{r['hit_miss'][1] / r['hit_miss'][0]:.1f}",
            ]
            for r in runs
        ],
    )
    print("\n50 concurrent cold reads of one user: database reads (SELECTs counted)")
    print_table(
        ["backend", "protected", "unprotected", "protected wall (ms)", "unprotected wall (ms)"],
        [
            [
                r["kind"],
                r["stampede"][0].db_reads,
                r["stampede"][1].db_reads,
                f"{r['stampede'][0].wall_ms:.0f}",
                f"{r['stampede'][1].wall_ms:.0f}",
            ]
            for r in runs
        ],
    )
    print(f"\nStrategies on one workload {WORKLOAD}")
    columns = ["strategy", "hit ratio", "DB reads", "DB writes", "read mean (ms)", "read p95 (ms)", "stale reads"]
    for r in runs:
        print(f"\n{r['kind']}")
        print_table(columns, [[row[c] for c in columns] for row in (x.row() for x in r["strategies"].results)])


if __name__ == "__main__":
    main()
