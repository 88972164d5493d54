"""A class larger than one process: websocket learners through HAProxy to three app processes, one killed mid-class.

The setup is ``bench/_balanced.py``'s: three ``streamlit run app.py`` on one PostgreSQL database and
one Redis of their own, behind Debian's HAProxy running ``deploy/haproxy.cfg`` (round robin,
websockets, no sticky sessions). The learners are ``bench/classroom_ws.py``'s: each one websocket
speaking Streamlit's own protocol, opening Lab 1 and then clicking every 0.5-1.5 s (*Create user*
with a new email, every third click *Run the join*), every click checked (the *Created …*
message and the new user in the page's list; the join's result) or counted as failed.

Three phases in the same run, on the same processes, one after another:

1. **one process**: the learners connect to one app process directly (the other two idle);
2. **three processes**: the same number of learners through the balancer, round robin;
3. **one killed**: through the balancer again, and halfway through the clicking one process is
   killed (SIGKILL, as in a crash: nothing of it runs again). Its learners' websockets close; each
   reconnects as a browser does (the same address, with its ``?lab=`` token) and lands on another
   process. Reported for them: how long the reconnect took, where it landed, whether the page still
   named their sandbox and listed every user they had been told was created, and whether their next
   click succeeded. A click that was in flight when its process died is counted as *cut* (its
   outcome is unknown to the learner), not as failed.

Reported per phase: clicks, p50/p95/max click-to-result, failed clicks, the app processes' CPU
(cores, summed), HAProxy's, the generator's own, and the machine's 1-minute load at the end; per
process: learners it accepted and its clicks' p95. Target: 100 learners through the balancer,
p95 < 1 s, no failed click, and after the kill every affected learner's data there and next click
good.

Run from the repository root (PostgreSQL from ``TEST_DATABASE_URL``, a private ``redis-server``):
``python -m bench.several_processes [--learners 100] [--seconds 30] [--phases one,three,killed]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench._balanced import Balanced, balanced
from bench._common import JOIN_EVERY, THINK_TIME_S, percentile, print_table
from bench._streamlit_ws import FINISHED, Session
from bench.classroom_ws import CLICK_TIMEOUT_S, PAGE, USER, Learner, latency

#: The process killed in the last phase (any would do; this one holds a third of the class).
VICTIM = "app2"


def token_of(query: str) -> str:
    return next((part[4:] for part in query.split("&") if part.startswith("lab=")), "")


@dataclass
class Reconnect:
    """One learner coming back after their process died."""

    left: str  # the process that died under them
    landed: str  # the process the balancer sent them to
    seconds: float
    same_sandbox: bool  # the page's address still names their sandbox
    created: int  # users they had been told were created
    missing: int  # of those, not in the page's list after the reconnect
    note: str = ""  # what the page said when it did not name the same sandbox
    next_click: bool | None = None  # their next click succeeded (None: no click followed)


class RoamingLearner(Learner):
    """A learner who, when their websocket closes, reconnects through the balancer as a browser does."""

    def __init__(self, url: str, n: int) -> None:
        super().__init__(url, n)
        self.url = url
        self.created: list[str] = []  # emails the page confirmed created
        self.clicks: list[tuple[str, float]] = []  # (process, seconds) of each good click
        self.cut: list[str] = []  # clicks in flight when the connection went
        self.came_back: list[Reconnect] = []

    @property
    def process(self) -> str:
        return self.session.served_by

    async def create(self, email: str, name: str) -> float:
        elapsed = await super().create(email, name)
        self.created.append(email)
        return elapsed

    async def reconnect(self) -> None:
        """Open the page again at the address it had (``?lab=…``), and check what it shows."""
        left, query, started = self.process, self.session.query, time.perf_counter()
        await self.session.close()
        self.session = Session(self.url, PAGE, CLICK_TIMEOUT_S)
        run = await self.session.open(query)
        seconds = time.perf_counter() - started
        if run.status not in FINISHED or run.exceptions:
            raise ConnectionError(f"the page did not open again (status {run.status}, {run.exceptions[:1]})")
        listed = self.session.run.options.get(USER, [])
        missing = [e for e in self.created if not any(option.startswith(f"{e} ") for option in listed)]
        same = bool(token_of(query)) and token_of(query) == token_of(self.session.query)
        note = "" if same else " | ".join(body[:160] for _, body in run.alerts if "sandbox" in body.lower())
        self.came_back.append(Reconnect(left, self.process, seconds, same, len(self.created), len(missing), note))

    async def click_until(self, stop_at: float) -> None:
        token = uuid.uuid4().hex[:6]
        clicks = 0
        while time.perf_counter() < stop_at:
            await asyncio.sleep(random.uniform(*THINK_TIME_S))  # noqa: S311 - think time, not security
            if self.session.closed:  # the front end notices at once and reconnects
                try:
                    await self.reconnect()
                except Exception as exc:  # noqa: BLE001 - counted; tried again after the next think
                    self.failures.append(f"reconnect: {type(exc).__name__}: {str(exc)[:160]}")
                    continue
            clicks += 1
            kind = "join" if clicks % JOIN_EVERY == 0 else "create"
            first_after = self.came_back[-1] if self.came_back and self.came_back[-1].next_click is None else None
            process = self.process
            try:
                if kind == "join":
                    elapsed = await self.join()
                else:
                    elapsed = await self.create(f"lb{self.n}.{clicks}.{token}@example.com", f"Learner {self.n}")
                self.samples[kind].append(elapsed)
                self.clicks.append((process, elapsed))
                ok = True
            except Exception as exc:  # noqa: BLE001 - counted and reported; the class goes on
                ok = False
                reason = f"{kind}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                (self.cut if self.session.closed else self.failures).append(reason)
                if not self.session.closed:
                    await self.session.wait_idle()
            if first_after is not None and not self.session.closed:
                first_after.next_click = ok


class CpuMeter:
    """CPU seconds of a set of processes, sampled every 0.5 s so that a process killed meanwhile still counts."""

    def __init__(self, pids: list[int]) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.procs = {pid: psutil.Process(pid) for pid in pids}
        self.sample()

    def sample(self) -> None:
        for pid, proc in self.procs.items():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            self.first.setdefault(pid, times.user + times.system)
            self.last[pid] = times.user + times.system

    def busy(self, pids: list[int] | None = None) -> float:
        return sum(self.last[p] - self.first[p] for p in (pids or list(self.first)) if p in self.first)


@dataclass
class Outcome:
    name: str
    crowd: list[RoamingLearner]
    seconds: float
    server_cores: float
    haproxy_cores: float
    client_cores: float
    load: float
    accepted: Counter[str]


async def phase(name: str, setup: Balanced, url: str, learners: int, seconds: float, kill: bool) -> Outcome:
    """Open ``learners`` one after another at ``url``, let them click for ``seconds`` (killing one process halfway)."""
    crowd = [RoamingLearner(url, n) for n in range(learners)]
    for learner in crowd:
        await learner.open()
        await learner.take_seat()
    accepted = Counter(learner.process or "direct" for learner in crowd)
    app_pids = [a.pid for a in setup.apps if a.proc is not None]
    assert setup.haproxy is not None
    meter = CpuMeter([*app_pids, setup.haproxy.pid])
    client_before, started = time.process_time(), time.perf_counter()

    async def sampler() -> None:
        while True:
            await asyncio.sleep(0.5)
            meter.sample()

    async def killer() -> None:
        await asyncio.sleep(seconds / 2)
        meter.sample()
        await asyncio.to_thread(setup.kill, setup.app(VICTIM))

    background = [asyncio.create_task(sampler())] + ([asyncio.create_task(killer())] if kill else [])
    try:
        await asyncio.gather(*(learner.click_until(started + seconds) for learner in crowd))
    finally:
        for task in background:
            task.cancel()
        meter.sample()
        await asyncio.gather(*(learner.session.close() for learner in crowd))
    wall = time.perf_counter() - started
    client = (time.process_time() - client_before) / wall
    return Outcome(
        name,
        crowd,
        wall,
        meter.busy(app_pids) / wall,
        meter.busy([setup.haproxy.pid]) / wall,
        client,
        os.getloadavg()[0],
        accepted,
    )


def report(outcomes: list[Outcome]) -> None:
    rows, per_process, kinds = [], [], []
    for o in outcomes:
        every = [s * 1000 for c in o.crowd for k in ("create", "join") for s in c.samples[k]]
        failures = [f for c in o.crowd for f in c.failures]
        cut = [f for c in o.crowd for f in c.cut]
        if failures:
            print(f"{o.name}: {len(failures)} failed click(s), e.g. {failures[:3]}", file=sys.stderr)
        rows.append(
            [
                o.name,
                len(o.crowd),
                len(every),
                *latency(every),
                len(failures),
                len(cut),
                f"{o.server_cores:.2f}",
                f"{o.haproxy_cores:.2f}",
                f"{o.client_cores:.2f}",
                f"{o.load:.1f}",
            ]
        )
        for kind in ("seat", "create", "join"):  # a learner's first click (their seat) apart from the class's
            label = "take a seat" if kind == "seat" else kind
            kinds.append([o.name, label, *latency([s * 1000 for c in o.crowd for s in c.samples[kind]])])
        by_process: dict[str, list[float]] = {}
        for c in o.crowd:
            for process, elapsed in c.clicks:
                by_process.setdefault(process or "direct", []).append(elapsed * 1000)
        for process in sorted(by_process):
            ms = by_process[process]
            per_process.append([o.name, process, o.accepted.get(process, 0), len(ms), *latency(ms)])
    print("\nA class through HAProxy (round robin, no sticky sessions) against one process alone")
    print("(websocket learners on Lab 1, every click checked; server cores: the app processes' CPU, summed)")
    headers = ["phase", "learners", "clicks", "p50", "p95", "max", "failed", "cut", "server cores", "haproxy"]
    print_table([*headers, "client cores", "load (1 min)"], rows)
    print("\nBy click")
    print_table(["phase", "click", "p50", "p95", "max"], kinds)
    print("\nBy process (learners it accepted when they opened the page; clicks it answered)")
    print_table(["phase", "process", "learners", "clicks", "p50", "p95", "max"], per_process)
    for o in outcomes:
        back = [r for c in o.crowd for r in c.came_back]
        if not back:
            continue
        secs = [r.seconds * 1000 for r in back]
        on_victim = o.accepted.get(VICTIM, 0)
        print(f"\n{o.name}: {VICTIM} killed halfway; {len(back)} reconnect(s) by {on_victim} learner(s)")
        print_table(
            ["reconnects", "p50", "max", "landed on", "same sandbox", "users there", "next click good"],
            [
                [
                    len(back),
                    f"{percentile(secs, 50):,.0f} ms",
                    f"{max(secs):,.0f} ms",
                    ", ".join(f"{k} {v}" for k, v in sorted(Counter(r.landed for r in back).items())),
                    f"{sum(r.same_sandbox for r in back)}/{len(back)}",
                    f"{sum(r.created - r.missing for r in back)}/{sum(r.created for r in back)}",
                    f"{sum(bool(r.next_click) for r in back)}/{sum(r.next_click is not None for r in back)}",
                ]
            ],
        )
        for r in back:
            if not r.same_sandbox:
                print(f"  a new sandbox on {r.landed}; the page said: {r.note or '(nothing about it)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0, help="clicking time per phase (default 30)")
    parser.add_argument("--phases", default="one,three,killed", help="which phases, in order (one,three,killed)")
    parser.add_argument("--logs", type=Path, metavar="DIR", help="keep the processes' and HAProxy's logs here")
    args = parser.parse_args()
    phases = args.phases.split(",")
    outcomes: list[Outcome] = []
    with balanced(3, keep_logs=args.logs) as setup:
        for name in phases:
            print(f"{name}: {args.learners} learners for {args.seconds:g} s …", file=sys.stderr)
            url = setup.apps[0].url if name == "one" else setup.url
            label = {"one": "one process", "three": "three processes", "killed": "three, one killed"}[name]
            outcomes.append(asyncio.run(phase(label, setup, url, args.learners, args.seconds, name == "killed")))
    report(outcomes)


if __name__ == "__main__":
    main()
