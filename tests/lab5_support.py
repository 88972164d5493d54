"""Helpers for the Lab 5 tests: users, a backlog of events, stream contents, a private Redis server."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from source import DomainEvent, DomainEventRepository, create_sample_user, get_session
from source.domain.models import new_id
from source.labs.outbox.faults import SimulatedCrash
from source.labs.outbox.publish import STREAM
from source.labs.outbox.publisher import OutboxPublisher
from tests.conftest import unavailable
from tests.waiting import eventually


async def a_user(email: str = "alex.smith@innovateai.com") -> str:
    user = await create_sample_user(email, "Alex Smith")
    assert user is not None
    return user.id


async def backlog(events: int, aggregates: int, event_type: str = "score.calculated") -> list[str]:
    """``events`` pending events spread round-robin over ``aggregates`` aggregates; their ids, in order."""
    rows = [
        DomainEvent(
            id=new_id(),
            event_type=event_type,
            aggregate_type="AIRScore",
            aggregate_id=f"agg-{i % aggregates}",
            payload={"n": i},
        )
        for i in range(events)
    ]
    async with get_session() as session:
        session.add_all(rows)  # one flush: SQLAlchemy batches the INSERTs
        await session.commit()
    return [row.id for row in rows]


async def statuses() -> dict[str, int]:
    async with get_session() as session:
        return await DomainEventRepository(session).count_by_status()


async def count(*where: Any) -> int:
    async with get_session() as session:
        return int(await session.scalar(select(func.count()).select_from(DomainEvent).where(*where)) or 0)


async def stream_events(redis: Any) -> list[dict[str, Any]]:
    """Every message in the outbox stream, in the order Redis appended them."""
    entries = await redis.xrange(STREAM)
    return [json.loads(fields["message"]) for _, fields in entries]


def first_order_by_aggregate(messages: list[dict[str, Any]]) -> dict[str, list[int]]:
    """For each aggregate, the sequences of its events in the order they first arrived."""
    seen: set[str] = set()
    order: dict[str, list[int]] = {}
    for m in messages:
        if m["id"] not in seen:
            seen.add(m["id"])
            order.setdefault(m["aggregate_id"], []).append(m["sequence"])
    return order


class PrivateRedis:
    """A redis-server of our own on ``port`` (never the shared one): stopped, started, frozen and thawed at will.

    ``persistent``: an append-only file written on every command, so a restart keeps every key
    (without it, a restart loses them all, as a Redis without persistence does).
    """

    def __init__(self, port: int, folder: Path, *, persistent: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed: this test needs a private instance")
            raise AssertionError  # unreachable: unavailable() skips or fails
        self.port, self.folder, self.binary = port, folder, binary
        self.persistence = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def up(self) -> None:
        if self.proc is None:
            args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *self.persistence]
            self.proc = subprocess.Popen([*args, "--dir", str(self.folder)], stdout=subprocess.DEVNULL)
            _wait_port(self.port)

    def down(self) -> None:
        if self.proc is not None:
            self.thaw()
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: it accepts connections (the kernel does) and answers nothing until thawed."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: it runs what it was sent meanwhile, and answers."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def switch(self, up: bool) -> None:
        if up:
            self.up()
        else:
            self.down()


@contextmanager
def running_redis(port: int, *, persistent: bool = False) -> Iterator[PrivateRedis]:
    """A :class:`PrivateRedis`, started, and stopped (its folder removed) at the end."""
    folder = Path(tempfile.mkdtemp(prefix="plab-redis-"))
    server = PrivateRedis(port, folder, persistent=persistent)
    try:
        server.up()
        yield server
    finally:
        server.down()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def private_redis(port: int) -> Iterator[Callable[[bool], None]]:
    """A redis-server of our own on ``port``, without persistence; yields ``switch(up)``."""
    with running_redis(port) as server:
        yield server.switch


def _wait_port(port: int) -> None:
    eventually(lambda: _accepts(port), f"the private redis-server to accept connections on port {port}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


async def forget_outbox_keys(redis: Any) -> None:
    """Delete the outbox's logical keys (stream, effects, inbox) so a test starts from nothing."""
    names = [STREAM, "effects:projector", "duplicates:projector"]
    async for key in redis.scan_iter(match="inbox:projector:*", count=500):
        names.append(key)
    await redis.delete(*names)


async def run_until_drained(publisher: OutboxPublisher, crashes: list[int]) -> None:
    """A supervisor: restart the publisher after each crash; stop once nothing publishable is left.

    (Events behind a dead letter are not publishable: they wait for a requeue or a skip.)
    """
    while True:
        try:
            result = await publisher.publish_batch()
        except SimulatedCrash:
            crashes.append(1)
            continue
        if result.claimed == 0:
            if await publisher.publishable() == 0:
                return
            await asyncio.sleep(0.005)  # what is left waits for its backoff, or for the broker
