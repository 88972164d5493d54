"""The home page's story, objectives linked to labs, and progress; the new pages render in the shell."""

from __future__ import annotations

from typing import Any

import pytest

from source.course import COURSE
from source.labs.data_models import checks as checks_lab1
from source.learning import overview
from tests.conftest import assert_no_exception, open_app


def test_home_links_every_objective_and_shows_progress(app_env: str) -> None:
    at = open_app("views/home.py")
    assert_no_exception(at)
    text = " ".join(m.value for m in at.markdown)
    assert "InnovateAI" in text
    for objective in COURSE.objectives:
        assert f"**{objective.level}** · {objective.goal}" in text
    links = {link.proto.label: link.proto.page for link in at.main.get("page_link")}
    assert set(links) == {lab.title for lab in COURSE.labs.values()}, "every lab and the exercise are linked"
    menu = [link.proto.label for link in at.sidebar.get("page_link")]
    expected = ["Welcome", "Join a class", *(lab.title for lab in COURSE.labs.values()), "Instructor"]
    assert menu == expected, "the sidebar's menu"
    assert links["1 · Data models"] == "data-models"
    assert links["Create · Design an event table"] == "create"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Knowledge checks passed"].startswith("0 / ")
    assert metrics["Labs visited"] == f"0 / {len(COURSE.labs)}"


def test_progress_made_on_a_lab_shows_on_home_and_sidebar(app_env: str) -> None:
    at = open_app("views/lab1_data_models.py")
    question = checks_lab1.CHOICES[0]
    at.radio(key=f"kc_{question.id}").set_value(question.right.id)
    at.button(key=f"kc_{question.id}_submit").click().run()
    at.switch_page("views/home.py").run()
    assert_no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Knowledge checks passed"].startswith("1 / ")
    assert metrics["Labs visited"] == f"1 / {len(COURSE.labs)}"
    assert "1/5 checks" in " ".join(c.value for c in at.caption), "the lab's line on the home page"
    assert "Knowledge checks passed: 1/" in " ".join(c.value for c in at.sidebar.caption)


def test_progress_is_read_once_per_rerun_and_shared_by_page_and_sidebar(
    app_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[Any] = []
    load = overview.load

    def counted(sandbox: Any, course: Any) -> Any:
        reads.append(sandbox)
        return load(sandbox, course)

    monkeypatch.setattr(overview, "load", counted)
    at = open_app("views/home.py")
    for _ in range(2):
        reads.clear()
        at.run()
        assert_no_exception(at)
        assert len(reads) == 1, "the home page and its sidebar share one read"
        metrics = {m.label: m.value for m in at.metric}
        assert f"labs visited: {metrics['Labs visited'].replace(' ', '')}" in " ".join(
            c.value for c in at.sidebar.caption
        ), "both show the same standing"
    at.switch_page("views/lab1_data_models.py").run()
    reads.clear()
    at.run()
    assert len(reads) == 1, "a lab page leaves the read to the sidebar"
    assert "Knowledge checks passed: 0/" in " ".join(c.value for c in at.sidebar.caption)


@pytest.mark.render
@pytest.mark.parametrize("page", ["views/create_exercise.py", "views/instructor.py", "views/join_class.py"])
def test_the_new_pages_render_in_the_shell(app_env: str, page: str) -> None:
    at = open_app(page)
    assert_no_exception(at)
    assert at.title
    assert not at.error


def test_progress_survives_a_refresh_and_is_not_anothers(app_env: str) -> None:
    from source.web import TOKEN_PARAM
    from tests.test_sandbox_tokens import visit

    first = visit()
    question = checks_lab1.CHOICES[0]
    first.radio(key=f"kc_{question.id}").set_value(question.right.id)
    first.button(key=f"kc_{question.id}_submit").click().run()
    token = first.query_params[TOKEN_PARAM]
    refreshed = visit(token)  # a new browser session with the same address: a refresh
    assert "Knowledge checks passed: 1/" in " ".join(c.value for c in refreshed.sidebar.caption)
    assert "✅" in " ".join(m.value for m in refreshed.markdown if question.prompt in m.value), "marked as passed"
    stranger = visit()
    assert "Knowledge checks passed: 0/" in " ".join(c.value for c in stranger.sidebar.caption)
