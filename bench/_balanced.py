"""Several app processes behind a real load balancer on one machine: HAProxy, round robin, no sticky sessions.

What a deployment of a large class looks like, in miniature: ``processes`` copies of
``streamlit run app.py``, each on a port of its own, all on the same PostgreSQL database and the
same Redis, behind Debian's HAProxy running ``deploy/haproxy.cfg`` unchanged (its addresses come
from the environment). The database is one of our own on the configured PostgreSQL server
(created here, dropped at the end) and the Redis is a private ``redis-server`` on a free port, so
nothing here touches anybody else's data, and a process can be killed or started again at will.

Used by ``bench/several_processes.py`` and ``tests/test_several_processes.py``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench._common import PG_URL, ROOT, free_port

#: The load balancer's configuration, as deployed.
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
HAPROXY = "/usr/sbin/haproxy"
#: The most a process or the balancer may take to start, or HAProxy to see a change (seconds).
START_TIMEOUT_S = 90.0


class Unavailable(RuntimeError):
    """Something this setup needs is not on the machine (HAProxy, redis-server, PostgreSQL)."""


def _wait(condition: Callable[[], bool], what: str, within_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting, after {within_s:g} s, for {what}")
        time.sleep(0.05)


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body) of a GET; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""
    except OSError:
        return 0, b""


# -- a database and a Redis of our own -------------------------------------------------------
async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def private_database() -> Iterator[str]:
    """A database of our own on the configured PostgreSQL server; yields its SQLAlchemy URL."""
    name = f"plab_lb_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        raise Unavailable(f"PostgreSQL at {PG_URL} does not answer ({exc})") from exc
    parts = urlsplit(PG_URL)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def private_redis() -> Iterator[str]:
    """A ``redis-server`` of our own on a free port, without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise Unavailable("redis-server is not installed")
    port, folder = free_port(), tempfile.mkdtemp(prefix="plab-lb-redis-")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        _wait(lambda: _accepts(port), f"redis-server on port {port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _accepts(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# -- the app processes and the balancer --------------------------------------------------------
@dataclass
class AppProcess:
    """One ``streamlit run app.py``, named as HAProxy names it (``app1`` …)."""

    name: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    def healthy(self) -> bool:
        return _get(f"{self.url}/_stcore/health", timeout=1)[1].strip() == b"ok"


@dataclass
class Balanced:
    """The running setup: the app processes, HAProxy in front, and what they share."""

    env: dict[str, str]
    folder: Path
    apps: list[AppProcess]
    port: int
    stats_port: int
    haproxy: subprocess.Popen[bytes] | None = None
    database_url: str = ""
    redis_url: str = ""
    killed: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Where learners connect: the balancer."""
        return f"http://127.0.0.1:{self.port}"

    def app(self, name: str) -> AppProcess:
        return next(a for a in self.apps if a.name == name)

    # -- processes --------------------------------------------------------------------------
    def start(self, app: AppProcess) -> None:
        """Start (or start again) one app process and wait until it answers its health check."""
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true"]
        command.append(f"--server.port={app.port}")
        with app.log.open("ab") as log:
            app.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        _wait(lambda: app.healthy() or app.proc is None or app.proc.poll() is not None, f"{app.name} to answer")
        if app.proc.poll() is not None:
            raise RuntimeError(f"{app.name} exited with code {app.proc.returncode}: {self.tail(app)}")

    def kill(self, app: AppProcess) -> None:
        """SIGKILL: the process ends at once, as in a crash or an out-of-memory kill (no clean-up runs)."""
        if app.proc is not None:
            app.proc.send_signal(signal.SIGKILL)
            app.proc.wait(10)
            app.proc = None
            self.killed.append(app.name)

    def stop(self, app: AppProcess) -> None:
        if app.proc is not None:
            app.proc.terminate()
            try:
                app.proc.wait(15)
            except subprocess.TimeoutExpired:
                app.proc.kill()
                app.proc.wait(10)
            app.proc = None

    def tail(self, app: AppProcess, chars: int = 2000) -> str:
        return app.log.read_text(errors="replace")[-chars:] if app.log.exists() else ""

    # -- what HAProxy sees --------------------------------------------------------------------
    def servers(self, backend: str = "app") -> dict[str, str]:
        """HAProxy's view of each server of ``backend``: UP, DOWN, …, from its status page (CSV)."""
        status, body = _get(f"http://127.0.0.1:{self.stats_port}/stats;csv")
        if status != 200:
            return {}
        rows = csv.DictReader(io.StringIO(body.decode().lstrip("# ")))
        return {r["svname"]: r["status"] for r in rows if r["pxname"] == backend and r["svname"].startswith("app")}

    def wait_servers(self, up: set[str], within_s: float = START_TIMEOUT_S) -> None:
        """Until HAProxy has exactly ``up`` UP in both backends."""

        def seen() -> bool:
            return all(
                {name for name, state in self.servers(b).items() if state.startswith("UP")} == up
                for b in ("app", "media")
            )

        _wait(seen, f"HAProxy to see {sorted(up)} up", within_s)

    def alive(self) -> set[str]:
        return {a.name for a in self.apps if a.proc is not None}


@contextmanager
def balanced(
    processes: int = 3, extra_env: dict[str, str] | None = None, keep_logs: Path | None = None
) -> Iterator[Balanced]:
    """``processes`` app processes on a private PostgreSQL database and Redis, behind HAProxy.

    ``keep_logs``: a folder to copy the processes' and HAProxy's logs into at the end.
    """
    if not os.access(HAPROXY, os.X_OK):
        raise Unavailable(f"HAProxy is not installed at {HAPROXY}")
    if processes > 3:
        raise ValueError("deploy/haproxy.cfg names three servers")
    folder = Path(tempfile.mkdtemp(prefix="plab-lb-"))
    with private_database() as database_url, private_redis() as redis_url:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, **(extra_env or {}))
        apps = [AppProcess(f"app{n + 1}", free_port(), folder / f"app{n + 1}.log") for n in range(processes)]
        setup = Balanced(env, folder, apps, free_port(), free_port(), database_url=database_url, redis_url=redis_url)
        lb_env = dict(os.environ, PLAB_LB_BIND=f"127.0.0.1:{setup.port}", PLAB_LB_STATS=f"127.0.0.1:{setup.stats_port}")
        for n in range(3):  # servers the config names but this setup does not run stay DOWN
            lb_env[f"PLAB_APP{n + 1}"] = f"127.0.0.1:{apps[n].port if n < processes else free_port()}"
        try:
            for app in apps:
                setup.start(app)
            with (folder / "haproxy.log").open("wb") as log:
                # -db: stay in the foreground, so that this process owns it and can stop it.
                setup.haproxy = subprocess.Popen(
                    [HAPROXY, "-db", "-f", str(HAPROXY_CFG)], env=lb_env, stdout=log, stderr=subprocess.STDOUT
                )
            setup.wait_servers({a.name for a in apps})
            yield setup
        finally:
            if setup.haproxy is not None:
                setup.haproxy.terminate()
                setup.haproxy.wait(10)
            for app in apps:
                setup.stop(app)
            if keep_logs is not None:
                keep_logs.mkdir(parents=True, exist_ok=True)
                for log_file in folder.glob("*.log"):
                    shutil.copy(log_file, keep_logs / log_file.name)
            shutil.rmtree(folder, ignore_errors=True)
