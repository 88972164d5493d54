"""Progress counts only what the learner did: demos and the example design never pass a check or the exercise."""

from __future__ import annotations

from source import COURSE, Sandbox
from source.learning import progress
from source.learning.event_table.example import check_the_example


def test_the_example_design_passes_but_never_counts_as_the_learners_exercise(sandbox: Sandbox) -> None:
    said = sandbox.run(check_the_example(), timeout=120)
    assert "`outbox_events` passes every check: 1,000 events written in" in said
    mine = sandbox.run(progress.load(sandbox))
    assert mine.exercise is None, "an instructor's demo of the answer is nobody's pass"


def test_no_preset_offers_the_exercises_answer() -> None:
    assert all(p.lab != "create" for p in COURSE.presets)
    assert COURSE.labs["create"].presets == ()


def test_a_learner_who_runs_every_preset_has_passed_nothing(sandbox: Sandbox) -> None:
    for preset in COURSE.presets:
        sandbox.run(preset.run(), timeout=180)
    mine = sandbox.run(progress.load(sandbox))
    assert mine.passed_total == 0
    assert mine.revealed == {}
    assert mine.exercise is None


def test_every_lab_counts_a_sandboxs_users_against_one_limit(sandbox: Sandbox) -> None:
    import pytest

    from source.domain.dtos import UserCreate, parse
    from source.domain.errors import InvalidInput
    from source.domain.limits import USERS_PER_SANDBOX
    from source.labs.repository import seeding
    from source.learning import seed as instructor_seed
    from source.services import users

    sandbox.run(seeding.seed(seeding.SeedRequest(users=1000, scores_per_user=1)))
    made = sandbox.run(users.create_user(parse(UserCreate, email="after.seed@example.com", name="After")))
    assert made.email == "after.seed@example.com", "Lab 1 still creates users after Lab 3 seeded 1,000"
    assert len(sandbox.run(users.list_users())) == 1001, "and lists every one of them"
    left = USERS_PER_SANDBOX - 1001
    with pytest.raises(InvalidInput, match=f"Add at most {left:,}"):
        sandbox.run(instructor_seed.seed(instructor_seed.SeedRequest(users=left + 1)))
    report = sandbox.run(instructor_seed.seed(instructor_seed.SeedRequest(users=left)))
    assert report.users == left
    with pytest.raises(InvalidInput, match="the most a sandbox may hold"):
        sandbox.run(users.create_user(parse(UserCreate, email="one.too.many@example.com", name="Too Many")))
