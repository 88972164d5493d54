"""Class mode's logic on both backends: codes, names, caps, the running totals, expiry, ending, and the passcode.

Every class a test starts is ended after it (the real Redis is shared with other tests), and every
test reads back what the instructor's dashboard would read: the totals, never the raw writes.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from source import Backends, Sandbox, Settings
from source.domain.errors import InvalidInput, LabError
from source.learning import measurements
from source.learning.classroom import classes, dashboard, export, feed, figures, keys, membership, passcode, rules
from source.learning.classroom.answers import kind_of, label_text, wrong_label
from source.learning.classroom.classes import ClassInfo
from source.learning.classroom.keys import ClassKeys
from source.learning.classroom.store import ClassStore
from source.platform.config import Secret
from tests.waiting import eventually

T = TypeVar("T")
LAB3 = {"users": (100.0, "users"), "lazy_queries": (101.0, "statements"), "eager_queries": (2.0, "statements")}


def run(backends: Backends, work: Coroutine[Any, Any, T]) -> T:
    return backends.runtime.run(work, timeout=30)


@pytest.fixture
def store(backends: Backends, monkeypatch: pytest.MonkeyPatch) -> Iterator[ClassStore]:
    """The class store on the shared client; its calls may take longer than a click's budget (a loaded machine
    answers late, and these tests are not about timeouts)."""
    dashboard.forget_kept()
    found = ClassStore(backends.redis)
    monkeypatch.setattr(found.budget, "call_s", 5.0)
    yield found
    dashboard.forget_kept()


@pytest.fixture
def started(backends: Backends, store: ClassStore) -> Iterator[list[ClassInfo]]:
    """Classes the test starts (append to it); every one is ended afterwards."""
    made: list[ClassInfo] = []
    yield made
    for info in made:
        run(backends, classes.end_class(store, info.code))


@pytest.fixture
def a_class(backends: Backends, store: ClassStore, started: list[ClassInfo]) -> ClassInfo:
    info = run(backends, classes.start_class(store, "Tuesday's class", 1, 30))
    started.append(info)
    return info


@pytest.fixture
def learners(backends: Backends, store: ClassStore) -> Iterator[list[Sandbox]]:
    boxes = [backends.open_sandbox() for _ in range(3)]
    yield boxes
    for box in boxes:
        backends.release(box)


def join_all(boxes: list[Sandbox], info: ClassInfo) -> None:
    for i, box in enumerate(boxes):
        box.run(membership.join(box, info.code, f"Learner{i}"))


def class_keys(backends: Backends, code: str) -> list[str]:
    async def scan() -> list[str]:
        return [k async for k in backends.redis.scan_iter(match=ClassKeys(code).pattern, count=500)]

    return run(backends, scan())


# -- codes and names ---------------------------------------------------------------------------
def test_a_join_code_is_six_characters_no_one_can_misread() -> None:
    codes = {rules.new_code() for _ in range(200)}
    assert all(len(c) == rules.CODE_LENGTH and set(c) <= set(rules.CODE_ALPHABET) for c in codes)
    assert not set("O0I1L") & set(rules.CODE_ALPHABET)
    assert len(codes) > 190, "codes are random"
    assert rules.join_code(" k7m-2qx ") == "K7M2QX", "typed in any case, with a space or a dash"


@pytest.mark.parametrize(
    ("typed", "said"),
    [("", "Type the class's join code"), ("K7M2Q", "is not a join code"), ("K7M2Q0", "there is no O, 0")],
)
def test_a_bad_join_code_gets_its_sentence(typed: str, said: str) -> None:
    with pytest.raises(InvalidInput, match=said):
        rules.join_code(typed)


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("", "Type a display name"),
        ("   ", "Type a display name"),
        ("x" * 41, "at most 40 characters; this one has 41"),
        ("Ada\nLovelace", "control characters"),
        ("\x00\x01\x02", "control characters"),
        ("Ada\u200bL", "control characters"),
        ("ada@example.com", "not an email address"),
        ("Ada 0612345678", "not a long number"),
        (None, "Type a display name"),
    ],
)
def test_a_display_name_that_is_empty_too_long_control_or_personal_is_refused(typed: Any, said: str) -> None:
    with pytest.raises(InvalidInput, match=said):
        rules.display_name(typed)


def test_a_display_name_is_tidied() -> None:
    assert rules.display_name("  Ada   Lovelace ") == "Ada Lovelace"
    assert rules.display_name("Zoë 🚀") == "Zoë 🚀"


def test_a_class_form_out_of_bounds_says_which_bound(backends: Backends, store: ClassStore) -> None:
    for name, hours, cap, said in (
        ("", 1, 30, "Type a class name"),
        ("Tuesday", 9, 30, r"how long the class runs \(hours\) must be from 0.25 to 8"),
        ("Tuesday", "soon", 30, "must be a number"),
        ("Tuesday", 1, 1, "the number of learners must be from 2 to 200"),
        ("Tuesday", 1, float("nan"), "the number of learners must be from 2 to 200"),
    ):
        with pytest.raises(InvalidInput, match=f"(?i){said}"):
            run(backends, classes.start_class(store, name, hours, cap))


# -- classes -------------------------------------------------------------------------------------
def test_classes_run_side_by_side_and_are_capped(
    backends: Backends, store: ClassStore, started: list[ClassInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    already = len(run(backends, classes.running(store)))
    monkeypatch.setattr(rules, "MAX_CLASSES", already + 2)
    started += [run(backends, classes.start_class(store, f"Class {i}", 1, 10)) for i in range(2)]
    listed = {c.code for c in run(backends, classes.running(store))}
    assert {c.code for c in started} <= listed, "several classes run at once"
    with pytest.raises(LabError, match="classes are running on this lab already"):
        run(backends, classes.start_class(store, "One too many", 1, 10))


def test_every_key_of_a_class_lives_in_its_namespace_and_expires_with_it(
    backends: Backends, store: ClassStore, a_class: ClassInfo, learners: list[Sandbox]
) -> None:
    join_all(learners, a_class)
    box = learners[0]
    box.run(feed.visited(box, "1 · Data models", "lab1"))
    box.run(feed.answered(box, "lab1_rel_type", "lab1", "wrong", "many_to_many"))
    box.run(feed.measured(box, "lab3", "r1", LAB3))
    found = class_keys(backends, a_class.code)
    assert len(found) >= 10
    assert all(k.startswith(f"plab:class:{a_class.code}:") for k in found)
    for key in [*found, keys.seat(box.id)]:
        ttl = run(backends, backends.redis.ttl(key))
        assert 0 < ttl <= 3600 + 1, f"{key} has TTL {ttl}: it must expire with the class"
    own = box.run(_own_keys(box))
    assert not [k for k in own if "class" in k], "nothing of the class is in the learner's own namespace"


async def _own_keys(box: Sandbox) -> list[str]:
    return [k async for k in box.redis.scan_iter(match="*", count=500)]


def test_a_class_expires_by_itself_and_its_learners_forget_it(
    backends: Backends, store: ClassStore, learners: list[Sandbox]
) -> None:
    info = run(backends, classes.open_class(store, "Short", 1.5, 10))
    box = learners[0]
    box.run(membership.join(box, info.code, "Ada"))
    box.run(feed.measured(box, "lab3", "r1", LAB3))
    assert class_keys(backends, info.code)
    eventually(lambda: not class_keys(backends, info.code), "the class's keys to expire", within_s=10)
    assert run(backends, backends.redis.exists(keys.seat(box.id))) == 0
    assert run(backends, classes.find(store, info.code)) is None
    assert info.code not in {c.code for c in run(backends, classes.running(store))}
    box.run(feed.measured(box, "lab3", "r2", LAB3))  # a click after the expiry writes nothing
    assert not class_keys(backends, info.code)
    assert membership.remembered(box) is None
    with pytest.raises(LabError, match=f"No class with the code {info.code} is running"):
        box.run(membership.join(box, info.code, "Ada"))


def test_ending_a_class_deletes_everything_and_the_next_click_writes_nothing(
    backends: Backends, store: ClassStore, learners: list[Sandbox]
) -> None:
    info = run(backends, classes.start_class(store, "Ends early", 1, 10))
    join_all(learners, info)
    for box in learners:
        box.run(feed.answered(box, "lab1_rel_type", "lab1", "right"))
        box.run(feed.measured(box, "lab3", "r", LAB3))
    said = run(backends, classes.end_class(store, info.code))
    assert said == f"The class *Ends early* ({info.code}) has ended: its 3 learner(s)' class data is deleted."
    assert not class_keys(backends, info.code)
    assert all(run(backends, backends.redis.exists(keys.seat(b.id))) == 0 for b in learners)
    box = learners[0]
    assert membership.remembered(box) is not None, "this process still remembers the seat…"
    box.run(feed.visited(box, "1 · Data models", "lab1"))
    assert not class_keys(backends, info.code), "…but the class refuses the write"
    assert membership.remembered(box) is None, "and the seat is forgotten"
    assert run(backends, dashboard.snapshot(store, info.code, "lab3")) is None


# -- joining ---------------------------------------------------------------------------------------
def test_joining_a_wrong_or_full_class_says_so_and_changes_nothing(
    backends: Backends, store: ClassStore, started: list[ClassInfo], learners: list[Sandbox]
) -> None:
    info = run(backends, classes.start_class(store, "Small", 1, 2))
    started.append(info)
    first, second, third = learners
    with pytest.raises(LabError, match="No class with the code ZZZZZZ is running"):
        first.run(membership.join(first, "ZZZZZZ", "Ada"))
    with pytest.raises(InvalidInput, match="not an email address"):
        first.run(membership.join(first, info.code, "ada@example.com"))
    assert first.run(membership.seat_of(first)) is None, "nothing was joined"
    assert "You joined *Small* as **Ada**" in first.run(membership.join(first, info.code, "Ada"))
    second.run(membership.join(second, info.code, "Grace"))
    with pytest.raises(LabError, match=f"The class {info.code} is full \\(2 learners\\)"):
        third.run(membership.join(third, info.code, "Linus"))
    assert third.run(membership.seat_of(third)) is None
    assert first.run(membership.join(first, info.code.lower(), "Ada L")) == "You are in *Small* as **Ada L**."
    shot = run(backends, dashboard.snapshot(store, info.code, None))
    assert shot is not None
    assert [(x.n, x.name) for x in shot.learners] == [(1, "Ada L"), (2, "Grace")], "joining again renames, one seat"


def test_joining_another_class_leaves_the_first_and_leaving_forgets_the_learner(
    backends: Backends, store: ClassStore, started: list[ClassInfo], learners: list[Sandbox]
) -> None:
    one = run(backends, classes.start_class(store, "One", 1, 10))
    two = run(backends, classes.start_class(store, "Two", 1, 10))
    started += [one, two]
    box = learners[0]
    box.run(membership.join(box, one.code, "Ada"))
    box.run(feed.measured(box, "lab3", "r1", LAB3))
    said = box.run(membership.join(box, two.code, "Ada"))
    assert said.startswith("You left *One* and joined *Two*")
    first = run(backends, dashboard.snapshot(store, one.code, "lab3"))
    assert first is not None
    assert first.learners == [], "the first class no longer lists the learner"
    assert first.runs == [], "nor plots their runs"
    assert box.run(membership.leave(box)) == "You left *Two*. Your own work stays in your sandbox."
    assert box.run(membership.seat_of(box)) is None
    assert run(backends, backends.redis.exists(keys.seat(box.id))) == 0
    assert box.run(membership.leave(box)) == "You are not in a class."


def test_a_learner_in_no_class_costs_one_lookup_then_nothing(
    backends: Backends, learners: list[Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = ClassStore.call

    async def counted(self: ClassStore, op: Any, **kw: Any) -> Any:
        calls.append("call")
        return await real(self, op, **kw)

    monkeypatch.setattr(ClassStore, "call", counted)
    box = learners[0]
    assert membership.may_be_seated(box), "unknown until looked up"
    box.run(feed.visited(box, "1 · Data models", "lab1"))
    assert calls == ["call"], "one GET of the sandbox's seat"
    assert not membership.may_be_seated(box)
    for _ in range(5):
        box.run(feed.visited(box, "1 · Data models", "lab1"))
        box.run(feed.answered(box, "lab1_rel_type", "lab1", "right"))
        box.run(feed.measured(box, "lab3", "r", LAB3))
        box.run(measurements.record_run(box, "lab3", LAB3))
    assert calls == ["call"], "and nothing after that"


# -- the running totals --------------------------------------------------------------------------
def test_answers_add_up_per_learner_once_with_the_most_common_wrong_answer(
    backends: Backends, store: ClassStore, a_class: ClassInfo, learners: list[Sandbox]
) -> None:
    join_all(learners, a_class)
    ada, grace, linus = learners
    q = "lab1_rel_type"
    for box, kind, label in (
        (ada, "wrong", "many_to_many"),
        (ada, "wrong", "many_to_many"),  # the same wrong answer twice counts once
        (ada, "revealed", "one_to_one"),  # the second wrong try shows the answer
        (ada, "right", ""),  # right after the answer was shown: not right
        (grace, "wrong", "many_to_many"),
        (grace, "right", ""),
        (grace, "right", ""),  # a second right answer counts once
        (linus, "shown", ""),  # Show me without answering
        (linus, "right", ""),
    ):
        box.run(feed.answered(box, q, "lab1", kind, label))  # type: ignore[arg-type]
    shot = run(backends, dashboard.snapshot(store, a_class.code, None))
    assert shot is not None
    totals = shot.questions[q]
    assert (totals.answered, totals.right, totals.shown) == (3, 1, 2)
    assert (totals.top_wrong, totals.top_wrong_count) == ("many_to_many", 2)
    assert [x.passed for x in shot.learners] == [{}, {"lab1": 1}, {}]


def test_wrong_answers_and_runs_are_bounded(
    backends: Backends, store: ClassStore, a_class: ClassInfo, learners: list[Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "MAX_WRONG_ANSWERS", 3)
    monkeypatch.setattr(rules, "MAX_RUNS_PER_LAB", 5)
    monkeypatch.setattr(rules, "MAX_MARKS_PER_LEARNER", 12)
    join_all(learners, a_class)
    ada, grace, _ = learners
    for i in range(8):
        ada.run(feed.answered(ada, "lab2_bound", "lab2", "wrong", f"answer{i}"))
    wrong = run(backends, backends.redis.zcard(ClassKeys(a_class.code).wrong("lab2_bound")))
    assert wrong == 3, "at most MAX_WRONG_ANSWERS distinct wrong answers per question"
    marks = run(backends, backends.redis.hlen(ClassKeys(a_class.code).marks(1)))
    assert marks <= 12 + 1, "a learner's marks stop growing at their cap"
    grace.run(feed.measured(grace, "lab3", "grace", LAB3))
    for i in range(20):
        ada.run(feed.measured(ada, "lab3", f"ada{i}", LAB3))
    assert run(backends, backends.redis.llen(ClassKeys(a_class.code).runs("lab3"))) == 5
    shot = run(backends, dashboard.snapshot(store, a_class.code, "lab3"))
    assert shot is not None
    assert {r.n for r in shot.runs} == {1, 2}, "each learner's newest run stays, however many runs the others made"
    assert shot.latest()[1].run == "ada19"
    huge = {f"value_{i}": (float(i), "ms") for i in range(100)}
    record = feed.run_record(1, "r", time.time(), huge)
    assert record is not None
    assert len(record) <= rules.MAX_RUN_BYTES
    assert feed.run_record(1, "r", time.time(), {"x": (float("inf"), "ms")}) is None


def test_the_dashboard_rereads_only_when_the_class_changed(
    backends: Backends, store: ClassStore, a_class: ClassInfo, learners: list[Sandbox]
) -> None:
    join_all(learners, a_class)
    first = run(backends, dashboard.snapshot(store, a_class.code, "lab3"))
    assert run(backends, dashboard.snapshot(store, a_class.code, "lab3")) is first, "nothing moved: kept"
    box = learners[0]
    box.run(feed.visited(box, "3 · Repository & N+1", "lab3"))
    second = run(backends, dashboard.snapshot(store, a_class.code, "lab3"))
    assert second is not first
    assert second is not None
    assert second.learners[0].page == "3 · Repository & N+1"
    assert second.learners[0].visited == {"lab3"}


def test_lab5s_plot_sets_drains_through_a_fault_apart_and_shows_what_the_faults_did(
    backends: Backends, store: ClassStore, a_class: ClassInfo, learners: list[Sandbox]
) -> None:
    join_all(learners, a_class)
    quiet, faulty = learners[0], learners[1]
    drain = {"published": (200.0, "events"), "publish_ms": (100.0, "ms"), "batches": (4.0, "batches")}
    quiet.run(measurements.record_run(quiet, "lab5", drain))
    faults = {"held": (50.0, "events"), "crashed": (1.0, "batches"), "dead_lettered": (2.0, "events")}
    faulty.run(measurements.record_run(faulty, "lab5", {**drain, "publish_ms": (400.0, "ms"), **faults}))
    shot = run(backends, dashboard.snapshot(store, a_class.code, "lab5"))
    assert shot is not None
    traces = {t.name: t for t in figures.lab_figure(shot, anonymous=False).data}
    assert list(traces["drain, no fault"].y) == [2000.0]
    assert list(traces["drain, no fault"].text) == ["Learner0"]
    assert list(traces["drain through a fault"].y) == [500.0]
    assert list(traces["drain through a fault"].text) == ["Learner1"]
    rates = ("drain, no fault", "drain through a fault")
    effects = {name: list(t.y) for name, t in traces.items() if name not in rates}
    assert sorted(effects.values()) == [[1.0], [2.0], [50.0]], "each effect once, and no zero drawn for the quiet drain"


def test_a_recorded_run_reaches_the_class_plot_and_the_csv(
    backends: Backends, store: ClassStore, a_class: ClassInfo, learners: list[Sandbox]
) -> None:
    join_all(learners, a_class)
    for i, box in enumerate(learners):
        users = 100.0 * (i + 1)
        box.run(
            measurements.record_run(
                box,
                "lab3",
                {
                    "users": (users, "users"),
                    "lazy_queries": (users + 1, "statements"),
                    "eager_queries": (2.0, "statements"),
                    "lazy_ms": (users / 2, "ms"),
                    "eager_ms": (5.0, "ms"),
                },
            )
        )
    shot = run(backends, dashboard.snapshot(store, a_class.code, "lab3"))
    assert shot is not None
    assert sorted(r.values["users"][0] for r in shot.runs) == [100.0, 200.0, 300.0]
    fig = figures.lab_figure(shot, anonymous=False)
    n_plus_one = next(t for t in fig.data if t.name == "N+1 (lazy loading)")
    assert sorted(n_plus_one.y) == [101.0, 201.0, 301.0]
    assert set(n_plus_one.text) == {"Learner0", "Learner1", "Learner2"}, "one plot, every learner named"
    anonymous = figures.lab_figure(shot, anonymous=True)
    assert set(anonymous.data[0].text) == {"Learner 1", "Learner 2", "Learner 3"}, "projector: no names"
    data = run(backends, export.read_all(store, a_class.code))
    rows = export.measurements_csv(data).splitlines()
    assert rows[0] == ",".join(export.MEASUREMENT_COLUMNS)
    assert sum(",Learner1,lab3," in r for r in rows) == 5, "one row per learner per measurement"
    sheet = export.progress_csv(data, [export.LabColumn("lab3", "3", 5)], now=time.time()).splitlines()
    assert len(sheet) == 4
    assert sheet[1].startswith("1,Learner0,")
    box = learners[0]
    box.run(membership.join(box, a_class.code, "=HYPERLINK(1)"))
    again = run(backends, export.read_all(store, a_class.code))
    assert ",'=HYPERLINK(1),lab3," in export.measurements_csv(again), "a name is never a spreadsheet formula"


def test_the_create_exercise_counts_only_a_learners_own_pass(
    backends: Backends, store: ClassStore, a_class: ClassInfo, learners: list[Sandbox]
) -> None:
    join_all(learners, a_class)
    ada, grace, linus = learners
    ada.run(feed.measured(ada, "create", "a", {"missing": (0.0, "findings")}))
    grace.run(feed.measured(grace, "create", "g", {"missing": (2.0, "findings")}))
    linus.run(feed.muted(feed.measured(linus, "create", "l", {"missing": (0.0, "findings")})))  # a demo
    shot = run(backends, dashboard.snapshot(store, a_class.code, "create"))
    assert shot is not None
    assert [x.exercise for x in shot.learners] == [True, False, False]
    assert [r.n for r in shot.runs] == [1, 2], "a muted demo feeds no class"


def test_a_learner_with_no_progress_for_a_while_is_flagged() -> None:
    now = 10_000.0
    fresh = dashboard.Learner(n=1, name="A", joined=now - 60)
    idle = dashboard.Learner(n=2, name="B", joined=now - 3600, moved=now - rules.STALLED_S - 1)
    busy = dashboard.Learner(n=3, name="C", joined=now - 3600, moved=now - 30)
    assert [x.stalled(now) for x in (fresh, idle, busy)] == [False, True, False]


def test_outliers_are_far_from_the_median_and_need_a_class() -> None:
    assert dashboard.outliers({1: 1.0, 2: 50.0, 3: 1.1}) == [], "three learners are no class to compare with"
    found = dashboard.outliers({1: 1.0, 2: 1.1, 3: 0.9, 4: 1.05, 5: 9.0})
    assert [(o.n, o.value) for o in found] == [(5, 9.0)]
    assert dashboard.outliers({n: 2.0 for n in range(10)}) == []


def test_a_wrong_answer_is_kept_by_what_it_means() -> None:
    from source.course import COURSE
    from source.learning.questions import MultipleChoice, Numeric

    choice = next(q for q in COURSE.questions_for("lab1", []) if isinstance(q, MultipleChoice))
    wrong = next(o for o in choice.options if not o.correct)
    assert wrong_label(choice, wrong.id) == wrong.id
    assert wrong_label(choice, choice.right.id) == ""
    assert label_text(choice, wrong.id) == (wrong.text, wrong.why)
    number = Numeric(
        id="n", lab="lab2", objective="x", prompt="?", answer=400, unit="ms", working="w", measured_from="m"
    )
    assert [wrong_label(number, v) for v in ("500", "100", "0.4", "abc")] == ["high", "low", "unit", ""]
    assert [kind_of(s) for s in ("correct", "wrong", "revealed", "invalid")] == ["right", "wrong", "revealed", None]


# -- the passcode ---------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SECRET = Secret("correct horse")


def test_a_wrong_passcode_gets_a_sentence_and_repeated_tries_are_slowed() -> None:
    clock = Clock()
    gate = passcode.PasscodeGate(clock)
    for _ in range(passcode.FREE_TRIES - 1):
        verdict = gate.check(SECRET, "guess", "ip:1")
        assert (verdict.ok, verdict.message, verdict.wait_s) == (False, "That is not the instructor passcode.", 0)
    slowed = gate.check(SECRET, "guess", "ip:1")
    assert "slowed down: the next is looked at in 1 s" in slowed.message
    refused = gate.check(SECRET, "correct horse", "ip:1")  # even the right one waits its turn
    assert (refused.ok, refused.message) == (False, "Too many wrong passcodes: wait 1 s, then try again.")
    assert gate.check(SECRET, "correct horse", "ip:2").ok, "another client is not slowed by this one"
    clock.now += 1
    assert "next is looked at in 2 s" in gate.check(SECRET, "guess", "ip:1").message, "the wait doubles"
    for _ in range(20):
        clock.now += passcode.MAX_WAIT_S
        last = gate.check(SECRET, "guess", "ip:1")
    assert last.wait_s == passcode.MAX_WAIT_S, "up to a cap"
    clock.now += passcode.MAX_WAIT_S
    assert gate.check(SECRET, "correct horse", "ip:1").ok
    assert gate.check(SECRET, "guess", "ip:1").wait_s == 0, "a right passcode forgets the wrong tries"


def test_a_flood_of_wrong_passcodes_from_many_clients_slows_everyone_and_memory_stays_bounded() -> None:
    clock = Clock()
    gate = passcode.PasscodeGate(clock)
    for i in range(passcode.BURST):
        gate.check(SECRET, "guess", f"session:{i}")
    flooded = gate.check(SECRET, "correct horse", "session:new")
    assert not flooded.ok
    assert flooded.message.startswith("Too many wrong passcodes: wait")
    clock.now += passcode.WINDOW_S + 1
    assert gate.check(SECRET, "correct horse", "session:new").ok
    for i in range(passcode.MAX_CLIENTS + 500):
        clock.now += passcode.WINDOW_S  # slow enough never to flood
        gate.check(SECRET, "guess", f"session:{i}")
    assert len(gate._clients) <= passcode.MAX_CLIENTS


def test_class_mode_without_a_passcode_is_off_and_the_passcode_never_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    verdict = passcode.PasscodeGate().check(None, "anything", "ip:1")
    assert (verdict.ok, verdict.message) == (False, passcode.NOT_ENABLED)
    assert not passcode.PasscodeGate().check(SECRET, None, "ip:1").ok
    monkeypatch.setenv("PLAB_INSTRUCTOR_PASSCODE", "correct horse")
    settings = Settings.load()
    assert settings.instructor_passcode is not None
    assert settings.instructor_passcode.matches("correct horse")
    for shown in (repr(settings), str(settings), f"{settings.instructor_passcode}", repr(settings.instructor_passcode)):
        assert "correct" not in shown
        assert "horse" not in shown
    monkeypatch.delenv("PLAB_INSTRUCTOR_PASSCODE")
    assert Settings.load().instructor_passcode is None
    assert Settings.load({"PLAB_INSTRUCTOR_PASSCODE": "from secrets"}).instructor_passcode == Secret("from secrets")
