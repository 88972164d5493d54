"""What one learner's sandbox costs the shared process: memory, threads and file descriptors.

Every viewer of a hosted lab lives in one Python process, so the per-learner cost decides
how many learners fit. This opens N sandboxes (default 100) on one set of backends, measures
the growth of the process's resident memory (after garbage collection) and divides by N;
the target is at most 2 MB per sandbox. Opening is timed (wall clock, the process's CPU, and the SQL
statements every engine sent), then each sandbox runs one ``SELECT 1`` before the memory is read,
as its learner's first click would: a new SQLite sandbox is a copy that nobody has opened yet.
It then releases them all and checks that nothing is left behind: no PostgreSQL schema, no
temporary directory. A second round of N checks that the memory of released sandboxes is
reused rather than leaked.

Each backend pair is measured in a fresh interpreter, so one does not warm up the other.
Run from the repository root: ``python -m bench.sandbox_memory [--count 100]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time
from typing import Any

from bench._common import PG_URL, REDIS_URL, backend_kinds, leftover_schemas, measure_in_child, print_table

TARGET_MB = 2.0
MB = 1024 * 1024


def _rss() -> int:
    import psutil

    gc.collect()
    return int(psutil.Process().memory_info().rss)


def _fds() -> int:
    import psutil

    return int(psutil.Process().num_fds())


class _Statements:
    """Counts the SQL statements every engine in the process sends, from its making until :meth:`stop`."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1

    def stop(self) -> int:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.remove(Engine, "before_cursor_execute", self._seen)
        return self.count


async def _first_query(sandbox: Any) -> None:
    from sqlalchemy import text

    async with sandbox.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def measure(kind: str, count: int) -> dict[str, Any]:
    """Runs inside the child interpreter: one backend pair, N sandboxes, two rounds."""
    from source import Backends, Settings

    settings = Settings() if kind == "embedded" else Settings(database_url=PG_URL, redis_url=REDIS_URL)
    backends = Backends.build(settings)
    if kind == "services" and (backends.status.database_note or backends.status.redis_note):
        raise RuntimeError(f"services unreachable: {backends.status.database_note} {backends.status.redis_note}")
    try:
        # Warm-up: the first sandboxes pay for imports, Alembic's script directory, compiled SQL.
        for sandbox in [backends.open_sandbox() for _ in range(5)]:
            backends.release(sandbox)
        rss0, threads0, fds0 = _rss(), threading.active_count(), _fds()

        statements = _Statements()
        started, cpu_started = time.perf_counter(), time.process_time()
        sandboxes = [backends.open_sandbox() for _ in range(count)]
        open_seconds, open_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        open_statements = statements.stop()
        # A new SQLite sandbox is a copy of a template, opened by nobody yet: its learner's first click
        # opens its connection (and aiosqlite's thread). That is part of what a sandbox costs.
        for sandbox in sandboxes:
            sandbox.run(_first_query(sandbox))
        rss1, threads1, fds1 = _rss(), threading.active_count(), _fds()

        names = [s.schema for s in sandboxes if s.schema]
        directories = [s.directory for s in sandboxes if s.directory is not None]
        started = time.perf_counter()
        for sandbox in sandboxes:
            backends.release(sandbox)
        release_seconds = time.perf_counter() - started
        del sandboxes
        rss2, threads2, fds2 = _rss(), threading.active_count(), _fds()

        # Round two: memory freed by round one should be reused, not added to.
        again = [backends.open_sandbox() for _ in range(count)]
        names += [s.schema for s in again if s.schema]
        directories += [s.directory for s in again if s.directory is not None]
        for sandbox in again:
            backends.release(sandbox)
        del again
        rss3 = _rss()

        left_schemas = leftover_schemas([n for n in names if n])
        left_dirs = [str(d) for d in directories if d.exists()]
        return {
            "kind": kind,
            "count": count,
            "rss_per_sandbox_mb": (rss1 - rss0) / count / MB,
            "threads_per_sandbox": (threads1 - threads0) / count,
            "fds_per_sandbox": (fds1 - fds0) / count,
            "open_ms": open_seconds / count * 1000,
            "open_cpu_ms": open_cpu / count * 1000,
            "open_statements": open_statements / count,
            "release_ms": release_seconds / count * 1000,
            "rss_kept_after_release_mb": (rss2 - rss0) / MB,
            "rss_round_two_growth_mb": (rss3 - rss2) / MB,
            "threads_after_release": threads2 - threads0,
            "fds_after_release": fds2 - fds0,
            "still_open": backends.open_sandboxes,
            "left_schemas": left_schemas,
            "left_dirs": left_dirs,
        }
    finally:
        backends.close()
        backends.runtime.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="sandboxes per round (default 100)")
    parser.add_argument("--child", choices=["embedded", "services"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.count)))
        return

    results = []
    for kind in backend_kinds():
        results.append(measure_in_child("bench.sandbox_memory", kind, "--count", str(args.count), timeout=900))

    rows = []
    for r in results:
        label = "PostgreSQL + Redis" if r["kind"] == "services" else "SQLite + fakeredis"
        left = len(r["left_schemas"]) + len(r["left_dirs"]) + r["still_open"]
        rows.append(
            [
                label,
                f"{r['rss_per_sandbox_mb']:.2f} MB",
                "ok" if r["rss_per_sandbox_mb"] <= TARGET_MB else f"OVER {TARGET_MB} MB",
                f"{r['threads_per_sandbox']:.2f}",
                f"{r['fds_per_sandbox']:.2f}",
                f"{r['open_ms']:.1f} ms",
                f"{r['open_cpu_ms']:.1f} ms",
                f"{r['open_statements']:.0f}",
                f"{r['release_ms']:.1f} ms",
                f"{r['rss_kept_after_release_mb']:+.1f} MB",
                f"{r['rss_round_two_growth_mb']:+.1f} MB",
                f"{r['threads_after_release']:+d}/{r['fds_after_release']:+d}",
                "none" if left == 0 else f"{left} LEFT",
            ]
        )
    n = results[0]["count"] if results else args.count
    print(f"\nPer-sandbox cost, {n} sandboxes open at once in one process (RSS after gc; target ≤ {TARGET_MB} MB)")
    print_table(
        [
            "backend",
            "RSS/sandbox",
            "target",
            "threads/sb",
            "fds/sb",
            "open",
            "open (CPU)",
            "SQL/open",
            "release",
            "RSS kept after release",
            f"2nd round of {n}",
            "threads/fds after",
            "leftovers",
        ],
        rows,
    )
    for r in results:
        for what in ("left_schemas", "left_dirs"):
            if r[what]:
                print(f"{r['kind']}: {what}: {r[what][:5]}{' …' if len(r[what]) > 5 else ''}")


if __name__ == "__main__":
    main()
