"""Class mode's panels in the app: the passcode, a class and its dashboard, the projector, joining and leaving.

AppTest runs the whole app (navigation shell and sidebar included) on each backend pair. Learners other
than the one AppTest plays are sandboxes opened beside it that join and answer through the same hooks a
page calls; the dashboard is then read as the instructor sees it (AppTest's fragments do not tick, so
each check reruns the page).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import segno
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from source import Sandbox, web
from source.learning import progress
from source.learning.classroom import classes, dashboard, feed, membership, passcode
from source.learning.classroom.classes import ClassInfo
from source.learning.classroom.store import ClassStore
from source.web import classroom
from tests.conftest import ROOT, assert_no_exception, configure_app, give_seat, page_text

PASSCODE = "tuesday-morning-42"
INSTRUCTOR = "views/instructor.py"
JOIN = "views/join_class.py"
LAB3_RUN = {"users": (50.0, "users"), "lazy_queries": (51.0, "statements"), "eager_queries": (2.0, "statements")}


@pytest.fixture(autouse=True)
def fresh_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with nobody's wrong passcodes remembered."""
    monkeypatch.setattr(classroom, "GATE", passcode.PasscodeGate())
    dashboard.forget_kept()


@pytest.fixture
def class_mode(app_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PLAB_INSTRUCTOR_PASSCODE", PASSCODE)
    return app_env


@pytest.fixture
def running(class_mode: str) -> Iterator[list[ClassInfo]]:
    """Classes started during the test; each is ended afterwards."""
    configure_app()  # the app's backends for this test's configuration, before a class is started on them
    budget = ClassStore(web.backends().redis).budget
    limit, budget.call_s = budget.call_s, 5.0  # a loaded machine answers late; these tests are not about timeouts
    made: list[ClassInfo] = []
    yield made
    b = web.backends()
    for info in made:
        b.runtime.run(classes.end_class(ClassStore(b.redis), info.code))
    budget.call_s = limit


def app(page: str, **query: str) -> AppTest:
    configure_app()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for name, value in query.items():
        at.query_params[name] = value
    if web.TOKEN_PARAM not in query:
        give_seat(at)  # a learner who has acted already (a visitor's first action: tests/test_seats.py)
    at.run()
    at.switch_page(page).run()
    assert_no_exception(at)
    return at


def unlock(at: AppTest, typed: str = PASSCODE) -> AppTest:
    at.text_input(key="ins_passcode").input(typed)
    at.button(key="ins_passcode_submit").click().run()
    assert_no_exception(at)
    return at


def start(running: list[ClassInfo], name: str = "AppTest class") -> ClassInfo:
    b = web.backends()
    info = b.runtime.run(classes.start_class(ClassStore(b.redis), name, 1, 30))
    running.append(info)
    return info


def learners(info: ClassInfo, names: list[str]) -> list[Sandbox]:
    """Sandboxes beside the app's, each joined to ``info`` (released with every sandbox after the test)."""
    boxes = []
    for name in names:
        box = web.backends().open_sandbox()
        box.run(membership.join(box, info.code, name))
        boxes.append(box)
    return boxes


def table(at: AppTest, column: str) -> pd.DataFrame | None:
    """The grid (at the desk) or the plain table (on the projector) with ``column``."""
    return next((d.value for d in [*at.dataframe, *at.table] if column in d.value.columns), None)


def texts(at: AppTest) -> str:
    return " ".join(e.value for kind in ("success", "error", "info", "warning") for e in getattr(at, kind))


# -- the Instructor page ----------------------------------------------------------------------------
def test_without_a_passcode_class_mode_is_off_and_says_how_to_turn_it_on(app_env: str) -> None:
    at = app(INSTRUCTOR)
    assert "set `PLAB_INSTRUCTOR_PASSCODE`" in " ".join(i.value for i in at.info)
    assert not [t for t in at.text_input if t.key == "ins_passcode"], "nothing to type a passcode into"
    keys = {b.key for b in at.button}
    assert {"ins_seed", "ins_reset", "ins_preset_lab1_story"} <= keys, "today's own-sandbox tools stay"
    assert "ins_example" not in keys, "the Create exercise's answer is not offered"
    assert "outbox_events" not in page_text(at)


def test_a_wrong_passcode_gets_a_sentence_repeated_tries_wait_and_nothing_is_revealed(
    class_mode: str, running: list[ClassInfo]
) -> None:
    info = start(running)
    at = app(INSTRUCTOR)
    for _ in range(passcode.FREE_TRIES - 1):
        unlock(at, "a guess")
        assert [e.value for e in at.error] == ["That is not the instructor passcode."]
    unlock(at, "another guess")
    assert "Tries from here are slowed down" in at.error[0].value
    unlock(at)  # the right passcode, too soon: not even looked at
    assert at.error[0].value.startswith("Too many wrong passcodes: wait")
    assert not {"ins_class_start", "ins_class_end", "ins_lock"} & {b.key for b in at.button}, "still locked"
    shown = page_text(at)
    for secret in (info.code, info.name, PASSCODE, "outbox_events"):
        assert secret not in shown, f"{secret!r} is on the page before the passcode"
    assert "ins_example" not in {b.key for b in at.button}
    assert at.session_state["ins_passcode"] == "", "the session keeps no copy of the typed passcode"


def test_the_passcode_unlocks_class_mode_and_a_class_starts_with_a_code_a_link_and_a_qr_code(
    class_mode: str, running: list[ClassInfo]
) -> None:
    at = unlock(app(INSTRUCTOR))
    assert "Class mode is unlocked in this browser tab." in [s.value for s in at.success]
    assert "ins_example" in {b.key for b in at.button}, "the Create exercise's answer, now offered"
    at.button(key="ins_class_start").click().run()
    assert "Type a class name first." in [e.value for e in at.error]
    at.text_input(key="ins_class_name").input("AppTest class")
    at.number_input(key="ins_class_hours").set_value(12)
    at.button(key="ins_class_start").click().run()
    assert "must be from 0.25 to 8; 12 is outside" in " ".join(e.value for e in at.error)
    at.number_input(key="ins_class_hours").set_value(1)
    at.button(key="ins_class_start").click().run()
    assert_no_exception(at)
    said = " ".join(s.value for s in at.success)
    assert "*AppTest class* is running: its join code is **" in said
    code = said.split("join code is **", 1)[1][:6]
    running.append(ClassInfo(code, "AppTest class", 0, 0, 30, 0))
    assert any(code in h.proto.body for h in at.get("html")), "the code in large type"
    assert any(f"join?class={code}" in m.value for m in at.markdown), "and the join link"
    assert at.get("image"), "and the QR code"
    assert {"ins_projector", "ins_class_end", "ins_lock"} <= {b.key for b in at.button}
    assert {d.key for d in at.get("download_button")} == {"ins_class_csv", "ins_class_progress_csv"}
    at.button(key="ins_lock").click().run()
    assert "ins_class_end" not in {b.key for b in at.button}, "locked again: no class on the page"
    assert code not in page_text(at)


def test_the_join_qr_code_is_served_as_a_png_whose_every_module_is_one_sharp_square(
    class_mode: str, running: list[ClassInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone at the back of the room reads the projected code: lossless, black or white, no blurred edges."""
    served: list[tuple[Any, str]] = []
    real_add = MediaFileManager.add

    def add(self: MediaFileManager, data: Any, mimetype: str, *args: Any, **kwargs: Any) -> str:
        served.append((data, mimetype))
        return real_add(self, data, mimetype, *args, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add", add)
    at = unlock(app(INSTRUCTOR))
    at.text_input(key="ins_class_name").input("QR class")
    at.button(key="ins_class_start").click().run()
    assert_no_exception(at)
    code = " ".join(s.value for s in at.success).split("join code is **", 1)[1][:6]
    running.append(ClassInfo(code, "QR class", 0, 0, 30, 0))
    link = next(m.value for m in at.markdown if "Join at **" in m.value).split("**")[1]
    assert link.endswith(f"join?class={code}")
    images = [(data, mimetype) for data, mimetype in served if str(mimetype).startswith("image/")]
    assert images, "the QR code was served"
    assert {mimetype for _, mimetype in images} == {"image/png"}, "never a JPEG"
    png = images[-1][0]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    picture = Image.open(io.BytesIO(png)).convert("L")
    width, height = picture.size
    assert width == height <= 220, "no wider than it is shown: nothing scales it down"
    pixels = picture.load()
    assert pixels is not None
    assert {pixels[x, y] for x in range(width) for y in range(height)} == {0, 255}, "only black and white"
    # The image, read back module by module, is the link's QR symbol (with its quiet zone), each module a square
    # of whole pixels of one colour.
    symbol = [list(row) for row in segno.make(link, error="m").matrix_iter(scale=1, border=classroom.QR_BORDER)]
    scale, rest = divmod(width, len(symbol))
    assert rest == 0
    assert scale >= 3, "large enough to scan"
    for r, row in enumerate(symbol):
        for c, dark in enumerate(row):
            block = {pixels[c * scale + dx, r * scale + dy] for dx in range(scale) for dy in range(scale)}
            assert block == {0 if dark else 255}, (r, c, block)


def test_the_dashboard_shows_the_roster_progress_answers_and_the_class_plot(
    class_mode: str, running: list[ClassInfo]
) -> None:
    info = start(running)
    ada, grace, linus = learners(info, ["Ada", "Grace", "Linus"])
    for box, kind, label in ((ada, "right", ""), (grace, "right", ""), (linus, "wrong", "many_to_many")):
        box.run(feed.visited(box, "1 · Data models", "lab1"))
        box.run(feed.answered(box, "lab1_rel_type", "lab1", kind, label))  # type: ignore[arg-type]
    for i, box in enumerate((ada, grace, linus)):
        box.run(feed.measured(box, "lab3", f"run{i}", {k: (v * (i + 1), u) for k, (v, u) in LAB3_RUN.items()}))
    at = unlock(app(INSTRUCTOR))
    roster = table(at, "Last active")
    assert roster is not None
    assert list(roster["Learner"]) == ["Ada", "Grace", "Linus"]
    assert list(roster["Page"]) == ["1 · Data models"] * 3
    assert list(roster["1"]) == ["✓ 1/5", "✓ 1/5", "✓ 0/5"], "visited, and checks passed of the lab's five"
    answers = table(at, "Most common wrong answer")
    assert answers is not None
    row = answers[answers["Question"].str.contains("relationship type")].iloc[0]
    assert (row["Answered"], row["Right"], row["Most common wrong answer"], row["Learners"]) == (
        3,
        2,
        "Many-to-many",
        1,
    )
    assert "association table" in row["Why it is wrong"]
    at.radio(key=classroom.LAB_KEY).set_value("lab3").run()
    assert_no_exception(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    named = {text for trace in spec["data"] for text in trace.get("text", [])}
    assert named == {"Ada", "Grace", "Linus"}, "everyone's Lab 3 runs in one plot"


def test_projector_mode_is_large_anonymous_and_keeps_the_sandbox_link_off_the_wall(
    class_mode: str, running: list[ClassInfo]
) -> None:
    info = start(running)
    (ada,) = learners(info, ["Ada"])
    ada.run(feed.measured(ada, "lab1", "r", {"statements": (3.0, "statements"), "scores_removed": (3.0, "rows")}))
    at = unlock(app(INSTRUCTOR))
    assert "lab" in at.query_params, "the instructor's own sandbox link, before projecting"
    at.button(key="ins_projector").click().run()
    assert_no_exception(at)
    assert dict(at.query_params) == {"board": info.code}, "only the class's code: no sandbox token"
    roster = table(at, "Last active")
    assert roster is not None
    assert list(roster["Learner"]) == ["Learner 1"]
    assert not at.dataframe, "plain tables, whose type grows with the page's"
    assert "Ada" not in page_text(at)
    assert "Ada" not in at.get("plotly_chart")[0].proto.spec
    assert any("html { font-size: 125%" in h.proto.body for h in at.get("html")), "large type, no sidebar"
    keys = {b.key for b in at.button}
    assert not keys & {"ins_seed", "ins_class_end", "ins_example"}, "nothing of the instructor's sandbox"
    assert not at.get("download_button")
    at.button(key="ins_projector").click().run()
    assert "board" not in at.query_params
    assert "lab" in at.query_params, "back at the desk, the link comes back"


def test_a_board_link_without_the_passcode_shows_nothing_of_the_class_or_the_sandbox(
    class_mode: str, running: list[ClassInfo]
) -> None:
    info = start(running)
    learners(info, ["Ada"])
    at = app(INSTRUCTOR, board=info.code)
    assert "lab" not in at.query_params
    assert at.text_input(key="ins_passcode") is not None
    assert "Ada" not in page_text(at)
    assert info.name not in page_text(at)
    assert "ins_seed" not in {b.key for b in at.button}
    unlock(at)
    roster = table(at, "Last active")
    assert roster is not None
    assert list(roster["Learner"]) == ["Learner 1"], "the board opens in projector mode"
    assert "lab" not in at.query_params


def test_a_board_link_of_a_class_that_ended_shows_no_other_class(class_mode: str, running: list[ClassInfo]) -> None:
    other = start(running, "AppTest other")
    learners(other, ["Ada"])
    at = unlock(app(INSTRUCTOR, board="ZZZZZZ"))
    assert "No class with the code ZZZZZZ is running" in texts(at)
    assert "Ada" not in page_text(at)
    assert other.code not in page_text(at), "never another class on the wall"
    at.button(key="ins_projector").click().run()
    assert "board" not in at.query_params
    assert other.code in page_text(at), "back at the desk, the running classes"
    forged = unlock(app(INSTRUCTOR, board="**x**](http://example.com)"))
    assert "The class in this page's address is not a join code this lab hands out." in texts(forged)
    assert "example.com" not in page_text(forged)


def test_ending_a_class_asks_first_then_deletes_it(class_mode: str, running: list[ClassInfo]) -> None:
    info = start(running)
    (ada,) = learners(info, ["Ada"])
    at = unlock(app(INSTRUCTOR))
    at.button(key="ins_class_end").click().run()
    assert "deletes its roster, answers and measurements" in " ".join(w.value for w in at.warning)
    at.button(key="ins_class_end_yes").click().run()
    assert_no_exception(at)
    assert f"({info.code}) has ended: its 1 learner(s)' class data is deleted." in texts(at)
    b = web.backends()
    assert b.runtime.run(classes.find(ClassStore(b.redis), info.code)) is None
    ada.run(feed.visited(ada, "1 · Data models", "lab1"))
    assert membership.remembered(ada) is None


def test_the_passing_design_is_offered_after_the_passcode_and_counts_for_nobody(
    class_mode: str, running: list[ClassInfo]
) -> None:
    info = start(running)
    at = unlock(app(INSTRUCTOR))
    token = at.session_state[web.TOKEN_KEY]
    box, _ = web.backends().sandboxes.find(token)
    assert box is not None
    box.run(membership.join(box, info.code, "Instructor"))  # even an instructor seated in a class
    at.button(key="ins_example").click().run()
    assert_no_exception(at)
    assert "`outbox_events` passes every check" in " ".join(s.value for s in at.success)
    assert box.run(progress.load(box)).exercise is None
    b = web.backends()
    shot = b.runtime.run(dashboard.snapshot(ClassStore(b.redis), info.code, "create"))
    assert shot is not None
    assert shot.runs == [], "the demo fed no class"
    assert not shot.learners[0].exercise


# -- the learner's side -------------------------------------------------------------------------------
def test_a_learner_joins_by_link_sees_the_class_in_the_sidebar_and_leaves(
    app_env: str, running: list[ClassInfo]
) -> None:
    info = start(running, "AppTest join")
    at = app(JOIN, **{"class": info.code})
    assert at.text_input(key="join_code").value == info.code, "the link fills in the code"
    at.text_input(key="join_name").input("ada@example.com")
    at.button(key="join_submit").click().run()
    assert "not an email address" in " ".join(e.value for e in at.error)
    at.text_input(key="join_name").input("\x07\x08")
    at.button(key="join_submit").click().run()
    assert "control characters" in " ".join(e.value for e in at.error)
    at.text_input(key="join_name").input("Ada")
    at.button(key="join_submit").click().run()
    assert_no_exception(at)
    assert "You joined *AppTest join* as **Ada**" in " ".join(s.value for s in at.success)
    assert "Your class" in [s.value for s in at.sidebar.subheader]
    at.switch_page("views/lab1_data_models.py").run()
    at.radio(key="kc_lab1_rel_type").set_value("many_to_many")
    at.button(key="kc_lab1_rel_type_submit").click().run()
    assert_no_exception(at)
    b = web.backends()
    shot = b.runtime.run(dashboard.snapshot(ClassStore(b.redis), info.code, None))
    assert shot is not None
    assert shot.learners[0].page == "1 · Data models"
    assert shot.questions["lab1_rel_type"].top_wrong == "many_to_many"
    at.sidebar.button(key="class_leave").click().run()
    at.sidebar.button(key="class_leave_yes").click().run()
    assert_no_exception(at)
    assert "You left *AppTest join*" in " ".join(s.value for s in at.sidebar.success)
    assert "Your class" not in [s.value for s in at.sidebar.subheader]
    shot = b.runtime.run(dashboard.snapshot(ClassStore(b.redis), info.code, None))
    assert shot is not None
    assert shot.learners == []


def test_joining_by_code_refuses_a_wrong_code_and_a_full_class(app_env: str, running: list[ClassInfo]) -> None:
    b = web.backends()
    info = b.runtime.run(classes.start_class(ClassStore(b.redis), "AppTest full", 1, 2))
    running.append(info)
    learners(info, ["Ada", "Grace"])
    at = app(JOIN)
    at.text_input(key="join_code").input("O0O0O0")
    at.text_input(key="join_name").input("Linus")
    at.button(key="join_submit").click().run()
    assert "is not a join code" in " ".join(e.value for e in at.error)
    at.text_input(key="join_code").input("ZZZZZZ")
    at.button(key="join_submit").click().run()
    assert "No class with the code ZZZZZZ is running" in " ".join(e.value for e in at.error)
    at.text_input(key="join_code").input(info.code)
    at.button(key="join_submit").click().run()
    assert f"The class {info.code} is full (2 learners)" in " ".join(e.value for e in at.error)
    assert "Your class" not in [s.value for s in at.sidebar.subheader]
    assert at.text_input(key="join_name").value == "Linus", "nothing the learner typed is lost"


def test_a_learner_in_no_class_sees_no_class_anywhere(app_env: str) -> None:
    at = app("views/lab1_data_models.py")
    assert "Your class" not in [s.value for s in at.sidebar.subheader]
    token: Any = at.session_state[web.TOKEN_KEY]
    box, _ = web.backends().sandboxes.find(token)
    assert box is not None
    assert not membership.may_be_seated(box), "looked up once, then known: no call on later clicks"
