"""Lab 3's page, driven like a learner would, on both backend pairs (the ``app_env`` fixture)."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from tests.conftest import assert_no_exception, open_app, page_text

PAGE = "views/lab3_repository.py"


def lab3() -> AppTest:
    at = open_app(PAGE)
    assert_no_exception(at)
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert_no_exception(at)
    return at


def errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


def successes(at: AppTest) -> str:
    return " ".join(s.value for s in at.success)


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def test_an_empty_sandbox_gets_clear_messages(app_env: str) -> None:
    at = lab3()
    for key in ("lab3_compare", "lab3_scale", "lab3_trap", "lab3_guard", "lab3_plans"):
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
    click(at, "lab3_seed")
    assert "Seeded 60 users and 120 scores" in successes(at)
    click(at, "lab3_seed")
    assert "already holds 60 seeded users" in errors(at)

    at.slider(key="lab3_rtt").set_value(1.0)
    at.number_input(key="lab3_threshold").set_value(3)
    click(at, "lab3_compare")
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

    click(at, "lab3_scale")
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

    click(at, "lab3_unseed")
    assert "Removed 60 seeded users" in successes(at)
    sources = "\n".join(c.value for c in at.code)
    for real in ("async def load_lazy", "async def load_selectin", "async def capture_queries", "def detect"):
        assert real in sources, f"the page shows the real source: {real}"
