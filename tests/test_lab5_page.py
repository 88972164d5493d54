"""Lab 5's page as a learner uses it: every control, on both backends.

AppTest does not tick ``run_every`` fragments, so each check reruns the page until the
live panel shows what the background jobs did (the logic is tested in the other Lab 5 files).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from source.labs.outbox import consumers
from tests.conftest import assert_no_exception, open_app, page_text
from tests.waiting import rerun_until

PAGE = "views/lab5_outbox.py"


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def shows(label: str, value: str) -> Callable[[AppTest], bool]:
    return lambda at: metric(at, label) == value


def says(text: str) -> Callable[[AppTest], bool]:
    return lambda at: text in page_text(at)


def table(at: AppTest, status: str) -> Any:
    """The pending, published, failed or skipped table: the page's last four dataframes, in that order."""
    return at.dataframe[-4 + ("pending", "published", "failed", "skipped").index(status)].value


def said(elements: Any) -> str:
    return " ".join(e.value for e in elements)


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert_no_exception(at)
    return at


@pytest.fixture
def page(app_env: str) -> Iterator[AppTest]:
    at = open_app(PAGE)
    assert_no_exception(at)
    click(at, "lab5_samples")
    assert "Alex Smith and Jane Doe are in your sandbox" in said(at.success)
    yield at
    if at.button(key="lab5_stop"):
        click(at, "lab5_stop")
        click(at, "lab5_unlisten")


def test_write_publish_consume_and_the_tables(page: AppTest) -> None:
    at = page
    at.checkbox(key="lab5_fail").check().run()
    click(at, "lab5_calc")
    assert "neither the score nor its event" in said(at.error)
    assert "the rollback removed both" in said(at.caption)
    assert metric(at, "Pending") == "0"
    at.checkbox(key="lab5_fail").uncheck().run()
    at.text_input(key="lab5_occupation").set_value("Data_Engineer").run()
    click(at, "lab5_calc")
    assert "and its pending event" in said(at.success)
    assert metric(at, "Pending") == "1", "the callback ran before the page: no second rerun needed"
    click(at, "lab5_assessment")
    assert "Assessment completed" in said(at.success)
    at.number_input(key="lab5_many_n").set_value(30).run()
    click(at, "lab5_many")
    assert "30 scores and 30 pending events committed" in said(at.success)
    assert metric(at, "Pending") == "32"
    at.number_input(key="lab5_max_events").set_value(10).run()
    at.number_input(key="lab5_max_attempts").set_value(3).run()
    at.number_input(key="lab5_backoff").set_value(0.05).run()
    at.number_input(key="lab5_publishers").set_value(2).run()
    click(at, "lab5_listen")
    assert "Listening" in said(at.success)
    click(at, "lab5_start")
    assert "2 publisher loop(s), at most 10 events per batch" in said(at.success)
    rerun_until(at, shows("Published", "32"), "the live panel to show 32 published")
    click(at, "lab5_start")
    assert "already running" in said(at.error)
    rerun_until(at, says("{'score.calculated': 31, 'assessment.completed': 1}"), "each event applied once")
    assert len(table(at, "published")) == 32
    click(at, "lab5_stop")
    assert "Stopped" in said(at.success)
    at.number_input(key="lab5_retention").set_value(0).run()
    click(at, "lab5_cleanup")  # it asks first
    click(at, "lab5_cleanup_yes")
    assert "Deleted 32 published event(s)" in said(at.success)


def test_faults_dead_letter_requeue_and_bad_input(page: AppTest) -> None:
    at = page
    at.number_input(key="lab5_max_attempts").set_value(2).run()
    at.number_input(key="lab5_backoff").set_value(0.05).run()
    at.toggle(key="lab5_broker_down").set_value(True).run()
    assert "The broker is down" in said(at.warning)
    click(at, "lab5_start")
    click(at, "lab5_calc")
    rerun_until(at, says("broker unavailable since"), "the breaker to open and the page to say so")
    assert "1 events waiting" in said(at.error)
    assert metric(at, "Dead letters") == "0", "an outage dead-letters nothing"
    assert metric(at, "Failed tries") == "0", "an outage spends no try"
    at.toggle(key="lab5_broker_down").set_value(False).run()
    assert at.toggle(key="lab5_broker_down").value is False
    rerun_until(at, shows("Published", "1"), "the event to drain once the broker is back")
    click(at, "lab5_poison")
    assert "is poisoned" in said(at.info)
    rerun_until(at, shows("Dead letters", "1"), "the poisoned event to land in the dead letter")
    assert metric(at, "Held back") == "2"
    assert "Last failure" in page_text(at)
    assert list(table(at, "pending")["waiting"]) == ["waiting behind a dead letter"] * 2
    failed_id = str(table(at, "failed")["id"].iloc[0])
    for bad, message in (
        ("nonsense", "is not an event id"),
        ("0f8c1a52-0000-4000-8000-000000000000", "No event"),
        (failed_id + "\x00", "The event id holds a control character, NUL (U+0000)"),
    ):
        at.text_input(key="lab5_requeue_id").set_value(bad).run()
        click(at, "lab5_requeue")
        assert message in said(at.error)
    at.text_input(key="lab5_requeue_id").set_value(failed_id).run()
    click(at, "lab5_requeue")
    assert f"Requeued `{failed_id}`: the broker accepts its message now." in said(at.success)
    rerun_until(at, shows("Published", "4"), "the requeued event, then the two behind it")
    click(at, "lab5_requeue_all")
    assert "0 event(s) back in the queue" in said(at.success)
    click(at, "lab5_consumer_crash")
    assert "Start the consumers first" in said(at.error)
    click(at, "lab5_listen")
    click(at, "lab5_consumer_crash")
    assert "will apply its next batch and die before `XACK`" in said(at.info), "the fault answers with a sentence"
    click(at, "lab5_crash")
    assert "will be published but not marked" in said(at.info)
    click(at, "lab5_calc")
    rerun_until(at, shows("Published", "5"), "the crashed batch to be published again")
    click(at, "lab5_nobody")
    assert "Stop the consumers first" in said(at.error)
    click(at, "lab5_unlisten")
    click(at, "lab5_stop")
    click(at, "lab5_nobody")
    assert "reached **0** subscribers" in said(at.info)
    assert "**kept** it" in said(at.info)


def test_skip_asks_first_then_the_events_behind_the_dead_letter_go(page: AppTest) -> None:
    at = page
    at.number_input(key="lab5_max_attempts").set_value(1).run()
    click(at, "lab5_start")
    click(at, "lab5_poison")
    rerun_until(at, shows("Held back", "2"), "two events to wait behind the dead letter")
    at.text_input(key="lab5_requeue_id").set_value(str(table(at, "failed")["id"].iloc[0])).run()
    click(at, "lab5_skip")  # it asks first
    assert "Skip this dead letter for good?" in said(at.warning)
    click(at, "lab5_skip_yes")
    assert "it will never be published" in said(at.success)
    rerun_until(at, shows("Published", "2"), "the two events behind it to go")
    assert len(table(at, "skipped")) == 1


def test_a_lost_reply_and_redis_restarting_are_named_on_the_page(page: AppTest) -> None:
    at = page
    click(at, "lab5_listen")
    click(at, "lab5_lost_reply")
    assert "reply lost" in said(at.info)
    click(at, "lab5_start")
    click(at, "lab5_calc")
    rerun_until(at, says("had no answer"), "the page to name the batch without an answer")
    rerun_until(at, shows("Copies ignored", "1"), "the inbox to ignore the copy")
    assert "the inbox then ignored 1 duplicate(s)" in said(at.warning)
    click(at, "lab5_redis_restart")
    assert "Your stream is gone" in said(at.info) + said(at.warning)
    rerun_until(at, says("reconnection(s)"), "the consumers to reconnect and say so")
    assert "Redis restarted without persistence: the stream lost" in said(at.warning)


def test_the_claims_plan_with_and_without_history(page: AppTest) -> None:
    at = page
    click(at, "lab5_explain")
    before = re.search(r"(\d+) published \+ (\d+) pending rows: the claim took [\d.]+ ms", page_text(at))
    assert before is not None, page_text(at)
    at.number_input(key="lab5_history_n").set_value(2000).run()
    click(at, "lab5_history")
    assert "2,000 events written and marked published" in said(at.success)
    click(at, "lab5_explain")
    text = page_text(at)
    after = f"{int(before.group(1)) + 2000:,} published + {before.group(2)} pending rows: the claim took"
    assert after in text, "the plan with history stands beside the one without"
    assert before.group(0).split(": the claim")[0] in text
    assert text.count("through `ix_events_pending_sequence`") == 2, "the partial index, with history as without"


def test_an_occupation_code_with_a_nul_gets_a_sentence(page: AppTest) -> None:
    at = page
    at.text_input(key="lab5_occupation").set_value("SW\x00ENG").run()
    click(at, "lab5_calc")
    assert "The occupation code holds a control character, NUL (U+0000)" in said(at.error)
    assert metric(at, "Pending") == "0"


def test_the_broker_toggle_follows_the_real_state(app_env: str) -> None:
    """A preset on the instructor's page takes the broker down: Lab 5's toggle says so, then the page stops it."""
    at = open_app("views/instructor.py")
    at.button(key="ins_preset_lab5_broker_down").click().run()
    assert_no_exception(at)
    at.switch_page(PAGE).run()
    assert_no_exception(at)
    assert at.toggle(key="lab5_broker_down").value is True
    assert "publisher(s) running" in page_text(at)
    at.toggle(key="lab5_broker_down").set_value(False).run()
    assert "The broker is back" in said(at.success)
    click(at, "lab5_stop")
    assert "Stopped" in said(at.success)


def test_the_publisher_keeps_running_while_the_learner_visits_another_page(page: AppTest) -> None:
    at = click(page, "lab5_start")
    at.switch_page("views/lab1_data_models.py").run()
    assert_no_exception(at)
    at.switch_page(PAGE).run()
    assert "1 publisher(s) running" in page_text(at)
    click(at, "lab5_calc")
    rerun_until(at, shows("Published", "1"), "the publisher started before the visit to publish the new event")


def test_the_takeover_note_states_the_consumers_idle_time(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(PAGE)
    assert f"`XAUTOCLAIM` after {consumers.CLAIM_IDLE_MS / 1000:g} s idle" in page_text(at)
    monkeypatch.setattr(consumers, "CLAIM_IDLE_MS", 3_500)
    at.run()
    assert "`XAUTOCLAIM` after 3.5 s idle" in page_text(at), "the page says what the consumer uses"
