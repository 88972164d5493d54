"""A learner's walk through the course in a real browser: every lab, a knowledge check, a Create design.

``streamlit run`` in its own process and headless Chromium (Debian's, never a downloaded one).
The walk fails on any exception or error box the app shows. It saves a screenshot of each page;
with ``PLAB_SCREENSHOTS=docs`` they go to ``docs/`` for the README.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench._common import backend_env
from tests.conftest import ROOT, unavailable
from tests.test_browser import UI_TIMEOUT_MS, chromium_executable, streamlit_server

pytestmark = pytest.mark.browser


@pytest.fixture
def walk_page(tmp_path: Path) -> Iterator[Any]:
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    from bench._common import CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, reduced_motion="reduce")
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


class Walk:
    """The learner's browser tab, with the checks every step shares."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page, self.shots = page, shots
        self.main, self.sidebar = page.get_by_test_id("stMain"), page.get_by_test_id("stSidebar")

    def settle(self, expected: Any) -> None:
        """Wait for ``expected`` and for the script run to finish; fail on any exception or error box."""
        from playwright.sync_api import expect

        # Lab 3's N+1 detector flags what it found in red on purpose: that is the lab working, not failing.
        errors = self.page.get_by_test_id("stAlertContentError").filter(has_not_text="N+1: ")
        failure = self.page.get_by_test_id("stException").or_(errors)
        expect(expected.or_(failure).first).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(self.page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')).to_have_count(1)
        assert failure.count() == 0, f"the app showed an error: {failure.all_inner_texts()}"
        expect(expected).to_be_visible()

    def open(self, link: str, heading: str) -> None:
        self.sidebar.get_by_role("link", name=link).click()
        self.settle(self.main.get_by_role("heading", name=heading))

    def shot(self, name: str, top: Any = None) -> None:
        """A screenshot of the viewport, with ``top`` (a locator) scrolled to the top of it when given."""
        if top is not None:
            top.evaluate("element => element.scrollIntoView({block: 'start'})")
        from playwright.sync_api import expect

        self.page.mouse.move(self.page.viewport_size["width"] - 5, 5)  # away from the button just clicked:
        expect(self.page.get_by_test_id("stTooltipContent")).to_have_count(0)  # no tooltip in the picture
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=False)

    def answer(self, question: int, *, wrong: str, choice: str | None = None, number: str | None = None) -> None:
        """Answer the ``question``-th knowledge check wrong (``wrong``), then right: a hint first, never the answer."""
        forms = self.main.get_by_test_id("stForm").filter(has_text="Check my answer")
        form = forms.filter(has_text=choice).first if choice is not None else forms.nth(question)
        for given in (wrong, choice if choice is not None else number):
            assert given is not None
            if choice is not None:
                form.get_by_text(given, exact=True).click()
            else:
                form.get_by_role("textbox").fill(given)
            form.get_by_role("button", name="Check my answer").click()
            if given == wrong:
                hint = self.main.get_by_test_id("stAlertContentWarning").filter(has_text="Not quite.")
                self.settle(hint)
                assert "The answer is" not in hint.inner_text(), "a first wrong answer gets a hint, not the answer"
        self.settle(self.main.get_by_text(re.compile(r"^Correct\.")).first)


def lab1(walk: Walk) -> None:
    walk.open("1 · Data models", "Lab 1 · Data models")
    form = walk.main.get_by_test_id("stForm").filter(has_text="Create user")
    form.get_by_role("textbox", name="Email", exact=True).fill("walker@example.com")
    form.get_by_role("textbox", name="Name", exact=True).fill("Walker")
    form.get_by_role("button", name="Create user").click()
    walk.settle(walk.main.get_by_text("Created walker@example.com"))
    walk.shot("lab1", top=walk.main.get_by_role("heading", name="2 · Create a user"))
    walk.answer(0, choice="One-to-many", wrong="Many-to-many")


def lab2(walk: Walk) -> None:
    walk.open("2 · Async connectivity & pooling", "Lab 2 · Async connectivity & pooling")
    walk.main.get_by_role("button", name="Run the experiment").click()
    results = walk.main.get_by_role("heading", name=re.compile(r"^Pooled: K = 100"))
    walk.settle(results)
    walk.shot("lab2", top=results)
    walk.answer(0, number="400", wrong="380")  # ⌈100/5⌉ × 20 ms with the page's defaults


def lab3(walk: Walk) -> None:
    walk.open("3 · Repository & N+1", "Lab 3 · Repository pattern & N+1")
    walk.main.get_by_role("spinbutton", name="Users N").fill("200")
    walk.main.get_by_role("button", name="Seed", exact=True).click()
    walk.settle(walk.main.get_by_text(re.compile(r"^Seeded 200 users")))
    walk.main.get_by_role("button", name="Load with every strategy").click()
    question = walk.main.get_by_text("How many SQL statements did that send?")
    walk.settle(question)  # unlocked by the comparison that just ran
    users = int(re.search(r"loaded ([\d,]+) users", question.inner_text()).group(1).replace(",", ""))  # type: ignore[union-attr]
    walk.shot("lab3", top=walk.main.get_by_role("heading", name="3 · Load everyone, four ways"))
    walk.answer(
        0, number=str(users + 1), wrong=str(users)
    )  # the lazy loop: one SELECT for the users, then one per user


def lab4(walk: Walk) -> None:
    walk.open("4 · Caching with Redis", "Lab 4 · Caching with Redis")
    fetch = walk.main.get_by_role("button", name="Fetch user (cached)")
    fetch.click()
    walk.settle(walk.main.get_by_text(re.compile(r"^fetch user: MISS")))
    fetch.click()
    walk.settle(walk.main.get_by_text(re.compile(r"^fetch user: HIT")))  # served from Redis this time
    walk.shot("lab4", top=walk.main.get_by_role("heading", name="1 · Miss, then hit"))
    walk.answer(0, choice="A sorted set (ZADD, ZREVRANGE)", wrong="A list")


def lab5(walk: Walk) -> None:
    walk.open("5 · Outbox pattern", "Lab 5 · The outbox pattern")
    walk.main.get_by_role("button", name="👂 Start consumers").click()
    walk.settle(walk.main.get_by_text(re.compile("consumers listening")))
    walk.main.get_by_role("button", name="▶ Start publisher").click()
    walk.settle(walk.main.get_by_text(re.compile(r"publisher\(s\) running")))
    walk.main.get_by_role("button", name="Calculate and store the score").click()
    walk.settle(
        walk.main.get_by_test_id("stAlertContentSuccess").filter(
            has_text=re.compile(r"and its pending event .* committed")
        )
    )
    feed = walk.main.get_by_test_id("stDataFrame").filter(has=walk.page.locator("th", has_text=re.compile(r"^via$")))
    feed.locator("td", has_text="score.calculated").first.wait_for(state="attached")  # it arrived, live
    walk.shot("lab5", top=walk.main.get_by_role("heading", name=re.compile(r"^2 · ")))
    walk.answer(
        1,
        choice="So that both are kept or neither is: no score without its event, no event without its score",
        wrong="Because one transaction is faster than two",
    )
    walk.main.get_by_role("button", name="⏹ Stop publisher").click()
    walk.settle(walk.main.get_by_text(re.compile("publisher stopped")))


def create_and_instructor(walk: Walk) -> None:
    walk.open("Create · Design an event table", "Create · Design an event table")
    walk.main.get_by_role("button", name="Build and check my table").click()
    walk.settle(walk.main.get_by_role("heading", name=re.compile(r"^What the check found")))
    walk.shot("create", top=walk.main.get_by_role("heading", name=re.compile(r"^What the check found")))
    walk.open("Instructor", "Instructor")
    walk.main.get_by_role("button", name="Lab 1 · Alex and Jane with children").click()
    done = walk.main.get_by_test_id("stAlertContentSuccess").filter(has_text="Alex Smith: ")
    walk.settle(done)
    # The seed runs in the background: its live progress ends by itself and the page shows the report.
    walk.main.get_by_role("button", name="Seed", exact=True).click()
    walk.settle(walk.main.get_by_test_id("stAlertContentSuccess").filter(has_text="Seeded 200 users"))
    walk.shot("instructor")


@pytest.mark.parametrize("kind", ["embedded", "services"])
def test_a_learner_walks_the_course(walk_page: Any, tmp_path: Path, kind: str) -> None:
    shots = ROOT / "docs" if os.environ.get("PLAB_SCREENSHOTS") == "docs" and kind == "embedded" else tmp_path
    with streamlit_server(backend_env(kind), tmp_path / "server.log") as server:
        walk = Walk(walk_page, shots)
        walk.page.goto(server.url)
        walk.settle(walk.main.get_by_role("heading", name="Persistence Lab"))
        status = walk.sidebar.inner_text()
        if kind == "services" and ("PostgreSQL · configured" not in status or "Redis · configured" not in status):
            unavailable(f"the app did not reach PostgreSQL and Redis: {status[:300]}")
        walk.settle(walk.main.get_by_text("Design event tables for pub/sub."))
        walk.shot("home")
        for step in (lab1, lab2, lab3, lab4, lab5, create_and_instructor):
            step(walk)
        walk.sidebar.get_by_text(re.compile(r"Knowledge checks passed: 5/")).wait_for()
        log = (tmp_path / "server.log").read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
