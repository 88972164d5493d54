"""Lab 1's demo for the instructor: the story's users with their children."""

from __future__ import annotations

from source.learning.presets import Preset
from source.services import users
from source.services.samples import SAMPLE_USERS, create_sample_users


async def story_users() -> str:
    """Alex and Jane, each with 2 more assessments and 3 more scores; what each has is read back, user by user."""
    names = dict(SAMPLE_USERS)
    made = await create_sample_users()
    have = [(names[email], await users.add_sample_children(user_id, 2, 3)) for email, user_id, _ in made]
    return "; ".join(f"{name}: {a} assessments and {s} scores" for name, (a, s) in have) + "."


PRESETS = (
    Preset(
        "lab1_story",
        "lab1",
        "Lab 1 · Alex and Jane with children",
        "The story's users, with 2 more assessments and 3 more scores each: ready for the cascade delete and the join.",
        story_users,
    ),
)
