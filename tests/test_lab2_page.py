"""Lab 2's page as a learner uses it: initialise, watch the pool, run and compare experiments."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from source import pool_lab
from tests.conftest import assert_no_exception, open_app, page_text, unavailable

PAGE = "views/lab2_connectivity.py"


def open_lab2(app_env: str) -> AppTest:
    at = open_app(PAGE)
    assert_no_exception(at)
    if app_env == "services" and "shared** PostgreSQL pool" not in " ".join(i.value for i in at.info):
        unavailable("the app did not reach PostgreSQL")
    return at


def metrics(at: AppTest) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for metric in at.metric:
        found.setdefault(metric.label, []).append(metric.value)
    return found


def run_experiment(at: AppTest, **values: float | bool) -> AppTest:
    for key, value in values.items():
        if key == "compare":
            at.checkbox(key="lab2_compare").set_value(bool(value))
        else:
            at.number_input(key=f"lab2_{key}").set_value(value)
    at.button(key="lab2_run").click().run()
    assert_no_exception(at)
    return at


def user_lines(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("- **")]


def test_initialise_shows_the_sample_users_and_twice_is_harmless(app_env: str) -> None:
    at = open_lab2(app_env)
    at.button(key="lab2_init").click().run()
    assert_no_exception(at)
    first = user_lines(at)
    assert [line.split("**")[1] for line in first] == ["Alex Smith", "Jane Doe"]
    assert all(line.endswith("_created now_") for line in first)
    at.button(key="lab2_init").click().run()
    assert_no_exception(at)
    second = user_lines(at)
    assert all(line.endswith("_already existed_") for line in second) and len(second) == 2
    ids = [line.split("`")[1] for line in second]
    assert ids == [line.split("`")[1] for line in first], "the same two users, not new ones"
    assert not at.error


def test_pool_status_shows_the_four_counters(app_env: str) -> None:
    at = open_lab2(app_env)
    found = metrics(at)
    for label in ("Size (pool_size)", "Checked in (idle)", "Checked out (in use)", "Overflow"):
        assert label in found, f"missing {label}"
        assert found[label][0].lstrip("-").isdigit(), f"{label} should be a whole number, got {found[label][0]!r}"
    assert int(found["Size (pool_size)"][0]) >= 1
    at.toggle(key="lab2_live").set_value(True).run()
    assert_no_exception(at)
    assert "Overflow" in metrics(at)


def test_running_the_experiment_shows_metrics_and_charts(app_env: str) -> None:
    at = open_lab2(app_env)
    run_experiment(at, k=20, d=5, size=2, overflow=0, timeout=5.0, compare=True)
    found = metrics(at)
    assert found["Wall time"][0].endswith(" ms") and found["Throughput"][0].endswith(" req/s")
    assert found["Completed"] == ["20"] and found["Pool timeouts"] == ["0"]
    assert found["Connections opened"] == ["20"], "NullPool opens one connection per request"
    assert "Opening one (median)" in found
    charts = at.get("plotly_chart")
    assert len(charts) == 2, "the waits histogram and the connect-time box plot"
    waits = json.loads(charts[0].proto.spec)
    assert {trace["type"] for trace in waits["data"]} == {"histogram"}
    assert sum(len(trace["x"]) for trace in waits["data"]) == 40, "one wait per request, both strategies"
    assert "asyncio.sleep" in page_text(at), "the page says the hold time is injected"


def test_a_tiny_pool_timeout_is_reported_not_raised(app_env: str) -> None:
    at = open_lab2(app_env)
    run_experiment(at, k=20, d=200, size=1, overflow=0, timeout=0.1, compare=False)
    found = metrics(at)
    assert int(found["Pool timeouts"][0]) > 0
    assert int(found["Completed"][0]) + int(found["Pool timeouts"][0]) == 20
    assert any("TimeoutError" in w.value for w in at.warning)
    assert len(at.get("plotly_chart")) == 1


def test_out_of_range_values_never_reach_the_database(app_env: str) -> None:
    at = open_lab2(app_env)
    limits = " ".join(c.value for c in at.caption)
    assert f"K ≤ {pool_lab.MAX_REQUESTS}" in limits and f"D ≤ {pool_lab.MAX_DELAY_MS} ms" in limits
    # The widget refuses a value above its max and keeps the last valid one (the default).
    run_experiment(at, k=9999, size=50, compare=False)
    assert not at.error
    header = at.subheader[0].value
    assert "K = 9999" not in header and "pool_size = 50" not in header
    assert int(metrics(at)["Completed"][0]) <= pool_lab.MAX_REQUESTS
