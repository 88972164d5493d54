"""A classroom in one process: N browser tabs clicking Lab 1 at once, each every 0.5–1.5 s.

One ``streamlit run app.py`` per N, one headless Chromium with one context (one learner,
one sandbox) per tab. After every tab has opened Lab 1, each clicks for ``--seconds``:
mostly *Create user* (a new email each time), every third click *Run the join*. A sample
runs from the click until the server reported the script run it started finished (on the
websocket) and, for a create, the new user's message is on the page. Reported per N:
p50/p95 click-to-result, failures, and the server's CPU use (cores, from its process's CPU
time over the window).
Target: 30 tabs, p95 under 1 s.

Run from the repository root: ``python -m bench.classroom [--tabs 1,4,8,16,30] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from bench._common import (
    CHROMIUM,
    CHROMIUM_ARGS,
    JOIN_EVERY,
    ROOT,
    SETTLED,
    THINK_TIME_S,
    ScriptRuns,
    backend_env,
    percentile,
    print_table,
    streamlit_process,
)

UI_TIMEOUT_MS = 60_000


async def timed_click(page: Any, runs: ScriptRuns, button: Any, result: Any | None) -> float:
    from playwright.async_api import expect

    # Click once the page has settled, as a learner does (a click during a rerun may hit a stale button).
    await page.locator(SETTLED).wait_for(timeout=UI_TIMEOUT_MS)
    before = runs.finished
    started = time.perf_counter()
    await button.click()
    deadline = started + UI_TIMEOUT_MS / 1000
    while runs.finished == before:
        if time.perf_counter() > deadline:
            raise TimeoutError("the click started no script run that finished")
        await asyncio.sleep(0.002)
    if result is not None:
        await expect(result.first).to_be_attached(timeout=UI_TIMEOUT_MS)
    return time.perf_counter() - started


class Learner:
    """One tab: opens Lab 1, then clicks until told to stop."""

    def __init__(self, browser: Any, url: str, n: int) -> None:
        self.browser, self.url, self.n = browser, url, n
        self.samples: list[float] = []
        self.failures: list[str] = []
        self.page: Any = None
        self.runs: ScriptRuns

    async def open(self) -> None:
        context = await self.browser.new_context(viewport={"width": 1400, "height": 1000}, reduced_motion="reduce")
        context.set_default_timeout(UI_TIMEOUT_MS)
        self.page = await context.new_page()
        self.runs = ScriptRuns(self.page)
        await self.page.goto(f"{self.url}/data-models")
        await self.page.get_by_test_id("stMain").get_by_role("heading", name="Lab 1 · Data models").wait_for()

    async def click_until(self, stop_at: float) -> None:
        main = self.page.get_by_test_id("stMain")
        form = main.get_by_test_id("stForm").first
        token = uuid.uuid4().hex[:6]
        clicks = 0
        while time.perf_counter() < stop_at:
            await asyncio.sleep(random.uniform(*THINK_TIME_S))  # noqa: S311 - think time, not security
            clicks += 1
            try:
                if clicks % JOIN_EVERY == 0:
                    elapsed = await timed_click(
                        self.page, self.runs, main.get_by_role("button", name="Run the join"), None
                    )
                else:
                    email = f"tab{self.n}.{clicks}.{token}@example.com"
                    await form.get_by_role("textbox", name="Email", exact=True).fill(email)
                    await form.get_by_role("textbox", name="Name", exact=True).fill(f"Tab {self.n}")
                    button = form.get_by_role("button", name="Create user")
                    elapsed = await timed_click(self.page, self.runs, button, main.get_by_text(f"Created {email}"))
                self.samples.append(elapsed)
            except Exception as exc:  # noqa: BLE001 - counted and reported; the class goes on
                self.failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")

    async def close(self) -> None:
        if self.page is not None:
            await self.page.context.close()


async def classroom(url: str, tabs: int, seconds: float, server: psutil.Process) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        learners = [Learner(browser, url, n) for n in range(tabs)]
        try:
            for learner in learners:  # tabs open one after another, as a class arrives
                await learner.open()
            cpu_before, wall_before = server.cpu_times(), time.perf_counter()
            stop_at = wall_before + seconds
            await asyncio.gather(*(learner.click_until(stop_at) for learner in learners))
            cpu_after, wall = server.cpu_times(), time.perf_counter() - wall_before
        finally:
            for learner in learners:
                await learner.close()
            await browser.close()
    busy = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    samples = [s for learner in learners for s in learner.samples]
    failures = [f for learner in learners for f in learner.failures]
    return {"samples": samples, "failures": failures, "cores": busy / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", default="1,4,8,16,30", help="comma-separated numbers of tabs (default 1,4,8,16,30)")
    parser.add_argument("--seconds", type=float, default=60.0, help="clicking time per N (default 60)")
    parser.add_argument("--backend", choices=["embedded", "services"], default="embedded")
    parser.add_argument("--reference", type=Path, help="another checkout, measured before this one at each N")
    args = parser.parse_args()
    rows: list[list[Any]] = []
    checkouts = ([args.reference] if args.reference else []) + [ROOT]
    for tabs, root in ((int(t), root) for t in args.tabs.split(",") for root in checkouts):
        print(f"{tabs} tab(s) on {args.backend}, {root} …", file=sys.stderr)
        with streamlit_process(backend_env(args.backend), root) as (url, _, _, process):
            result = asyncio.run(classroom(url, tabs, args.seconds, psutil.Process(process.pid)))
        samples = [s * 1000 for s in result["samples"]]
        if result["failures"]:
            print(f"  failures: {result['failures'][:3]}", file=sys.stderr)
        rows.append(
            [
                "this checkout" if root == ROOT else str(root),
                tabs,
                len(samples),
                f"{percentile(samples, 50):,.0f} ms" if samples else "–",
                f"{percentile(samples, 95):,.0f} ms" if samples else "–",
                f"{max(samples):,.0f} ms" if samples else "–",
                len(result["failures"]),
                f"{result['cores']:.2f}",
            ]
        )
    print(f"\nClassroom load on {args.backend}: click to result (target: 30 tabs, p95 < 1 s)")
    print_table(["app", "tabs", "clicks", "p50", "p95", "max", "failed", "server cores"], rows)


if __name__ == "__main__":
    main()
