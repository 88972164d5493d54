"""One real browser session: the lab starts, names its backends, and saves a learner's user.

AppTest runs page scripts without a browser. This test is the one place where the whole
stack is real: ``streamlit run`` in its own process, a headless Chromium, the websocket
between them, and a form submitted by clicking. It uses the embedded defaults (SQLite and
fakeredis), exactly what a learner gets with no configuration.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, unavailable

pytestmark = pytest.mark.browser

#: Debian's Chromium; the test never downloads a browser of its own.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Bounds on every wait (seconds / milliseconds).
SERVER_START_TIMEOUT = 60.0
UI_TIMEOUT_MS = 30_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def embedded_env() -> dict[str, str]:
    """The caller's environment without service URLs, so the app uses its embedded defaults."""
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}


def wait_until_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with code {server.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"streamlit was not healthy within {SERVER_START_TIMEOUT:.0f} s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run app.py`` on a free port, stopped (and reaped) whatever happens."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true", f"--server.port={port}"]
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=embedded_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if executable is None:
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Python Playwright is not installed (pip install playwright)")
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


def test_a_learner_opens_the_lab_and_creates_a_user(page: Any, app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page.goto(app_url)
    expect(page.get_by_role("heading", name="Persistence Lab")).to_be_visible(timeout=UI_TIMEOUT_MS)

    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text("SQLite ·", timeout=UI_TIMEOUT_MS)
    expect(sidebar).to_contain_text("fakeredis ·", timeout=UI_TIMEOUT_MS)

    sidebar.get_by_role("link", name="1 · Data models").click()
    expect(page).to_have_url(re.compile(r"/data-models$"), timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Lab 1 · Data models")).to_be_visible(timeout=UI_TIMEOUT_MS)

    email = f"ada.{uuid.uuid4().hex[:8]}@example.com"
    form = page.get_by_test_id("stForm")
    form.get_by_role("textbox", name="Email", exact=True).fill(email)
    form.get_by_role("textbox", name="Name", exact=True).fill("Ada Lovelace")
    form.get_by_role("button", name="Create user").click()

    main = page.get_by_test_id("stMain")
    created, refused = main.get_by_text(f"Created {email}"), main.get_by_test_id("stAlertContentError")
    expect(created.or_(refused).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert refused.count() == 0, f"the app refused the new user: {refused.all_inner_texts()}"
    expect(created).to_be_visible()
    # The users list is a data grid drawn on a canvas; its cells are also in an accessible
    # table, which is what a screen reader (and this test) reads.
    users_table = page.get_by_test_id("stDataFrame").filter(has=page.locator("th", has_text=re.compile(r"^email$")))
    expect(users_table.locator("td", has_text=email)).to_have_count(1, timeout=UI_TIMEOUT_MS)
    expect(users_table.locator("td", has_text="Ada Lovelace")).to_have_count(1)
    users_table.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "lab1_after_create.png"))
