"""A classroom over the websocket: N simulated learners clicking Lab 1, each speaking Streamlit's own protocol.

What it measures: the server and the network, not the browser. Each learner is one websocket
to ``/_stcore/stream`` that sends the BackMsg a browser would send and reads the ForwardMsgs a
browser would render, without rendering them. On a 2-core machine N headless Chromium tabs
(``bench/classroom.py``) spend most of the CPU drawing pages; here a learner costs the client
a few hundred microseconds per click, so the figures are the server's. The browser's own
rendering time is not in them: for click-to-result as a learner sees it, read
``bench/classroom.py`` (and ``bench/clicks.py`` for one tab).

The workload is ``bench/classroom.py``'s: one ``streamlit run app.py`` per N; the learners open
Lab 1 one after another and takes a seat with a first *Create user* (a sandbox of their own, kept through the
``?lab=`` query string the server gives back, as the page's address keeps it; that click is reported on its own
line, *take a seat*, outside the class's figures: it makes a sandbox, which a checkout from before seats did as the
page opened), then each clicks every 0.5-1.5 s for ``--seconds``: mostly *Create user* with a new email, every
third click *Run the join*.

How a click is sent (``bench/_streamlit_ws.py``), as Streamlit's front end sends it: a
``rerun_script`` BackMsg whose ClientState carries the query string, the page's script hash
(from the ``navigation`` message), the widget states (for *Create user*: the form's text values
and the submit button's ``trigger_value``; for the join: the button's trigger) and the
``fragment_id`` of the ``st.fragment`` the button was drawn in (both buttons live in fragments).
Widget ids come from the deltas of the previous run, matched by their keys. Values the server
sets (the form is cleared after a create) replace the learner's own, as in a browser. One
difference: a browser also sends the values of the widgets it never touched (their defaults);
this client sends only the ones it set, a few hundred bytes less per click.

A sample runs from sending the click until the server's ``script_finished`` for the run it
started. Every sample is checked: a create counts only if that run showed the success message
naming the new email and listed the new user in the page's *User* select box (read back from
the database in the same run); a join only if the run drew its result. Anything else (an error
message, an exception, a silent run because a widget id was wrong) is a failed click with its
reason; a learner whose page does not open stops the benchmark at once.

Reported per N: clicks, p50/p95/max click-to-result, failed clicks, the server process's CPU
(cores, from its CPU time over the window), its peak RSS (the kernel's high-water mark, whole
life of the process), the generator's own CPU (cores) and the machine's 1-minute load at the end.
Target: 30 learners, p95 under 1 s.

``--cost N`` instead measures one learner clicking with no think time: N creates, then N joins;
server CPU milliseconds per click of each kind. ``--profile FILE`` records the server with
py-spy (``pip install py-spy``; ``bench/_profile.py``) during the largest N and prints where its
CPU time went. ``--option section.name=value`` (repeatable) runs the server with a Streamlit
setting changed, to try one out before changing ``.streamlit/config.toml``.

Run from the repository root:
``python -m bench.classroom_ws [--learners 1,4,8,16,30] [--seconds 30] [--backend embedded|services]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench import _profile
from bench._common import (
    JOIN_EVERY,
    ROOT,
    THINK_TIME_S,
    backend_env,
    peak_rss_mb,
    percentile,
    print_table,
    streamlit_process,
)
from bench._streamlit_ws import FINISHED, Run, Session

#: The longest a click (or opening the page) may take before it counts as failed.
CLICK_TIMEOUT_S = 60.0
#: Lab 1's address and the keys of the widgets a learner uses (the page gives every widget a key).
PAGE = "data-models"
EMAIL, NAME, CREATE, JOIN, USER = "lab1_email", "lab1_name", "lab1_create", "lab1_join", "lab1_user"


class ClickFailed(Exception):
    """The server answered, but not with what the learner clicked for."""


class Learner:
    """One learner on Lab 1: opens the page, creates users and runs the join, checking every answer."""

    def __init__(self, url: str, n: int) -> None:
        self.session = Session(url, PAGE, CLICK_TIMEOUT_S)
        self.n = n
        #: "seat": each learner's first click, which makes their sandbox (reported apart from the class's clicks).
        self.samples: dict[str, list[float]] = {"seat": [], "create": [], "join": []}
        self.failures: list[str] = []

    async def open(self) -> None:
        s = self.session
        run = await s.open()
        missing = sorted(k for k in (EMAIL, NAME, CREATE, JOIN) if k not in s.widgets)
        if run.status not in FINISHED or missing or not s.page_hash:
            raise SystemExit(
                f"learner {self.n}: Lab 1 did not open as expected (status {run.status}, widgets missing "
                f"{missing}, query {s.query!r}, page hash {s.page_hash!r}, errors {run.exceptions[:1]})"
            )

    async def take_seat(self) -> None:
        """The learner's first *Create user*: their sandbox is made now (a checkout from before seats made it as the
        page opened, outside any timed click), so it is timed apart from the class's clicks."""
        self.samples["seat"].append(await self.create(f"seat{self.n}.{uuid.uuid4().hex[:6]}@example.com", "Seat"))

    async def create(self, email: str, name: str) -> float:
        started = time.perf_counter()
        run = await self.session.click(CREATE, {EMAIL: email, NAME: name})
        elapsed = time.perf_counter() - started
        check(run)
        if not any(f"Created `{email}`" in body for body in run.successes()):
            raise ClickFailed(f"no 'Created {email}' message (alerts: {[b[:80] for _, b in run.alerts]})")
        if not any(option.startswith(f"{email} ") for option in run.options.get(USER, [])):
            raise ClickFailed(f"{email} was reported created but is not among the page's users")
        if "lab=" not in self.session.query:
            raise ClickFailed("the create took no seat: the page's address names no sandbox")
        return elapsed

    async def join(self) -> float:
        started = time.perf_counter()
        run = await self.session.click(JOIN)
        elapsed = time.perf_counter() - started
        check(run)
        if not any("row(s). Showing" in text for text in run.texts):
            raise ClickFailed(f"the join drew no result (alerts: {[b[:80] for _, b in run.alerts]})")
        return elapsed

    async def click_until(self, stop_at: float) -> None:
        token = uuid.uuid4().hex[:6]
        clicks = 0
        while time.perf_counter() < stop_at and not self.session.closed:
            await asyncio.sleep(random.uniform(*THINK_TIME_S))  # noqa: S311 - think time, not security
            clicks += 1
            kind = "join" if clicks % JOIN_EVERY == 0 else "create"
            try:
                if kind == "join":
                    elapsed = await self.join()
                else:
                    elapsed = await self.create(f"ws{self.n}.{clicks}.{token}@example.com", f"Learner {self.n}")
                self.samples[kind].append(elapsed)
            except Exception as exc:  # noqa: BLE001 - counted and reported; the class goes on
                self.failures.append(f"{kind}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                await self.session.wait_idle()


def check(run: Run) -> None:
    """A run that raised, showed an error or did not finish is a failed click."""
    if run.exceptions:
        raise ClickFailed(f"exception: {run.exceptions[0][:160]}")
    if errors := run.errors():
        raise ClickFailed(f"error message: {errors[0][:160]}")
    if run.status not in FINISHED:
        raise ClickFailed(f"the run ended with status {run.status}")


@dataclass
class Window:
    """Resource use over the clicking window."""

    server_cores: float
    client_cores: float
    load: float


async def classroom(
    url: str,
    learners: int,
    seconds: float,
    server: psutil.Process,
    profile: Path | None = None,
    *,
    together: bool = False,
) -> tuple[list[Learner], Window]:
    """Open Lab 1 for each learner, one after another, then let them all click for ``seconds``.

    Each learner takes their seat as they arrive or, ``together``, all at the same moment once every
    page is open (a teacher's "now click *Create user*").
    """
    crowd = [Learner(url, n) for n in range(learners)]
    spy = None
    try:
        for learner in crowd:  # learners arrive one after another, as a class does, and take their seats
            await learner.open()
            if not together:
                await learner.take_seat()
        if together:
            await asyncio.gather(*(learner.take_seat() for learner in crowd))
        if profile is not None:  # only the clicking is sampled
            spy = _profile.start(server.pid, seconds, profile)
            await asyncio.sleep(1.0)  # py-spy attaches
        cpu_before, client_before, wall_before = server.cpu_times(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(learner.click_until(wall_before + seconds) for learner in crowd))
        cpu_after, client_after = server.cpu_times(), time.process_time()
        wall = time.perf_counter() - wall_before
        if spy is not None:
            _, err = await asyncio.to_thread(spy.communicate, timeout=60)
            if spy.returncode != 0:
                print(f"py-spy failed: {err.decode()[-500:]}", file=sys.stderr)
    finally:
        await asyncio.gather(*(learner.session.close() for learner in crowd))
    busy = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return crowd, Window(busy / wall, (client_after - client_before) / wall, os.getloadavg()[0])


async def cost(url: str, clicks: int, server: psutil.Process) -> list[list[Any]]:
    """One learner, no think time: server CPU per click of each kind, and the click's latency."""
    learner = Learner(url, 0)
    rows: list[list[Any]] = []
    try:
        await learner.open()
        await learner.take_seat()
        for kind in ("create", "join"):
            before, samples = server.cpu_times(), []
            for i in range(clicks):
                if kind == "create":
                    samples.append(await learner.create(f"cost.{i}.{uuid.uuid4().hex[:6]}@example.com", "Cost"))
                else:
                    samples.append(await learner.join())
            after = server.cpu_times()
            busy = (after.user + after.system) - (before.user + before.system)
            ms = [s * 1000 for s in samples]
            label = "Create user" if kind == "create" else "Run the join"
            rows.append([label, clicks, f"{busy * 1000 / clicks:.1f} ms", *latency(ms)[:2]])
    finally:
        await learner.session.close()
    return rows


# -- the report ----------------------------------------------------------------------------
def latency(ms: list[float]) -> list[str]:
    if not ms:
        return ["–", "–", "–"]
    return [f"{percentile(ms, 50):,.0f} ms", f"{percentile(ms, 95):,.0f} ms", f"{max(ms):,.0f} ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", "--tabs", default="1,4,8,16,30", help="comma-separated class sizes")
    parser.add_argument("--seconds", type=float, default=30.0, help="clicking time per class size (default 30)")
    parser.add_argument("--backend", choices=["embedded", "services"], default="embedded")
    parser.add_argument("--reference", type=Path, help="another checkout, measured before this one at each N")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="SECTION.NAME=VALUE",
        help="a Streamlit setting to try, passed to streamlit run (e.g. runner.postScriptGC=false); repeatable",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="all learners take their seats at the same moment, once every page is open",
    )
    parser.add_argument("--cost", type=int, metavar="N", help="only: server CPU per click, N clicks of each kind")
    parser.add_argument("--profile", type=Path, metavar="FILE", help="py-spy's raw stacks of the largest class")
    args = parser.parse_args()
    env = backend_env(args.backend)
    options = [f"--{option}" for option in args.option]
    if args.cost:
        with streamlit_process(env, options=options) as (url, _, _, process):
            costs = asyncio.run(cost(url, args.cost, psutil.Process(process.pid)))
        print(f"\nServer CPU per Lab 1 click on {args.backend}: one learner, no think time, {args.cost} of each")
        print_table(["click", "clicks", "server CPU per click", "p50", "p95"], costs)
        return
    sizes = [int(n) for n in args.learners.split(",")]
    checkouts = ([args.reference] if args.reference else []) + [ROOT]
    rows: list[list[Any]] = []
    by_action: list[list[Any]] = []
    for learners, root in ((n, root) for n in sizes for root in checkouts):
        print(f"{learners} learner(s) on {args.backend}, {root} …", file=sys.stderr)
        with streamlit_process(env, root, options=options) as (url, _, _, process):
            server = psutil.Process(process.pid)
            profile = args.profile if args.profile and learners == max(sizes) and root == ROOT else None
            crowd, window = asyncio.run(classroom(url, learners, args.seconds, server, profile, together=args.together))
            rss = peak_rss_mb(process.pid)
        samples = {k: [s * 1000 for c in crowd for s in c.samples[k]] for k in ("create", "join")}
        every = samples["create"] + samples["join"]
        failures = [f for c in crowd for f in c.failures]
        if failures:
            print(f"  {len(failures)} failed click(s), e.g. {failures[:3]}", file=sys.stderr)
        if not every:
            raise SystemExit(f"{learners} learner(s): not one click succeeded ({failures[:3]})")
        app = "this checkout" if root == ROOT else str(root)
        rows.append(
            [
                app,
                learners,
                len(every),
                *latency(every),
                len(failures),
                f"{window.server_cores:.2f}",
                f"{rss:,.0f} MB",
                f"{window.client_cores:.2f}",
                f"{window.load:.2f}",
            ]
        )
        seats = [s * 1000 for c in crowd for s in c.samples["seat"]]
        seat = "take a seat, all at once" if args.together else "take a seat"
        for kind, ms in ((seat, seats), ("create", samples["create"]), ("join", samples["join"])):
            by_action.append([app, learners, kind, len(ms), *latency(ms)])
        if profile is not None:
            _profile.report(profile, args.seconds, len(every), window.server_cores)
    print(f"\nClassroom load over the websocket on {args.backend}, {args.seconds:g} s per class size")
    print("(server and network only, no browser rendering; target: 30 learners, p95 < 1 s)")
    headers = ["app", "learners", "clicks", "p50", "p95", "max", "failed", "server cores", "server peak RSS"]
    print_table([*headers, "client cores", "load (1 min)"], rows)
    print("\nBy click")
    print_table(["app", "learners", "click", "clicks", "p50", "p95", "max"], by_action)


if __name__ == "__main__":
    main()
