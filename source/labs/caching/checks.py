"""Lab 4's knowledge check (Remember: Redis data structures; Analyze: caching strategies), from your own reads:
the same window of reads as the page's tiles and formula."""

from __future__ import annotations

from source.learning.measurements import Measurement, latest_run
from source.learning.questions import Locked, MultipleChoice, Numeric, Option

LAB = "lab4"
NEEDS = ("hits", "misses", "cache_ms", "db_ms")
UNLOCK = "run the cached reads (they record hits, misses and the time of each part)."


def build(found: list[Measurement]) -> list[MultipleChoice | Numeric | Locked]:
    return [*_from_your_reads(found), *CHOICES]


def _from_your_reads(found: list[Measurement]) -> list[Numeric | Locked]:
    run = latest_run(found, LAB, NEEDS)
    if run is None:
        return [
            Locked(id="lab4_hit_ratio", lab=LAB, objective="Analyze", prompt="Your hit ratio", unlock_by=UNLOCK),
            Locked(id="lab4_half", lab=LAB, objective="Analyze", prompt="Halving T_db", unlock_by=UNLOCK),
        ]
    hits, misses = int(run["hits"].value), int(run["misses"].value)
    # The page's window: every read since the reset (a run recorded before reads were counted has hits and misses only).
    reads = int(run["reads"].value) if "reads" in run else hits + misses
    without_redis = reads - hits - misses
    t_cache, t_db = run["cache_ms"].value, run["db_ms"].value
    when = f"your reads at {run['hits'].at:%H:%M:%S} UTC"
    questions: list[Numeric | Locked] = []
    if reads:
        others = (
            f", and {without_redis:,} that could not use Redis (they went to the database, like a miss)"
            if without_redis
            else ""
        )
        questions.append(
            Numeric(
                id="lab4_hit_ratio",
                lab=LAB,
                objective="Analyze",
                prompt=f"Your last {reads:,} cached reads since the counters were reset (the window the page's tiles "
                f"and formula use) made {hits:,} hits and {misses:,} misses{others}. What was their hit ratio H, "
                "between 0 and 1?",
                answer=hits / reads,
                unit="",
                tolerance_abs=0.01,
                working=f"H = hits / reads = {hits} / {reads} = {hits / reads:.3f}.",
                measured_from=when,
            )
        )
    need = 0.5 + t_cache / t_db if t_db > 0 else 2.0
    if need <= 1:
        questions.append(
            Numeric(
                id="lab4_half",
                lab=LAB,
                objective="Analyze",
                prompt=f"You measured T_cache = {t_cache:.3f} ms and T_db = {t_db:.3f} ms. With "
                "T_avg = H·T_cache + (1 − H)·(T_cache + T_db), what hit ratio H makes T_avg half of T_db?",
                answer=need,
                unit="",
                tolerance_abs=0.02,
                working=f"T_avg = T_cache + (1 − H)·T_db = T_db / 2 gives H = 1/2 + T_cache/T_db = {need:.3f}.",
                measured_from=when,
            )
        )
    return questions


CHOICES = [
    MultipleChoice(
        id="lab4_leaderboard",
        lab=LAB,
        objective="Remember",
        prompt="Which Redis structure keeps a leaderboard of AI-R scores, always ordered by score?",
        options=[
            Option(
                id="zset",
                text="A sorted set (ZADD, ZREVRANGE)",
                correct=True,
                why="Each member has a score and Redis keeps them ordered, so the top ten is one ZREVRANGE 0 9.",
            ),
            Option(id="hash", text="A hash", why="A hash maps fields to values with no order at all."),
            Option(
                id="list",
                text="A list",
                why="A list keeps insertion order; re-ordering on every new score would be your job, and slow.",
            ),
        ],
    ),
    MultipleChoice(
        id="lab4_profile",
        lab=LAB,
        objective="Remember",
        prompt="A user's cached profile has a dozen fields and you update one at a time. Which structure fits?",
        options=[
            Option(
                id="hash",
                text="A hash (HSET, HGET, HGETALL)",
                correct=True,
                why="One key per user, one field per attribute: HSET changes one field without rewriting the rest.",
            ),
            Option(
                id="string",
                text="A string holding JSON",
                why="It works, but every change rewrites the whole JSON, and two writers can overwrite each other.",
            ),
            Option(id="set", text="A set", why="A set holds unique members with no values: no field names."),
        ],
    ),
    MultipleChoice(
        id="lab4_strategy",
        lab=LAB,
        objective="Analyze",
        prompt="A profile is read thousands of times a minute and edited about once a day. Which strategy fits?",
        options=[
            Option(
                id="read_through",
                text="Read-through with a TTL, and delete the key when the profile is edited",
                correct=True,
                why="Almost every read is a hit; the rare edit invalidates the key so nobody reads a stale profile "
                "for longer than the next read.",
            ),
            Option(
                id="write_behind",
                text="Write-behind, writing to the database later",
                why="That speeds up frequent *writes* and risks losing them; here writes are rare.",
            ),
            Option(
                id="none", text="No cache", why="Thousands of identical reads a minute is the textbook case for one."
            ),
        ],
    ),
    MultipleChoice(
        id="lab4_stampede",
        lab=LAB,
        objective="Analyze",
        prompt="A hot key expires and a hundred requests miss it at the same moment. What protects the database?",
        options=[
            Option(
                id="single_flight",
                text="Let one request reload it while the others wait for its result (a lock, or single flight)",
                correct=True,
                why="One database read instead of a hundred: the others are served from the refilled cache.",
            ),
            Option(
                id="longer_ttl",
                text="A longer TTL",
                why="The stampede only moves to the later expiry; it still happens.",
            ),
            Option(
                id="bigger_pool",
                text="A bigger connection pool",
                why="That lets the hundred reads hit the database faster: more load, not less.",
            ),
        ],
    ),
]
