"""A restart keeps the learner's work: the same link, after the app's process stopped and started again.

Real processes and a real browser, as in ``test_browser.py``: a learner creates a user in Lab 1,
the app is stopped (``SIGTERM``, as a redeploy does), started again on the same port, and the same
link shows that user. Then the process is killed (``SIGKILL``, as a crash or an out-of-memory kill
does: nothing of the app runs on the way out), started again, and the user is still there. On
PostgreSQL + Redis the link is found in the ``persistence_lab`` directory; on the embedded default
in the same data folder (``PLAB_DATA_DIR``), where the page says that the Redis side is lost.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bench._common import backend_env, free_port
from tests.conftest import BACKEND_KINDS, ROOT, unavailable
from tests.test_browser import UI_TIMEOUT_MS, Server, browser, page, wait_until_healthy  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


@contextmanager
def app_on(port: int, env: dict[str, str], log: Path) -> Iterator[Server]:
    """``streamlit run app.py`` on ``port``; stopped (and reaped) at the end unless the test did it first."""
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true", f"--server.port={port}"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        wait_until_healthy(server)
        if "unreachable" in server.log_text():
            unavailable("the configured services were unreachable from the app")
        yield server
    finally:
        server.stop()


def users_table(tab: Any) -> Any:
    return (
        tab.get_by_test_id("stMain")
        .get_by_test_id("stTable")
        .filter(has=tab.locator("th", has_text=re.compile(r"^email$")))
    )


def create_user(tab: Any, email: str) -> None:
    from playwright.sync_api import expect

    main = tab.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="Lab 1 · Data models")).to_be_visible()
    form = main.get_by_test_id("stForm")
    form.get_by_role("textbox", name="Email", exact=True).fill(email)
    form.get_by_role("textbox", name="Name", exact=True).fill("Survives Restarts")
    form.get_by_role("button", name="Create user").click()
    expect(main.get_by_text(f"Created {email}")).to_be_visible()
    expect(users_table(tab).locator("td", has_text=email)).to_have_count(1)


def shows_the_user(tab: Any, link: str, email: str, sidebar_says: str) -> None:
    from playwright.sync_api import expect

    tab.goto(link)
    expect(tab.get_by_test_id("stMain").get_by_role("heading", name="Lab 1 · Data models")).to_be_visible()
    expect(users_table(tab).locator("td", has_text=email)).to_have_count(1, timeout=UI_TIMEOUT_MS)
    sidebar = tab.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text(sidebar_says)
    expect(sidebar).not_to_contain_text("does not exist here")
    assert tab.url == link, "the same link: no new sandbox, no new address"


@pytest.mark.parametrize("kind", BACKEND_KINDS)
def test_the_same_link_shows_the_learners_user_after_a_restart_and_after_a_crash(
    page: Any,  # noqa: F811 - the fixture imported above
    kind: str,
    tmp_path: Path,
) -> None:
    env = backend_env(kind) | {"PLAB_DATA_DIR": str(tmp_path / "data")}
    port = free_port()
    email = f"durable.{uuid.uuid4().hex[:8]}@example.com"
    kept = "a restart of the app" if kind == "services" else "a restart loses them"

    with app_on(port, env, tmp_path / "first.log") as first:
        page.goto(f"{first.url}/data-models")
        create_user(page, email)
        link = page.url
        assert re.search(r"[?&]lab=[A-Za-z0-9_-]{22}", link), link
        first.stop()  # SIGTERM: the process lets its sandboxes go and keeps them in the directory

    with app_on(port, env, tmp_path / "second.log") as second:
        shows_the_user(page, link, email, kept)
        second.process.kill()  # SIGKILL: nothing of the app runs on the way out
        second.process.wait(timeout=30)

    with app_on(port, env, tmp_path / "third.log") as third:
        shows_the_user(page, link, email, kept)
        log = third.log_text()
        assert "Traceback" not in log, log[-3000:]
