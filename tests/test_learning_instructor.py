"""The instructor page: reset, seed (bounded, in the background, with progress and Stop), every preset, the class
view and the CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from source import Sandbox
from source.course import COURSE
from source.domain.errors import InvalidInput, LabError
from source.domain.models import AIRScore, DomainEvent, User
from source.learning import measurements, presets, seed_job
from source.learning.seed import BATCH, SeedReport, SeedRequest, parse_request, seed
from source.platform.jobs import Progress
from tests.conftest import assert_no_exception, open_app
from tests.waiting import eventually, rerun_until

PAGE = "views/instructor.py"


def instructor() -> AppTest:
    at = open_app(PAGE, timeout=180)
    assert_no_exception(at)
    return at


def count(sandbox: Sandbox, model: Any, **where: Any) -> int:
    async def go() -> int:
        async with sandbox.engine.connect() as conn:
            stmt = select(func.count()).select_from(model).filter_by(**where)
            return int((await conn.execute(stmt)).scalar_one())

    return sandbox.run(go())


def test_seed_writes_what_it_reports_and_moves_progress(sandbox: Sandbox) -> None:
    progress = Progress()
    report = sandbox.run(
        seed(SeedRequest(users=450, assessments_per_user=1, scores_per_user=2, pending_events=300), progress)
    )
    assert (report.users, report.assessments, report.scores) == (450, 450, 900)
    assert report.events == 450 + 900 + 300, "one USER_CREATED per user, one SCORE_CALCULATED per score, the backlog"
    assert (progress.done, progress.total, progress.fraction) == (750, 750, 1.0)
    assert count(sandbox, User) == 450
    assert count(sandbox, AIRScore) == 900
    assert count(sandbox, DomainEvent, status="pending") == 300
    again = sandbox.run(seed(SeedRequest(users=10), Progress()))
    assert again.users == 10
    assert count(sandbox, User) == 460, "a second seed adds to the first without email clashes"


@pytest.mark.parametrize(
    ("values", "told"),
    [
        ({"users": 0}, "users"),
        ({"users": 2001}, "users"),
        ({"users": 10, "scores_per_user": 11}, "scores_per_user"),
        ({"users": 10, "pending_events": -1}, "pending_events"),
        ({"users": 10, "pending_events": 10_001}, "pending_events"),
        ({"users": "many"}, "users"),
    ],
)
def test_seed_sizes_out_of_range_are_refused(values: dict[str, Any], told: str) -> None:
    with pytest.raises(InvalidInput, match=f"Nothing was seeded.*{told}"):
        parse_request(**values)


def stop_buttons(at: AppTest) -> list[Any]:
    return [b for b in at.button if b.key == "ins_seed_stop"]


def wait_for_the_seed(at: AppTest) -> AppTest:
    """Rerun the page until the background seed has ended (AppTest's fragments never tick by themselves)."""
    return rerun_until(at, lambda page: not stop_buttons(page), "the seed to end")


def successes(at: AppTest) -> str:
    return " ".join(s.value for s in at.success)


@pytest.fixture
def held_seed(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Seeding waits until the returned event is set, then runs for real: the running state, held still."""
    gate = threading.Event()
    real = seed

    async def held(request: SeedRequest, progress: Progress | None = None) -> SeedReport:
        await asyncio.to_thread(gate.wait)  # a Stop cancels this wait once the seed's grace has passed
        return await real(request, progress)

    monkeypatch.setattr(seed_job, "seed", held)
    yield gate
    gate.set()


def test_a_background_seed_reports_what_it_wrote_and_is_kept(sandbox: Sandbox) -> None:
    runner = seed_job.SeedRunner.of(sandbox)
    job = runner.start(SeedRequest(users=300, assessments_per_user=1, scores_per_user=1, pending_events=200))
    eventually(lambda: runner.running() is None, "the seed to finish")
    assert job.progress.fraction == 1.0
    assert runner.last is not None
    assert (runner.last.users, runner.last.scores, runner.last.events) == (300, 300, 300 + 300 + 200)
    assert runner.last_note is None
    assert count(sandbox, User) == 300
    assert seed_job.SeedRunner.of(sandbox) is runner, (
        "an instructor who comes back finds the same runner and its report"
    )


def test_a_second_seed_is_refused_while_one_runs_and_stop_says_nothing_was_written(
    sandbox: Sandbox, held_seed: threading.Event
) -> None:
    runner = seed_job.SeedRunner.of(sandbox)
    job = runner.start(SeedRequest(users=10))
    assert runner.running() is job
    with pytest.raises(LabError, match="already running"):
        runner.start(SeedRequest(users=10))
    job.stop()
    assert job.describe().startswith("Stopping")
    eventually(lambda: runner.running() is None, "the stopped seed to end")
    assert runner.last is None, "no report was invented for a stopped seed"
    assert runner.last_note == "Seeding was stopped before it wrote anything."
    assert count(sandbox, User) == 0


class StopAfterFirstBatch(Progress):
    """Cancels the seed's task (as Stop does) right after its first batch was committed."""

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "done" and value >= BATCH:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()


def test_a_stopped_seed_keeps_the_batches_it_committed_and_says_how_far_it_got(sandbox: Sandbox) -> None:
    runner = seed_job.SeedRunner.of(sandbox)
    request = SeedRequest(users=3 * BATCH, scores_per_user=1)
    progress = StopAfterFirstBatch()
    runner.launch(lambda p: seed(request, p), progress)
    eventually(lambda: runner.running() is None, "the stopped seed to end")
    assert runner.last is None
    assert runner.last_note is not None
    assert f"stopped after {BATCH:,} of {3 * BATCH:,}" in runner.last_note
    assert count(sandbox, User) == BATCH, "the committed batch stays, nothing after it was written"


def test_a_seed_past_its_time_limit_ends_with_a_sentence(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seed_job.SeedRunner, "time_limit_s", 0.05)
    runner = seed_job.SeedRunner.of(sandbox)

    async def endless(_: Progress) -> SeedReport:
        await asyncio.sleep(3600)
        raise AssertionError("never reached")

    runner.launch(endless)
    eventually(lambda: runner.running() is None, "the seed to be stopped by its limit")
    assert runner.last_note == (
        "Seeding did not finish. It took longer than 0.05 s and was stopped; the batches written before stay in "
        "your sandbox. Ask for fewer rows at once."
    )

    async def driver_gave_up(_: Progress) -> SeedReport:
        raise TimeoutError

    runner.launch(driver_gave_up)  # a driver's own timeout is not mistaken for the limit
    eventually(lambda: runner.running() is None, "the seed to fail")
    assert runner.last_note is not None
    assert "took longer than" not in runner.last_note
    assert "did not answer in time" in runner.last_note


def test_a_reset_stops_the_running_seed_first(sandbox: Sandbox, held_seed: threading.Event) -> None:
    runner = seed_job.SeedRunner.of(sandbox)
    job = runner.start(SeedRequest(users=10))
    sandbox.run(sandbox.reset())
    assert not job.running, "reset waited until the seed had ended"
    held_seed.set()
    assert count(sandbox, User) == 0
    assert seed_job.SeedRunner.of(sandbox) is not runner, "the reset sandbox starts with a fresh runner"


def test_the_page_refuses_an_out_of_range_seed_and_seeds_a_valid_one(app_env: str) -> None:
    at = instructor()
    at.number_input(key="ins_users").set_value(5000)
    at.button(key="ins_seed").click().run()
    assert_no_exception(at)
    assert "less than or equal to 2000" in " ".join(e.value for e in at.error)
    assert not stop_buttons(at), "nothing was started"
    at.number_input(key="ins_users").set_value(120)
    at.number_input(key="ins_pending").set_value(500)
    at.button(key="ins_seed").click().run()
    assert_no_exception(at)
    wait_for_the_seed(at)
    assert "Seeded 120 users, 240 assessments, 600 scores and 1,220 events in" in successes(at)
    assert not at.button(key="ins_seed").disabled


def test_the_seed_runs_in_the_background_and_its_result_survives_navigation(
    app_env: str, held_seed: threading.Event
) -> None:
    at = instructor()
    at.number_input(key="ins_users").set_value(50)
    at.button(key="ins_seed").click().run()
    assert_no_exception(at)
    assert stop_buttons(at), "a Stop button while it runs"
    assert at.button(key="ins_seed").disabled, "Seed is disabled while it runs"
    at.button(key="ins_preset_lab1_story").click().run()  # another click on the page does not cancel it
    assert stop_buttons(at), "still running after an unrelated click"
    at.switch_page("views/home.py").run()  # and navigating away does not either
    at.switch_page(PAGE).run()
    assert stop_buttons(at), "still running after the instructor came back"
    held_seed.set()
    wait_for_the_seed(at)
    assert "Seeded 50 users" in successes(at), "the result shows once it is done"
    assert not at.button(key="ins_seed").disabled
    at.switch_page("views/home.py").run()
    at.switch_page(PAGE).run()
    assert "Seeded 50 users" in successes(at), "and is still there after navigating away and back"


def test_stop_on_the_page_ends_the_seed_and_says_so(app_env: str, held_seed: threading.Event) -> None:
    at = instructor()
    at.button(key="ins_seed").click().run()
    stop_buttons(at)[0].click().run()
    assert_no_exception(at)
    wait_for_the_seed(at)
    assert "Seeding was stopped before it wrote anything." in " ".join(w.value for w in at.info)
    assert "Seeded" not in successes(at)
    assert not at.button(key="ins_seed").disabled, "a new seed may start"


@pytest.mark.parametrize("preset", COURSE.presets, ids=lambda p: p.id)
def test_every_preset_sets_up_its_demo(app_env: str, preset: presets.Preset) -> None:
    at = instructor()
    at.button(key=f"ins_preset_{preset.id}").click().run()
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    said = " ".join(s.value for s in at.success)
    assert preset.title in said
    expected = {
        "lab1_story": "Alex Smith: 2 assessments and 3 scores; Jane Doe: 2 assessments and 3 scores.",
        "lab2_pressure": "against a bound of 800 ms",
        "lab2_timeouts": "timeout(s)",
        "lab3_users": "1,000 users with 5,000 AI-R scores",
        "lab4_cold": "Cold cache: 2 user(s), none cached, counters at zero",
        "lab5_backlog": "A backlog of 5,000 pending events",
        "lab5_broker_down": "The broker is down and the publisher is running",
    }[preset.id]
    assert expected in said


def test_class_view_and_csv_export_hold_every_measurement(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    exported: list[bytes] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self: MemoryMediaFileStorage, data: Any, mimetype: str, kind: Any, filename: str | None = None) -> str:
        if mimetype == "text/csv":
            exported.append(data if isinstance(data, bytes) else str(data).encode())
        return original(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    at = instructor()
    assert "No measurements yet" in " ".join(i.value for i in at.info)
    at.button(key="ins_preset_lab1_story").click().run()
    at.number_input(key="ins_users").set_value(50)
    for _ in range(2):
        at.button(key="ins_seed").click().run()
        wait_for_the_seed(at)
    assert_no_exception(at)
    assert {h.value for h in at.subheader} >= {"Instructor"}, "seeding records its own measurements"
    tables = [d.value for d in at.dataframe]
    assert any(len(t) == 2 and "seeded_users (users)" in t.columns for t in tables), "two seed runs, one row each"
    assert at.get("plotly_chart"), "two runs draw a plot"
    rows = list(csv.DictReader(io.StringIO(exported[-1].decode())))
    assert [r["value"] for r in rows if r["name"] == "seeded_users"] == ["50", "50"]
    assert set(rows[0]) == set(measurements.CSV_COLUMNS)


def test_reset_empties_the_sandbox(app_env: str) -> None:
    at = instructor()
    at.button(key="ins_preset_lab1_story").click().run()
    at.button(key="ins_reset").click().run()
    assert_no_exception(at)
    assert "cannot be undone" in " ".join(w.value for w in at.warning), "it asks first"
    assert not any("empty again" in s.value for s in at.success), "nothing is emptied on one click"
    at.button(key="ins_reset_yes").click().run()
    assert_no_exception(at)
    assert any("empty again" in s.value for s in at.success)
    assert "cannot be undone" not in " ".join(w.value for w in at.warning), "the question is gone once answered"
    assert "No measurements yet" in " ".join(i.value for i in at.info), "measurements go with the sandbox"


def test_a_pool_preset_leaves_its_result_where_lab_2_shows_it(app_env: str) -> None:
    at = instructor()
    at.button(key="ins_preset_lab2_pressure").click().run()
    assert_no_exception(at)
    at.switch_page("views/lab2_connectivity.py").run()
    assert_no_exception(at)
    assert any("K = 200" in h.value for h in at.subheader), "Lab 2 shows the preset's run as the last result"
