"""The Create exercise: a good design passes; each missing property is found and told separately, for real."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import inspect
from streamlit.testing.v1 import AppTest

from source import Sandbox
from source.domain.errors import InvalidInput
from source.learning.event_table.design import MAX_COLUMNS, parse_design
from source.learning.event_table.example import PASSING_DESIGN
from source.learning.event_table.exercise import Report, check_design
from tests.conftest import assert_no_exception, open_app

#: The passing design, from the exercise's own example (the instructor's preset builds the same one).
GOOD: dict[str, Any] = PASSING_DESIGN


def variant(drop: str | None = None, **changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(GOOD)
    if drop:
        raw["columns"] = [c for c in raw["columns"] if c["name"] != drop]
    for column, values in changes.items():
        if column == "indexes":
            raw["indexes"] = values
        else:
            next(c for c in raw["columns"] if c["name"] == column).update(values)
    return raw


def check(sandbox: Sandbox, raw: dict[str, Any]) -> Report:
    return sandbox.run(check_design(parse_design(raw)))


def failing(report: Report) -> set[str]:
    return {f.code for f in report.assessment.findings if f.severity == "missing"}


def test_a_good_design_passes_and_is_checked_for_real(sandbox: Sandbox) -> None:
    report = check(sandbox, GOOD)
    assert report.passed, [f for f in report.assessment.findings if f.severity != "ok"]
    facts = report.facts
    assert facts.inserted == 1000
    assert facts.claim is not None
    assert facts.claim.got == facts.claim.expected
    assert len(facts.claim.got) == 10
    assert facts.plan is not None
    assert facts.plan.verdict == "served"
    assert facts.plan.index == "ix_outbox_events_0"
    assert facts.duplicate_id_refused
    assert facts.null_aggregate_refused
    assert facts.typo_refused
    assert (facts.status_default, facts.created_default, facts.attempts_after_retry) == ("pending", "set", "1")
    if sandbox.schema:
        assert "FOR UPDATE SKIP LOCKED" in facts.claim.sql
        assert facts.claim.second_disjoint is True, "a second publisher skipped the locked rows"

    async def columns() -> list[str]:
        async with sandbox.engine.connect() as conn:
            cols = await conn.run_sync(lambda c: inspect(c).get_columns("outbox_events", schema=sandbox.schema))
        return [c["name"] for c in cols]

    assert sandbox.run(columns()) == [c["name"] for c in GOOD["columns"]], "the table exists in the sandbox"


@pytest.mark.parametrize(
    ("raw", "code", "plan"),
    [
        (variant(indexes=[]), "index", "full scan"),
        (variant(indexes=[{"columns": ["created_at"]}]), "index", "walks"),
        (variant(drop="id"), "event_id", "served"),
        (variant(id={"primary_key": False}), "event_id", "served"),
        (variant(drop="aggregate_id"), "aggregate", "served"),
        (variant(drop="attempts"), "attempts", "served"),
        (variant(attempts={"nullable": True, "default": "none"}), "attempts", "served"),
        (variant(drop="last_error"), "last_error", "served"),
        (variant(status={"nullable": True, "default": "none"}), "status_default", "served"),
        (variant(drop="created_at", indexes=[{"columns": ["status"]}]), "claim", None),
    ],
    ids=[
        "no-index",
        "index-on-time-only",
        "no-id",
        "id-not-unique",
        "no-aggregate",
        "no-attempts",
        "attempts-null",
        "no-last-error",
        "status-no-default",
        "no-created-at",
    ],
)
def test_each_missing_property_is_found_alone(sandbox: Sandbox, raw: dict[str, Any], code: str, plan: str) -> None:
    report = check(sandbox, raw)
    assert not report.passed
    found = failing(report)
    if code == "claim":
        assert found == {"claim", "index"}, "without an order there is no claim, and so no plan"
    else:
        assert found == {code}, f"only {code} is missing, got {found}"
    finding = report.assessment.by_code(code)
    assert finding.why, "every finding says why it matters"
    assert finding.consequence or finding.evidence, "and what goes wrong, or what the run showed"
    assert (report.facts.plan.verdict if report.facts.plan else None) == plan


def test_an_index_that_sorts_or_a_partial_index_is_judged_by_its_plan(sandbox: Sandbox) -> None:
    sorts = check(sandbox, variant(indexes=[{"columns": ["status"]}]))
    assert sorts.passed
    assert sorts.assessment.by_code("index").severity == "advice"
    assert sorts.facts.plan is not None
    assert sorts.facts.plan.verdict == "sorts"
    partial = check(sandbox, variant(indexes=[{"columns": ["created_at"], "pending_only": True}]))
    assert partial.passed
    assert partial.facts.plan is not None
    assert partial.facts.plan.verdict == "served"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"table": "Outbox Events"}, "may use only lowercase letters"),
        ({"table": "events; DROP TABLE users"}, "may use only lowercase letters"),
        ({"table": "select"}, "reserved word"),
        ({"table": "users"}, "already one of the labs' tables"),
        ({"column": {"name": "order"}}, "reserved word"),
        ({"column": {"name": 'x" text); drop table users; --'}}, "may use only lowercase letters"),
        ({"column": {"name": "payload"}}, "appears twice"),
        ({"column": {"default": "now()"}}, "does not fit the type"),
        ({"columns": MAX_COLUMNS + 1}, f"1 to {MAX_COLUMNS} columns"),
        ({"status_values": ["pending", "pending"]}, "appears twice"),
        ({"status_values": ["pending'); drop"]}, "Status value"),
        ({"table": "outbox_events\n"}, "may use only lowercase letters"),  # "$" alone would let a newline end it
        ({"column": {"name": "event_type\x00"}}, "may use only lowercase letters"),
        ({"status_values": ["pending\n", "published"]}, "Status value"),
    ],
)
def test_bad_designs_get_a_clear_message_and_create_nothing(
    sandbox: Sandbox, change: dict[str, Any], message: str
) -> None:
    raw = copy.deepcopy(GOOD)
    if "table" in change:
        raw["table"] = change["table"]
    if "column" in change:
        raw["columns"][1].update(change["column"])  # event_type, a short text column
    if "columns" in change:
        raw["columns"] += [
            {"name": f"extra_{i}", "type": "integer"} for i in range(change["columns"] - len(GOOD["columns"]))
        ]
    if "status_values" in change:
        raw["status_values"] = change["status_values"]
    with pytest.raises(InvalidInput, match=message):
        check(sandbox, raw)

    async def tables() -> list[str]:
        async with sandbox.engine.connect() as conn:
            return await conn.run_sync(lambda c: inspect(c).get_table_names(schema=sandbox.schema))

    assert {"users", "assessments", "air_scores", "domain_events"} <= set(sandbox.run(tables()))
    assert "outbox_events" not in sandbox.run(tables()), "nothing was created"


# -- the page --------------------------------------------------------------------------------
def fill(at: AppTest, raw: dict[str, Any]) -> AppTest:
    while at.session_state["cx_rows"] < len(raw["columns"]):
        at.button(key="cx_add").click().run()
    while at.session_state["cx_rows"] > len(raw["columns"]):
        at.button(key="cx_remove").click().run()
    at.text_input(key="cx_table").input(raw["table"])
    for i, col in enumerate(raw["columns"]):
        at.text_input(key=f"cx_col{i}_name").input(col["name"])
        at.selectbox(key=f"cx_col{i}_type").select(col["type"])
        at.selectbox(key=f"cx_col{i}_role").select(col.get("role") or "(no role)")
        at.checkbox(key=f"cx_col{i}_null").set_value(col.get("nullable", True))
        at.selectbox(key=f"cx_col{i}_default").select(col.get("default", "none"))
        at.checkbox(key=f"cx_col{i}_pk").set_value(col.get("primary_key", False))
        at.checkbox(key=f"cx_col{i}_unique").set_value(col.get("unique", False))
    at.checkbox(key="cx_check_status").set_value(raw.get("check_status", False))
    at.run()  # the index pickers offer the columns just named
    for j in range(3):
        index = raw["indexes"][j] if j < len(raw["indexes"]) else {"columns": []}
        at.multiselect(key=f"cx_ix{j}_cols").set_value(index["columns"])
        at.checkbox(key=f"cx_ix{j}_pending").set_value(index.get("pending_only", False))
    at.button(key="cx_check").click().run()
    assert_no_exception(at)
    return at


def shown(at: AppTest) -> str:
    return " ".join([m.value for m in at.markdown] + [w.value for w in (*at.success, *at.warning, *at.error)])


@pytest.mark.parametrize(
    ("raw", "told"),
    [
        (GOOD, "Your design passes"),
        (variant(indexes=[]), "No index serves 'pending, oldest first'"),
        (variant(drop="id"), "No unique event id"),
        (variant(drop="aggregate_id"), "No aggregate id"),
    ],
    ids=["good", "no-index", "no-id", "no-aggregate"],
)
def test_the_page_checks_a_design_and_tells_what_is_missing(app_env: str, raw: dict[str, Any], told: str) -> None:
    at = fill(open_app("views/create_exercise.py"), raw)
    text = shown(at)
    assert told in text
    others = {"No index serves", "No unique event id", "No aggregate id"} - {told.split(" '")[0]}
    assert not [o for o in others if o in text], "each missing property is told on its own"
    assert "CREATE TABLE" in " ".join(c.value for c in at.code)
    done = "Create exercise: done" in " ".join(c.value for c in at.sidebar.caption)
    assert done == (raw is GOOD)


def test_the_page_refuses_bad_names_and_too_many_columns(app_env: str) -> None:
    at = fill(open_app("views/create_exercise.py"), {**GOOD, "table": "events; DROP TABLE users"})
    assert "may use only lowercase letters" in " ".join(e.value for e in at.error)
    assert "What the check found" not in " ".join(h.value for h in at.header), "nothing ran"
    assert at.text_input(key="cx_table").value == "events; DROP TABLE users", "what was typed is kept"
    for _ in range(MAX_COLUMNS - len(GOOD["columns"])):
        at.button(key="cx_add").click().run()
    at.button(key="cx_add").click().run()
    assert f"at most {MAX_COLUMNS} columns" in " ".join(w.value for w in at.warning)
    assert at.session_state["cx_rows"] == MAX_COLUMNS


def test_the_design_survives_a_visit_to_another_page(app_env: str) -> None:
    at = fill(open_app("views/create_exercise.py"), variant(drop="id"))
    at.switch_page("views/home.py").run()
    at.switch_page("views/create_exercise.py").run()
    assert_no_exception(at)
    assert at.text_input(key="cx_col0_name").value == "event_type", "the columns are as the learner left them"
    assert at.multiselect(key="cx_ix0_cols").value == ["status", "created_at"]
    at.button(key="cx_check").click().run()
    assert "No unique event id" in shown(at)
