"""One outbox publisher as a process of its own, for the chaos test (``tests/test_lab5_chaos.py``).

It publishes the outbox of one PostgreSQL schema to one Redis, batch after batch, waiting on
its breaker when the broker is away, until SIGTERM; then it prints one JSON line with its
counters. ``--hang-after N``: after its N-th batch has been published and before it is marked,
it writes ``--marker`` and hangs (holding its claim), for the test to kill it there with SIGKILL.

    python tests/lab5_chaos_publisher.py DATABASE_URL SCHEMA REDIS_URL NAME [--hang-after N --marker PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import tempfile
import time
from pathlib import Path

from source import Backends, Sandbox, Settings
from source.labs.outbox.faults import Faults
from source.labs.outbox.options import PublisherOptions, publisher_options
from source.labs.outbox.publisher import OutboxPublisher

#: The chaos test's publisher: small batches (many of them), short timeouts, a small retry budget.
OPTIONS: PublisherOptions = publisher_options(
    max_events=25, max_attempts=3, backoff_base=0.05, backoff_cap=0.5, publish_timeout=1.0, lease_seconds=15
)
#: How long an idle publisher waits before it looks again (seconds).
IDLE_S = 0.02


class HangAfter(Faults):
    """After the N-th published batch, before its mark: say so in a file, then hang until killed."""

    def __init__(self, batches: int, marker: Path) -> None:
        super().__init__()
        self.left, self.marker = batches, marker

    def after_publish(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.marker.write_text("published, not marked")
            time.sleep(3600)  # the whole process hangs here, its claim held, until SIGKILL


async def publish(args: argparse.Namespace) -> dict[str, object]:
    settings = Settings(database_url=args.database_url, redis_url=args.redis_url)
    backends, engine = Backends.on_current_loop(settings, Path(tempfile.gettempdir()) / "unused.db")
    box = Sandbox(backends, "chaos", engine.execution_options(schema_translate_map={None: args.schema}))
    faults = HangAfter(args.hang_after, Path(args.marker)) if args.hang_after else Faults()
    publisher = OutboxPublisher(box, OPTIONS, faults=faults, name=args.name)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    while not stop.is_set():
        result = await publisher.publish_batch()
        if result.broker_wait is not None or result.held:
            await asyncio.sleep(max(publisher.breaker.wait_s(), IDLE_S))
        elif result.claimed == 0:
            await asyncio.sleep(IDLE_S)
    await engine.dispose()
    await backends.redis.aclose()
    s, breaker = publisher.stats, publisher.breaker
    return {
        "name": args.name,
        "published": s.published,
        "batches": s.batches,
        "broker_failures": s.broker_failures,
        "refused": s.refused,
        "dead_lettered": s.dead_lettered,
        "outages": breaker.outages,
        "unanswered": breaker.unanswered_total,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("database_url", "schema", "redis_url", "name"):
        parser.add_argument(name)
    parser.add_argument("--hang-after", type=int, default=0)
    parser.add_argument("--marker", default="")
    print(json.dumps(asyncio.run(publish(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
