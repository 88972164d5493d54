"""How long the lab takes to start, and how long one click on Lab 1 takes, on each backend pair.

Cold start is measured twice:

* in a real browser: from launching ``streamlit run app.py`` until headless Chromium shows the
  home page's title, and until the sidebar shows the seats line (the first *full*
  render: backends built, the visitors' read-only sandbox created and migrated; a visit takes no seat);
* with Streamlit's AppTest in a fresh interpreter: imports plus the first run of ``app.py``.

An interaction is one AppTest run of Lab 1 after a widget changed (a form submitted, a button
clicked), repeated N times on a warm app; the table shows the median.

Run from the repository root: ``python -m bench.startup [--runs 3] [--repeat 20]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench._common import (
    PG_URL,
    REDIS_URL,
    ROOT,
    backend_env,
    backend_kinds,
    chromium,
    leftover_schemas,
    print_table,
    streamlit_server,
    summarise,
)

LAB1 = "views/lab1_data_models.py"
UI_TIMEOUT_MS = 60_000

#: Runs in a fresh interpreter: the clock starts before Streamlit is imported.
APPTEST_FIRST_RUN = """
import json, sys, time
started = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=60)
imported = time.perf_counter()
at.run()
done = time.perf_counter()
print(json.dumps({"total": done - started, "run": done - imported, "errors": [e.value for e in at.exception]}))
"""


def browser_cold_start(kind: str, runs: int) -> dict[str, list[float]]:
    """Launch → healthy, → title visible, → sidebar shows the seats; one fresh server per run."""
    from playwright.sync_api import expect

    expected = "PostgreSQL ·" if kind == "services" else "SQLite ·"
    times: dict[str, list[float]] = {"healthy": [], "title": [], "full": []}
    schemas: list[str] = []
    with chromium() as browser:  # the browser is already open: only the app's start is timed
        for _ in range(runs):
            with streamlit_server(backend_env(kind)) as (url, started, healthy):
                context = browser.new_context()
                try:
                    page = context.new_page()
                    page.goto(url)
                    expect(page.get_by_role("heading", name="Persistence Lab")).to_be_visible(timeout=UI_TIMEOUT_MS)
                    title = time.perf_counter() - started
                    sidebar = page.get_by_test_id("stSidebar")
                    expect(sidebar).to_contain_text("seats are taken", timeout=UI_TIMEOUT_MS)
                    full = time.perf_counter() - started
                    text = sidebar.inner_text()
                    if expected not in text:
                        raise RuntimeError(f"the app did not start on {kind}: {text[-300:]}")
                    schemas += re.findall(r"schema (plab_[0-9a-f]+)", text)
                finally:
                    context.close()  # ends the session, so the app releases the sandbox
            times["healthy"].append(healthy)
            times["title"].append(title)
            times["full"].append(full)
    if left := leftover_schemas(schemas):
        print(f"WARNING: schemas left behind after the server stopped: {left}", file=sys.stderr)
    return times


def apptest_cold_start(kind: str, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"total": [], "run": []}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", APPTEST_FIRST_RUN, str(ROOT / "app.py")],
            cwd=ROOT,
            env=backend_env(kind),
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["errors"]:
            raise RuntimeError(f"app.py raised on {kind}: {result['errors']}")
        times["total"].append(result["total"])
        times["run"].append(result["run"])
    return times


def set_backend_env(kind: str) -> None:
    for key, value in (("DATABASE_URL", PG_URL), ("REDIS_URL", REDIS_URL)):
        if kind == "services":
            os.environ[key] = value
        else:
            os.environ.pop(key, None)


def lab1_interactions(kind: str, repeat: int) -> dict[str, list[float]]:
    """Median-worthy samples of three Lab 1 actions, on a warm app in this process."""
    from streamlit.testing.v1 import AppTest

    # Driving a page from outside a script thread makes Streamlit warn; the warning is harmless here.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    set_backend_env(kind)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(LAB1).run()

    def rerun() -> None:
        at.run()

    def create_user() -> None:
        email = f"bench.{uuid.uuid4().hex[:10]}@example.com"
        at.text_input(key="lab1_email").input(email)
        at.text_input(key="lab1_name").input("Bench Learner")
        at.button(key="lab1_create").click()
        at.run()
        if not any(email in s.value for s in at.success):
            raise RuntimeError(f"Create user did not succeed on {kind}: {[e.value for e in at.error]}")

    def run_join() -> None:
        at.button(key="lab1_join").click()
        at.run()
        if not at.code or at.error:
            raise RuntimeError(f"Run the join did not succeed on {kind}: {[e.value for e in at.error]}")

    actions: dict[str, Callable[[], None]] = {
        "rerun, nothing changed": rerun,
        "submit 'Create user'": create_user,
        "click 'Run the join'": run_join,
    }
    times: dict[str, list[float]] = {}
    for name, action in actions.items():
        for _ in range(2):  # warm-up
            action()
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            action()
            samples.append(time.perf_counter() - started)
        if at.exception:
            raise RuntimeError(f"Lab 1 raised on {kind}: {[e.value for e in at.exception]}")
        times[name] = samples
    return times


def release_in_process_backends(kinds: list[str]) -> None:
    """Drop the sandboxes AppTest's sessions created (AppTest never ends its sessions)."""
    from source import web

    for kind in kinds:
        set_backend_env(kind)
        backends: Any = web.backends()  # the cached, process-wide instance the app used
        schemas = [s.schema for s in backends._sandboxes if s.schema]
        backends.close()
        backends.runtime.stop()
        if left := leftover_schemas(schemas):
            print(f"WARNING: schemas left behind by AppTest's sandboxes: {left}", file=sys.stderr)


def ms(value: float) -> str:
    return f"{value * 1000:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts per backend (default 3)")
    parser.add_argument("--repeat", type=int, default=20, help="repetitions per interaction (default 20)")
    args = parser.parse_args()
    logging.getLogger("streamlit").setLevel(logging.ERROR)

    kinds = backend_kinds()
    cold_rows: list[list[Any]] = []
    click_rows: list[list[Any]] = []
    measured: list[str] = []
    try:
        for kind in kinds:
            label = "PostgreSQL + Redis" if kind == "services" else "SQLite + fakeredis"
            print(f"measuring {label} …", file=sys.stderr)
            browser = browser_cold_start(kind, args.runs)
            apptest = apptest_cold_start(kind, args.runs)
            for name, samples in (
                ("launch → /_stcore/health ok", browser["healthy"]),
                ("launch → browser shows home title", browser["title"]),
                ("launch → sidebar shows the seats (full)", browser["full"]),
                ("AppTest: imports + first run", apptest["total"]),
                ("AppTest: first run of app.py", apptest["run"]),
            ):
                s = summarise(samples)
                cold_rows.append([label, name, ms(s["median"]), ms(s["min"]), ms(s["max"]), int(s["n"])])
            measured.append(kind)
            for name, samples in lab1_interactions(kind, args.repeat).items():
                s = summarise(samples)
                click_rows.append([label, name, ms(s["median"]), ms(s["min"]), ms(s["max"]), int(s["n"])])
    finally:
        release_in_process_backends(measured)

    print("\nCold start (median of fresh processes)")
    print_table(["backend", "measure", "median", "min", "max", "n"], cold_rows)
    print("\nLab 1 interaction (AppTest, warm app: one script run after the widget changed)")
    print_table(["backend", "action", "median", "min", "max", "n"], click_rows)


if __name__ == "__main__":
    main()
