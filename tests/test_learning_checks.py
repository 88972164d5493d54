"""Knowledge checks: graders (right, wrong, malformed), Lab 1 and Lab 2 pages, progress per learner."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from functools import partial
from types import SimpleNamespace
from typing import cast

import pytest
from streamlit.testing.v1 import AppTest

from source import Backends, Sandbox, web
from source.course import COURSE
from source.labs.caching import checks as checks_lab4
from source.labs.data_models import checks as checks_lab1
from source.labs.outbox import checks as checks_lab5
from source.labs.pooling import checks as checks_lab2
from source.labs.repository import checks as checks_lab3
from source.learning import measurements, progress
from source.learning.questions import Locked, MultipleChoice, Numeric, grade, parse_number, reveal
from source.web.checks import shuffled
from tests.conftest import assert_no_exception, open_app, page_text, unavailable
from tests.waiting import rerun_until

ALL_CHOICES = [
    *checks_lab1.CHOICES,
    *checks_lab2.CHOICES,
    *checks_lab3.CHOICES,
    *checks_lab4.CHOICES,
    *checks_lab5.CHOICES,
]


@pytest.mark.parametrize("question", ALL_CHOICES, ids=lambda q: q.id)
def test_every_choice_explains_right_and_wrong(question: MultipleChoice) -> None:
    right = grade(question, question.right.id)
    assert right.status == "correct"
    assert question.right.why in right.message
    for option in question.options:
        if option.correct:
            continue
        wrong = grade(question, option.id)
        assert wrong.status == "wrong"
        assert option.why in wrong.message, "the learner is told why their choice is wrong"
        assert "The answer is" not in wrong.message, "a first wrong try gets a hint, not the answer"
        again = grade(question, option.id, tries=2)
        assert again.status == "revealed"
        assert f"The answer is **{question.right.text}**: {question.right.why}" in again.message
    assert reveal(question).status == "revealed"
    assert question.right.why in reveal(question).message
    assert grade(question, None).status == "invalid"
    assert grade(question, "not-an-option").status == "invalid"


def _number(answer: float, **tolerance: float) -> Numeric:
    return Numeric(
        id="q",
        lab="lab2",
        objective="Understand",
        prompt="?",
        answer=answer,
        unit="ms",
        working="w",
        measured_from="m",
        **tolerance,
    )


def test_numbers_are_graded_within_the_stated_tolerance() -> None:
    q = _number(400, tolerance_abs=1)
    assert q.tolerance_text() == "within ±1 ms"
    assert grade(q, "400").passed
    assert grade(q, " 400.9 ms").passed, "the unit may be typed"
    assert grade(q, "1,000").status == "wrong"
    assert "too high" in grade(q, "402").message
    assert "too low" in grade(q, "398").message
    assert "400" not in grade(q, "398").message, "a first wrong number is not told the answer"
    assert "Check the unit" in grade(q, "0.4").message
    shown = grade(q, "398", tries=2)
    assert shown.status == "revealed"
    assert "The answer is 400 ms" in shown.message
    assert "w" in shown.message, "with the working"
    rel = _number(1000, tolerance_rel=0.02)
    assert rel.tolerance_text() == "within ±2 %"
    assert grade(rel, "1,019").passed
    assert grade(rel, "1021").status == "wrong"


@pytest.mark.parametrize("raw", ["", "   ", None, "abc", "4OO", "2,5", "nan", "inf", True])
def test_malformed_numbers_are_invalid_with_a_message(raw: object) -> None:
    result = grade(_number(400, tolerance_abs=1), raw)
    assert result.status == "invalid"
    assert result.message
    assert isinstance(parse_number(raw, "ms"), str)


def _run(lab: str, **values: float) -> list[measurements.Measurement]:
    at = datetime.now(UTC)
    return [measurements.Measurement(at=at, lab=lab, run="r1", name=n, value=v, unit="") for n, v in values.items()]


def _pool_run() -> list[measurements.Measurement]:
    return _run("lab2", requests=100, connections=5, hold_ms=20, wall_ms=437.5, completed=100, timeouts=0)


def test_lab2_bound_questions_skip_a_run_where_requests_gave_up() -> None:
    gave_up = _run("lab2", requests=500, connections=5, hold_ms=50, wall_ms=544, completed=410, timeouts=90)
    assert all(isinstance(q, Locked) for q in checks_lab2.build(gave_up)[:3]), "no bound to ask about"
    locked = checks_lab2.build(gave_up)[0]
    assert isinstance(locked, Locked)
    assert "no request gives up" in locked.unlock_by
    both = _pool_run() + [m.model_copy(update={"run": "r2"}) for m in gave_up]  # the later run had timeouts
    bound = checks_lab2.build(both)[0]
    assert isinstance(bound, Numeric)
    assert bound.answer == 400, "asked about the newest run in which nobody gave up"


def test_lab2_questions_come_from_the_learners_run() -> None:
    assert all(isinstance(q, Locked) for q in checks_lab2.build([])[:3]), "locked until the learner measures"
    bound, throughput, doubled = checks_lab2.build(_pool_run())[:3]
    assert isinstance(bound, Numeric)
    assert isinstance(throughput, Numeric)
    assert isinstance(doubled, Numeric)
    assert bound.answer == 400, "⌈100/5⌉ rounds × 20 ms"
    assert "K = 100" in bound.prompt
    assert "C = pool_size + max_overflow = 5" in bound.prompt
    assert throughput.answer == pytest.approx(100 / 0.4375)
    assert doubled.answer == 200
    assert "437 ms" in bound.working or "438 ms" in bound.working, "the explanation quotes the measured time"


def test_lab3_to_5_numeric_questions_come_from_the_recorded_runs() -> None:
    for builder in (checks_lab3.build, checks_lab4.build, checks_lab5.build):
        assert isinstance(builder([])[0], Locked), "locked until the lab has measured"
    lazy, speedup = checks_lab3.build(
        _run("lab3", users=200, lazy_queries=201, eager_queries=2, lazy_ms=120, eager_ms=15)
    )[:2]
    assert isinstance(lazy, Numeric)
    assert lazy.answer == 201
    assert grade(lazy, "201").passed
    assert grade(lazy, "200").status == "wrong"
    assert isinstance(speedup, Numeric)
    assert speedup.answer == 8
    ratio, half = checks_lab4.build(_run("lab4", hits=90, misses=10, cache_ms=0.1, db_ms=2.0))[:2]
    assert isinstance(ratio, Numeric)
    assert ratio.answer == 0.9
    assert isinstance(half, Numeric)
    assert half.answer == pytest.approx(0.55), "H = 1/2 + T_cache/T_db"
    slow_cache = checks_lab4.build(_run("lab4", hits=1, misses=1, cache_ms=2.0, db_ms=1.0))
    assert "lab4_half" not in {q.id for q in slow_cache}, "no H can halve T_db when the cache is slower than that"
    rate = checks_lab5.build(_run("lab5", published=5000, publish_ms=250))[0]
    assert isinstance(rate, Numeric)
    assert rate.answer == 20_000


# -- on the pages ------------------------------------------------------------------------
def _answer(at: AppTest, question_id: str, value: object) -> AppTest:
    widget = at.radio(key=f"kc_{question_id}") if question_id in {q.id for q in ALL_CHOICES} else None
    if widget is not None:
        widget.set_value(value)
    else:
        at.text_input(key=f"kc_{question_id}").input(str(value))
    at.button(key=f"kc_{question_id}_submit").click().run()
    assert_no_exception(at)
    return at


def _no_button(at: AppTest, key: str) -> bool:
    return not [b for b in at.button if b.key == key]


def _feedback(at: AppTest) -> str:
    return " ".join(el.value for kind in (at.success, at.warning, at.info) for el in kind)


def test_lab1_check_right_wrong_and_unanswered(app_env: str) -> None:
    at = open_app("views/lab1_data_models.py")
    assert_no_exception(at)
    for question in checks_lab1.CHOICES:
        wrong = next(o for o in question.options if not o.correct)
        at = _answer(at, question.id, wrong.id)
        assert wrong.why in _feedback(at)
        at = _answer(at, question.id, question.right.id)
        assert question.right.why in " ".join(s.value for s in at.success)
    at = _answer(at, "lab1_rel_type", None)
    assert "Pick one of the options first." in _feedback(at)
    assert not at.error, "a wrong or missing answer is feedback, not an error"
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert f"Knowledge checks passed: {len(checks_lab1.CHOICES)}/" in sidebar


def test_options_come_in_each_learners_own_order() -> None:
    alice, bob = cast(Sandbox, SimpleNamespace(id="a1b2c3d4e5f6")), cast(Sandbox, SimpleNamespace(id="0f9e8d7c6b5a"))
    mine = [[o.id for o in shuffled(q, alice)] for q in ALL_CHOICES]
    assert mine == [[o.id for o in shuffled(q, alice)] for q in ALL_CHOICES], "the same order on every rerun"
    assert mine != [[o.id for o in shuffled(q, bob)] for q in ALL_CHOICES], "another learner gets another order"
    assert not all(shuffled(q, alice)[0].correct for q in ALL_CHOICES), "the answer is not always listed first"
    assert [sorted(order) for order in mine] == [sorted(o.id for o in q.options) for q in ALL_CHOICES]


def test_a_second_wrong_try_or_show_me_reveals_and_a_revealed_answer_never_passes(app_env: str) -> None:
    at = open_app("views/lab1_data_models.py")
    first, second = checks_lab1.CHOICES[0], checks_lab1.CHOICES[1]
    wrong = next(o for o in first.options if not o.correct)
    at = _answer(at, first.id, wrong.id)
    assert "Hint" in _feedback(at) or wrong.why in _feedback(at)
    assert "The answer is" not in _feedback(at)
    at = _answer(at, first.id, wrong.id)
    assert f"The answer is **{first.right.text}**" in _feedback(at).replace("\\", "")
    at = _answer(at, first.id, first.right.id)
    assert "counts as revealed, not passed" in " ".join(c.value for c in at.caption)
    at.button(key=f"kc_{second.id}_reveal").click().run()
    assert_no_exception(at)
    assert second.right.why in _feedback(at)
    at = _answer(at, second.id, second.right.id)
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert "Knowledge checks passed: 0/" in sidebar, "neither revealed question counts as passed"


def test_lab1_cascade_question_uses_the_learners_delete(app_env: str) -> None:
    from tests.test_lab1_page import add_children, create_user, delete_selected

    at = create_user(open_app("views/lab1_data_models.py"), "casc@example.com", "Casc")
    add_children(at, 2, 3)
    delete_selected(at)
    assert_no_exception(at)
    prompt = " ".join(m.value for m in at.markdown if "Your last delete removed" in m.value)
    assert "2 assessment(s) and 3 score(s)" in prompt
    at = _answer(at, "lab1_cascade_rows", "5")
    assert "5 rows is too low" in _feedback(at)
    assert "6" not in _feedback(at), "the first wrong try is not told the answer"
    at = _answer(at, "lab1_cascade_rows", "six")
    assert "'six' is not a number" in _feedback(at)
    at = _answer(at, "lab1_cascade_rows", "6")
    assert "Correct." in " ".join(s.value for s in at.success)


def test_lab2_check_is_locked_then_graded_against_the_measured_run(app_env: str) -> None:
    at = open_app("views/lab2_connectivity.py")
    assert_no_exception(at)
    assert "Unlocks when you run the experiment" in " ".join(i.value for i in at.info)
    from tests.test_lab2_page import run_experiment

    at = run_experiment(at, k=20, d=10, size=2, overflow=1, timeout=5.0, compare=False)
    prompt = " ".join(m.value for m in at.markdown if "No schedule can finish faster" in m.value)
    assert "K = 20" in prompt
    assert "= 3 connections" in prompt
    assert "D = 10 ms" in prompt
    at = _answer(at, "lab2_bound", "60")  # wrong: 20/3 rounds up to 7
    assert "60 ms is too low" in _feedback(at)
    assert "70" not in _feedback(at)
    at = _answer(at, "lab2_bound", "70 ms")
    assert "⌈20/3⌉ = 7 rounds" in " ".join(s.value for s in at.success)
    at = _answer(at, "lab2_double_pool", "")
    assert "Type a number first." in _feedback(at)
    for choice in checks_lab2.CHOICES:
        at = _answer(at, choice.id, choice.right.id)
    assert not at.error


def test_lab3_check_is_graded_against_the_learners_comparison(app_env: str) -> None:
    at = open_app("views/lab3_repository.py")
    assert_no_exception(at)
    assert "Unlocks when you compare the loading strategies" in " ".join(i.value for i in at.info)
    at.number_input(key="lab3_n").set_value(40)
    at.number_input(key="lab3_m").set_value(2)
    for job in ("lab3_seed", "lab3_compare"):  # each runs in the background: rerun until its Stop is gone
        at.button(key=job).click().run()
        rerun_until(at, partial(_no_button, key=f"{job}_stop"), f"{job} to end")
    assert_no_exception(at)
    prompt = " ".join(m.value for m in at.markdown if "How many SQL statements did that send?" in m.value)
    assert "loaded 40 users" in prompt
    at = _answer(at, "lab3_lazy_queries", "40")
    assert "40 statements is too low" in _feedback(at)
    at = _answer(at, "lab3_lazy_queries", "41")
    assert "40 + 1" in " ".join(s.value for s in at.success)
    for choice in checks_lab3.CHOICES:
        at = _answer(at, choice.id, choice.right.id)
    assert not [e.value for e in at.error if e.icon != "🔁"], "only the N+1 detector's own flags are red"


def test_lab4_check_is_graded_against_the_learners_reads(app_env: str) -> None:
    at = open_app("views/lab4_caching.py")
    assert_no_exception(at)
    at.button(key="lab4_samples").click().run()
    assert "Unlocks when you run the cached reads" in " ".join(i.value for i in at.info)
    for _ in range(3):  # a miss, then two hits
        at.button(key="lab4_fetch_user").click().run()
    assert_no_exception(at)
    prompt = " ".join(m.value for m in at.markdown if "What was their hit ratio" in m.value)
    assert "2 hits and 1 misses" in prompt
    at = _answer(at, "lab4_hit_ratio", "2/3")
    assert "is not a number" in _feedback(at)
    at = _answer(at, "lab4_hit_ratio", "0.5")
    assert "is too low" in _feedback(at)
    assert "0.6667" not in _feedback(at)
    at = _answer(at, "lab4_hit_ratio", "0.667")
    assert "Correct." in " ".join(s.value for s in at.success)
    for choice in checks_lab4.CHOICES:
        at = _answer(at, choice.id, choice.right.id)
    assert not at.error


def test_lab5_drain_is_recorded_and_unlocks_its_question(sandbox: Sandbox) -> None:
    from source.labs.outbox import actions, writes
    from source.labs.pooling.initialise import initialise_with_samples

    user_id = sandbox.run(initialise_with_samples()).users[0].id
    sandbox.run(writes.calculate_many_scores(user_id, 120))
    stats = sandbox.run(actions.event_publisher(interval_seconds=0.05, max_events=50), timeout=60)
    assert stats.published == 120
    found = sandbox.run(measurements.load(sandbox, "lab5"))
    run = measurements.latest_run(found, "lab5", checks_lab5.NEEDS)
    assert run is not None
    assert run["published"].value == 120
    assert run["batches"].value == 3, "50 + 50 + 20"
    rate = checks_lab5.build(found)[0]
    assert isinstance(rate, Numeric)
    assert rate.answer == pytest.approx(120 / (run["publish_ms"].value / 1000))


def test_lab5_page_ends_with_its_check(app_env: str) -> None:
    at = open_app("views/lab5_outbox.py")
    assert_no_exception(at)
    assert "Unlocks when you let the publisher drain the outbox" in " ".join(i.value for i in at.info)
    for choice in checks_lab5.CHOICES:
        wrong = next(o for o in choice.options if not o.correct)
        at = _answer(at, choice.id, wrong.id)
        assert wrong.why in _feedback(at)
        at = _answer(at, choice.id, choice.right.id)
    assert "Knowledge checks passed: 3/" in " ".join(c.value for c in at.sidebar.caption)


# -- progress is the learner's own ---------------------------------------------------------
def test_progress_is_kept_per_sandbox(backends: Backends, sandbox: Sandbox) -> None:
    other = backends.open_sandbox()
    try:
        sandbox.run(progress.pass_check(sandbox, "lab1", "lab1_rel_type"))
        sandbox.run(progress.visit(sandbox, "lab1"))
        sandbox.run(progress.complete_exercise(sandbox, "outbox_events: …"))
        sandbox.run(measurements.record(sandbox, "lab2", "wall_ms", 12.5, "ms"))
        mine, theirs = sandbox.run(progress.load(sandbox)), other.run(progress.load(other))
        assert mine.passed == {"lab1": {"lab1_rel_type"}}
        assert mine.visited == {"lab1"}
        assert mine.exercise
        assert theirs.passed == {}
        assert theirs.visited == set()
        assert theirs.exercise is None
        assert other.run(measurements.load(other)) == []
        assert [m.value for m in sandbox.run(measurements.load(sandbox))] == [12.5]
        sandbox.run(sandbox.reset())
        assert sandbox.run(progress.load(sandbox)).passed == {}, "a reset starts the course afresh"
    finally:
        backends.release(other)


def test_catalogue_links_every_objective_to_registered_labs() -> None:
    assert [o.level for o in COURSE.objectives] == ["Remember", "Understand", "Apply", "Analyze", "Create"]
    for objective in COURSE.objectives:
        assert all(lab in COURSE.labs for lab in objective.labs)
    assert all(lab.checks is not None for lab in COURSE.labs.values() if lab.id != "create")


def test_a_black_holed_redis_costs_progress_not_the_lesson(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis stops answering: the page still renders, answers are still graded, and it says progress is not saved."""
    from sqlalchemy.engine import make_url

    from tests.conftest import REDIS_URL
    from tests.tcp_proxy import TcpProxy

    target = make_url(REDIS_URL)
    prefixes: list[str] = []
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 6379)
    box = None
    try:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setenv("REDIS_URL", target.set(host="127.0.0.1", port=proxy.port).render_as_string(False))
        at = open_app("views/lab1_data_models.py")
        if any("unreachable" in w.value for w in at.sidebar.warning):
            unavailable(" ".join(w.value for w in at.sidebar.warning))
        prefix = re.search(r"plab:[0-9a-f]+:", page_text(at))
        prefixes.extend([prefix.group(0)] if prefix else [])
        question = checks_lab1.CHOICES[0]
        at = _answer(at, question.id, question.right.id)
        proxy.black_hole()
        for _ in range(40):  # a first call times out; then the app's health check knows and calls stop at once
            at.run()
            assert_no_exception(at)
            if "Redis is not answering right now" in " ".join(w.value for w in at.warning):
                break
        assert "Your progress could not be read" in " ".join(w.value for w in at.warning)
        assert "Redis is not answering right now" in " ".join(w.value for w in at.warning)
        second = checks_lab1.CHOICES[1]
        at = _answer(at, second.id, second.right.id)
        assert second.right.why in " ".join(s.value for s in at.success), "grading needs no Redis"
        assert "could not be saved to your progress" in " ".join(c.value for c in at.caption)
        box, _ = web.backends().sandboxes.find(at.session_state[web.TOKEN_KEY])
    finally:
        proxy.restore()  # Redis answers again: the app's sandbox is released over the same line, now
        web.release_every_sandbox()  # a rebuild alone keeps linked sandboxes for the next process
        web.rebuild_backends()
        proxy.close()
        asyncio.run(_drop_keys(prefixes))
    assert box is not None
    assert box.released, "nothing of the sandbox is left for the process's exit (its folder, its keys)"


async def _drop_keys(prefixes: list[str]) -> None:
    """What a sandbox cut off from Redis could not delete on release, over a direct line."""
    from redis.asyncio import Redis

    from tests.conftest import REDIS_URL

    client = Redis.from_url(REDIS_URL)
    try:
        for prefix in prefixes:
            keys = [k async for k in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()
