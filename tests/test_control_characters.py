"""A NUL or another control character in anything a learner types is refused with a sentence, on both backends.

PostgreSQL refuses a NUL in text with a driver's message and SQLite stores it: without a check
before the statement the two backends would answer the same input differently. Each lab's text
inputs are tried here with a NUL, a newline, a tab and an escape, and nothing may change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from source import InvalidInput, Sandbox
from source.labs.caching import actions as lab4
from source.labs.data_models import actions as lab1
from source.labs.outbox import actions as lab5
from source.labs.repository import actions as lab3
from source.learning.classroom import rules
from source.learning.questions import parse_number
from source.services import users
from tests.lab5_support import a_user

BAD = ["\x00", "\n", "\t", "\x1b"]
IDS = ["NUL", "newline", "tab", "escape"]


def _inputs(user_id: str, bad: str) -> dict[str, Callable[[], Awaitable[object]]]:
    """Every text input of the labs that reaches a database, with ``bad`` inside it (around it, it is stripped)."""
    profile = {"email": "new@example.com", "name": "New", "occupation_code": None, "education_level": None}
    return {
        "Lab 1 · Create user · email": lambda: lab1.create_user(profile | {"email": f"ne{bad}w@example.com"}),
        "Lab 1 · Create user · name": lambda: lab1.create_user(profile | {"name": f"Ne{bad}w"}),
        "Lab 1 · Create user · occupation": lambda: lab1.create_user(profile | {"occupation_code": f"S{bad}W"}),
        "Lab 3 · user id": lambda: lab3.add_sample_scores(user_id[:8] + bad + user_id[9:]),
        "Lab 4 · Save": lambda: lab4.save_name(user_id, f"Al{bad}ex"),
        "Lab 4 · Save without invalidating": lambda: lab4.rename_without_invalidating(user_id, f"Al{bad}ex"),
        "Lab 5 · occupation code": lambda: lab5.record_score(user_id, f"SW{bad}ENG"),
        "Lab 5 · user id": lambda: lab5.calculate_many(user_id + bad, 2),
    }


@pytest.mark.parametrize("bad", BAD, ids=IDS)
def test_every_labs_text_input_refuses_a_control_character_and_writes_nothing(box: Sandbox, bad: str) -> None:
    async def scenario() -> None:
        user_id = await a_user()
        before = await users.list_users()
        for where, attempt in _inputs(user_id, bad).items():
            with pytest.raises(InvalidInput) as refused:
                await attempt()
            said = str(refused.value)
            assert said.endswith((".", ")")), f"{where}: not a sentence: {said!r}"
            assert len(said) > 20, f"{where}: not a sentence: {said!r}"
            assert "invalid byte sequence" not in said, f"{where}: a driver's message"
        assert await users.list_users() == before, "no user was added or renamed"

    box.run(scenario())


@pytest.mark.parametrize("bad", BAD, ids=IDS)
def test_class_mode_and_the_knowledge_check_refuse_a_control_character_with_a_sentence(bad: str) -> None:
    with pytest.raises(InvalidInput, match="cannot contain control characters"):
        rules.display_name(f"Al{bad}ex")
    with pytest.raises(InvalidInput, match="cannot contain control characters"):
        rules.class_name(f"Data{bad}class")
    with pytest.raises(InvalidInput, match="is not a join code"):
        rules.join_code(f"K7M{bad}QX")
    assert isinstance(parse_number(f"2{bad}50", "ms"), str), "a sentence, not a number"
