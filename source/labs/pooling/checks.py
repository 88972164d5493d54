"""Lab 2's knowledge check (Understand: async patterns, pooling), mostly from your own pool experiment."""

from __future__ import annotations

import math

from source.learning.measurements import Measurement, latest_run
from source.learning.questions import Locked, MultipleChoice, Numeric, Option

LAB = "lab2"
OBJECTIVE = "Understand"
NEEDS = ("requests", "connections", "hold_ms", "wall_ms", "completed")
UNLOCK = "run the experiment in section 3 (it records K, C, D and the wall time)."
UNLOCK_WITHOUT_TIMEOUTS = (
    "run the experiment with a pool_timeout long enough that no request gives up: in your runs so far some "
    "did, and a request that gives up never holds a connection, so ⌈K/C⌉·D bounds nothing there."
)


def build(found: list[Measurement]) -> list[MultipleChoice | Numeric | Locked]:
    return [*_from_your_run(found), *CHOICES]


def _without_timeouts(found: list[Measurement]) -> dict[str, Measurement] | None:
    """The newest run in which no request gave up: only there is ⌈K/C⌉·D a bound the wall time cannot beat.

    A request that gives up after pool_timeout never holds a connection for D, so a run with timeouts
    can finish well under the bound (500 requests, 90 given up, 544 ms against a "bound" of 5,000 ms).
    """
    runs = [m.run for m in found if m.lab == LAB and m.name == "timeouts" and m.value == 0]
    return latest_run([m for m in found if m.run in runs], LAB, NEEDS)


def _from_your_run(found: list[Measurement]) -> list[Numeric | Locked]:
    run = _without_timeouts(found)
    ids = ("lab2_bound", "lab2_throughput", "lab2_double_pool")
    if run is None:
        prompts = ("The lower bound of your run", "The throughput of your run", "Your run with twice the connections")
        unlock = UNLOCK if latest_run(found, LAB, NEEDS) is None else UNLOCK_WITHOUT_TIMEOUTS
        return [
            Locked(id=i, lab=LAB, objective=OBJECTIVE, prompt=p, unlock_by=unlock)
            for i, p in zip(ids, prompts, strict=True)
        ]
    k, c, d = int(run["requests"].value), int(run["connections"].value), run["hold_ms"].value
    wall, completed = run["wall_ms"].value, int(run["completed"].value)
    when = f"your pooled run at {run['wall_ms'].at:%H:%M:%S} UTC"
    rounds = math.ceil(k / c)
    bound = rounds * d
    doubled_rounds = math.ceil(k / (2 * c))
    return [
        Numeric(
            id=ids[0],
            lab=LAB,
            objective=OBJECTIVE,
            prompt=f"Your run fired K = {k} requests at a pool of C = pool_size + max_overflow = {c} connections, "
            f"each holding its connection for D = {d:g} ms. No schedule can finish faster than what wall time, in ms?",
            answer=bound,
            unit="ms",
            tolerance_abs=1.0,
            working=f"At most {c} requests hold a connection at once, so {k} requests need ⌈{k}/{c}⌉ = {rounds} "
            f"rounds of {d:g} ms = {bound:g} ms. Your run measured {wall:.0f} ms, {wall / bound:.2f}× the bound.",
            measured_from=when,
        ),
        Numeric(
            id=ids[1],
            lab=LAB,
            objective=OBJECTIVE,
            prompt=f"That run completed {completed} requests in a wall time of {wall:.1f} ms. "
            "What was its throughput, in requests per second?",
            answer=completed / (wall / 1000),
            unit="req/s",
            tolerance_rel=0.02,
            working=f"Θ = requests / total time = {completed} / {wall / 1000:.4f} s = {completed / (wall / 1000):.0f} "
            "req/s.",
            measured_from=when,
        ),
        Numeric(
            id=ids[2],
            lab=LAB,
            objective=OBJECTIVE,
            prompt=f"Same K = {k} and D = {d:g} ms, but twice the connections (C = {2 * c}). What would the lower "
            "bound be, in ms?",
            answer=doubled_rounds * d,
            unit="ms",
            tolerance_abs=1.0,
            working=f"⌈{k}/{2 * c}⌉ = {doubled_rounds} rounds × {d:g} ms = {doubled_rounds * d:g} ms. More connections "
            "only help while requests queue; the database must also keep up with that many at once.",
            measured_from=when,
        ),
    ]


CHOICES = [
    MultipleChoice(
        id="lab2_await",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="While one request `await`s the database, what does the event loop do?",
        options=[
            Option(
                id="others",
                text="Runs other requests' coroutines until the answer arrives",
                correct=True,
                why="`await` hands control back to the loop, which resumes whichever coroutine is ready: that is "
                "how one thread served all K requests of your experiment at once.",
            ),
            Option(
                id="blocks",
                text="Blocks until the database answers",
                why="That is a synchronous driver. With asyncpg or aiosqlite the wait is an `await`, so the loop is "
                "free; your experiment's K requests would otherwise have taken K × D.",
            ),
            Option(
                id="thread",
                text="Starts a new thread for every waiting request",
                why="asyncio runs every coroutine on one thread; concurrency comes from switching at each `await`.",
            ),
        ],
    ),
    MultipleChoice(
        id="lab2_timeout",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="A request waits for a free connection longer than `pool_timeout`. What happens?",
        options=[
            Option(
                id="raises",
                text="That request gets `sqlalchemy.exc.TimeoutError`; the others go on",
                correct=True,
                why="The pool gives up on that one waiter and fails it fast, which is what the experiment counts as "
                "a pool timeout; requests already holding connections are untouched.",
            ),
            Option(
                id="opens",
                text="The pool opens one more connection beyond max_overflow",
                why="pool_size + max_overflow is a hard cap: that is what protects the database from a stampede.",
            ),
            Option(
                id="waits",
                text="It keeps waiting until a connection is free",
                why="Only with an unbounded timeout. A bounded one turns an overloaded database into fast, "
                "visible failures instead of a pile-up.",
            ),
        ],
    ),
    MultipleChoice(
        id="lab2_overflow",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="What happens to an *overflow* connection when its request gives it back?",
        options=[
            Option(
                id="closed",
                text="It is closed if the pool already keeps pool_size idle connections",
                correct=True,
                why="A QueuePool keeps at most pool_size connections idle; extra ones exist only while load needs "
                "them, which is why Lab 2 saw connections closed while requests were still queued.",
            ),
            Option(
                id="kept",
                text="It stays open in the pool forever",
                why="Then pool_size would mean nothing: every burst would leave pool_size + max_overflow open.",
            ),
            Option(
                id="reset",
                text="The whole pool is reset",
                why="Returning a connection only rolls back that connection's transaction; the pool is untouched.",
            ),
        ],
    ),
]
