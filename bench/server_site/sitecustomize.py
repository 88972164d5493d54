"""What the benchmarks change in a server they start: counts of what it sends, or its TCP_NODELAY hook left out.

Python imports a module named ``sitecustomize`` at start-up from its path; a benchmark starts a
server with this folder on ``PYTHONPATH``, so neither the app nor its tests ever load it.

``PLAB_BENCH_NAGLE=1`` (``bench/clicks.py --nagle``): the app's ``send_replies_at_once``
(``source/web/transport.py``) does nothing, so replies wait on Nagle's algorithm as they did before
it: the same code with and without the option, in the same run.

``PLAB_BENCH_COUNTS_PORT`` (``bench/lab_clicks.py``) counts, for the whole process:

- ``statements``: SQL statements the driver was given (SQLAlchemy's ``before_cursor_execute``
  event on every engine; an executemany counts once, as a database receives it once);
- ``redis_commands``: Redis commands, those sent inside a pipeline or a transaction included;
- ``redis_round_trips``: requests to Redis (a whole pipeline is one).

Each connection to ``127.0.0.1:$PLAB_BENCH_COUNTS_PORT`` gets the counts so far as one JSON line.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import json
import os
import socket
import sys
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


class _LeaveNagleOn(importlib.abc.MetaPathFinder):
    """When the app imports ``source.web.transport``, replace its hook with one that does nothing."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "source.web.transport":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            load(module)
            module.send_replies_at_once = lambda: None

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get("PLAB_BENCH_NAGLE") == "1":
    sys.meta_path.insert(0, _LeaveNagleOn())

if port := os.environ.get("PLAB_BENCH_COUNTS_PORT"):
    _install()
    threading.Thread(target=_serve, args=(int(port),), name="bench-counts", daemon=True).start()
