"""Every page on a classroom projector: no label cut short, and no serious accessibility violation.

A real ``streamlit run`` (with an instructor passcode) and headless Chromium at 1024 × 768 (an old
projector) and 1920 × 1080. A learner first fills the labs with something to show (users, scores, an
experiment, a join; once, for both widths), then every page is looked at, at each width: any text
Streamlit had to cut with an ellipsis fails the test (a button that reads "Stop publis…" teaches
nothing), and so does any WCAG 2.1 A/AA violation axe-core rates serious or critical. Class mode the
same way: the join page before and after a learner joins, and the instructor's class dashboard with
that learner in it, at the desk and on the projector.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from bench._common import CHROMIUM_ARGS, backend_env
from tests.test_browser import UI_TIMEOUT_MS, chromium_executable, streamlit_server

pytestmark = pytest.mark.browser

WIDTHS = [(1024, 768), (1920, 1080)]
PAGES = ["", "data-models", "pooling", "repository", "caching", "outbox", "create", "instructor"]
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

#: Text the browser had to cut short (``text-overflow: ellipsis`` with more text than room), on screen.
CUT_TEXT = """() => [...document.querySelectorAll('[data-testid="stMain"] *, [data-testid="stSidebar"] *')]
  .filter(el => el.offsetParent && getComputedStyle(el).textOverflow === 'ellipsis'
    && el.scrollWidth > el.clientWidth + 1 && el.textContent.trim())
  .map(el => el.textContent.trim())"""


PASSCODE = "projector-check-42"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)  # wait on what the page shows, however loaded the machine is (alone too)
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with streamlit_server({**backend_env("embedded"), "PLAB_INSTRUCTOR_PASSCODE": PASSCODE}, log) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module: each test opens its own context (its own cookies, storage and viewport)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def new_page(browser: Any, width: int, height: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height}, reduced_motion="reduce")
    context.set_default_timeout(UI_TIMEOUT_MS)
    return context.new_page()


@pytest.fixture(scope="module")
def filled(app: str, browser: Any) -> str:
    """A learner's link to labs with something to show, filled once at the narrower width for every width's look."""
    page = new_page(browser, *WIDTHS[0])
    try:
        return fill_the_labs(page, app)
    finally:
        page.context.close()


def settled(page: Any, *, sidebar: bool = True) -> None:
    """The whole run drawn: the sidebar's progress comes last in every run (a projector has no sidebar), the
    script has stopped, and the front end has loaded every widget it drew (a widget shows as a grey skeleton
    until its code has arrived)."""
    from playwright.sync_api import expect

    if sidebar:
        expect(page.get_by_test_id("stSidebar").get_by_text("Your progress", exact=True)).to_be_visible()
    expect(page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')).to_have_count(1)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0)


def fill_the_labs(page: Any, url: str) -> str:
    """Give the pages something to show (Lab 5: a backlog and the claim's plan); returns the learner's link."""
    from playwright.sync_api import expect

    page.goto(f"{url}/caching")
    main = page.get_by_test_id("stMain")
    main.get_by_role("button", name=re.compile(r"^Add Alex and Jane")).click()
    expect(main.get_by_role("button", name="Run the workload")).to_be_visible()
    link = page.url.split("?", 1)[1]
    page.goto(f"{url}/data-models?{link}")
    main.get_by_role("button", name="Run the join").click()
    expect(main.get_by_text(re.compile(r"row\(s\)")).first).to_be_visible()
    page.goto(f"{url}/pooling?{link}")
    main.get_by_role("button", name="Run the experiment").click()
    expect(main.get_by_role("heading", name=re.compile(r"^Pooled: K = "))).to_be_visible()
    page.goto(f"{url}/outbox?{link}")
    main.get_by_role("button", name="Calculate many (one transaction)").click()
    expect(main.get_by_text("200 scores and 200 pending events committed.")).to_be_visible()
    main.get_by_role("button", name="Explain the claim").click()
    expect(main.get_by_text(re.compile(r"pending rows: the claim took")).first).to_be_visible()
    return str(link)


def look(page: Any, name: str, problems: dict[str, Any], *, sidebar: bool = True) -> None:
    """Note what ``page`` shows cut short and what axe-core rates serious or critical, under ``name``."""
    from axe_playwright_python.sync_playwright import Axe

    settled(page, sidebar=sidebar)
    if cut := page.evaluate(CUT_TEXT):
        problems[f"{name} cut"] = cut
    found = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG}}).response["violations"]
    serious = [f"{v['id']}: {v['nodes'][0]['target']}" for v in found if v["impact"] in ("serious", "critical")]
    if serious:
        problems[f"{name} axe"] = serious


def unlock(page: Any, url: str) -> Any:
    """The Instructor page with class mode unlocked in this tab; returns its main area."""
    from playwright.sync_api import expect

    page.goto(f"{url}/instructor")
    main = page.get_by_test_id("stMain")
    main.get_by_label("Instructor passcode").fill(PASSCODE)
    main.get_by_role("button", name="Unlock class mode").click()
    expect(main.get_by_text("Class mode is unlocked in this browser tab.")).to_be_visible()
    return main


def look_at_class_mode(page: Any, url: str, problems: dict[str, Any]) -> None:
    """The join page before and after joining, and the instructor's dashboard with that learner in the class."""
    from playwright.sync_api import expect

    page.goto(f"{url}/join")
    look(page, "/join", problems)
    main = unlock(page, url)
    main.get_by_label("Class name").fill("Projector check")
    main.get_by_role("button", name="Start the class").click()
    started = main.get_by_text(re.compile(r"is running: its join code is"))
    expect(started).to_be_visible()
    found = re.search(r"join code is ([A-Z0-9]{6})", started.inner_text())
    assert found, started.inner_text()
    page.goto(f"{url}/join?class={found.group(1)}")  # a learner of their own (a new sandbox) joins
    main.get_by_role("textbox", name="Your display name").fill("Ada")
    main.get_by_role("button", name="Join the class").click()
    expect(main.get_by_text("You joined Projector check as Ada")).to_be_visible()
    look(page, "/join (joined)", problems)
    main = unlock(page, url)
    roster = main.get_by_test_id("stDataFrame").filter(has=page.locator("th", has_text="Last active"))
    expect(roster.locator("td", has_text=re.compile(r"^Ada$"))).to_have_count(1)  # the dashboard has a member
    look(page, "/instructor (class dashboard)", problems)
    main.get_by_role("button", name="Show on the projector").click()
    expect(main.get_by_test_id("stTable").locator("td", has_text="Learner 1")).to_have_count(1)
    look(page, "/instructor (projector)", problems, sidebar=False)


@pytest.mark.parametrize(("width", "height"), WIDTHS, ids=lambda v: str(v))
def test_every_page_reads_whole_and_passes_axe_at_projector_widths(
    app: str, browser: Any, filled: str, width: int, height: int
) -> None:
    problems: dict[str, Any] = {}
    page = new_page(browser, width, height)
    try:
        for path in PAGES:
            page.goto(f"{app}/{path}?{filled}")
            look(page, f"/{path}", problems)
    finally:
        page.context.close()
    assert not problems, problems


@pytest.mark.parametrize(("width", "height"), WIDTHS, ids=lambda v: str(v))
def test_class_mode_reads_whole_and_passes_axe_at_projector_widths(
    app: str, browser: Any, width: int, height: int
) -> None:
    problems: dict[str, Any] = {}
    page = new_page(browser, width, height)
    try:
        look_at_class_mode(page, app, problems)
    finally:
        page.context.close()
    assert not problems, problems


def test_the_focus_moves_to_yes_when_a_destructive_action_asks(app: str, browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page.goto(f"{app}/data-models")
        main = page.get_by_test_id("stMain")
        form = main.get_by_test_id("stForm").filter(has_text="Create user")
        form.get_by_role("textbox", name="Email", exact=True).fill("focus@example.com")
        form.get_by_role("textbox", name="Name", exact=True).fill("Focus")
        form.get_by_role("button", name="Create user").click()
        main.get_by_role("button", name="Delete this user").click()
        yes = main.get_by_role("button", name="Yes, delete")
        expect(yes).to_be_focused()  # one key press away, not eighteen tabs
    finally:
        page.context.close()
