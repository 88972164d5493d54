"""Lab 3's demo for the instructor: a thousand users to load the N+1 way."""

from __future__ import annotations

from source.labs.repository import seeding
from source.learning.presets import Preset


async def thousand_users() -> str:
    report = await seeding.seed(seeding.SeedRequest(users=1000, scores_per_user=5))
    return (
        f"{report.users:,} users with {report.scores:,} AI-R scores, ready for an N+1 loop "
        f"({report.seconds * 1000:.0f} ms)."
    )


PRESETS = (
    Preset(
        "lab3_users",
        "lab3",
        "Lab 3 · 1,000 users for N+1",
        "1,000 users × 5 AI-R scores: a loop that lazy-loads each user's scores sends 1,001 queries.",
        thousand_users,
    ),
)
