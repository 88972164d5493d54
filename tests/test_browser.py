"""Real browser sessions: the lab starts, names its backends, and keeps every learner's data apart.

AppTest runs page scripts without a browser, one session at a time. These tests are where the
whole stack is real: ``streamlit run`` in its own process, headless Chromium, the websocket
between them, and forms submitted by clicking.

The first test uses the embedded defaults (SQLite and fakeredis), exactly what a learner gets
with no configuration. The second points the app at real PostgreSQL and Redis and lets several
learners click at the same time. That is the situation the app's single background event loop
exists for: every asyncpg connection and Redis client belongs to that one loop, whichever
session's thread calls in, so concurrent sessions must neither fail nor see each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bench._common import CHROMIUM, CHROMIUM_ARGS, backend_env, free_port  # Debian's Chromium, never a downloaded one
from tests.conftest import BACKEND_KINDS, ROOT, unavailable

pytestmark = pytest.mark.browser

T = TypeVar("T")

#: Liveness bounds on each wait for a condition (seconds / milliseconds): far above what a wait
#: takes on a loaded 2-core machine, so they only end a test that would otherwise hang. No test has
#: a time budget for the whole scenario.
SERVER_START_TIMEOUT = 60.0
UI_TIMEOUT_MS = 60_000

#: Learners clicking at the same time, and how many add-then-join rounds each one clicks.
LEARNERS = 4
ROUNDS = 5
#: What the Lab 1 form adds per click (its defaults): assessments, scores.
PER_CLICK = (2, 3)
#: What a learner must never see: the app's own catch-all messages, or a raw exception.
FAILURE_TEXTS = ("Something unexpected went wrong", "did not answer")
#: Signs in the server's log that a client was used from the wrong event loop.
LOOP_TROUBLE = (
    "Traceback",
    "attached to a different loop",
    "Event loop is closed",
    "bound to a different event loop",
    "another operation is in progress",
    "Task exception was never retrieved",
    "was never awaited",
)


# -- The server -------------------------------------------------------------------------------


@dataclass
class Server:
    """One ``streamlit run app.py`` process, its address, and the file its output goes to."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate, then kill if it lingers; always reaped. Safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"streamlit exited with code {server.process.returncode}:\n{server.log_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"streamlit was not healthy within {SERVER_START_TIMEOUT:.0f} s:\n{server.log_text()[-2000:]}")


@contextmanager
def streamlit_server(env: dict[str, str], log: Path) -> Iterator[Server]:
    """``streamlit run app.py`` on a free port with ``env``, stopped (and reaped) whatever happens."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true", f"--server.port={port}"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        wait_until_healthy(server)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with its embedded defaults, shared by the tests that need nothing else."""
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with streamlit_server(backend_env("embedded"), log) as server:
        yield server.url


# -- The browser ------------------------------------------------------------------------------
def chromium_executable() -> str:
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if executable is None:
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable("Python Playwright is not installed (pip install playwright)")
    return str(executable)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_executable()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)  # wait on what the page shows, however loaded the machine is

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def in_own_thread(action: Callable[[], T]) -> T:
    """Run ``action`` on a fresh thread and return its result (or raise its exception).

    Playwright's sync API keeps an event loop running on the test's thread for as long as the
    module's browser is open, so ``asyncio.run`` there would refuse to start. A thread of its
    own has no loop yet.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(action).result()


# -- One learner, embedded --------------------------------------------------------------------
def test_a_learner_opens_the_lab_and_creates_a_user(page: Any, app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page.goto(app_url)
    expect(page.get_by_role("heading", name="Persistence Lab")).to_be_visible(timeout=UI_TIMEOUT_MS)

    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text("SQLite ·", timeout=UI_TIMEOUT_MS)
    expect(sidebar).to_contain_text("fakeredis ·", timeout=UI_TIMEOUT_MS)

    sidebar.get_by_role("link", name="1 · Data models").click()
    expect(page).to_have_url(re.compile(r"/data-models(\?|$)"), timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Lab 1 · Data models")).to_be_visible(timeout=UI_TIMEOUT_MS)

    email = f"ada.{uuid.uuid4().hex[:8]}@example.com"
    form = page.get_by_test_id("stForm")
    form.get_by_role("textbox", name="Email", exact=True).fill(email)
    form.get_by_role("textbox", name="Name", exact=True).fill("Ada *Lovelace*")
    form.get_by_role("button", name="Create user").click()

    main = page.get_by_test_id("stMain")
    created, refused = main.get_by_text(f"Created {email}"), main.get_by_test_id("stAlertContentError")
    expect(created.or_(refused).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert refused.count() == 0, f"the app refused the new user: {refused.all_inner_texts()}"
    expect(created).to_be_visible()
    users_table = page.get_by_test_id("stTable").filter(has=page.locator("th", has_text=re.compile(r"^email$")))
    expect(users_table.locator("td", has_text=email)).to_have_count(1, timeout=UI_TIMEOUT_MS)
    expect(users_table.locator("td", has_text="Ada *Lovelace*")).to_have_count(1)
    users_table.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "lab1_after_create.png"))


def test_a_pool_experiment_runs_on_while_the_learner_clicks_elsewhere(page: Any, app_url: str) -> None:
    """The progress panel ticks by itself, Run is disabled, and the result waits for the learner's return."""
    from playwright.sync_api import expect

    page.goto(f"{app_url}/pooling")
    main, sidebar = page.get_by_test_id("stMain"), page.get_by_test_id("stSidebar")
    expect(main.get_by_role("heading", name="Lab 2 · Async connectivity & pooling")).to_be_visible()
    form = main.get_by_test_id("stForm")
    for label, value in (("Requests K", "30"), ("Hold D (ms)", "100"), ("pool_size", "1"), ("pool_timeout (s)", "10")):
        form.get_by_label(label, exact=True).fill(value)
    compare = form.get_by_label("Also run it with a new connection per request (NullPool)")
    form.get_by_text("Also run it with a new connection per request (NullPool)").click()
    expect(compare).not_to_be_checked()
    run = form.get_by_role("button", name="Run the experiment")
    run.click()

    progress = main.get_by_text(re.compile(r"Run 1 of 1, pooled · \d+ of 30 requests finished"))
    expect(progress).to_be_visible()
    expect(main.get_by_role("button", name="Stop")).to_be_visible()
    expect(run).to_be_disabled()
    first = progress.inner_text()
    expect(progress).not_to_have_text(first)  # the fragment redraws by itself: the count moves

    sidebar.get_by_role("link", name="1 · Data models").click()  # leave while it runs...
    expect(main.get_by_role("heading", name="Lab 1 · Data models")).to_be_visible()
    sidebar.get_by_role("link", name="2 · Async connectivity & pooling").click()  # ...and come back
    expect(main.get_by_role("heading", name=re.compile(r"^Pooled: K = 30, D = 100 ms"))).to_be_visible()
    expect(run).to_be_enabled()
    expect(main.get_by_test_id("stMetric").filter(has_text="Completed")).to_contain_text("30")


# -- Several learners at once, PostgreSQL and Redis ---------------------------------------------
class ServicesUnreachable(Exception):
    """The app fell back to SQLite or fakeredis: the sidebar says which service and why."""


@dataclass
class LearnerRun:
    """What one learner's session did: who they were, where their sandbox lived, how long it took."""

    email: str
    schema: str
    reruns: int
    seconds: float


def learner_email(token: str, n: int) -> str:
    return f"learner{n}.{token}@example.com"


async def settle(page: Any, expected: Any) -> None:
    """Wait until ``expected`` shows and the script run has finished, or the app fails instead.

    A learner reads the result, then clicks again once the page stops running; a click that
    lands while the page is still being redrawn can hit a button that is about to be replaced.
    """
    from playwright.async_api import expect

    failure = page.get_by_test_id("stException").or_(page.get_by_test_id("stAlertContentError"))
    for text in FAILURE_TEXTS:
        failure = failure.or_(page.get_by_text(text))
    await expect(expected.or_(failure).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    await expect(page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')).to_have_count(1)
    shown = await failure.all_inner_texts()
    assert not shown, f"the app failed instead of showing {expected}: {shown}"
    await expect(expected).to_be_visible()


async def one_learner(browser: Any, url: str, token: str, n: int, shots: Path) -> LearnerRun:  # noqa: PLR0915
    """A learner's whole visit in their own browser context (their own Streamlit session)."""
    from playwright.async_api import expect

    started = time.monotonic()
    email = learner_email(token, n)
    others = [learner_email(token, k) for k in range(LEARNERS) if k != n]
    # Four pages share two or so CPUs here; without animations the browser paints far less.
    context = await browser.new_context(viewport={"width": 1400, "height": 1000}, reduced_motion="reduce")
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    try:
        # A deep link straight to Lab 1 still renders inside the navigation shell.
        await page.goto(f"{url}/data-models")
        main, sidebar = page.get_by_test_id("stMain"), page.get_by_test_id("stSidebar")
        await settle(page, main.get_by_role("heading", name="Lab 1 · Data models"))
        await expect(sidebar).to_contain_text("Backends")
        await expect(sidebar).to_contain_text("seats are taken")  # a visitor until the first click takes one
        status = await sidebar.inner_text()
        if "unreachable" in status:
            raise ServicesUnreachable(" ".join(line for line in status.splitlines() if "unreachable" in line))
        await expect(sidebar).to_contain_text("PostgreSQL ·")
        await expect(sidebar).to_contain_text("Redis · configured")

        form = main.get_by_test_id("stForm")
        await settle(page, form.get_by_role("textbox", name="Email", exact=True))
        await form.get_by_role("textbox", name="Email", exact=True).fill(email)
        await form.get_by_role("textbox", name="Name", exact=True).fill(f"Learner {n}")
        await form.get_by_role("button", name="Create user").click()
        await settle(page, main.get_by_text(f"Created {email}"))
        reruns = 1
        # The first action took a seat: the sidebar now names this learner's own schema.
        await expect(sidebar).to_contain_text("You have a seat")
        status = await sidebar.inner_text()
        found = re.search(r"schema\s+(plab_\w+)", status)
        assert found, f"the sidebar names no PostgreSQL schema for this sandbox: {status}"
        schema = found.group(1)

        # Many reruns, each with real SQL: add children, then join. The counts only add up if
        # every write landed in this learner's schema and nobody else's did.
        add = main.get_by_role("button", name="Add sample assessments and scores")
        join = main.get_by_role("button", name="Run the join")
        for i in range(1, ROUNDS + 1):
            assessments, scores = PER_CLICK[0] * i, PER_CLICK[1] * i
            await add.click()
            await settle(page, main.get_by_text(f"{email} now has {assessments} assessments and {scores} scores."))
            await join.click()
            await settle(page, main.get_by_text(re.compile(rf"^{assessments} row\(s\)\.")))
            reruns += 2

        # The users list is the table with an occupation_code column (the join's grid has none).
        users_table = main.get_by_test_id("stTable").filter(
            has=page.locator("th", has_text=re.compile(r"^occupation_code$"))
        )
        await expect(users_table.locator("td", has_text=email)).to_have_count(1)
        await expect(users_table.locator("td", has_text="@")).to_have_count(1)
        for other in others:
            await expect(main.get_by_text(other)).to_have_count(0)

        # Lab 2 in the same session: the sample users are new to this sandbox, whoever made theirs first.
        await sidebar.get_by_role("link", name="2 · Async connectivity & pooling").click()
        await expect(page).to_have_url(re.compile(r"/pooling(\?|$)"))
        await main.get_by_role("button", name="Initialise the database & create the sample users").click()
        await settle(page, main.get_by_test_id("stAlertContentSuccess").filter(has_text="Your sandbox is at migration"))
        for sample in ("Alex Smith", "Jane Doe"):
            await expect(main.locator("li", has_text=sample)).to_contain_text("created now")
        reruns += 2  # the page switch and the button

        await sidebar.get_by_role("link", name="1 · Data models").click()
        await settle(page, main.get_by_role("heading", name="Lab 1 · Data models"))
        await expect(users_table.locator("td", has_text="@")).to_have_count(3)
        await expect(users_table.locator("td", has_text=email)).to_have_count(1)
        for other in others:
            await expect(main.get_by_text(other)).to_have_count(0)
        await expect(page.get_by_test_id("stException")).to_have_count(0)
        reruns += 1
        return LearnerRun(email, schema, reruns, time.monotonic() - started)
    except BaseException:
        with contextlib.suppress(Exception):  # a picture helps, but must never hide the real failure
            await page.screenshot(path=str(shots / f"learner{n}_failed.png"), full_page=True, timeout=5_000)
        raise
    finally:
        await context.close()  # closes the websocket: the session ends and releases its sandbox


async def learners_at_once(url: str, executable: str, shots: Path) -> list[LearnerRun]:
    """One Chromium, one context per learner, all driven concurrently; the first failure stops all."""
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    token = uuid.uuid4().hex[:8]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one_learner(browser, url, token, n, shots)) for n in range(LEARNERS)]
            return [t.result() for t in tasks]
        finally:
            await browser.close()


@pytest.mark.services
def test_learners_at_once_on_postgresql_and_redis_keep_their_own_data(tmp_path: Path) -> None:
    executable = chromium_executable()
    with streamlit_server(backend_env("services"), tmp_path / "server.log") as server:
        started = time.monotonic()
        try:
            runs = in_own_thread(lambda: asyncio.run(learners_at_once(server.url, executable, tmp_path)))
        except Exception as exc:
            fallback = exc.subgroup(ServicesUnreachable) if isinstance(exc, ExceptionGroup) else None
            if fallback is not None:
                unavailable("the app fell back from a real service: " + str(fallback.exceptions[0]))
            print(f"The server's log:\n{server.log_text()[-4000:]}")
            raise
        scenario_s = time.monotonic() - started

        schemas = [r.schema for r in runs]
        assert len(set(schemas)) == LEARNERS, f"learners shared a sandbox schema: {schemas}"
    for r in runs:
        print(f"{r.email}: {r.reruns} reruns in {r.seconds:.1f} s, schema {r.schema}")
    print(f"{LEARNERS} learners at once: {scenario_s:.1f} s")
    log = server.log_text()
    trouble = [marker for marker in LOOP_TROUBLE if marker in log]
    assert not trouble, f"the server's log shows {trouble}:\n{log[-4000:]}"


# -- A refresh keeps the learner's sandbox; another browser does not get it --------------------
def test_a_refresh_keeps_the_learners_sandbox_and_other_browsers_do_not_get_it(
    page: Any, browser: Any, app_url: str
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{app_url}/data-models")
    main, sidebar = page.get_by_test_id("stMain"), page.get_by_test_id("stSidebar")
    expect(main.get_by_role("heading", name="Lab 1 · Data models")).to_be_visible()
    expect(sidebar).to_contain_text("You are looking around")  # a visit takes no seat: no token yet
    assert "lab=" not in page.url
    email = f"kept.{uuid.uuid4().hex[:8]}@example.com"
    form = main.get_by_test_id("stForm")
    form.get_by_role("textbox", name="Email", exact=True).fill(email)
    form.get_by_role("textbox", name="Name", exact=True).fill("Kept Across Reloads")
    form.get_by_role("button", name="Create user").click()
    expect(main.get_by_text(f"Created {email}")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]lab=[A-Za-z0-9_-]{22}"))  # the first action took a seat

    # Page switches keep the link: the sandbox is the same on the way back.
    sidebar.get_by_role("link", name="Welcome").click()
    expect(page.get_by_role("heading", name="Persistence Lab")).to_be_visible()
    sidebar.get_by_role("link", name="1 · Data models").click()
    expect(page).to_have_url(re.compile(r"/data-models\?lab="))
    link = page.url

    users = main.get_by_test_id("stTable").filter(has=page.locator("th", has_text=re.compile(r"^email$")))
    page.reload()  # a new websocket, a new Streamlit session: the same sandbox
    expect(users.locator("td", has_text=email)).to_have_count(1, timeout=UI_TIMEOUT_MS)
    expect(page).to_have_url(link)

    other = browser.new_context(viewport={"width": 1400, "height": 1000})
    other.set_default_timeout(UI_TIMEOUT_MS)
    try:
        stranger = other.new_page()  # another browser without the link: a visitor, no sandbox yet
        stranger.goto(f"{app_url}/data-models")
        empty = stranger.get_by_test_id("stMain")
        expect(empty.get_by_text("No users yet: create one above.")).to_be_visible()
        expect(empty.get_by_text(email)).to_have_count(0)
        assert stranger.url != link

        stranger.goto(f"{app_url}/data-models?lab=not-a-token")  # a made-up link: never anyone's data
        expect(stranger.get_by_test_id("stSidebar")).to_contain_text("not one this lab hands out")
        expect(empty.get_by_text("No users yet: create one above.")).to_be_visible()
        expect(empty.get_by_text(email)).to_have_count(0)

        stranger.goto(link)  # the same link in another tab (or browser) is the same sandbox
        shared = stranger.get_by_test_id("stMain").get_by_test_id("stTable")
        expect(shared.locator("td", has_text=email)).to_have_count(1, timeout=UI_TIMEOUT_MS)
    finally:
        other.close()


# -- Long work outlives the learner's other clicks, on both backends -----------------------------
#: Either of these means the job is still running (its live panel) or has finished (its result).
SEED_SEEN = re.compile(r"^Seeding · [\d,]+ of 2,000 users|^Seeded 2,000 users and 40,000 scores")
STRATEGIES_SEEN = re.compile(r"operations|cache-aside \+ invalidation|Waiting for your sandbox")


@pytest.fixture(scope="module", params=BACKEND_KINDS)
def any_backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with streamlit_server(backend_env(str(request.param)), log) as server:
        if "unreachable" in server.log_text():
            unavailable(f"the {request.param} backends were unreachable from the app")
        yield server.url


def go(tab: Any, link: str, heading: str) -> Any:
    from playwright.sync_api import expect

    tab.get_by_test_id("stSidebar").get_by_role("link", name=link).click()
    main = tab.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name=heading)).to_be_visible(timeout=UI_TIMEOUT_MS)
    return main


def test_a_seed_and_a_strategy_run_outlive_a_visit_elsewhere_and_stop_on_stop(page: Any, any_backend_url: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{any_backend_url}/caching")  # Lab 4's sample users first: on SQLite a seed holds the writer's lock
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="Lab 4 · Caching with Redis")).to_be_visible()
    main.get_by_role("button", name="Add Alex and Jane with a score each").click()
    expect(main.get_by_role("button", name="Run the workload")).to_be_visible()
    main = go(page, "3 · Repository & N+1", "Lab 3 · Repository pattern & N+1")

    # Stop stops a seed: it writes in one transaction, which is rolled back.
    main.get_by_label("Users N", exact=True).fill("2000")
    main.get_by_label("Scores per user M", exact=True).fill("20")
    main.get_by_role("button", name="Seed", exact=True).click()
    stop = main.get_by_role("button", name="Stop")
    stopped_seed = main.get_by_text(re.compile(r"^Seeding was stopped"))
    seeded = main.get_by_text(re.compile(r"^Seeded 2,000 users"))
    expect(stop.or_(seeded)).to_be_visible()
    if stop.is_visible():
        stop.click()
        expect(stopped_seed.or_(seeded)).to_be_visible()
    if not seeded.is_visible():  # stopped in time: nothing was added, so it may seed again
        main.get_by_role("button", name="Seed", exact=True).click()
    expect(main.get_by_text(SEED_SEEN).first).to_be_visible()

    # While it seeds, Lab 4: a long workload.
    main = go(page, "4 · Caching with Redis", "Lab 4 · Caching with Redis")
    form = main.get_by_test_id("stForm").filter(has_text="Run the workload")
    expect(form).to_be_visible()
    form.get_by_label("Operations", exact=True).fill("3000")
    form.get_by_role("button", name="Run the workload").click()
    expect(main.get_by_text(STRATEGIES_SEEN).first).to_be_visible()

    # Elsewhere, and back: both are still running, or finished with their results.
    go(page, "1 · Data models", "Lab 1 · Data models")
    main = go(page, "3 · Repository & N+1", "Lab 3 · Repository pattern & N+1")
    expect(main.get_by_text(SEED_SEEN).first).to_be_visible()
    expect(main.get_by_text(re.compile(r"^Seeded 2,000 users and 40,000 scores"))).to_be_visible()
    main = go(page, "4 · Caching with Redis", "Lab 4 · Caching with Redis")
    stop = main.get_by_role("button", name="Stop")
    table = main.get_by_test_id("stDataFrame").filter(has_text="cache-aside")
    expect(stop.or_(table).first).to_be_visible()

    # Stop stops a strategy run (started afresh if the first one already finished).
    if not stop.is_visible():
        main.get_by_test_id("stForm").filter(has_text="Run the workload").get_by_role(
            "button", name="Run the workload"
        ).click()
    stop.click()
    stopped = main.get_by_text(re.compile(r"^The run was stopped after [\d,]+ of [\d,]+ operations"))
    expect(stopped.or_(table).first).to_be_visible()
