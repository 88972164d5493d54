"""A class that keeps coming: learners open Lab 1 over the websocket until the app refuses one for memory.

What it shows: the memory budget (``PLAB_MEMORY_MB``) holds with real sessions, not only in a
test with an injected reading. One ``streamlit run app.py`` with the budget under test and a
count cap far above it (``PLAB_MAX_SANDBOXES=5000``), so memory is what stops the class. Learners
arrive a few at a time (``--at-once``), each over its own websocket speaking Streamlit's protocol
(``bench/_streamlit_ws.py``): opens Lab 1 (a sandbox of its own), creates a user (checked: the
success message and the user in the page's select box) and runs the join, then stays connected,
as a learner with the tab open does. When a page opens with the refusal ("The lab is full for now:
its server is using … of its … MB memory budget …") the learner counts as refused; after
``--refusals`` refusals in a row the class stops.

The server's RSS is sampled every 20 ms throughout, and at the end the kernel's high-water mark
(``VmHWM``, the true peak of the process's whole life) is read too. Reported: learners admitted,
learners refused, the sentence they read, RSS when the first one was refused, the sampled maximum,
the peak, and whether either passed the budget.

Run from the repository root:
``python -m bench.memory_full_ws [--budget 600] [--at-once 4] [--backend embedded|services]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field

import psutil

from bench._common import backend_env, peak_rss_mb, print_table, streamlit_process
from bench._streamlit_ws import FINISHED
from bench.classroom_ws import CLICK_TIMEOUT_S, ClickFailed, Learner

#: What a refused page says (the start of :class:`source.platform.admission.OutOfMemoryBudget`'s sentence).
REFUSED = "The lab is full for now: its server is using"
MB = 1024 * 1024


@dataclass
class Tally:
    admitted: int = 0
    refused: int = 0
    refused_in_a_row: int = 0
    failures: list[str] = field(default_factory=list)
    sentence: str = ""
    rss_at_first_refusal: float | None = None
    max_rss_sampled: float = 0.0
    open_learners: list[Learner] = field(default_factory=list)


async def sample_rss(server: psutil.Process, tally: Tally, stop: asyncio.Event) -> None:
    while not stop.is_set():
        tally.max_rss_sampled = max(tally.max_rss_sampled, server.memory_info().rss / MB)
        await asyncio.sleep(0.02)


async def arrive(url: str, n: int, tally: Tally, server: psutil.Process) -> None:
    """One learner: Lab 1 opened, a seat taken by a first user created, the join run; or the refusal read.

    Opening a page takes no seat (visitors share one read-only sandbox): the memory budget is asked
    at the learner's first action, so that is where a refusal shows.
    """
    learner = Learner(url, n)
    s = learner.session
    run = await s.open()
    if run.status not in FINISHED or run.exceptions:
        tally.failures.append(f"learner {n}: Lab 1 did not open (status {run.status}, errors {run.errors()[:1]})")
        await s.close()
        return
    try:
        await learner.take_seat()
    except ClickFailed as exc:
        if REFUSED not in str(exc):
            tally.failures.append(f"learner {n}: {exc}"[:200])
            await s.close()
            return
        tally.refused += 1
        tally.refused_in_a_row += 1
        tally.sentence = tally.sentence or str(exc).removeprefix("error message: ")
        if tally.rss_at_first_refusal is None:
            tally.rss_at_first_refusal = server.memory_info().rss / MB
        await s.close()
        return
    try:
        await learner.join()
    except Exception as exc:  # noqa: BLE001 - counted and reported
        tally.failures.append(f"learner {n}: {type(exc).__name__}: {str(exc)[:160]}")
    tally.admitted += 1
    tally.refused_in_a_row = 0
    tally.open_learners.append(learner)


async def class_until_refused(
    url: str, server: psutil.Process, at_once: int, refusals: int, most: int
) -> tuple[Tally, float]:
    tally = Tally()
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(server, tally, stop))
    started = time.perf_counter()
    n = 0
    try:
        while tally.refused_in_a_row < refusals and n < most:
            await asyncio.gather(*(arrive(url, n + i, tally, server) for i in range(at_once)))
            n += at_once
            if n % 40 == 0:
                rss = server.memory_info().rss / MB
                print(
                    f"  {n} arrived: {tally.admitted} admitted, {tally.refused} refused, RSS {rss:.0f} MB",
                    file=sys.stderr,
                )
    finally:
        stop.set()
        await sampler
        await asyncio.gather(*(learner.session.close() for learner in tally.open_learners))
    return tally, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="PLAB_MEMORY_MB for the server (default 600)")
    parser.add_argument("--at-once", type=int, default=4, help="learners arriving together (default 4)")
    parser.add_argument("--refusals", type=int, default=8, help="refusals in a row that end the class (default 8)")
    parser.add_argument("--most", type=int, default=3000, help="learners at most, refused or not (default 3000)")
    parser.add_argument("--backend", choices=["embedded", "services"], default="embedded")
    args = parser.parse_args()
    env = backend_env(args.backend) | {"PLAB_MEMORY_MB": f"{args.budget:g}", "PLAB_MAX_SANDBOXES": "5000"}
    with streamlit_process(env, timeout=CLICK_TIMEOUT_S) as (url, _, _, process):
        server = psutil.Process(process.pid)
        rss_start = server.memory_info().rss / MB
        tally, seconds = asyncio.run(class_until_refused(url, server, args.at_once, args.refusals, args.most))
        peak = peak_rss_mb(process.pid)
    over = max(peak, tally.max_rss_sampled) > args.budget
    print(f"\nLearners arriving over the websocket on {args.backend} until refused; budget {args.budget:g} MB")
    print_table(
        [
            "admitted",
            "refused",
            "RSS at start",
            "RSS at first refusal",
            "max RSS sampled",
            "peak (VmHWM)",
            "over budget",
            "time",
        ],
        [
            [
                tally.admitted,
                tally.refused,
                f"{rss_start:.0f} MB",
                f"{tally.rss_at_first_refusal:.0f} MB" if tally.rss_at_first_refusal is not None else "never refused",
                f"{tally.max_rss_sampled:.0f} MB",
                f"{peak:.0f} MB",
                "YES" if over else "no",
                f"{seconds:.0f} s",
            ]
        ],
    )
    if tally.sentence:
        print(f"\nWhat a refused learner read: {tally.sentence}")
    if tally.failures:
        print(f"\n{len(tally.failures)} learner(s) failed otherwise, e.g. {tally.failures[:3]}")


if __name__ == "__main__":
    main()
