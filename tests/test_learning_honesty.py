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
