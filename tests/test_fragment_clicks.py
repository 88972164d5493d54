"""A click redraws what it changed: a knowledge-check try and Lab 3's fetches rerun their own part of the page.

AppTest reruns the whole script for a click inside a fragment, so only a real ``streamlit run``
shows which part a click reran. These tests open the pages over the websocket as a browser does
(``bench/_streamlit_ws.py``) and read what each click's run drew and how it ended: a fragment's
own rerun ends ``FINISHED_FRAGMENT_RUN_SUCCESSFULLY``, a whole page ``FINISHED_SUCCESSFULLY``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bench._common import backend_env
from bench._streamlit_ws import ALERT_SUCCESS, Run, Session
from source.course import COURSE
from source.learning.questions import MultipleChoice
from tests.test_browser import in_own_thread, streamlit_server

WHOLE_PAGE, FRAGMENT = 0, 3  # ForwardMsg.ScriptFinishedStatus: FINISHED_SUCCESSFULLY, FINISHED_FRAGMENT_RUN_…


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with streamlit_server(backend_env("embedded"), log) as server:
        yield server.url


def first_choice_question() -> MultipleChoice:
    return next(q for q in COURSE.questions_for("lab1", []) if isinstance(q, MultipleChoice))


def test_a_wrong_try_reruns_its_question_and_a_pass_redraws_the_page(app_url: str) -> None:
    question = first_choice_question()
    key = f"kc_{question.id}"
    right = next(o.text for o in question.options if o.correct)
    wrong = next(o.text for o in question.options if not o.correct)

    async def answer_twice() -> tuple[Run, Run, Run]:
        session = Session(app_url, "data-models", 60.0)
        try:
            await session.open()
            # A first action takes the learner's seat and redraws the whole page once; from then on, a try is the
            # question's own affair.
            seated = await session.click(
                "lab1_create", {"lab1_email": "clicker@innovateai.com", "lab1_name": "Clicker"}
            )
            assert "lab=" in session.query, "the first action took a seat"
            opened = seated
            missed = await session.click(f"{key}_submit", {key: wrong})
            passed = await session.click(f"{key}_submit", {key: right})
            return opened, missed, passed
        finally:
            await session.close()

    opened, missed, passed = in_own_thread(lambda: asyncio.run(answer_twice()))
    assert any("answered 0 of" in text for text in opened.texts)
    # A wrong answer changes nothing but its grade: only the question is drawn again, with its hint.
    assert missed.status == FRAGMENT
    assert missed.alerts
    assert not missed.errors()
    assert not any("answered" in text for text in missed.texts)
    # A pass changes the learner's progress: the whole page, with the count under the questions.
    assert passed.status == WHOLE_PAGE
    assert any(kind == ALERT_SUCCESS for kind, _ in passed.alerts)
    assert any("answered 1 of" in text for text in passed.texts)
    assert any("Knowledge checks passed: 1/" in text for text in passed.texts)


def test_lab3_fetches_rerun_only_their_panel(app_url: str) -> None:
    async def fetch() -> tuple[Run, Run, Run]:
        session = Session(app_url, "repository", 60.0)
        try:
            await session.open()
            samples = await session.click("lab3_samples")  # the first action: it takes a seat, the page redraws
            assert "lab=" in session.query, "the first action took a seat"
            again = await session.click("lab3_samples")  # seated: only the panel reruns
            lazy = await session.click("lab3_fetch_lazy")
            return samples, again, lazy
        finally:
            await session.close()

    samples, again, lazy = in_own_thread(lambda: asyncio.run(fetch()))
    assert samples.successes()
    assert again.status == FRAGMENT
    assert any("already" in body for _, body in again.alerts), "pressed twice: nobody new, and it says so"
    assert lazy.status == FRAGMENT
    assert any(label.startswith("Lazy: ") for label in lazy.labels), lazy.labels
    assert "Queries: 2" in lazy.labels
    assert not any(label.startswith("7 · ") for label in lazy.labels)  # the page's other sections were not redrawn
