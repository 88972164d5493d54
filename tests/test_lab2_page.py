"""Lab 2's page as a learner uses it: initialise, watch the pool, run and compare experiments."""

from __future__ import annotations

import json
from typing import Any

from streamlit.testing.v1 import AppTest

from source.labs.pooling import config
from tests.conftest import assert_no_exception, open_app, page_text, unavailable
from tests.waiting import rerun_until

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


def stop_buttons(at: AppTest) -> list[Any]:
    return [b for b in at.button if b.key == "lab2_stop"]


def wait_for_the_experiment(at: AppTest, limit_s: float = 60.0) -> AppTest:
    """Rerun the page until the background experiment has ended (AppTest's fragments never tick by themselves).

    The limit is a liveness bound, not a speed target.
    """
    return rerun_until(at, lambda page: not stop_buttons(page), "the experiment to end", within_s=limit_s)


def run_experiment(at: AppTest, **values: float | bool) -> AppTest:
    for key, value in values.items():
        if key == "compare":
            at.checkbox(key="lab2_compare").set_value(bool(value))
        else:
            at.number_input(key=f"lab2_{key}").set_value(float(value))
    at.button(key="lab2_run").click().run()
    assert_no_exception(at)
    return wait_for_the_experiment(at)


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
    assert all(line.endswith("_already existed_") for line in second)
    assert len(second) == 2
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


def charts(at: AppTest) -> list[dict[str, Any]]:
    """Every plotly chart on the page, as the figure's JSON."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_running_the_experiment_shows_metrics_and_charts(app_env: str) -> None:
    at = open_lab2(app_env)
    run_experiment(at, k=20, d=5, size=2, overflow=0, timeout=5.0, compare=True)
    found = metrics(at)
    assert found["Wall time"][0].endswith(" ms")
    assert found["Throughput"][0].endswith(" req/s")
    assert found["Completed"] == ["20", "20"], "pooled and NullPool both served every request"
    assert found["Timeouts"] == ["0", "0"]
    assert found["Connections opened"] == ["2", "20"], "the pool reuses two; NullPool opens one per request"
    text = page_text(at)
    assert "asyncio.sleep" in text, "the page says the hold time is injected"
    assert "asyncio.Semaphore" in text, "the NullPool stand-ins are named"
    assert "asyncio.wait_for" in text, "the NullPool stand-ins are named"
    assert "that bound" in text
    assert "It opened **2 connections**" in text

    figures = charts(at)
    assert len(figures) == 3, "the pool timeline, the waits curves and the connect-time box plot"
    waits = next(f for f in figures if "share of all requests" in json.dumps(f["layout"]))
    curves = {trace["name"]: trace for trace in waits["data"]}
    assert set(curves) == {"pool: held a connection (20)", "new connection per request: held a connection (20)"}
    for curve in curves.values():
        assert len(curve["x"]) == 20, "one wait per request"
        assert curve["x"] == sorted(curve["x"]), "sorted"
        assert curve["y"][-1] == 1.0, "every request got a connection"
    timeline = next(f for f in figures if "requests waiting" in json.dumps(f["layout"]))
    checked_out = next(t for t in timeline["data"] if t["name"] == "checked out")
    assert max(checked_out["y"]) == 2, "both connections of the pool were lent out"
    assert checked_out["y"][-1] == 0, "and all came back"
    assert timeline["layout"]["yaxis"]["tickformat"] == "d", "whole connections get whole-number ticks"


def test_a_tiny_pool_timeout_is_reported_not_raised(app_env: str) -> None:
    at = open_lab2(app_env)
    run_experiment(at, k=20, d=200, size=1, overflow=0, timeout=0.1, compare=False)
    found = metrics(at)
    timeouts = int(found["Timeouts"][0])
    assert timeouts > 0
    assert int(found["Completed"][0]) + timeouts == 20
    assert any("TimeoutError" in w.value for w in at.warning)
    text = page_text(at)
    assert f"**{timeouts}** gave up after pool_timeout" in text
    assert "that bound" not in text, "no ratio to a bound that assumes every request was served"
    assert len(at.get("plotly_chart")) == 2, "the pool timeline and the waits curve; no NullPool run"
    waits = next(f for f in charts(at) if "share of all requests" in json.dumps(f["layout"]))
    gave_up = next(t for t in waits["data"] if t["name"].startswith("pool: gave up"))
    assert len(gave_up["x"]) == timeouts, "the requests that gave up are drawn too, at the time they gave up"
    assert min(gave_up["x"]) >= 100 * 0.9, "none gave up before pool_timeout"


def test_out_of_range_values_are_refused_by_the_widgets(app_env: str) -> None:
    at = open_lab2(app_env)
    limits = " ".join(c.value for c in at.caption)
    assert f"K ≤ {config.MAX_REQUESTS}" in limits
    assert f"D ≤ {config.MAX_DELAY_MS} ms" in limits
    at.number_input(key="lab2_k").set_value(9999.0)
    at.number_input(key="lab2_size").set_value(float("inf"))
    at.number_input(key="lab2_overflow").set_value(float("nan"))
    at.button(key="lab2_run").click().run()
    assert_no_exception(at)  # a forged infinity cannot take the page down
    wait_for_the_experiment(at)
    # Each widget refuses a value beyond its bounds and keeps its last valid one (the default).
    assert at.number_input(key="lab2_k").value == 100
    assert at.number_input(key="lab2_size").value == 5
    assert "K = 100," in at.subheader[0].value
    assert "pool_size = 5," in at.subheader[0].value


def test_sqlite_explains_itself_before_any_run(app_env: str) -> None:
    at = open_lab2(app_env)
    notes = " ".join(i.value for i in at.info)
    if app_env == "embedded":
        assert "one writer at a time" in notes
        assert "opens a file" in notes
        assert "cheap" not in notes, "the time to open one is measured, not asserted"
    else:
        assert "one writer at a time" not in notes


def test_the_experiment_runs_in_the_background_and_its_result_survives_navigation(app_env: str) -> None:
    at = open_lab2(app_env)
    for key, value in {"k": 40, "d": 100, "size": 1, "timeout": 10.0}.items():
        at.number_input(key=f"lab2_{key}").set_value(float(value))  # about 4 s: long enough to watch
    at.checkbox(key="lab2_compare").set_value(False)
    at.button(key="lab2_run").click().run()
    assert_no_exception(at)
    assert stop_buttons(at), "a Stop button while it runs"
    assert at.button(key="lab2_run").disabled, "Run is disabled while it runs"
    at.toggle(key="lab2_live").set_value(True).run()  # another click on the page does not cancel it
    assert stop_buttons(at), "still running after an unrelated click"
    at.switch_page("views/lab1_data_models.py").run()  # and navigating away does not either
    at.switch_page("views/lab2_connectivity.py").run()
    assert stop_buttons(at), "still running after the learner came back"
    wait_for_the_experiment(at)
    assert metrics(at)["Completed"] == ["40"], "the result shows once it is done"
    assert not at.button(key="lab2_run").disabled
    at.switch_page("views/lab1_data_models.py").run()
    at.switch_page("views/lab2_connectivity.py").run()
    assert metrics(at)["Completed"] == ["40"], "and is still there after navigating away and back"


def test_stop_ends_the_experiment_and_says_so(app_env: str) -> None:
    at = open_lab2(app_env)
    for key, value in {"k": 100, "d": 200, "size": 1, "timeout": 10.0}.items():
        at.number_input(key=f"lab2_{key}").set_value(float(value))  # 20 s unless stopped
    at.button(key="lab2_run").click().run()
    stop_buttons(at)[0].click().run()
    assert_no_exception(at)
    wait_for_the_experiment(at)
    assert "stopped before it finished" in " ".join(i.value for i in at.info)
    assert "Completed" not in metrics(at), "no result was invented for a stopped run"


def test_a_new_run_hides_the_previous_result_until_it_ends(app_env: str) -> None:
    at = run_experiment(open_lab2(app_env), k=5, d=1, size=5, compare=False)
    assert metrics(at)["Completed"] == ["5"]
    for key, value in {"k": 100, "d": 200, "size": 1, "timeout": 10.0}.items():
        at.number_input(key=f"lab2_{key}").set_value(float(value))  # 20 s unless stopped
    at.button(key="lab2_run").click().run()
    assert_no_exception(at)
    assert stop_buttons(at), "the second experiment runs"
    assert "Completed" not in metrics(at), "the previous result is not shown under the progress bar"
    assert "previous result is hidden" in page_text(at)
    stop_buttons(at)[0].click().run()
    wait_for_the_experiment(at)
    assert metrics(at)["Completed"] == ["5"], "a stopped run replaces nothing: the previous result is back"
