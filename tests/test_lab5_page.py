"""Lab 5's page as a learner uses it: every control, on both backends.

AppTest does not tick ``run_every`` fragments, so each check reruns the page until the
live panel shows what the background tasks did (the logic is tested in the other Lab 5 files).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from source.labs.outbox import consumers
from tests.conftest import assert_no_exception, open_app, page_text

PAGE = "views/lab5_outbox.py"


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def rerun_until(at: AppTest, label: str, value: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while metric(at, label) != value:
        assert time.monotonic() < deadline, f"{label} stayed {metric(at, label)!r}, wanted {value!r}"
        time.sleep(0.2)
        at.run()
        assert_no_exception(at)


def table(at: AppTest, status: str) -> Any:
    """The pending, published or failed table: the page's last three dataframes, in that order."""
    return at.dataframe[-3 + ("pending", "published", "failed").index(status)].value


def rerun_until_text(at: AppTest, text: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while text not in page_text(at):
        assert time.monotonic() < deadline, f"the page never showed {text!r}"
        time.sleep(0.2)
        at.run()
        assert_no_exception(at)


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert_no_exception(at)
    return at


@pytest.fixture
def page(app_env: str) -> Iterator[AppTest]:
    at = open_app(PAGE)
    assert_no_exception(at)
    click(at, "lab5_samples")
    yield at
    if at.button(key="lab5_stop"):
        click(at, "lab5_stop")
        click(at, "lab5_unlisten")


def test_write_publish_consume_and_the_tables(page: AppTest) -> None:
    at = page
    at.checkbox(key="lab5_fail").check().run()
    click(at, "lab5_calc")
    assert "neither the score nor its event" in " ".join(e.value for e in at.error)
    assert metric(at, "Pending") == "0"
    at.checkbox(key="lab5_fail").uncheck().run()
    at.text_input(key="lab5_occupation").set_value("Data_Engineer").run()
    click(at, "lab5_calc")
    assert metric(at, "Pending") == "1"
    click(at, "lab5_assessment")
    at.number_input(key="lab5_many_n").set_value(30).run()
    click(at, "lab5_many")
    assert metric(at, "Pending") == "32"
    at.number_input(key="lab5_max_events").set_value(10).run()
    at.number_input(key="lab5_max_attempts").set_value(3).run()
    at.number_input(key="lab5_backoff").set_value(0.05).run()
    at.number_input(key="lab5_publishers").set_value(2).run()
    click(at, "lab5_listen")
    click(at, "lab5_start")
    rerun_until(at, "Published", "32")
    click(at, "lab5_start")
    assert "already running" in " ".join(e.value for e in at.error)
    rerun_until_text(at, "{'score.calculated': 31, 'assessment.completed': 1}")  # each event applied once
    assert len(table(at, "published")) == 32
    click(at, "lab5_stop")
    assert "Stopped" in " ".join(s.value for s in at.success)
    at.number_input(key="lab5_retention").set_value(0).run()
    click(at, "lab5_cleanup")
    assert "Deleted 32 published event(s)" in " ".join(s.value for s in at.success)


def test_faults_dead_letter_requeue_and_bad_input(page: AppTest) -> None:
    at = page
    at.number_input(key="lab5_max_attempts").set_value(2).run()
    at.number_input(key="lab5_backoff").set_value(0.05).run()
    at.toggle(key="lab5_broker_down").set_value(True).run()
    click(at, "lab5_start")
    click(at, "lab5_calc")
    rerun_until(at, "Failed (dead letter)", "1")
    assert "Last failure" in page_text(at)
    failed_id = str(table(at, "failed")["id"].iloc[0])
    for bad, message in (("nonsense", "is not an event id"), ("0f8c1a52-0000-4000-8000-000000000000", "No event")):
        at.text_input(key="lab5_requeue_id").set_value(bad).run()
        click(at, "lab5_requeue")
        assert message in " ".join(e.value for e in at.error)
    at.toggle(key="lab5_broker_down").set_value(False).run()
    at.text_input(key="lab5_requeue_id").set_value(failed_id).run()
    click(at, "lab5_requeue")
    rerun_until(at, "Published", "1")
    click(at, "lab5_requeue_all")
    assert "0 event(s) back in the queue" in " ".join(s.value for s in at.success)
    click(at, "lab5_consumer_crash")
    assert "Start the consumers first" in " ".join(e.value for e in at.error)
    click(at, "lab5_listen")
    click(at, "lab5_consumer_crash")
    click(at, "lab5_crash")
    click(at, "lab5_calc")
    rerun_until(at, "Published", "2")
    click(at, "lab5_nobody")
    assert "Stop the consumers first" in " ".join(e.value for e in at.error)
    click(at, "lab5_unlisten")
    click(at, "lab5_stop")
    click(at, "lab5_nobody")
    assert "reached **0** subscribers" in " ".join(i.value for i in at.info)
    assert "**kept** it" in " ".join(i.value for i in at.info)


def test_the_takeover_note_states_the_consumers_idle_time(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(PAGE)
    assert f"`XAUTOCLAIM` after {consumers.CLAIM_IDLE_MS / 1000:g} s idle" in page_text(at)
    monkeypatch.setattr(consumers, "CLAIM_IDLE_MS", 3_500)
    at.run()
    assert "`XAUTOCLAIM` after 3.5 s idle" in page_text(at), "the page says what the consumer uses"
