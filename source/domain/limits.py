"""What one learner's sandbox may hold: one limit per resource, which every lab that adds to it reads.

A limit here is about the sandbox, not about one click: Lab 1's form, Lab 3's seed and the
instructor's seed all add users, and each refuses what would take the sandbox past the same
number. How much one click may ask for at once (a seed of at most 2,000 users) is that lab's own bound.
"""

from __future__ import annotations

#: Users in one sandbox, however they got there.
USERS_PER_SANDBOX = 2_500
#: Assessments, and AI-R scores, one user may be given by hand (Lab 1's sample children).
CHILDREN_PER_USER = 50


def users_left(have: int) -> int:
    """How many more users a sandbox holding ``have`` may take."""
    return max(0, USERS_PER_SANDBOX - have)


def too_many_users(have: int, adding: int) -> str:
    """The sentence for a request that would take the sandbox past :data:`USERS_PER_SANDBOX` users."""
    return (
        f"Your sandbox holds {have:,} users; {adding:,} more would pass the {USERS_PER_SANDBOX:,} a sandbox may "
        f"hold, so nothing was added. Add at most {users_left(have):,}, or remove some users first."
    )
