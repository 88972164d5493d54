"""Each lab's main click over Streamlit's websocket, measured against what it does, beside the floor for a click.

For every click a learner makes most in each lab, one learner with no think time (as
``bench/classroom_ws.py --cost``): the server process's CPU time per click (psutil, user + system,
the whole process: Streamlit, the page script, the app's event loop, the drivers' threads), the
bytes and messages the server sent for it (the websocket's payloads), and what the click sent on:
SQL statements (SQLAlchemy's ``before_cursor_execute``, an executemany counted once) and Redis
commands and round trips (redis-py's clients, fakeredis included; a pipeline is one round trip).
Those counts come from the server itself: it starts with ``bench/server_site/`` on ``PYTHONPATH``,
whose ``sitecustomize`` counts and answers on a local port; nothing in the app knows of it.

The clicks, each checked (a click whose page does not show its result counts as failed and stops
the benchmark):

- Lab 1 *Create user* (a new email; "Created …" and the user among the page's users) and *Run the
  join* (its result drawn), after a user with sample assessments;
- Lab 2 *Run the experiment* (K = 20 requests, D = 1 ms, pool of 5, no NullPool run) until its
  result is drawn: the click, then the job's progress fragment as a browser's timer reruns it;
- Lab 3 *Fetch the N+1 way* and *Fetch the eager way* (Alex with three sample scores);
- Lab 4 *Invalidate user*, then *Fetch user (cached)* twice: a miss, then a hit;
- Lab 5 *Calculate and store the score* (the write), then the drain: the publisher running, the
  live panel rerun by its one-second timer as a browser does until it shows every event published;
- a knowledge check: Lab 1's first question, *Check my answer* with an option picked.

The floor is ``bench/floor/``: the smallest Streamlit app doing Lab 1's *Create user* on the same
stack (SQLAlchemy's async ORM, aiosqlite, one background event loop), measured the same way in the
same run. Each repetition starts a fresh floor server and a fresh app server, in alternating order.

Run from the repository root:
``python -m bench.lab_clicks [--clicks 20] [--repeat 3] [--backend embedded|services] [--only lab1,…]``.
``--option section.name=value`` runs the app's server with a Streamlit setting changed;
``--reference PATH`` measures another checkout's labs too (before and after a change, in one run);
``--nagle`` measures this checkout a second time with its ``TCP_NODELAY`` hook left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from streamlit.proto.WidgetStates_pb2 import WidgetState

from bench._common import ROOT, backend_env, free_port, percentile, print_table, streamlit_process
from bench._streamlit_ws import FINISHED, Run, Session

SITE = ROOT / "bench" / "server_site"
FLOOR = ROOT / "bench" / "floor"
#: The longest one click (or the wait for its result) may take.
TIMEOUT_S = 60.0
#: Unmeasured clicks of each kind before measuring (the first imports and caches).
WARMUP = 2


class ClickFailed(Exception):
    """The server answered, but not with what the learner clicked for."""


def check(run: Run) -> Run:
    if run.exceptions:
        raise ClickFailed(f"exception: {run.exceptions[0][:200]}")
    if errors := run.errors():
        raise ClickFailed(f"error message: {errors[0][:200]}")
    if run.status not in FINISHED:
        raise ClickFailed(f"the run ended with status {run.status}")
    return run


class Page(Session):
    """One learner's tab on one page: set widgets, press buttons, let timed fragments tick."""

    def put(self, key: str, **value: Any) -> None:
        """Give the widget ``key`` a value, as a learner typing or picking does (``double_value=20.0``, …)."""
        widget_id = self.widgets[key].id
        self.values[widget_id] = WidgetState(id=widget_id, **value)

    async def press(self, key: str, **typed: str) -> Run:
        return check(await self.click(key, typed))

    async def until(self, done: Callable[[Run], bool], run: Run) -> Run:
        """Rerun the page's timed fragments as a browser's timer does (each after its interval) until ``done``."""
        deadline = time.perf_counter() + TIMEOUT_S
        while not done(run):
            if not self.auto_reruns:
                raise ClickFailed(f"the result never showed and nothing is left to wait for ({run.labels[:3]})")
            if time.perf_counter() > deadline:
                raise ClickFailed("the result did not show in time")
            fragment_id, every = next(iter(self.auto_reruns.items()))
            await asyncio.sleep(every)
            run = check(await self.tick(fragment_id))
        return run


def said(run: Run, text: str) -> bool:
    return any(text in body for _, body in run.alerts)


# -- the clicks ---------------------------------------------------------------------------------
Action = Callable[[Page, int], Awaitable[None]]


@dataclass
class Scenario:
    """One page's main click(s): opened and prepared once, then each action of ``cycle`` in turn."""

    app: str  # "floor" or "lab"
    name: str  # what the report calls the page
    page: str  # its address
    cycle: list[tuple[str, Action]]
    setup: Callable[[Page], Awaitable[None]] | None = None
    teardown: Callable[[Page], Awaitable[None]] | None = None


async def floor_create(page: Page, i: int) -> None:
    email = f"floor.{i}.{uuid.uuid4().hex[:6]}@example.com"
    run = await page.press("create", email=email, name="Floor")
    if not said(run, f"Created `{email}`"):
        raise ClickFailed(f"the floor did not say it created {email}")


async def lab1_create(page: Page, i: int) -> None:
    email = f"click.{i}.{uuid.uuid4().hex[:6]}@example.com"
    run = await page.press("lab1_create", lab1_email=email, lab1_name="Clicker")
    if not said(run, f"Created `{email}`"):
        raise ClickFailed(f"no 'Created {email}'")
    if not any(o.startswith(f"{email} ") for o in run.options.get("lab1_user", [])):
        raise ClickFailed(f"{email} is not among the page's users")


async def lab1_prepare_join(page: Page) -> None:
    await lab1_create(page, -1)
    await page.press("lab1_add_children")


async def lab1_join(page: Page, _: int) -> None:
    run = await page.press("lab1_join")
    if not any("row(s). Showing" in text for text in run.texts):
        raise ClickFailed("the join drew no result")


async def lab2_prepare(page: Page) -> None:
    await page.press("lab2_init")
    page.put("lab2_k", double_value=20.0)
    page.put("lab2_d", double_value=1.0)
    page.put("lab2_compare", bool_value=False)


async def lab2_run(page: Page, _: int) -> None:
    run = await page.press("lab2_run")
    await page.until(lambda r: "plotly_chart" in r.kinds, run)


async def lab3_prepare(page: Page) -> None:
    await page.press("lab3_samples")
    await page.press("lab3_add_scores")


def lab3_fetch(way: str) -> Action:
    async def fetch(page: Page, _: int) -> None:
        run = await page.press(f"lab3_fetch_{way}")
        if not any(label.startswith(f"{way.capitalize()}: ") for label in run.labels):
            raise ClickFailed(f"the {way} fetch drew no result")

    return fetch


async def lab4_prepare(page: Page) -> None:
    await page.press("lab4_samples")


async def lab4_invalidate(page: Page, _: int) -> None:
    run = await page.press("lab4_invalidate")
    if not run.alerts:
        raise ClickFailed("the invalidation said nothing")


def lab4_fetch(outcome: str) -> Action:
    async def fetch(page: Page, _: int) -> None:
        run = await page.press("lab4_fetch_user")
        if not said(run, f"**{outcome}**"):
            raise ClickFailed(f"the fetch was not a {outcome} ({[b[:60] for _, b in run.alerts]})")

    return fetch


PUBLISHED = re.compile(r"(\d+) of (\d+) events published")


def published(run: Run) -> tuple[int, int] | None:
    for label in run.labels:
        if found := PUBLISHED.search(label):
            return int(found[1]), int(found[2])
    return None


async def lab5_prepare(page: Page) -> None:
    await page.press("lab5_samples")
    await page.press("lab5_start")


async def lab5_write(page: Page, _: int) -> None:
    run = await page.press("lab5_calc")
    if not said(run, "committed"):
        raise ClickFailed("the write did not say it committed")


async def lab5_drain(page: Page, _: int) -> None:
    def drained(run: Run) -> bool:
        counts = published(run)
        return counts is not None and counts[0] == counts[1]

    await page.until(drained, page.run)


async def lab5_stop(page: Page) -> None:
    await page.press("lab5_stop")


async def check_answer(page: Page, i: int) -> None:
    radios = sorted(k for k in page.run.options if k.startswith("kc_") and page.run.options[k])
    if not radios:
        raise ClickFailed("Lab 1's knowledge check drew no multiple-choice question")
    key = radios[0]
    options = page.run.options[key]
    page.put(key, string_value=options[i % len(options)])
    run = await page.press(f"{key}_submit")
    if not run.alerts:
        raise ClickFailed("the check gave no grade")


def scenarios() -> list[Scenario]:
    return [
        Scenario("floor", "floor", "", [("Create user", floor_create)]),
        Scenario("lab", "Lab 1", "data-models", [("Create user", lab1_create)]),
        Scenario("lab", "Lab 1", "data-models", [("Run the join", lab1_join)], setup=lab1_prepare_join),
        Scenario("lab", "Lab 1", "data-models", [("Check my answer (knowledge check)", check_answer)]),
        Scenario("lab", "Lab 2", "pooling", [("Run the experiment, until its result", lab2_run)], setup=lab2_prepare),
        Scenario(
            "lab",
            "Lab 3",
            "repository",
            [("Fetch the N+1 way", lab3_fetch("lazy")), ("Fetch the eager way", lab3_fetch("eager"))],
            setup=lab3_prepare,
        ),
        Scenario(
            "lab",
            "Lab 4",
            "caching",
            [
                ("Invalidate user", lab4_invalidate),
                ("Fetch user (cached): miss", lab4_fetch("MISS")),
                ("Fetch user (cached): hit", lab4_fetch("HIT")),
            ],
            setup=lab4_prepare,
        ),
        Scenario(
            "lab",
            "Lab 5",
            "outbox",
            [("Calculate and store the score", lab5_write), ("… its drain, until the live panel shows it", lab5_drain)],
            setup=lab5_prepare,
            teardown=lab5_stop,
        ),
    ]


# -- measuring ------------------------------------------------------------------------------------
@dataclass
class Server:
    """A running server: its process (for CPU time) and its counters (statements, Redis calls)."""

    process: psutil.Process
    url: str
    counts_port: int

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def counts(self) -> Counter[str]:
        with socket.create_connection(("127.0.0.1", self.counts_port), timeout=10) as conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        return Counter(json.loads(data))


@dataclass
class Tally:
    """One action's samples over every repetition."""

    latency_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # per repetition: CPU per click
    sent_bytes: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    clicks: int = 0


@dataclass(frozen=True)
class Target:
    """An app to measure: the floor, this checkout's app, or another checkout's (a reference)."""

    label: str
    kind: str  # "floor" or "lab": which scenarios run on it
    root: Path
    script: str
    nagle: bool = False  # the app's TCP_NODELAY hook left out (bench/server_site)


Key = tuple[str, str, str]  # (the app's label, the page, the click)


async def measure(server: Server, target: Target, scenario: Scenario, clicks: int, tallies: dict[Key, Tally]) -> None:
    page = Page(server.url, scenario.page, TIMEOUT_S)
    run = await page.open()
    if run.status not in FINISHED or run.exceptions:
        raise SystemExit(f"{scenario.name} did not open: status {run.status}, {run.exceptions[:1]}")
    try:
        if scenario.setup is not None:
            await scenario.setup(page)
        for i in range(WARMUP):
            for _, action in scenario.cycle:
                await action(page, -2 - i)
        busy: dict[str, float] = defaultdict(float)
        for i in range(clicks):
            for label, action in scenario.cycle:
                tally = tallies.setdefault((target.label, scenario.name, label), Tally())
                before, cpu, got, messages = server.counts(), server.cpu(), page.received_bytes, page.received_messages
                started = time.perf_counter()
                await action(page, i)
                tally.latency_ms.append((time.perf_counter() - started) * 1000)
                busy[label] += server.cpu() - cpu
                tally.sent_bytes.append(page.received_bytes - got)
                tally.messages.append(page.received_messages - messages)
                tally.counts.update(server.counts() - before)
                tally.clicks += 1
        for label, _ in scenario.cycle:
            tallies[(target.label, scenario.name, label)].cpu_ms.append(busy[label] * 1000 / clicks)
        if scenario.teardown is not None:
            await scenario.teardown(page)
    finally:
        await page.close()


@contextmanager
def server(target: Target, backend: str, options: Sequence[str]) -> Iterator[Server]:
    counts_port = free_port()
    lab = target.kind == "lab"
    env = backend_env(backend) if lab else dict(os.environ)
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(SITE), env.get("PYTHONPATH")])))
    env["PLAB_BENCH_COUNTS_PORT"] = str(counts_port)
    if target.nagle:
        env["PLAB_BENCH_NAGLE"] = "1"
    with streamlit_process(env, target.root, options=list(options) if lab else [], script=target.script) as running:
        url, _, _, process = running
        yield Server(psutil.Process(process.pid), url, counts_port)


async def repetition(
    order: Sequence[Target],
    backend: str,
    chosen: list[Scenario],
    clicks: int,
    options: Sequence[str],
    tallies: dict[Key, Tally],
) -> None:
    for target in order:
        with server(target, backend, options) as running:
            for scenario in (s for s in chosen if s.app == target.kind):
                clicked = ", ".join(label for label, _ in scenario.cycle)
                print(f"  {target.label} · {scenario.name}: {clicked}", file=sys.stderr)
                await measure(running, target, scenario, clicks, tallies)


# -- the report -----------------------------------------------------------------------------------
def rows(tallies: dict[Key, Tally], floor_cpu: float | None) -> list[list[str]]:
    out = []
    for (app, name, label), t in sorted(tallies.items(), key=lambda item: (item[0][1] != "floor", item[0][1])):
        per = {k: v / t.clicks for k, v in t.counts.items()}
        cpu = statistics.median(t.cpu_ms)
        spread = f"{min(t.cpu_ms):.1f}-{max(t.cpu_ms):.1f}" if len(t.cpu_ms) > 1 else f"{cpu:.1f}"
        ratio = f"{cpu / floor_cpu:.2f}x" if floor_cpu else "–"
        out.append(
            [
                app,
                name,
                label,
                str(t.clicks),
                f"{cpu:.1f} ms ({spread})",
                ratio,
                f"{percentile(t.latency_ms, 50):,.0f} ms",
                f"{percentile(t.latency_ms, 95):,.0f} ms",
                f"{statistics.fmean(t.sent_bytes):,.0f}",
                f"{statistics.fmean(t.messages):.1f}",
                f"{per.get('statements', 0):.1f}",
                f"{per.get('redis_commands', 0):.1f} ({per.get('redis_round_trips', 0):.1f})",
            ]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20, help="measured clicks of each action per repetition")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions, each with fresh servers (default 3)")
    parser.add_argument("--backend", choices=["embedded", "services"], default="embedded")
    parser.add_argument("--only", help="comma-separated pages to measure, e.g. 'Lab 1,Lab 4' (the floor always)")
    parser.add_argument("--option", action="append", default=[], metavar="SECTION.NAME=VALUE")
    parser.add_argument("--reference", type=Path, help="another checkout whose labs are measured too, in turn")
    parser.add_argument("--nagle", action="store_true", help="also this checkout with its TCP_NODELAY hook left out")
    args = parser.parse_args()
    chosen = scenarios()
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")} | {"floor"}
        chosen = [s for s in chosen if s.name in wanted]
    options = [f"--{option}" for option in args.option]
    targets = [Target("floor", "floor", FLOOR, "floor_app.py"), Target("this checkout", "lab", ROOT, "app.py")]
    if args.reference:
        targets.append(Target(str(args.reference), "lab", args.reference, "app.py"))
    if args.nagle:
        targets.append(Target("this checkout, TCP_NODELAY off", "lab", ROOT, "app.py", nagle=True))
    tallies: dict[Key, Tally] = {}
    for n in range(args.repeat):
        order = targets[n % len(targets) :] + targets[: n % len(targets)]  # each goes first in turn
        said = " then ".join(t.label for t in order)
        print(f"repetition {n + 1} of {args.repeat} on {args.backend} ({said}) …", file=sys.stderr)
        asyncio.run(repetition(order, args.backend, chosen, args.clicks, options, tallies))
    floor = tallies.get(("floor", "floor", "Create user"))
    floor_cpu = statistics.median(floor.cpu_ms) if floor else None
    print(
        f"\nEach lab's main click on {args.backend}: one learner, no think time, {args.clicks} clicks of each action "
        f"in each of {args.repeat} repetition(s); server CPU per click is the median of the repetitions (range), "
        "bytes, messages, statements and Redis calls are per click"
    )
    headers = ["app", "page", "click", "clicks", "server CPU per click", "÷ floor", "p50", "p95", "bytes", "messages"]
    print_table([*headers, "statements", "Redis commands (round trips)"], rows(tallies, floor_cpu))
    print(f"(load average at the end: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
