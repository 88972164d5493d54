"""What binding a link to its sandbox costs, now that the sandbox directory outlives the process.

Per backend pair, in one process (``A``) and then in a second one on the same store (``B``):

* a link this process serves: found in memory, no round trip;
* the directory's round trip alone: a link it knows (found, marked opened) and one it does not
  (a guessed or expired link), against a bare ``SELECT 1`` on the same pool for scale;
* writing a new link into the directory (``record``, once per new sandbox);
* a link served by no process yet (after a restart, or on another process): the directory's
  lookup, attaching the schema or file, the migration check and the takeover of its Redis lease.

Run from the repository root: ``python -m bench.durable_bind [--links 30] [--repeat 200]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from bench._common import PG_URL, REDIS_URL, backend_kinds, print_table
from source import Backends, Settings
from source.platform.directory import token_hash


def timed_ms(action: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def row(what: str, samples: list[float]) -> list[str]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return [what, f"{statistics.median(samples):.3f}", f"{p95:.3f}", str(len(samples))]


def measure(kind: str, links: int, repeat: int) -> list[list[str]]:
    data_dir = tempfile.mkdtemp(prefix="bench-durable-")
    settings = Settings(data_dir=data_dir) if kind == "embedded" else Settings(database_url=PG_URL, redis_url=REDIS_URL)
    a = Backends.build(settings)
    assert a.durable is not None, "the directory was set up"
    directory = a.durable.directory
    boxes, tokens, record = [], [], []
    for _ in range(links):
        box = a.open_sandbox()
        started = time.perf_counter()
        tokens.append(a.sandboxes.issue(box))  # the directory's record is the only extra work here
        record.append((time.perf_counter() - started) * 1000)
        boxes.append(box)
    known, unknown = token_hash(tokens[0]), token_hash("nobody-holds-this-link")
    rows = [
        row("find: a link served here (memory)", timed_ms(lambda: a.sandboxes.find(tokens[0]), repeat)),
        row(
            "directory round trip: a known link",
            timed_ms(lambda: a.runtime.run(directory.find(known, a.sandboxes.idle_s)), repeat),
        ),
        row(
            "directory round trip: an unknown link",
            timed_ms(lambda: a.runtime.run(directory.find(unknown, a.sandboxes.idle_s)), repeat),
        ),
    ]
    if a.shared_engine is not None:
        engine = a.shared_engine

        async def select_one() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        rows.append(row("for scale: SELECT 1 on the same pool", timed_ms(lambda: a.runtime.run(select_one()), repeat)))
    rows.append(row("issue a new link (records it in the directory)", record))
    a.leave()
    a.close()
    a.runtime.stop()

    b = Backends.build(settings)  # a restarted process, or another one on the same store
    resume = []
    for token in tokens:
        started = time.perf_counter()
        found, why = b.sandboxes.find(token)
        resume.append((time.perf_counter() - started) * 1000)
        assert found is not None, why
    rows.append(row("find: a link no process serves (resume here)", resume))
    b.release_all()
    b.close()
    b.runtime.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    for kind in backend_kinds():
        print(f"\n{kind}: milliseconds")
        print_table(["", "median", "p95", "N"], measure(kind, args.links, args.repeat))


if __name__ == "__main__":
    main()
