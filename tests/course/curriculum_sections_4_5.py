"""The curriculum's sections 4–5 as a notebook runs them, against ``source`` and nothing else.

Run as a script (a fresh interpreter, no Streamlit, no sandbox): the names act on the default
context built from DATABASE_URL / REDIS_URL, or the embedded defaults when those are unset.
Each ``asyncio.run`` is a new event loop, as separate notebook kernels or script steps would be.
It prints one JSON line with what it saw, for the test to check.
"""

import asyncio
import json
import sys

from sqlalchemy import select

from source import *  # noqa: F403 - the curriculum's own import style


async def run_db_setup_and_create_user() -> tuple[User | None, User | None]:  # noqa: F405
    await initialize_db()  # noqa: F405
    user1 = await create_sample_user("alex.smith@innovateai.com", "Alex Smith")  # noqa: F405
    user2 = await create_sample_user("jane.doe@innovateai.com", "Jane Doe")  # noqa: F405
    return user1, user2


async def run_repository_demo(user_id: str) -> dict[str, object]:
    seen: dict[str, object] = {}
    async for session in get_session():  # noqa: F405
        user_repo = UserRepository(session)  # noqa: F405
        user = await user_repo.get_by_id(user_id)
        seen["found"] = user.email if user else None
        seen["by_email"] = (await user_repo.get_by_email("jane.doe@innovateai.com")).name  # type: ignore[union-attr]
        everyone = (await session.execute(select(User))).scalars().all()  # noqa: F405
        seen["users"] = sorted(u.email for u in everyone)
        user_with_scores = await user_repo.get_user_with_scores_eager(user_id)
        seen["alex_scores"] = sorted(s.occupation_code for s in user_with_scores.scores)  # type: ignore[union-attr]
        all_users = await user_repo.get_all_users_with_scores_eager()
        seen["scores_per_user"] = {u.name: len(u.scores) for u in all_users}
        latest = await user_repo.get_latest_score(user_id)
        seen["latest"] = latest.occupation_code if latest else None
    return seen


async def second_run() -> object:
    """Run again: the UNIQUE email refuses the duplicates, and the curriculum gets ``None`` back."""
    return await create_sample_user("alex.smith@innovateai.com", "Alex Smith")  # noqa: F405


def main() -> None:
    user_alex, user_jane = asyncio.run(run_db_setup_and_create_user())
    if user_alex:
        asyncio.run(create_sample_airscore(user_alex.id))  # noqa: F405

        async def later_score() -> None:
            await asyncio.sleep(0.01)  # the curriculum's small delay, for distinct timestamps
            await create_sample_airscore(user_alex.id, occupation_code="DATA_SCI")  # noqa: F405

        asyncio.run(later_score())
    if user_jane:
        asyncio.run(create_sample_airscore(user_jane.id))  # noqa: F405
    seen = asyncio.run(run_repository_demo(user_alex.id)) if user_alex else {}
    seen["duplicate"] = asyncio.run(second_run())
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main()
