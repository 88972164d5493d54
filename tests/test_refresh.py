"""A refresh (or the same link in another tab) shows what the page showed: results are kept with the sandbox.

Each test does something on a page, then opens the same link in a new session, as a browser's
refresh does, and finds the page as it was.
"""

from __future__ import annotations

from functools import partial

from streamlit.testing.v1 import AppTest

from source.web import TOKEN_PARAM
from tests.conftest import ROOT, assert_no_exception, configure_app, open_app
from tests.waiting import rerun_until


def no_button(at: AppTest, key: str) -> bool:
    return not [b for b in at.button if b.key == key]


def comparison(at: AppTest) -> list[object] | None:
    """The strategies' rows of Lab 3's comparison table, if the page shows it."""
    found = [d.value for d in at.dataframe if "N+1 detector" in d.value.columns]
    return list(found[0]["strategy"]) + list(found[0]["queries"]) if found else None


def refresh(at: AppTest, page: str) -> AppTest:
    """The same link, in a new browser session."""
    configure_app()
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    again.query_params[TOKEN_PARAM] = at.query_params[TOKEN_PARAM]
    again.run()
    again.switch_page(page).run()
    assert_no_exception(again)
    return again


def test_a_half_finished_design_and_its_report_come_back(app_env: str) -> None:
    page = "views/create_exercise.py"
    at = open_app(page)
    at.text_input(key="cx_table").input("my_events").run()
    at.button(key="cx_add").click().run()
    at.text_input(key="cx_col3_name").input("aggregate_id").run()
    at.button(key="cx_check").click().run()
    assert_no_exception(at)
    assert any("my_events" in h.value for h in at.header), "the check ran"
    again = refresh(at, page)
    assert again.text_input(key="cx_table").value == "my_events"
    assert again.text_input(key="cx_col3_name").value == "aggregate_id", "the added column and its name are kept"
    assert any("What the check found in `my_events`" in h.value for h in again.header), "and the report"


def test_a_join_and_the_last_delete_come_back(app_env: str) -> None:
    from tests.test_lab1_page import add_children, create_user, delete_selected

    page = "views/lab1_data_models.py"
    at = create_user(open_app(page), "joined@example.com", "Joined")
    add_children(at, 2, 3)
    at = create_user(at, "deleted@example.com", "Deleted")
    delete_selected(at)
    at.button(key="lab1_join").click().run()
    assert_no_exception(at)
    sql = [c.value for c in at.code if "JOIN" in c.value]
    assert sql, "the join ran"
    again = refresh(at, page)
    assert [c.value for c in again.code if "JOIN" in c.value] == sql, "the join's SQL and rows are shown again"
    assert any("Last delete" in h.value for h in again.subheader), "so is what the last delete removed"


def test_a_comparison_and_a_fetch_come_back(app_env: str) -> None:
    page = "views/lab3_repository.py"
    at = open_app(page)
    at.button(key="lab3_samples").click().run()
    at.button(key="lab3_fetch_eager").click().run()
    at.number_input(key="lab3_n").set_value(30)
    at.number_input(key="lab3_m").set_value(2)
    for job in ("lab3_seed", "lab3_compare"):
        at.button(key=job).click().run()
        rerun_until(at, partial(no_button, key=f"{job}_stop"), f"{job} to end")
    assert comparison(at) is not None, "the comparison ran"
    again = refresh(at, page)
    assert comparison(again) == comparison(at), "the comparison is shown again, as it was"
    assert any(h.value.startswith("Eager: alex.smith") for h in again.subheader), "so is the fetch"
