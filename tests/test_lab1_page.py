"""Lab 1's page, driven like a learner would: create, duplicate, edit, cascade delete, join, DDL.

Every test starts from an empty sandbox of its own (see :func:`fresh_session`).
Each runs once on SQLite + fakeredis and once on PostgreSQL + Redis (the ``app_env`` fixture).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from source.labs.data_models import join
from tests.conftest import assert_no_exception, open_app, page_text

PAGE = "views/lab1_data_models.py"


def lab1() -> AppTest:
    at = open_app(PAGE)
    assert_no_exception(at)
    return at


def create_user(at: AppTest, email: str, name: str, **extra: Any) -> AppTest:
    at.text_input(key="lab1_email").input(email)
    at.text_input(key="lab1_name").input(name)
    if "occupation" in extra:
        at.text_input(key="lab1_occupation_code").input(extra["occupation"])
    if "education" in extra:
        at.text_input(key="lab1_education_level").input(extra["education"])
    if "years" in extra:
        at.number_input(key="lab1_years_experience").set_value(extra["years"])
    at.button(key="lab1_create").click().run()
    assert_no_exception(at)
    return at


def users_table(at: AppTest) -> pd.DataFrame | None:
    """The 'Your users' table as the learner reads it, or None when the page shows no table (no users).

    It is a static table whose cells are Markdown with every special character escaped:
    dropping the escapes gives the text the browser shows.
    """
    for table in at.table:
        df = table.value
        if "email" in df.columns and "updated_at" in df.columns:
            return df.map(lambda v: re.sub(r"\\(.)", r"\1", v) if isinstance(v, str) else v)
    return None


def select_user(at: AppTest, email: str) -> None:
    box = at.selectbox(key="lab1_user")
    index = next(i for i, label in enumerate(box.options) if label.startswith(email + " ·"))
    box.select_index(index).run()
    assert_no_exception(at)


def add_children(at: AppTest, assessments: float, scores: float) -> None:
    at.slider(key="lab1_n_assessments").set_value(assessments)
    at.slider(key="lab1_n_scores").set_value(scores)
    at.button(key="lab1_add_children").click().run()
    assert_no_exception(at)


def delete_selected(at: AppTest) -> None:
    at.button(key="lab1_delete").click().run()
    assert_no_exception(at)
    at.button(key="lab1_delete_yes").click().run()
    assert_no_exception(at)


def successes(at: AppTest) -> str:
    return " ".join(s.value for s in at.success)


def errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


def code_blocks(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


def unqualified(sql: str) -> str:
    """SQL without the sandbox's schema prefix (on PostgreSQL each learner has a schema of their own)."""
    return re.sub(r"\bplab_[0-9a-f]+\.", "", sql)


def test_schema_is_drawn_and_ddl_shown_for_both_dialects(app_env: str) -> None:
    at = lab1()
    diagram = at.get("graphviz_chart")[0].proto.spec
    for table in ("users", "assessments", "air_scores", "domain_events"):
        assert table in diagram
    assert "many-to-one" in diagram, "foreign keys are drawn as arrows"
    summary = at.dataframe[0].value
    assert set(summary["table"]) == {"users", "assessments", "air_scores", "domain_events"}
    sqlite_ddl, pg_ddl = (tab.code[0].value for tab in at.tabs[:2])
    for ddl in (sqlite_ddl, pg_ddl):
        assert "CREATE TABLE users" in ddl
        assert "ix_events_status_created" in ddl
    assert "TIMESTAMP WITH TIME ZONE" in pg_ddl
    assert "TIMESTAMP WITH TIME ZONE" not in sqlite_ddl
    assert "DATETIME" in sqlite_ddl
    sources = "\n".join(code_blocks(at))
    for real_code in ("class User(Base, TimestampMixin)", "async def create_user", "async def delete_user"):
        assert real_code in sources, f"the page shows the real source: {real_code}"
    assert "users_join_assessments_statement" in sources
    assert at.get("latex"), "the join is introduced with its relational-algebra formula"
    assert "bowtie" in at.get("latex")[0].proto.body
    assert "no users yet" in page_text(at)


def test_created_user_appears_in_the_list(app_env: str) -> None:
    at = create_user(lab1(), "ada@example.com", "Ada Lovelace", occupation="15-1252", education="PhD", years=12.5)
    assert "Created `ada@example.com`" in " ".join(s.value for s in at.success)
    assert at.text_input(key="lab1_email").value == "", "the form is cleared after a successful create"
    table = users_table(at)
    assert table is not None
    row = table[table["email"] == "ada@example.com"].iloc[0]
    assert (row["name"], row["occupation_code"], row["education_level"]) == ("Ada Lovelace", "15-1252", "PhD")
    assert row["years_experience"] == 12.5
    assert not errors(at)


def test_duplicate_email_is_refused_and_the_original_row_is_intact(app_env: str) -> None:
    at = create_user(lab1(), "grace@example.com", "Grace Hopper")
    at = create_user(at, "Grace@Example.com", "Impostor")  # same address, other case
    assert "already exists" in errors(at)
    assert "nothing was lost" in errors(at)
    assert "name **Grace Hopper**" in errors(at), "the message shows the stored row, intact"
    assert at.text_input(key="lab1_name").value == "Impostor", "a refused form keeps what was typed"
    table = users_table(at)
    assert table is not None
    assert list(table["email"]) == ["grace@example.com"], "the second row was not written"
    assert list(table["name"]) == ["Grace Hopper"], "the original row kept its name"


def test_malformed_email_shows_a_message_and_creates_nothing(app_env: str) -> None:
    at = create_user(lab1(), "not-an-email", "Nobody")
    assert "email" in errors(at).lower()
    assert users_table(at) is None
    assert "no users yet" in page_text(at)


def test_blank_name_is_required(app_env: str) -> None:
    at = create_user(lab1(), "blank@example.com", "   ")
    assert "name: is required" in errors(at)
    assert users_table(at) is None


def test_edit_moves_updated_at(app_env: str) -> None:
    at = create_user(lab1(), "alan@example.com", "Alan")
    table = users_table(at)
    assert table is not None
    created_updated_at = table.iloc[0]["updated_at"]
    assert at.text_input(key="lab1_edit_name").value == "Alan", "the edit fields start from the stored row"
    at.text_input(key="lab1_edit_name").input("Alan Turing")
    at.text_input(key="lab1_edit_education_level").input("PhD")
    at.text_input(key="lab1_edit_occupation_code").input("15-2051")
    at.number_input(key="lab1_edit_years_experience").set_value(7.5)
    at.button(key="lab1_save").click().run()
    assert_no_exception(at)
    saved = next(s.value for s in at.success if s.value.startswith("Saved `alan@example.com`"))
    assert "**1 UPDATE statement**" in saved, "the query recorder counted one UPDATE"
    before_text, after_text = saved.split("updated_at: ")[1].split(" → ")
    before, after = datetime.fromisoformat(before_text), datetime.fromisoformat(after_text)
    assert after > before, "a real UPDATE moves updated_at forward"
    table = users_table(at)
    assert table is not None
    row = table.iloc[0]
    assert (row["name"], row["education_level"], row["occupation_code"]) == ("Alan Turing", "PhD", "15-2051")
    assert row["years_experience"] == 7.5
    assert row["updated_at"] > created_updated_at
    assert row["created_at"] == table.iloc[0]["created_at"]
    at.button(key="lab1_join").click().run()
    assert not any(s.value.startswith("Saved") for s in at.success), "the save report does not linger"


def test_saving_without_a_change_sends_no_update(app_env: str) -> None:
    at = create_user(lab1(), "hedy@example.com", "Hedy", years=3.0)
    at.button(key="lab1_save").click().run()
    assert_no_exception(at)
    saved = next(s.value for s in at.success if s.value.startswith("Saved `hedy@example.com`"))
    assert "**0 UPDATE statements**" in saved, "counted by the query recorder, not inferred from timestamps"
    table = users_table(at)
    assert table is not None
    assert table.iloc[0]["updated_at"] == table.iloc[0]["created_at"], "updated_at stayed put"


def test_edit_with_blank_name_is_refused_and_nothing_changes(app_env: str) -> None:
    at = create_user(lab1(), "kay@example.com", "Kay")
    at.text_input(key="lab1_edit_name").input("")
    at.button(key="lab1_save").click().run()
    assert_no_exception(at)
    assert "name: is required" in errors(at)
    table = users_table(at)
    assert table is not None
    assert list(table["name"]) == ["Kay"]


def test_cascade_delete_reports_measured_counts_and_the_user_is_gone(app_env: str) -> None:
    at = create_user(lab1(), "edsger@example.com", "Edsger")
    add_children(at, 2, 3)
    assert "now has 2 assessments and 3 scores" in successes(at)
    delete_selected(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Assessments removed"] == "2"
    assert metrics["Scores removed"] == "3"
    statements = next(c for c in map(unqualified, code_blocks(at)) if "DELETE FROM users" in c)
    assert "DELETE FROM assessments" in statements
    assert "DELETE FROM air_scores" in statements
    assert statements.index("DELETE FROM assessments") < statements.index("DELETE FROM users")
    placeholder = "$1" if app_env == "services" else "?"  # asyncpg numbers its parameters, SQLite uses ?
    assert placeholder in statements
    assert "Last delete: `edsger@example.com`" in [h.value for h in at.subheader]
    assert users_table(at) is None, "the user is gone"


def test_deleting_one_user_leaves_the_others(app_env: str) -> None:
    at = create_user(lab1(), "first@example.com", "First")
    at = create_user(at, "second@example.com", "Second")
    select_user(at, "second@example.com")
    assert at.text_input(key="lab1_edit_name").value == "Second", "the edit fields follow the selected user"
    delete_selected(at)
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Assessments removed"], metrics["Scores removed"]) == ("0", "0")
    table = users_table(at)
    assert table is not None
    assert list(table["email"]) == ["first@example.com"]


def test_join_shows_its_sql_and_rows(app_env: str) -> None:
    at = create_user(lab1(), "barbara@example.com", "Barbara")
    at = create_user(at, "lonely@example.com", "No Assessments")
    select_user(at, "barbara@example.com")
    add_children(at, 2, 0)
    at.button(key="lab1_join").click().run()
    assert_no_exception(at)
    sql = unqualified(next(c for c in code_blocks(at) if c.startswith("SELECT") and " JOIN " in c))
    assert "JOIN assessments ON assessments.user_id = users.id" in sql
    rows = next(f.value for f in at.dataframe if "component" in f.value.columns)
    assert list(rows["email"]) == ["barbara@example.com", "barbara@example.com"]
    assert "lonely@example.com" not in set(rows["email"]), "an inner join drops users without assessments"
    assert "2 row(s)" in page_text(at)


@pytest.mark.parametrize("years", [-5.0, 1e9, 70.5])
def test_years_out_of_range_are_refused_in_words(app_env: str, years: float) -> None:
    at = create_user(lab1(), "ada@example.com", "Ada", years=years)
    assert "years experience: must be between 0 and 70" in errors(at), "a visible sentence, not a hover"
    assert at.text_input(key="lab1_name").value == "Ada", "what was typed stays, to be fixed"
    assert users_table(at) is None


def test_a_300_character_name_is_refused_in_words(app_env: str) -> None:
    at = create_user(lab1(), "long@example.com", "N" * 300)
    assert "name: at most 255 characters (got 300)" in errors(at)
    assert at.text_input(key="lab1_name").value == "N" * 300, "the pasted name is kept, to be shortened"
    assert users_table(at) is None


def test_control_characters_are_refused_on_both_backends(app_env: str) -> None:
    at = create_user(lab1(), "nul@example.com", "Nul\x00Byte")
    assert "name: must not contain control characters (found U+0000)" in errors(at)
    assert users_table(at) is None, "refused before the database, which would disagree per backend"


def test_delete_asks_first_and_cancel_keeps_the_user(app_env: str) -> None:
    at = create_user(lab1(), "keep@example.com", "Keep")
    at.button(key="lab1_delete").click().run()
    assert_no_exception(at)
    assert "cannot be undone" in " ".join(w.value for w in at.warning)
    table = users_table(at)
    assert table is not None, "nothing is deleted before the learner confirms"
    at.button(key="lab1_delete_cancel").click().run()
    assert_no_exception(at)
    assert not at.warning
    table = users_table(at)
    assert table is not None
    assert list(table["email"]) == ["keep@example.com"]


def test_a_forged_infinity_cannot_take_the_page_down(app_env: str) -> None:
    at = create_user(lab1(), "inf@example.com", "Inf", years=float("inf"))
    assert "Created `inf@example.com`" in successes(at), "a forged infinity reads as 'not given'"
    add_children(at, float("inf"), float("nan"))
    assert "now has 2 assessments and 3 scores" in successes(at), "the sliders kept their defaults"


def test_the_join_is_paged(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(join, "JOIN_PAGE_ROWS", 2)
    at = create_user(lab1(), "paged@example.com", "Paged")
    add_children(at, 5, 0)
    at.button(key="lab1_join").click().run()
    assert_no_exception(at)
    sql = next(c for c in code_blocks(at) if c.startswith("SELECT") and " JOIN " in c)
    assert "LIMIT" in sql, "the page asks the database for one page"
    rows = next(f.value for f in at.dataframe if "component" in f.value.columns)
    assert len(rows) == 2
    assert "5 row(s). Showing 1–2" in page_text(at)
    assert at.button(key="lab1_join_previous").disabled
    at.button(key="lab1_join_next").click().run()
    at.button(key="lab1_join_next").click().run()
    assert_no_exception(at)
    assert "Showing 5–5" in page_text(at)
    assert at.button(key="lab1_join_next").disabled
