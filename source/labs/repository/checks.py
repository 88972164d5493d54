"""Lab 3's knowledge check (Apply: the repository pattern), with questions on your own N+1 comparison."""

from __future__ import annotations

from source.learning.measurements import Measurement, latest_run
from source.learning.questions import Locked, MultipleChoice, Numeric, Option

LAB = "lab3"
OBJECTIVE = "Apply"
NEEDS = ("users", "lazy_queries", "eager_queries", "lazy_ms", "eager_ms")
UNLOCK = "compare the loading strategies on your users (it records their queries and times)."


def build(found: list[Measurement]) -> list[MultipleChoice | Numeric | Locked]:
    return [*_from_your_run(found), *CHOICES]


def _from_your_run(found: list[Measurement]) -> list[Numeric | Locked]:
    run = latest_run(found, LAB, NEEDS)
    if run is None:
        return [
            Locked(id="lab3_lazy_queries", lab=LAB, objective=OBJECTIVE, prompt="Your N+1 run", unlock_by=UNLOCK),
            Locked(id="lab3_speedup", lab=LAB, objective=OBJECTIVE, prompt="Eager against N+1", unlock_by=UNLOCK),
        ]
    users, lazy_q, eager_q = int(run["users"].value), int(run["lazy_queries"].value), int(run["eager_queries"].value)
    lazy_ms, eager_ms = run["lazy_ms"].value, run["eager_ms"].value
    when = f"your comparison at {run['users'].at:%H:%M:%S} UTC"
    return [
        Numeric(
            id="lab3_lazy_queries",
            lab=LAB,
            objective=OBJECTIVE,
            prompt=f"Your comparison loaded {users:,} users and then each user's scores one user at a time (lazy "
            "loading). How many SQL statements did that send?",
            answer=lazy_q,
            unit="statements",
            working=f"One SELECT for the users, then one per user: {users:,} + 1. The recorder counted {lazy_q:,}; "
            f"the eager strategy needed {eager_q}.",
            measured_from=when,
        ),
        Numeric(
            id="lab3_speedup",
            lab=LAB,
            objective=OBJECTIVE,
            prompt=f"The N+1 loop took {lazy_ms:.1f} ms and eager loading {eager_ms:.1f} ms. How many times faster "
            "was eager loading?",
            answer=lazy_ms / eager_ms,
            unit="×",
            tolerance_rel=0.05,
            working=f"{lazy_ms:.1f} / {eager_ms:.1f} = {lazy_ms / eager_ms:.1f}×: the same rows, far fewer trips.",
            measured_from=when,
        ),
    ]


CHOICES = [
    MultipleChoice(
        id="lab3_selectin",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="After the users' SELECT, what does `selectinload(User.scores)` send?",
        options=[
            Option(
                id="in",
                text="One SELECT of scores WHERE user_id IN (the users' ids), in chunks of up to 500 ids",
                correct=True,
                why="It collects the ids of the users just loaded and fetches all their scores at once, which is "
                "why the eager count stays at two or three statements however many users there are.",
            ),
            Option(
                id="join",
                text="The users again, JOINed to their scores",
                why="That is `joinedload`: one statement, but every user's columns repeat on each of their scores.",
            ),
            Option(
                id="each",
                text="One SELECT per user, sent in parallel",
                why="One per user is exactly the N+1 pattern; a session runs one statement at a time anyway.",
            ),
        ],
    ),
    MultipleChoice(
        id="lab3_async_lazy",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="Under asyncio, what happens on a plain `user.scores` when the scores were not loaded?",
        options=[
            Option(
                id="greenlet",
                text="SQLAlchemy raises `MissingGreenlet`",
                correct=True,
                why="A lazy load is I/O hidden in an attribute access, and an attribute access cannot `await`. "
                "Load it eagerly, or explicitly with `await user.awaitable_attrs.scores`.",
            ),
            Option(
                id="empty",
                text="You get an empty list",
                why="That would silently lie about the data; SQLAlchemy refuses instead.",
            ),
            Option(
                id="blocks",
                text="It blocks the event loop until the scores arrive",
                why="The async driver cannot be used synchronously, so there is nothing to block on: it raises.",
            ),
        ],
    ),
    MultipleChoice(
        id="lab3_repository",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="What does the repository pattern buy InnovateAI's services?",
        options=[
            Option(
                id="boundary",
                text="One place that knows how users are stored and loaded; callers ask for what they need",
                correct=True,
                why="A caller asks `get_all_users_with_scores_eager()` and the loading strategy is decided once, "
                "inside the repository, where a test can also replace it.",
            ),
            Option(
                id="speed",
                text="Faster queries by itself",
                why="The pattern decides *where* loading is written, not how fast it is; the N+1 fix is the speed.",
            ),
            Option(
                id="no_sql",
                text="No SQL is sent until the end of the request",
                why="That describes a unit of work's flush, not a repository.",
            ),
        ],
    ),
]
