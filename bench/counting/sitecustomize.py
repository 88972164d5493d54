"""What a server sends to its database and to Redis, counted: loaded only into ``bench/lab_clicks.py``'s servers.

Python imports a module named ``sitecustomize`` at start-up from its path; the benchmark starts
each server with this folder on ``PYTHONPATH`` and ``PLAB_BENCH_COUNTS_PORT`` set, so neither the
app nor its tests ever load it. It counts, for the whole process:

- ``statements``: SQL statements the driver was given (SQLAlchemy's ``before_cursor_execute``
  event on every engine; an executemany counts once, as a database receives it once);
- ``redis_commands``: Redis commands, those sent inside a pipeline or a transaction included;
- ``redis_round_trips``: requests to Redis (a whole pipeline is one).

Each connection to ``127.0.0.1:$PLAB_BENCH_COUNTS_PORT`` gets the counts so far as one JSON line.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import threading
from collections import Counter
from typing import Any

_counts: Counter[str] = Counter()
_lock = threading.Lock()


def add(name: str, n: int = 1) -> None:
    with _lock:
        _counts[name] += n


def _count_commands(method: Any) -> Any:
    @functools.wraps(method)
    def counted(self: Any, *args: Any, **options: Any) -> Any:
        add("redis_commands")
        add("redis_round_trips")
        return method(self, *args, **options)

    return counted


def _count_pipeline(method: Any) -> Any:
    @functools.wraps(method)
    def counted(self: Any, *args: Any, **options: Any) -> Any:
        queued = len(getattr(self, "command_stack", ()))
        if queued:
            add("redis_commands", queued)
            add("redis_round_trips")
        return method(self, *args, **options)

    return counted


def _install() -> None:
    import redis.asyncio.client
    import redis.client
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", lambda *_: add("statements"))
    for module in (redis.client, redis.asyncio.client):  # fakeredis's clients are redis-py's, subclassed
        module.Redis.execute_command = _count_commands(module.Redis.execute_command)
        module.Pipeline.execute = _count_pipeline(module.Pipeline.execute)


def _serve(port: int) -> None:
    with socket.create_server(("127.0.0.1", port)) as server:
        while True:
            conn, _ = server.accept()
            with conn, _lock:
                conn.sendall(json.dumps(dict(_counts)).encode() + b"\n")


if port := os.environ.get("PLAB_BENCH_COUNTS_PORT"):
    _install()
    threading.Thread(target=_serve, args=(int(port),), name="bench-counts", daemon=True).start()
