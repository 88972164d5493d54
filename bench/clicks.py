"""Click to result in a real browser: how long a learner waits after clicking in Labs 1 and 2.

One ``streamlit run app.py`` per backend pair and one headless Chromium tab. Each action is
clicked N times; a sample runs, in the page's own clock, from the click event until the first
animation frame in which the page shows its script run finished and the result the learner
looks for (the server's ``script_finished`` message must have arrived too). Target: median
under 300 ms.

``--nagle`` also measures the same checkout with its ``TCP_NODELAY`` hook left out (the server starts
with ``bench/server_site/`` on its path and ``PLAB_BENCH_NAGLE=1``), so small replies wait on
Nagle's algorithm as they did before ``source/web/transport.py``; with ``--rounds N`` the two
servers take turns N times (Lab 1's *Create user* only), and the medians of each round are reported.

Run from the repository root: ``python -m bench.clicks [--repeat 10] [--nagle --rounds 2]``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._common import (
    ROOT,
    SETTLED,
    ScriptRuns,
    backend_env,
    backend_kinds,
    chromium,
    print_table,
    streamlit_process,
    summarise,
)

UI_TIMEOUT_MS = 60_000
TARGET_MS = 300


#: Records when the next click reaches the page (capture phase, before Streamlit's own handlers).
ARM_CLICK = """() => {
    window.__plabClickedAt = null;
    const record = () => { window.__plabClickedAt = performance.now(); };
    window.addEventListener("click", record, {capture: true, once: true});
}"""

#: True (the time, in the page's clock) once the run has finished and an element shows the result.
RESULT_SHOWN = """([selector, pattern]) => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (window.__plabClickedAt === null || app?.getAttribute("data-test-script-state") !== "notRunning") return false;
    const expected = new RegExp(pattern);
    for (const element of document.querySelectorAll(selector)) {
        if (expected.test(element.textContent ?? "")) return performance.now() - window.__plabClickedAt;
    }
    return false;
}"""

#: Where results are written: paragraphs (messages, captions, progress text) and table cells, in the main area.
TEXT = '[data-testid="stMain"] p'
CELLS = '[data-testid="stMain"] [data-testid="stTable"] td'


def timed_click(page: Any, runs: ScriptRuns, button: Any, where: str, pattern: str) -> float:
    """Seconds from the click reaching the page until its run has finished and the result shows.

    Both ends are read in the page's own clock: the click by a listener that sees it before
    Streamlit does, the result by a check run on every animation frame (the frame in which
    the browser can paint it). Neither includes the test driver's own work: the checks it
    makes before it clicks, or the growing pauses between its polls of the page.
    """
    # Click once the page has settled, as a learner does (a click during a rerun may hit a stale button).
    page.locator(SETTLED).wait_for(timeout=UI_TIMEOUT_MS)
    before = runs.finished
    page.evaluate(ARM_CLICK)
    button.click()
    shown = page.wait_for_function(RESULT_SHOWN, arg=[where, pattern], polling="raf", timeout=UI_TIMEOUT_MS)
    if runs.finished == before:  # the page says it finished; the server's message must agree
        raise RuntimeError("the result showed, but the server reported no finished script run")
    return float(shown.json_value()) / 1000


def lab1_actions(page: Any, runs: ScriptRuns, url: str) -> dict[str, Callable[[int], float]]:
    """Lab 1's actions, each made to produce a result not on the page before (a new email, a new count)."""
    page.goto(f"{url}/data-models")
    main = page.get_by_test_id("stMain")
    main.get_by_role("heading", name="Lab 1 · Data models").wait_for()
    form = main.get_by_test_id("stForm").first
    token = uuid.uuid4().hex[:6]

    def create(i: int) -> float:
        email = f"click{i}.{token}@example.com"
        form.get_by_role("textbox", name="Email", exact=True).fill(email)
        form.get_by_role("textbox", name="Name", exact=True).fill(f"Click {i}")
        button = form.get_by_role("button", name="Create user")
        return timed_click(page, runs, button, TEXT, f"Created {re.escape(email)}")

    def add(i: int) -> float:  # the first user stays selected: each add gives them two more assessments
        button = main.get_by_role("button", name="Add sample assessments and scores")
        # The first create redraws the page to show the new user's controls: click once they are drawn.
        button.wait_for(timeout=UI_TIMEOUT_MS)
        return timed_click(page, runs, button, TEXT, rf" now has {2 * (i + 1)} assessments")

    def save(i: int) -> float:  # until the new name is in the users table
        main.get_by_role("textbox", name="Name", exact=True).nth(1).fill(f"Renamed {i}")
        return timed_click(page, runs, main.get_by_role("button", name="Save changes"), CELLS, f"^Renamed {i}$")

    def join(i: int) -> float:
        # Every add above gave the first user (the one selected) two more assessments: two more rows.
        button = main.get_by_role("button", name="Run the join")
        return timed_click(page, runs, button, TEXT, rf"^{2 * (i + 1)} row\(s\)\.")

    return {"Lab 1 · Create user": create, "Lab 1 · Add sample children": add, "Lab 1 · Save changes": save,
            "Lab 1 · Run the join": join}  # fmt: skip


def lab2_actions(page: Any, runs: ScriptRuns, url: str) -> dict[str, Callable[[int], float]]:
    from playwright.sync_api import expect

    page.goto(f"{url}/pooling")
    main = page.get_by_test_id("stMain")
    main.get_by_role("heading", name="Lab 2 · Async connectivity & pooling").wait_for()

    def initialise(i: int) -> float:
        button = main.get_by_role("button", name="Initialise the database & create the sample users")
        return timed_click(page, runs, button, TEXT, "Your sandbox is at migration")

    def start(i: int) -> float:
        """Run → the progress panel with its Stop button (the experiment itself then runs for ~1 s)."""
        form = main.get_by_test_id("stForm")
        for label, value in (("Requests K", "50"), ("Hold D (ms)", "100"), ("pool_size", "5")):
            form.get_by_label(label, exact=True).fill(value)
        run = form.get_by_role("button", name="Run the experiment")
        elapsed = timed_click(page, runs, run, TEXT, "Run 1 of")
        expect(run).to_be_enabled(timeout=UI_TIMEOUT_MS)  # the experiment has ended: ready for the next click
        return elapsed

    return {"Lab 2 · Initialise": initialise, "Lab 2 · Run the experiment → progress shown": start}


SERVER_SITE = ROOT / "bench" / "server_site"


def measure(
    kind: str, repeat: int, root: Path | None = None, nagle: bool = False, lab1_only: bool = False
) -> list[list[Any]]:
    """Every action on one server; with ``root``, that checkout's app and Lab 1 only (a reference).

    ``nagle``: this checkout with its ``TCP_NODELAY`` hook left out (``bench/server_site``); with it or
    ``lab1_only``, Lab 1's *Create user* alone.
    """
    rows: list[list[Any]] = []
    label = ("PostgreSQL + Redis" if kind == "services" else "SQLite + fakeredis") + (f" ({root})" if root else "")
    env = backend_env(kind)
    if nagle:
        label += ", TCP_NODELAY off"
        env.update(
            PLAB_BENCH_NAGLE="1", PYTHONPATH=os.pathsep.join(filter(None, [str(SERVER_SITE), env.get("PYTHONPATH")]))
        )
    makers = (lab1_actions,) if root or nagle or lab1_only else (lab1_actions, lab2_actions)
    with streamlit_process(env, root or ROOT) as (url, *_), chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        runs = ScriptRuns(page)
        try:
            for make in makers:
                actions = make(page, runs, url)
                if nagle or lab1_only:  # the comparison: one click, timed the same way on both servers
                    actions = {name: act for name, act in actions.items() if name.endswith("Create user")}
                samples: dict[str, list[float]] = {name: [] for name in actions}
                for i in range(repeat + 1):  # the first round warms up and is not counted
                    for name, action in actions.items():
                        elapsed = action(i)
                        if i:
                            samples[name].append(elapsed)
                for name, values in samples.items():
                    s = summarise([v * 1000 for v in values])
                    rows.append([label, name, f"{s['median']:.0f} ms", f"{s['min']:.0f}", f"{s['max']:.0f}", repeat])
        finally:
            context.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="clicks per action (default 10, at most 24)")
    parser.add_argument("--backend", choices=["embedded", "services"], help="only this backend pair")
    parser.add_argument("--reference", type=Path, help="another checkout whose Lab 1 is measured in the same run")
    parser.add_argument("--nagle", action="store_true", help="also this checkout with its TCP_NODELAY hook left out")
    parser.add_argument("--rounds", type=int, default=1, help="with --nagle: how many times the two take turns")
    args = parser.parse_args()
    rows: list[list[Any]] = []
    for kind in [args.backend] if args.backend else backend_kinds():
        for n in range(args.rounds if args.nagle else 1):
            print(f"measuring {kind}, round {n + 1} …", file=sys.stderr)
            if args.reference:
                rows += measure(kind, args.repeat, args.reference)
            if args.nagle and n % 2 == 0:
                rows += measure(kind, args.repeat, nagle=True)
            rows += measure(kind, args.repeat, lab1_only=args.nagle)
            if args.nagle and n % 2 == 1:
                rows += measure(kind, args.repeat, nagle=True)
    print(f"\nClick to result in Chromium (median; target < {TARGET_MS} ms)")
    print_table(["backend", "action", "median", "min ms", "max ms", "n"], rows)


if __name__ == "__main__":
    main()
