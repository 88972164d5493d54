"""The instructor page: reset, seed (bounded, with progress), every preset, the class view and the CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy import func, select
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from source import Sandbox
from source.domain.models import AIRScore, DomainEvent, User
from source.learning import measurements, presets
from source.learning.seed import SeedRequest, parse_request, seed
from source.platform.errors import InvalidInput
from tests.conftest import assert_no_exception, open_app

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
    from source.learning.seed import SeedProgress

    progress = SeedProgress()
    report = sandbox.run(
        seed(SeedRequest(users=450, assessments_per_user=1, scores_per_user=2, pending_events=300), progress)
    )
    assert (report.users, report.assessments, report.scores) == (450, 450, 900)
    assert report.events == 450 + 900 + 300, "one USER_CREATED per user, one SCORE_CALCULATED per score, the backlog"
    assert (progress.done, progress.total, progress.fraction) == (750, 750, 1.0)
    assert count(sandbox, User) == 450
    assert count(sandbox, AIRScore) == 900
    assert count(sandbox, DomainEvent, status="pending") == 300
    again = sandbox.run(seed(SeedRequest(users=10), SeedProgress()))
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


def test_the_page_refuses_an_out_of_range_seed_and_seeds_a_valid_one(app_env: str) -> None:
    at = instructor()
    at.number_input(key="ins_users").set_value(5000)
    at.button(key="ins_seed").click().run()
    assert_no_exception(at)
    assert "less than or equal to 2000" in " ".join(e.value for e in at.error)
    assert not at.success, "nothing was seeded"
    at.number_input(key="ins_users").set_value(120)
    at.number_input(key="ins_pending").set_value(500)
    at.button(key="ins_seed").click().run()
    assert_no_exception(at)
    assert "Seeded 120 users, 240 assessments, 600 scores and 1,220 events" in " ".join(s.value for s in at.success)


@pytest.mark.parametrize("preset", presets.PRESETS, ids=lambda p: p.id)
def test_every_preset_sets_up_its_demo(app_env: str, preset: presets.Preset) -> None:
    at = instructor()
    at.button(key=f"ins_preset_{preset.id}").click().run()
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    said = " ".join(s.value for s in at.success)
    assert preset.title in said
    expected = {
        "lab1_story": "Alex Smith and Jane Doe are there, with 2 assessments and 3 scores each",
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
    assert any("empty again" in s.value for s in at.success)
    assert "No measurements yet" in " ".join(i.value for i in at.info), "measurements go with the sandbox"
