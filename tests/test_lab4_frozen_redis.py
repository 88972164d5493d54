"""Lab 4 under a frozen Redis (SIGSTOP): a click waits for it once, never once per call, and nobody else waits at all.

A private ``redis-server`` on its own port is the app's Redis here; the test stops it with
``SIGSTOP`` (it accepts connections and never answers, as a hung server does) and resumes it
with ``SIGCONT``. The shared Redis on 6379 is never touched. A *click* is what the page runs
for *Fetch user*: the callback (the cached read, its counters, the measurement the knowledge
check reads), then the page's own reads (the counters, the TTL bars, the learner's progress).

Nothing here is timed against a target (the machine is shared): the budget's own counters say
how many calls waited, and a generous bound only proves that no wait was unbounded. The
click-to-result figures are ``python -m bench.cache --frozen``'s.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from redis.asyncio import Redis
from streamlit.testing.v1 import AppTest

from source import Backends, Sandbox
from source.labs.caching import actions
from source.labs.caching.cache import RedisCache, user_key
from source.labs.caching.dtos import CacheSettings
from source.labs.caching.sandbox_cache import cache_for, set_outage
from source.learning import measurements, progress
from source.platform.dead_redis import BlackHole
from source.platform.errors import ServiceUnavailable
from source.platform.health import HEALTH_TIMEOUT_S
from tests.conftest import settings_for
from tests.test_lab4_cache import alex
from tests.test_lab4_faults import PrivateRedis
from tests.test_lab4_page import lab4_with_samples, sandbox_of
from tests.waiting import eventually

#: Far above one budgeted wait (0.25-0.5 s), far below what a click took before (1.4-11.4 s): proves the bound.
CLICK_BOUND_S = 5.0


@dataclass
class Frozen:
    """The app's backends on a private redis-server that the test can freeze and resume."""

    backends: Backends
    server: PrivateRedis

    def freeze(self) -> None:
        assert self.server.process is not None
        os.kill(self.server.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.server.process is not None:
            os.kill(self.server.process.pid, signal.SIGCONT)


@pytest.fixture
def frozen(backend_kind: str) -> Iterator[Frozen]:
    server = PrivateRedis()
    server.start()
    settings = replace(settings_for(backend_kind), redis_url=f"redis://127.0.0.1:{server.port}/0")
    b = Backends.build(settings)
    world = Frozen(b, server)
    try:
        assert b.status.redis == "Redis", b.status.redis_note
        yield world
    finally:
        world.resume()
        b.close()
        b.runtime.stop()
        server.stop()


@dataclass
class Click:
    """What one click did: its value, the read's outcome, how long it took, and the budget's counts meanwhile."""

    name: str | None
    outcome: str
    seconds: float
    timed_out: int
    skipped: int
    progress_saved: bool


def click(box: Sandbox, uid: str) -> Click:
    """*Fetch user* as the page runs it: the callback, then the page's own reads (each its own call, like the page)."""
    budget = box.redis_budget
    timed_out, skipped = budget.timed_out, budget.skipped
    started = time.perf_counter()
    fetched = box.run(actions.fetch_user(uid))  # the callback: cache, counters, the check's measurement
    box.run(actions.status())  # the tiles and Redis's own counts
    box.run(actions.key_states(uid))  # the TTL bars
    saved = True
    for step in (progress.visit(box, "lab4"), measurements.load(box, "lab4"), progress.load(box)):
        try:  # the knowledge check and the sidebar: a failure is a sentence on the page
            box.run(step)
        except ServiceUnavailable:
            saved = False
    return Click(
        fetched.value.name if fetched.value is not None else None,
        fetched.lookup.outcome,
        time.perf_counter() - started,
        budget.timed_out - timed_out,
        budget.skipped - skipped,
        saved,
    )


def test_a_click_waits_for_a_frozen_redis_once_and_the_next_clicks_not_at_all(frozen: Frozen) -> None:
    learner = frozen.backends.open_sandbox()
    uid = alex(learner)
    healthy = click(learner, uid)
    assert (healthy.outcome, healthy.timed_out, healthy.progress_saved) == ("miss", 0, True)
    assert click(learner, uid).outcome == "hit"

    frozen.freeze()
    first = click(learner, uid)
    assert first.name == "Alex Smith", "the database answered"
    assert first.outcome == "error"
    assert first.timed_out == 1, "one call found Redis frozen; every later call of the click skipped it"
    assert first.skipped >= 5, "the counters, the bars, the progress and the measurement did not wait"
    assert not first.progress_saved
    assert first.seconds < CLICK_BOUND_S
    assert learner.redis_budget.open
    again = [click(learner, uid) for _ in range(3)]
    for later in again:
        assert (later.name, later.outcome, later.timed_out) == ("Alex Smith", "bypassed", 0), later
        assert later.seconds < CLICK_BOUND_S

    frozen.resume()
    eventually(lambda: not learner.redis_budget.open, "the probe to hear Redis again")
    eventually(lambda: click(learner, uid).outcome in ("hit", "miss"), "a read that uses Redis again")
    back = click(learner, uid)
    assert (back.outcome, back.timed_out, back.progress_saved) == ("hit", 0, True)
    assert learner.run(actions.status()).counts.from_redis, "the counts kept meanwhile reached Redis"


def test_a_second_learner_does_not_wait_for_a_redis_the_first_found_frozen(frozen: Frozen) -> None:
    first, second = frozen.backends.open_sandbox(), frozen.backends.open_sandbox()
    uid_first, uid_second = alex(first), alex(second)
    assert first.redis_budget is second.redis_budget, "one budget per Redis server, shared by every learner"
    assert click(second, uid_second).outcome == "miss"
    frozen.freeze()
    assert click(first, uid_first).timed_out == 1  # the first learner's click finds it out
    for _ in range(3):  # while Redis stays frozen, the second learner clicks as usual
        theirs = click(second, uid_second)
        assert (theirs.name, theirs.outcome, theirs.timed_out) == ("Alex Smith", "bypassed", 0), theirs
        assert theirs.seconds < CLICK_BOUND_S


def test_the_health_check_opens_the_budget_and_no_page_waits_for_it(frozen: Frozen) -> None:
    b = frozen.backends
    learner = b.open_sandbox()
    assert b.runtime.run(b.check_health()).redis_ok
    frozen.freeze()
    waits: list[float] = []

    def health_says_frozen() -> bool:  # what the sidebar asks on every page
        started = time.perf_counter()
        answer = b.runtime.run(b.check_health())
        waits.append(time.perf_counter() - started)
        return not answer.redis_ok

    eventually(health_says_frozen, "the health check to find Redis frozen")
    # Each page got the latest answer at once: none waited for the PING that never came back (2 s, before).
    assert max(waits) < HEALTH_TIMEOUT_S, max(waits)
    assert learner.redis_budget.open, "the check told the budget: no learner's click needs to find it out again"
    timed_out = learner.redis_budget.timed_out
    with pytest.raises(ServiceUnavailable, match="Redis is not answering right now"):
        learner.run(progress.load(learner))
    assert learner.redis_budget.timed_out == timed_out, "refused at once, nothing sent"


# -- never claiming an invalidation Redis did not take -------------------------------------------------------
@pytest.mark.parametrize("mode", ["refused", "black-holed"])
def test_save_says_pending_until_redis_takes_the_invalidation(sandbox: Sandbox, mode: str) -> None:
    uid = alex(sandbox)
    sandbox.run(actions.configure(CacheSettings(op_timeout_s=0.25, cooldown_s=0.3)))
    assert sandbox.run(actions.fetch_user(uid)).lookup.outcome == "miss"
    sandbox.run(set_outage(sandbox, mode))  # type: ignore[arg-type]
    said = sandbox.run(actions.save_name(uid, "Renamed While Down"))
    assert said.kind == "warning"
    assert "Invalidation pending" in said.text
    assert "invalidated" not in said.text
    status = sandbox.run(actions.status())
    assert status.pending_invalidations == 2
    pending = status.pending()
    assert pending is not None
    assert "2 invalidation(s) pending" in pending
    for news in (sandbox.run(actions.invalidate(uid)), sandbox.run(actions.add_score(uid, 90.0))):
        assert news.kind == "warning"
        assert "Invalidation pending" in news.text
    sandbox.run(set_outage(sandbox, None))
    back = sandbox.run(actions.fetch_user(uid))  # the pending delete goes first
    assert back.value is not None
    assert back.value.name == "Renamed While Down"
    assert sandbox.run(actions.status()).pending() is None
    taken = sandbox.run(actions.save_name(uid, "Renamed With Redis"))
    assert (taken.kind, taken.text) == (
        "success",
        "Saved, and the cached user was invalidated: the next fetch is a miss with the new name.",
    )


def test_a_delete_whose_reply_never_came_is_pending_not_done(sandbox: Sandbox) -> None:
    """The reply of a frozen Redis never comes: the delete is cut short by its caller, and counts as pending."""
    hole = sandbox.run(BlackHole().start())
    client = Redis(host="127.0.0.1", port=hole.port, socket_timeout=10, decode_responses=True)
    cache = RedisCache(client, CacheSettings(op_timeout_s=5.0))
    mark = cache.deletes_confirmed

    async def cut_short() -> bool:
        try:
            async with asyncio.timeout(0.2):  # the caller gives up long before the cache's own 5 s
                return await cache.invalidate(user_key("u1"))
        except TimeoutError:
            return False

    try:
        assert not sandbox.run(cut_short())
        assert cache.pending_invalidations == {user_key("u1")}, "cancelled on the way: still pending"
        assert not cache.taken_since(mark, user_key("u1"))
    finally:
        sandbox.run(client.aclose())
        sandbox.run(hole.aclose())


def test_the_page_never_says_invalidated_when_redis_refused(app_env: str) -> None:
    at = lab4_with_samples()
    at.button(key="lab4_fetch_user").click().run()
    at.radio(key="lab4_outage").set_value("Redis refuses connections").run()
    at.text_input(key="lab4_new_name").input("Alex Offline")
    at.button(key="lab4_save_name").click().run()
    assert not at.exception
    said = [w.value for w in at.warning]
    assert any(text.startswith("Saved. Invalidation pending") for text in said), said
    assert not [s.value for s in at.success if "invalidated" in s.value], "no green claim of an invalidation"
    assert any("invalidation(s) pending until Redis takes them" in text for text in said), said
    assert len(cache_for(sandbox_of(at)).pending_invalidations) == 2, "the user's profile and latest score"


def test_a_read_without_redis_is_never_green(app_env: str) -> None:
    """Every read's colour says what it is: ERROR and BYPASSED are warnings, in the message and in the read log."""
    assert {outcome for outcome, kind in actions.OUTCOME_KIND.items() if kind == "success"} == {"hit", "miss"}
    at: AppTest = lab4_with_samples()
    at.radio(key="lab4_outage").set_value("Redis refuses connections").run()
    for _ in range(2):
        at.button(key="lab4_fetch_user").click().run()
        assert not at.exception
        assert not [s.value for s in at.success if s.value.startswith("fetch user")], "no green read without Redis"
        assert any(w.value.startswith("fetch user: **") for w in at.warning)
    marks = set(next(f.value for f in at.dataframe if "outcome" in f.value.columns)["outcome"])
    assert marks <= {"🟠 ERROR", "🟠 BYPASSED"}, "the log marks them as warnings, nothing in it green"
    assert marks
    assert {actions.OUTCOME_MARK[o] for o in ("error", "bypassed")} == {"🟠"}
    assert "🟢" not in {actions.OUTCOME_MARK[o] for o, kind in actions.OUTCOME_KIND.items() if kind != "success"}
