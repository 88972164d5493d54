"""Where a Streamlit server's CPU goes: py-spy samples of the thread holding the GIL, by part and by thread.

py-spy (``pip install py-spy``) reads the server's stacks from outside, without slowing its
Python code beyond the sampling itself. ``--gil`` keeps only the samples of the thread that holds
the GIL: Python that runs, not threads that wait. The fraction of samples taken is the fraction
of time the GIL was held; code that releases the GIL (SQLite's C library, socket writes) is not
in it, so the process's CPU time can be larger.
"""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from collections import Counter
from pathlib import Path

from bench._common import ROOT, print_table

#: py-spy's sampling rate (Hz) and where a sampled stack's time goes: to the innermost frame
#: that matches one of these path fragments (frames of the standard library are skipped, so
#: json or inspect count for whoever called them). The first match wins.
PROFILE_RATE = 100
CATEGORIES = [
    (
        "Streamlit: building, hashing and serialising messages",
        (
            "/google/protobuf/",
            "/streamlit/proto/",
            "/forward_msg_cache.py",
            "/runtime_util.py",
            "/forward_msg_queue.py",
        ),
    ),
    ("Streamlit: elements (st.* calls)", ("/streamlit/elements/", "/streamlit/delta_generator")),
    ("Streamlit: dataframes (pandas, pyarrow)", ("/pandas/", "/pyarrow/", "/numpy/")),
    (
        "Streamlit: script runner, session, state",
        ("/streamlit/runtime/", "/streamlit/commands/", "/streamlit/navigation/"),
    ),
    ("Streamlit: other", ("/streamlit/",)),
    ("SQLAlchemy", ("/sqlalchemy/", "<sqlalchemy generated")),
    ("database and Redis drivers", ("/aiosqlite/", "/sqlite3/", "/asyncpg/", "/redis/", "/fakeredis/")),
    ("pydantic", ("/pydantic/", "/pydantic_core/", "/email_validator/")),
    ("web server (uvicorn, starlette, websockets)", ("/uvicorn/", "/starlette/", "/websockets/", "/anyio/")),
]
STDLIB = sysconfig.get_paths()["stdlib"]


def categorise(stack: str) -> str:
    """The part of the server a sampled stack's time counts for (``frame;frame;…``, innermost last)."""
    frames = stack.split(";")[1:]  # the first names the thread
    if frames and frames[-1].startswith("ScriptRunner._on_script_finished "):  # its gc.collect(2), a C call
        return "Streamlit: gc.collect(2) after every run (runner.postScriptGC)"
    for frame in reversed(frames):
        where = frame.rpartition(" (")[2]
        if where.startswith((str(ROOT / "source"), str(ROOT / "views"), str(ROOT / "app.py"))):
            return "the app (source/, views/, app.py)"
        if where.startswith(STDLIB) and "site-packages" not in where and "/sqlite3/" not in where:
            if "/asyncio/" in where or "/selectors.py" in where:
                return "asyncio event loops (scheduling, sockets)"
            continue
        for name, patterns in CATEGORIES:
            if any(p in where for p in patterns):
                return name
    return "other"


def thread_kind(stack: str) -> str:
    """Which of the server's threads took the sample, by the thread's name."""
    name = stack.split(";", 1)[0].partition(": ")[2]
    kinds = {
        "ScriptRunner": "page scripts (one thread per run)",
        "MainThread": "Streamlit's server loop (websockets, sending)",
        "persistence-lab-loop": "the app's event loop (SQLAlchemy, drivers)",
        "_connection_worker_thread": "aiosqlite's connection threads",
    }
    return next((kind for prefix, kind in kinds.items() if prefix in name), "other threads")


def read_profile(path: Path) -> tuple[Counter[str], Counter[str]]:
    """Samples by part of the server and by thread."""
    by_category: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            by_category[categorise(stack)] += int(count)
            by_thread[thread_kind(stack)] += int(count)
    return by_category, by_thread


def start(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """py-spy, sampling only the thread that holds the GIL: Python that runs, not threads that wait."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    command = [spy, "record", "--pid", str(pid), "--duration", str(round(seconds)), "--rate", str(PROFILE_RATE)]
    command += ["--gil", "--threads", "--full-filenames", "--nonblocking", "--format", "raw", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def report(path: Path, seconds: float, clicks: int, server_cores: float) -> None:
    """Shares of the GIL-holding samples, and the process's CPU per click split by those shares."""
    by_category, by_thread = read_profile(path)
    total = sum(by_category.values())
    if not total or not clicks:
        print(f"(the profile {path} holds no samples, or there were no clicks)")
        return
    cpu_per_click = server_cores * seconds * 1000 / clicks
    print(
        f"\nWhere the server's time went while the largest class clicked ({clicks} clicks in {seconds:g} s)."
        f"\nThe GIL was held in {100 * total / (PROFILE_RATE * seconds):.0f} % of the samples py-spy meant to take"
        f" (at least: a lagging sampler takes fewer); the process used {server_cores:.2f} cores,"
        f" {cpu_per_click:.0f} ms of CPU per click, split below by the shares of the Python samples."
    )

    def rows(counts: Counter[str]) -> list[list[str]]:
        return [[k, f"{100 * v / total:.1f} %", f"{cpu_per_click * v / total:.1f} ms"] for k, v in counts.most_common()]

    print_table(["part", "share", "CPU per click"], rows(by_category))
    print()
    print_table(["thread", "share", "CPU per click"], rows(by_thread))
