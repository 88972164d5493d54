"""A class in four browsers: an instructor starts it, three learners join and work, the dashboard follows live.

``streamlit run`` with an instructor passcode and four headless Chromium contexts (four Streamlit
sessions): the instructor unlocks class mode, starts a class and picks Lab 3 for the class plot; three
learners join (one by typing the code, two by the link), create a user on Lab 1, answer its first
knowledge-check question (one of them wrongly), then seed and compare on Lab 3. The instructor's
dashboard, never reloaded, shows the three of them, their progress, the wrong answer's count and their
Lab 3 runs in one plot; the CSV holds their rows; and a learner who opens the Instructor page sees the
passcode form and nothing of the class. On the projector, the dashboard names nobody and the address
holds no sandbox link; back at the desk, the instructor ends the class.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from bench._common import CHROMIUM_ARGS, backend_env
from tests.conftest import BACKEND_KINDS, unavailable
from tests.test_browser import FAILURE_TEXTS, UI_TIMEOUT_MS, chromium_executable, in_own_thread, streamlit_server

pytestmark = pytest.mark.browser

PASSCODE = "projector-thursday-7"
CLASS_NAME = "Thursday data layer"
QUESTION = "two ends of which relationship type"
#: Each learner: display name, whether they join by the link, their answer to Lab 1's first question, Lab 3's users.
LEARNERS = [("Ada", False, "One-to-many", 20), ("Grace", True, "One-to-many", 30), ("Linus", True, "Many-to-many", 40)]


async def settle(page: Any, expected: Any) -> None:
    """Wait until ``expected`` shows and the run has finished; fail on an exception or an error box.

    Lab 3's N+1 detector flags what it found in red on purpose: that is the lab working, not failing.
    """
    from playwright.async_api import expect

    errors = page.get_by_test_id("stAlertContentError").filter(has_not_text="N+1: ")
    failure = page.get_by_test_id("stException").or_(errors)
    for text in FAILURE_TEXTS:
        failure = failure.or_(page.get_by_text(text))
    await expect(expected.or_(failure).first).to_be_visible()
    await expect(page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')).to_have_count(1)
    shown = await failure.all_inner_texts()
    assert not shown, f"the app failed instead of showing {expected}: {shown}"
    await expect(expected).to_be_visible()


async def open_context(browser: Any) -> tuple[Any, Any]:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000}, reduced_motion="reduce")
    context.set_default_timeout(UI_TIMEOUT_MS)
    return context, await context.new_page()


async def start_the_class(page: Any, url: str) -> str:
    """The instructor unlocks class mode, starts a class and picks Lab 3 for the plot; returns the join code."""
    from playwright.async_api import expect

    await page.goto(f"{url}/instructor")
    main = page.get_by_test_id("stMain")
    await settle(page, main.get_by_label("Instructor passcode"))
    await main.get_by_label("Instructor passcode").fill(PASSCODE)
    await main.get_by_role("button", name="Unlock class mode").click()
    await settle(page, main.get_by_text("Class mode is unlocked in this browser tab."))
    await main.get_by_label("Class name").fill(CLASS_NAME)
    await main.get_by_role("button", name="Start the class").click()
    started = main.get_by_text(re.compile(r"is running: its join code is"))
    await settle(page, started)
    found = re.search(r"join code is ([A-Z0-9]{6})", await started.inner_text())
    assert found, await started.inner_text()
    code = found.group(1)
    await expect(main.get_by_test_id("stImage")).to_be_visible()  # the QR code
    await main.get_by_text("3 · Repository & N+1", exact=True).click()  # the board's lab, in its fragment
    await expect(main.get_by_text("No run of this lab yet")).to_be_visible()
    return code


async def one_learner(  # noqa: PLR0913 - who the learner is and what they do
    browser: Any, url: str, shots: Path, code: str, name: str, by_link: bool, answer: str, users: int
) -> None:
    """Join, then Lab 1 (a user, the first question) and Lab 3 (a seed and a comparison)."""
    from playwright.async_api import expect

    context, page = await open_context(browser)
    try:
        await page.goto(f"{url}/join?class={code}" if by_link else f"{url}/join")
        main, sidebar = page.get_by_test_id("stMain"), page.get_by_test_id("stSidebar")
        code_box = main.get_by_role("textbox", name="Join code")
        await settle(page, code_box)
        if by_link:
            await expect(code_box).to_have_value(code)
        else:
            await code_box.fill(code.lower())
        await main.get_by_role("textbox", name="Your display name").fill(name)
        await main.get_by_role("button", name="Join the class").click()
        await settle(page, main.get_by_text(f"You joined {CLASS_NAME} as {name}"))
        await expect(sidebar.get_by_text("Your class")).to_be_visible()

        await sidebar.get_by_role("link", name="1 · Data models").click()
        await settle(page, main.get_by_role("heading", name="Lab 1 · Data models"))
        form = main.get_by_test_id("stForm").filter(has_text="Create user")
        await form.get_by_role("textbox", name="Email", exact=True).fill(f"{name.lower()}@example.com")
        await form.get_by_role("textbox", name="Name", exact=True).fill(name)
        await form.get_by_role("button", name="Create user").click()
        await settle(page, main.get_by_text(f"Created {name.lower()}@example.com"))
        check = main.get_by_test_id("stForm").filter(has_text=QUESTION)
        await check.get_by_text(answer, exact=True).click()
        await check.get_by_role("button", name="Check my answer").click()
        graded = "Correct." if answer == "One-to-many" else "Not quite."
        await settle(page, main.get_by_text(re.compile(rf"^{re.escape(graded)}")).first)

        await sidebar.get_by_role("link", name="3 · Repository & N+1").click()
        await settle(page, main.get_by_role("heading", name="Lab 3 · Repository pattern & N+1"))
        await main.get_by_role("spinbutton", name="Users N").fill(str(users))
        await main.get_by_role("button", name="Seed", exact=True).click()
        await settle(page, main.get_by_text(re.compile(rf"^Seeded {users} users")))
        await main.get_by_role("button", name="Load with every strategy").click()
        await settle(page, main.get_by_text("How many SQL statements did that send?"))
    except BaseException:
        await page.screenshot(path=str(shots / f"learner_{name}.png"), full_page=True)
        raise
    finally:
        await context.close()


async def a_class(url: str, executable: str, shots: Path) -> None:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            _, teacher = await open_context(browser)
            code = await start_the_class(teacher, url)
            await asyncio.gather(*(one_learner(browser, url, shots, code, *learner) for learner in LEARNERS))

            # The dashboard has followed by itself: nobody reloaded the instructor's page.
            board = teacher.get_by_test_id("stMain")
            roster = board.get_by_test_id("stDataFrame").filter(has=teacher.locator("th", has_text="Last active"))
            for name, *_ in LEARNERS:
                await expect(roster.locator("td", has_text=re.compile(rf"^{name}$"))).to_have_count(1)
            await expect(roster.locator("td", has_text="✓ 1/5")).to_have_count(2)  # Lab 1: two right answers
            await expect(roster.locator("td", has_text="✓ 0/5")).to_have_count(4)  # Linus's Lab 1, everyone's Lab 3
            answers = board.get_by_test_id("stDataFrame").filter(has=teacher.locator("th", has_text="Learners"))
            wrong = answers.locator("tr", has_text="Many-to-many")
            await expect(wrong).to_have_count(1)
            await expect(wrong.locator("td").nth(6)).to_have_text("1")
            plot = board.get_by_test_id("stPlotlyChart")
            for name, *_ in LEARNERS:  # every learner's Lab 3 runs, in one plot
                await expect(plot.locator(".textpoint", has_text=name).first).to_be_attached()
            await teacher.screenshot(path=str(shots / "dashboard.png"), full_page=True)

            async with teacher.expect_download() as download:
                await board.get_by_role("button", name="Download the class's measurements (CSV)").click()
            path = await (await download.value).path()
            rows = list(csv.DictReader(io.StringIO(await asyncio.to_thread(Path(path).read_text))))
            for name, _, _, users in LEARNERS:
                theirs = [r for r in rows if r["display_name"] == name and r["lab"] == "lab3"]
                loaded = [r["value"] for r in theirs if r["name"] == "users"]
                assert loaded == [str(users + 1)], (name, loaded)  # the seed's users and the one made on Lab 1

            # On the projector: learners by number, and no sandbox link in the address the room can read.
            await board.get_by_role("button", name="Show on the projector").click()
            await expect(teacher).to_have_url(re.compile(rf"/instructor\?board={code}$"))
            await expect(board.get_by_test_id("stTable").locator("td", has_text="Learner 3")).to_have_count(1)
            await expect(board.get_by_text("Ada", exact=True)).to_have_count(0)
            await expect(teacher.get_by_test_id("stSidebar")).to_be_hidden()

            # Back at the desk, the instructor ends the class: its data goes at once.
            await board.get_by_role("button", name="Leave projector mode").click()
            await board.get_by_role("button", name="End the class").click()
            await board.get_by_role("button", name="Yes, end it").click()
            await settle(teacher, board.get_by_text(f"({code}) has ended"))

            # A learner who opens the Instructor page sees the passcode form, and nothing of the class.
            _, curious = await open_context(browser)
            await curious.goto(f"{url}/instructor")
            main = curious.get_by_test_id("stMain")
            await settle(curious, main.get_by_label("Instructor passcode"))
            shown = await main.inner_text()
            for secret in (code, CLASS_NAME, "Roster and progress", "outbox_events", *(n for n, *_ in LEARNERS)):
                assert secret not in shown, f"{secret!r} is on the Instructor page without the passcode"
        finally:
            await browser.close()


@pytest.mark.parametrize("kind", BACKEND_KINDS)
def test_a_class_in_four_browsers_follows_its_learners_live(tmp_path: Path, kind: str) -> None:
    executable = chromium_executable()
    env = {**backend_env(kind), "PLAB_INSTRUCTOR_PASSCODE": PASSCODE}
    with streamlit_server(env, tmp_path / "server.log") as server:
        if "unreachable" in server.log_text():
            unavailable(f"the {kind} backends were unreachable from the app")
        try:
            in_own_thread(lambda: asyncio.run(a_class(server.url, executable, tmp_path)))
        except BaseException:
            print(f"The server's log:\n{server.log_text()[-4000:]}")
            raise
        log = server.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert PASSCODE not in log, "the passcode is never logged"
