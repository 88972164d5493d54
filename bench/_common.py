"""Shared helpers for the benchmarks: backends to compare, a Streamlit server, Chromium, tables."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

#: The classroom benchmarks' learner: thinks 0.5-1.5 s before each click, and every third click
#: on Lab 1 runs the join (the others create a user).
THINK_TIME_S = (0.5, 1.5)
JOIN_EVERY = 3

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def backend_env(kind: str) -> dict[str, str]:
    """The environment a deployment would give the app for one backend pair."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    if kind == "services":
        env.update(DATABASE_URL=PG_URL, REDIS_URL=REDIS_URL)
    return env


def _port_open(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def backend_kinds() -> list[str]:
    """Always the embedded pair; PostgreSQL + Redis too when both answer."""
    kinds = ["embedded"]
    if _port_open(PG_URL, 5432) and _port_open(REDIS_URL, 6379):
        kinds.append("services")
    else:
        print(f"(PostgreSQL at {PG_URL} or Redis at {REDIS_URL} unreachable: measuring the embedded pair only)")
    return kinds


def measure_in_child(module: str, kind: str, *args: str, timeout: float) -> dict[str, Any]:
    """Run ``python -m <module> --child <kind> <args>`` in a fresh interpreter; its last line is JSON.

    Memory is measured in a process of its own, so one backend's allocations never count
    against the other's.
    """
    print(f"measuring {kind} …", file=sys.stderr)
    out = subprocess.run(
        [sys.executable, "-m", module, "--child", kind, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def leftover_schemas(names: Sequence[str]) -> list[str]:
    """Which of these PostgreSQL schemas still exist (a released sandbox must leave none)."""
    import asyncio

    import asyncpg

    async def query() -> list[str]:
        conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""), timeout=5)
        try:
            rows = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])", list(names))
        finally:
            await conn.close()
        return sorted(r["nspname"] for r in rows)

    return asyncio.run(query()) if names else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def streamlit_server(env: dict[str, str], timeout: float = 60.0) -> Iterator[tuple[str, float, float]]:
    """``streamlit run app.py`` on a free port; yields (url, launch time, seconds to healthy)."""
    with streamlit_process(env, timeout=timeout) as (url, started, healthy, _):
        yield url, started, healthy


@contextmanager
def streamlit_process(
    env: dict[str, str],
    root: Path = ROOT,
    timeout: float = 60.0,
    options: Sequence[str] = (),
    script: str = "app.py",
) -> Iterator[tuple[str, float, float, subprocess.Popen[bytes]]]:
    """Like :func:`streamlit_server`, and the server's process too (to read its CPU time).

    ``root`` is the checkout whose ``app.py`` runs (another checkout makes a reference in the same run);
    ``options`` are extra ``--section.option=value`` flags for ``streamlit run`` (a setting to try out);
    ``script`` is the app's main script in ``root``.
    """
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.headless=true", f"--server.port={port}"]
    command += list(options)
    started = time.perf_counter()
    server = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = started + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {server.returncode}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"streamlit was not healthy within {timeout:.0f} s")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                time.sleep(0.02)
        yield url, started, time.perf_counter() - started, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class ScriptRuns:
    """Counts the script runs the server reports finished to one page, from its websocket.

    Every run (the whole page or one fragment) ends with a ``script_finished`` message; a run
    cut short for an ``st.rerun()`` is not counted, the run that follows it is. Attach it
    before the page opens the app.
    """

    def __init__(self, page: Any) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._message = ForwardMsg
        self.finished = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload: str | bytes) -> None:
        if not isinstance(payload, bytes):
            return
        try:
            message = self._message.FromString(payload)
        except Exception:  # noqa: BLE001 - not a ForwardMsg: nothing to count
            return
        rerun = self._message.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")
        if message.WhichOneof("type") == "script_finished" and message.script_finished != rerun:
            self.finished += 1


#: The app has no script run in progress (what a learner waits for before clicking again).
SETTLED = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory so far (the kernel's high-water mark, ``VmHWM``), in MB."""
    import psutil

    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float(psutil.Process(pid).memory_info().rss) / 2**20  # no /proc: the current RSS instead


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation between the closest ranks."""
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(samples: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": float(len(samples)),
    }


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A compact, aligned plain-text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(_align(c, w, header=n == 0) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _align(cell: str, width: int, header: bool) -> str:
    numeric = not header and (cell[:1].isdigit() or (cell[:1] in "+-" and cell[1:2].isdigit()))
    return cell.rjust(width) if numeric else cell.ljust(width)
