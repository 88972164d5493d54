"""Lab 3's page, driven like a learner would, on both backend pairs (the ``app_env`` fixture)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from source.labs.repository import jobs, seeding
from source.labs.repository.seeding import SeedReport, SeedRequest
from source.platform.jobs import Progress
from tests.conftest import assert_no_exception, open_app, page_text
from tests.waiting import eventually_async, rerun_until

PAGE = "views/lab3_repository.py"


def lab3() -> AppTest:
    at = open_app(PAGE)
    assert_no_exception(at)
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert_no_exception(at)
    return at


def stop_buttons(at: AppTest, job: str) -> list[Any]:
    return [b for b in at.button if b.key == f"{job}_stop"]


def start(at: AppTest, job: str) -> AppTest:
    """Press a job's start button, then rerun until it has ended (in AppTest its live fragment never redraws)."""
    click(at, job)
    # Ended means no Stop and the start button enabled again: one run can draw the button while the job still
    # runs and, further down, its panel after it has ended.
    return rerun_until(
        at, lambda page: not stop_buttons(page, job) and not page.button(key=job).disabled, f"the {job} job to end"
    )


def errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


def warnings(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


def successes(at: AppTest) -> str:
    return " ".join(s.value for s in at.success)


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def test_an_empty_sandbox_gets_clear_messages(app_env: str) -> None:
    at = lab3()
    for key in ("lab3_compare", "lab3_scale"):  # background jobs: they end at once, saying why
        start(at, key)
        assert "seed" in warnings(at).lower(), key
    for key in ("lab3_trap", "lab3_guard", "lab3_plans"):
        click(at, key)
        assert "seed" in errors(at).lower() or "sample users" in errors(at), key
    at.text_input(key="lab3_user_id").input("not-a-uuid")
    click(at, "lab3_fetch_lazy")
    assert "'not-a-uuid' is not a user id" in errors(at)
    at.text_input(key="lab3_user_id").input("00000000-0000-4000-8000-000000000000")
    for key in ("lab3_fetch_eager", "lab3_add_scores"):
        click(at, key)
        assert "No user has the id" in errors(at), key


def test_one_user_fetched_both_ways(app_env: str) -> None:
    at = click(lab3(), "lab3_samples")
    user_id = at.text_input(key="lab3_user_id").value
    assert user_id, "the sample user's id is filled in"
    assert user_id in page_text(at), "the known ids are listed"
    click(at, "lab3_add_scores")
    assert "this user now has 3" in successes(at)
    click(at, "lab3_fetch_lazy")
    click(at, "lab3_fetch_eager")
    assert [h.value for h in at.subheader][:2] == [
        "Lazy: alex.smith@innovateai.com",
        "Eager: alex.smith@innovateai.com",
    ]
    assert metrics(at)[0::2] == [("Queries", "2"), ("Queries", "2")]
    sql = [c.value for c in at.code if c.value.startswith("SELECT")]
    assert "= air_scores.user_id" in sql[0]
    assert "IN (" in sql[1]
    assert all("plab_" not in s for s in sql), "the schema is shown once, not on every line"
    assert successes(at).count("No N+1") == 2
    score_tables = [f.value for f in at.dataframe if "air_score" in f.value.columns]
    assert [len(t) for t in score_tables] == [3, 3]


def test_seed_compare_scale_trap_guard_plans_and_remove(app_env: str) -> None:
    at = lab3()
    at.number_input(key="lab3_n").set_value(60)
    at.number_input(key="lab3_m").set_value(2)
    start(at, "lab3_seed")
    assert "Seeded 60 users and 120 scores" in successes(at)
    start(at, "lab3_seed")
    assert "already holds 60 seeded users" in warnings(at)

    at.slider(key="lab3_rtt").set_value(1.0)
    at.number_input(key="lab3_threshold").set_value(3)
    start(at, "lab3_compare")
    table = next(f.value for f in at.dataframe if "strategy" in f.value.columns)
    assert list(table["queries"]) == [61, 61, 2, 1]
    assert all(table["simulated network round trip (ms)"] >= table["queries"] * 1.0)
    assert list(table["N+1 detector"].str.startswith("⚠️ N+1: User.scores ×60")) == [
        True,
        True,
        False,
        False,
    ]
    assert "N+1: `User.scores` loaded 60 times from `source/labs/repository/strategies.py:" in errors(at)
    assert "N+1: `User.scores` loaded 60 times from `source/domain/repositories.py:" in errors(at)
    assert "Checked: all 4 strategies returned the same 60 users and the same 120 scores" in successes(at)

    start(at, "lab3_scale")
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {trace["name"] for trace in spec["data"]}
    assert "selectinload" in names
    assert "lazy loading (awaitable_attrs), 1 ms round trip" in names
    lazy = next(t for t in spec["data"] if t["name"] == "lazy loading (awaitable_attrs)" and t["xaxis"] == "x")
    assert list(lazy["y"]) == [11, 51], "N + 1 statements at N = 10 and 50"
    assert "at every N (checked)" in page_text(at)

    click(at, "lab3_trap")
    assert "`MissingGreenlet`: greenlet_spawn has not been called" in errors(at)
    click(at, "lab3_guard")
    assert "'User.scores' is not available due to lazy='raise'" in errors(at)
    click(at, "lab3_plans")
    # SQLite searches the index; PostgreSQL scans a table this small (120 rows) instead. Both are shown as planned.
    verdict = "uses" if app_env == "embedded" else "does not use"
    assert f"lazy load of one user's scores (sent N times)**: {verdict} `ix_air_scores_user_id`" in page_text(at)
    assert any(c.value.startswith(("SEARCH", "Seq Scan", "Bitmap", "Index")) for c in at.code), "the plan itself"

    click(at, "lab3_unseed")  # it asks first
    click(at, "lab3_unseed_yes")
    assert "Removed 60 seeded users" in successes(at)
    assert "Seeded 60 users" not in successes(at), "the seed's report went with its users"
    sources = "\n".join(c.value for c in at.code)
    for real in ("async def load_lazy", "async def load_selectin", "async def capture_queries", "def detect"):
        assert real in sources, f"the page shows the real source: {real}"


@pytest.fixture
def held_seed(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Seeding waits until the returned event is set or Stop is pressed, then runs for real: the running state, held."""
    gate = threading.Event()
    real = seeding.seed

    async def held(request: SeedRequest, progress: Progress | None = None) -> SeedReport:
        async def go_on() -> bool:
            return gate.is_set() or (progress is not None and progress.stopping)

        await eventually_async(go_on, "the test to let the seed go on, or Stop")
        return await real(request, progress)  # after a Stop, the real seed ends before it writes

    monkeypatch.setattr(jobs, "seed", held)  # what SeedRunner.start calls
    yield gate
    gate.set()


def test_the_seed_runs_on_when_the_learner_leaves_and_its_result_waits(
    app_env: str, held_seed: threading.Event
) -> None:
    at = lab3()
    at.number_input(key="lab3_n").set_value(50)
    at.number_input(key="lab3_m").set_value(2)
    click(at, "lab3_seed")
    assert stop_buttons(at, "lab3_seed"), "a Stop button while it runs"
    assert at.button(key="lab3_seed").disabled, "Seed is disabled while it runs"
    click(at, "lab3_samples")  # another click on the page does not cancel it
    assert stop_buttons(at, "lab3_seed"), "still running after an unrelated click"
    click(at, "lab3_compare")
    assert "Your sandbox is running a seed already" in errors(at), "one Lab 3 job at a time in a sandbox"
    at.switch_page("views/home.py").run()  # and leaving the page does not either
    at.switch_page(PAGE).run()
    assert_no_exception(at)
    assert stop_buttons(at, "lab3_seed"), "still running after the learner came back"
    held_seed.set()
    rerun_until(at, lambda page: not stop_buttons(page, "lab3_seed"), "the seed to end")
    assert "Seeded 50 users and 100 scores" in successes(at), "the result shows once it is done"
    assert not at.button(key="lab3_seed").disabled
    at.switch_page("views/home.py").run()
    at.switch_page(PAGE).run()
    assert "Seeded 50 users and 100 scores" in successes(at), "and is still there after leaving and coming back"


def test_stop_ends_the_seed_and_says_so(app_env: str, held_seed: threading.Event) -> None:
    at = lab3()
    click(at, "lab3_seed")
    stop_buttons(at, "lab3_seed")[0].click().run()
    assert_no_exception(at)
    rerun_until(at, lambda page: not stop_buttons(page, "lab3_seed"), "the stopped seed to end")
    assert "Seeding was stopped before it started: nothing was added." in " ".join(i.value for i in at.info)
    assert "Seeded" not in successes(at), "no report was invented for a stopped seed"
    assert not at.button(key="lab3_seed").disabled
