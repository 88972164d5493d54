"""The N+1 detector and the query recorder on their own: shapes, relationships, callers."""

from __future__ import annotations

import inspect

import pytest
from sqlalchemy import select

from source import Sandbox, User, get_session
from source.instruments.n_plus_one import detect, is_batch, readable, relationship_for, shape
from source.instruments.query_log import QueryLog, capture_queries


def test_shapes_forget_values_placeholders_casts_schemas_and_in_lists() -> None:
    sqlite = "SELECT air_scores.id FROM air_scores WHERE ? = air_scores.user_id"
    postgres = (
        "SELECT plab_0a1b2c.air_scores.id FROM plab_0a1b2c.air_scores"
        " WHERE $1::VARCHAR = plab_0a1b2c.air_scores.user_id"
    )
    assert shape(sqlite) == shape(postgres) == "SELECT air_scores.id FROM air_scores WHERE ? = air_scores.user_id"
    assert shape("SELECT * FROM users WHERE email = 'a@b.c' AND years > 3.5") == shape(
        "SELECT * FROM users WHERE email = 'x@y.z' AND years > 12"
    )
    assert shape("... WHERE user_id IN (?, ?, ?)") == shape("... WHERE user_id IN ($1::VARCHAR, $2::VARCHAR)")
    assert shape("SELECT anon_1.id FROM (SELECT users.id AS id FROM users) AS anon_1") == (
        "SELECT anon_1.id FROM (SELECT users.id AS id FROM users) AS anon_1"
    ), "digits inside names are not values"


def test_in_lists_of_several_values_are_batches() -> None:
    assert is_batch("SELECT 1 FROM air_scores WHERE air_scores.user_id IN ($1::VARCHAR, $2::VARCHAR)")
    assert not is_batch("SELECT 1 FROM air_scores WHERE air_scores.user_id IN (?)")
    assert not is_batch("SELECT 1 FROM air_scores WHERE air_scores.user_id = ?")


def test_relationships_are_named_from_table_and_column() -> None:
    assert relationship_for("air_scores", "user_id") == "User.scores"
    assert relationship_for("assessments", "user_id") == "User.assessments"
    assert relationship_for("users", "id") == "AIRScore.user or Assessment.user", "many-to-one: both match"
    assert relationship_for("users", "email") is None


def test_readable_sql_keeps_short_lists_and_cuts_long_ones() -> None:
    long = "SELECT x FROM plab_abc.t WHERE t.id IN (" + ", ".join(f"${i}::VARCHAR" for i in range(1, 501)) + ")"
    assert readable(long) == "SELECT x FROM t WHERE t.id IN ($1::VARCHAR, $2::VARCHAR, … 500 values)"
    insert = "INSERT INTO users (id, email, name, a, b, c) VALUES (?, ?, ?, ?, ?, ?)"
    assert readable(insert) == insert


def test_a_threshold_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least twice"):
        detect([], threshold=1)


def test_the_recorder_keeps_sql_parameters_duration_and_caller(sandbox: Sandbox) -> None:
    async def look_up() -> QueryLog:
        async with get_session() as session, capture_queries(sandbox.engine) as log:
            await session.execute(select(User).where(User.email == "nobody@innovateai.com"))
        return log

    log = sandbox.run(look_up())
    assert log.count == 1
    (record,) = log.records
    assert "FROM" in record.sql
    assert "users" in record.sql
    assert "nobody@innovateai.com" in record.params
    assert record.duration_ms is not None
    assert record.duration_ms > 0
    lines, first = inspect.getsourcelines(look_up)
    expected = first + next(i for i, line in enumerate(lines) if "await session.execute" in line)
    assert record.caller is not None
    assert (record.caller.file, record.caller.line, record.caller.function) == (
        "tests/test_lab3_detector.py",
        expected,
        "look_up",
    )
    assert log.statements == [record.sql], "the plain statement list stays as Lab 1 uses it"
