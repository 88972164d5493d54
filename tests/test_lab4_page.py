"""Lab 4's page driven like a learner would, on both backend pairs: every control, with the
figures a learner would check (miss then hit, invalidation, stale reads, the stampede, an
outage, the strategy table, the data structures) and bad input answered with a message.
The stampede and the strategy run are jobs of the sandbox: leaving the page never stops them."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence

import pandas as pd
import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from source import Sandbox, web
from source.domain.models import User
from source.labs.caching import jobs
from source.labs.caching.dtos import CacheSettings
from source.labs.caching.sandbox_cache import cache_for
from source.labs.caching.strategies import EMAIL_DOMAIN, StrategyRun, WorkloadConfig, run_strategy_lab
from source.platform.jobs import Progress
from source.platform.session import get_session
from tests.conftest import assert_no_exception, open_app, page_text
from tests.waiting import eventually_async, rerun_until

PAGE = "views/lab4_caching.py"
STAMPEDE_STOP = "lab4_stampede_job_stop"
STRATEGY_STOP = "lab4_strategy_job_stop"


def lab4_with_samples() -> AppTest:
    at = open_app(PAGE)
    assert_no_exception(at)
    assert "no users yet" in page_text(at)
    at.button(key="lab4_samples").click().run()
    assert_no_exception(at)
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert_no_exception(at)
    return at


def has_button(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)


def wait_for_the_job(at: AppTest, stop_key: str, what: str) -> AppTest:
    """Rerun the page until the job's Stop button is gone (AppTest's fragments never tick by themselves)."""
    return rerun_until(at, lambda page: not has_button(page, stop_key), what)


def sandbox_of(at: AppTest) -> Sandbox:
    box, _ = web.backends().sandboxes.find(at.session_state[web.TOKEN_KEY])
    assert box is not None
    return box


def strategy_table(at: AppTest) -> pd.DataFrame:
    return next(f.value for f in at.dataframe if "stale reads" in f.value.columns)


def workload_users(box: Sandbox) -> int:
    async def count() -> int:
        async with get_session() as session:
            return int(await session.scalar(select(func.count()).where(User.email.like(f"%{EMAIL_DOMAIN}"))) or 0)

    return box.run(count())


def outcomes(at: AppTest) -> list[str]:
    frame = next(f.value for f in at.dataframe if "outcome" in f.value.columns)
    return [str(o).split()[-1] for o in frame["outcome"]][::-1]  # oldest first, the word without its mark


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_miss_hit_invalidate_and_the_formula(app_env: str) -> None:
    at = lab4_with_samples()
    assert "Alex Smith" in at.selectbox(key="lab4_user").format_func(at.selectbox(key="lab4_user").value)
    for key in ("lab4_fetch_user", "lab4_fetch_user", "lab4_fetch_score", "lab4_fetch_score", "lab4_invalidate"):
        click(at, key)
    click(at, "lab4_fetch_user")
    assert outcomes(at) == ["MISS", "HIT", "MISS", "HIT", "MISS"]
    assert metrics(at)["Hits"] == "2"
    assert metrics(at)["Misses"] == "3"
    assert metrics(at)["H"] == "40%"
    latex = [x.proto.body for x in at.get("latex")]
    assert any("= 0.40 \\cdot" in body for body in latex), "the formula is filled in with measured values"
    assert "Measured over the same 5 reads" in page_text(at)
    assert "Your last 5 read(s) since the counters were reset" in page_text(at), "the window is named"
    click(at, "lab4_reset_counts")
    assert metrics(at)["Hits"] == "0"
    at.toggle(key="lab4_live").set_value(True).run()
    assert_no_exception(at)
    assert any("cache:user:" in p.proto.text and "s left of 3600 s" in p.proto.text for p in at.get("progress"))


def bars(at: AppTest) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def test_the_ttl_demo_starts_from_a_ttl_one_can_watch(app_env: str) -> None:
    at = lab4_with_samples()
    at.toggle(key="lab4_live").set_value(False).run()
    click(at, "lab4_ttl_demo")
    assert at.toggle(key="lab4_live").value, "the demo turns Live on"
    demo = [text for text in bars(at) if "s left of 20 s" in text]
    assert len(demo) == 2, bars(at)  # the user and their latest score, from 20 s down
    assert all(float(re.search(r"(\d+\.\d) s left", text).group(1)) <= 20 for text in demo)  # type: ignore[union-attr]
    assert any("Cached for 20 s" in i.value for i in at.info)
    click(at, "lab4_fetch_user")
    assert outcomes(at)[-1] == "HIT", "the demo's key serves the read while it lives"


def test_tiles_formula_and_check_use_one_window_of_reads(app_env: str) -> None:
    """The tile's H, the formula's H and the knowledge check's figures are about the same reads, named on the page."""
    at = lab4_with_samples()
    for key in ("lab4_fetch_user", "lab4_fetch_user", "lab4_fetch_user", "lab4_fetch_score"):
        click(at, key)
    at.radio(key="lab4_outage").set_value("Redis refuses connections").run()
    click(at, "lab4_fetch_user")  # a read that could not use Redis is in the window too: it went to the database
    at.radio(key="lab4_outage").set_value("Redis available").run()
    assert_no_exception(at)
    hits, reads = 2, 5
    assert metrics(at)["H"] == f"{hits / reads:.0%}"
    assert f"Your last {reads} read(s) since the counters were reset" in page_text(at)
    latex = " ".join(x.proto.body for x in at.get("latex"))
    assert f"= {hits / reads:.2f} \\cdot" in latex
    assert f"Measured over the same {reads} reads" in page_text(at)
    prompt = " ".join(m.value for m in at.markdown if "What was their hit ratio" in m.value)
    assert f"Your last {reads} cached reads since the counters were reset" in prompt, prompt
    assert f"made {hits} hits and 2 misses, and 1 that could not use Redis" in prompt, prompt


def test_write_paths_and_a_stale_read(app_env: str) -> None:
    at = lab4_with_samples()
    click(at, "lab4_fetch_user")
    at.text_input(key="lab4_new_name").input("Alex Renamed")
    click(at, "lab4_save_name")
    assert "invalidated" in page_text(at)
    click(at, "lab4_fetch_user")
    assert outcomes(at)[-1] == "MISS"
    assert "Alex Renamed" in next(f.value for f in at.dataframe if "outcome" in f.value.columns).iloc[0]["value"]
    at.text_input(key="lab4_new_name").input("Alex Forgotten")
    click(at, "lab4_stale_write")
    click(at, "lab4_fetch_user")
    assert outcomes(at)[-1] == "HIT"
    assert any("STALE" in w.value for w in at.warning), "the stale hit is called out"
    assert metrics(at)["Stale reads"] == "1"
    click(at, "lab4_fetch_score")
    at.number_input(key="lab4_new_score").set_value(97.5).run()
    click(at, "lab4_add_score")
    click(at, "lab4_fetch_score")
    assert outcomes(at)[-2:] == ["MISS", "MISS"]
    assert "AI-R 97.5" in next(f.value for f in at.dataframe if "outcome" in f.value.columns).iloc[0]["value"]
    click(at, "lab4_delete")  # it asks first
    click(at, "lab4_delete_yes")
    assert "Jane Doe" in at.selectbox(key="lab4_user").format_func(at.selectbox(key="lab4_user").value)


def test_settings_stampede_and_outage(app_env: str) -> None:
    at = lab4_with_samples()
    at.number_input(key="lab4_user_ttl").set_value(0.0)
    click(at, "lab4_apply")
    assert any("User TTL (s): input should be greater than 0" in e.value for e in at.error)
    at.number_input(key="lab4_user_ttl").set_value(30.0)
    at.number_input(key="lab4_score_ttl").set_value(10.0)
    at.checkbox(key="lab4_protect_default").uncheck()
    at.checkbox(key="lab4_early").check()
    click(at, "lab4_apply")
    assert "Applied." in page_text(at)
    at.number_input(key="lab4_readers").set_value(40).run()
    click(at, "lab4_stampede")
    wait_for_the_job(at, STAMPEDE_STOP, "the protected stampede to end")
    at.toggle(key="lab4_protection").set_value(False).run()
    click(at, "lab4_stampede")
    wait_for_the_job(at, STAMPEDE_STOP, "the unprotected stampede to end")
    done = [s.value for s in at.success if "finding the key cold →" in s.value]
    assert len(done) == 1, "the stampede reports its database reads"
    assert re.match(r"40 readers, \d+ of them finding the key cold → \*\*\d+ database read\(s\)\*\*", done[0]), done
    spec = at.get("plotly_chart")[0].proto.spec
    assert "unprotected" in spec
    assert "protected" in spec
    for mode in ("Redis refuses connections", "Redis black-holed"):
        at.radio(key="lab4_outage").set_value(mode).run()
        assert_no_exception(at)
        click(at, "lab4_fetch_user")
        assert outcomes(at)[-1] in ("ERROR", "BYPASSED")
        assert any(w.value.startswith("fetch user: **") for w in at.warning), "a read without Redis is no success"
        assert "Cache bypassed" in page_text(at)
        assert not at.error, "Redis down is not an error: the database answered"
    at.radio(key="lab4_outage").set_value("Redis available").run()
    click(at, "lab4_fetch_user")
    click(at, "lab4_fetch_user")
    assert outcomes(at)[-1] == "HIT", "caching resumed"


def test_the_outage_note_states_the_timings_the_cache_runs_with(app_env: str) -> None:
    at = lab4_with_samples()
    defaults = CacheSettings()
    assert f"gives up after {defaults.op_timeout_s * 1000:g} ms" in page_text(at)
    assert f"skipped for {defaults.cooldown_s:g} s, then tried again" in page_text(at)
    cache_for(sandbox_of(at)).configure(CacheSettings(op_timeout_s=0.4, cooldown_s=2.5))
    at.run()
    assert "gives up after 400 ms" in page_text(at)
    assert "skipped for 2.5 s, then tried again" in page_text(at)


def test_strategy_lab_and_structures(app_env: str) -> None:
    at = lab4_with_samples()
    at.number_input(key="lab4_ops").set_value(200)
    at.number_input(key="lab4_keys").set_value(8)
    at.number_input(key="lab4_read_share").set_value(0.8)
    at.number_input(key="lab4_skew").set_value(1.2)
    at.number_input(key="lab4_ttl_ms").set_value(60_000)
    at.number_input(key="lab4_seed").set_value(5)
    at.multiselect(key="lab4_strategies").set_value(["cache-aside + invalidation", "cache-aside, TTL only"])
    click(at, "lab4_run_strategies")
    wait_for_the_job(at, STRATEGY_STOP, "the strategy run to end")
    table = strategy_table(at)
    stale = dict(zip(table["strategy"], table["stale reads"], strict=True))
    assert stale["cache-aside + invalidation"] == 0
    assert stale["cache-aside, TTL only"] > 0
    assert "hit ratio H" in at.get("plotly_chart")[0].proto.spec
    at.multiselect(key="lab4_strategies").set_value([])
    click(at, "lab4_run_strategies")
    assert any("Choose one or more" in e.value for e in at.error)
    click(at, "lab4_fetch_user")
    click(at, "lab4_structures")
    labels = [t.label for t in at.tabs]
    for kind in ("hash", "sorted set", "list", "stream", "set", "string"):
        assert any(label.startswith(kind + " ·") for label in labels), kind
    commands = "\n".join(c.value for c in at.code)
    for command in ("HSET ds:user:", "ZADD ds:leaderboard", "LPUSH ds:events:list", "XADD ds:events:stream"):
        assert command in commands
    assert "When to choose a sorted set" in page_text(at)


@pytest.fixture
def held_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The strategy run waits until the returned event is set (or Stop is pressed), then runs for real."""
    gate = threading.Event()
    real = run_strategy_lab

    async def held(config: WorkloadConfig, progress: Progress, strategies: Sequence[str]) -> StrategyRun:
        progress.phase = "Held by the test"

        async def released() -> bool:
            return gate.is_set() or progress.stopping

        await eventually_async(released, "the test to release the strategy run")
        return await real(config, progress, strategies)

    monkeypatch.setattr(jobs, "run_strategy_lab", held)
    yield gate
    gate.set()


def start_a_small_run(at: AppTest) -> AppTest:
    at.number_input(key="lab4_ops").set_value(100)
    at.number_input(key="lab4_keys").set_value(5)
    at.multiselect(key="lab4_strategies").set_value(["no cache", "write-through"])
    return click(at, "lab4_run_strategies")


def test_the_strategy_run_goes_on_when_the_learner_leaves_and_its_result_waits(
    app_env: str, held_run: threading.Event
) -> None:
    at = start_a_small_run(lab4_with_samples())
    assert has_button(at, STRATEGY_STOP), "the run shows its progress and a Stop button"
    runner = jobs.StrategyRunner.of(sandbox_of(at))
    at.switch_page("views/lab1_data_models.py").run()  # the learner leaves for another lab
    assert_no_exception(at)
    assert runner.running() is not None, "leaving the page did not stop the run"
    held_run.set()
    at.switch_page(PAGE).run()  # and comes back
    assert_no_exception(at)
    wait_for_the_job(at, STRATEGY_STOP, "the strategy run to end")
    assert list(strategy_table(at)["strategy"]) == ["no cache", "write-through"]
    assert runner.last_note is None, "it ran to the end"
    assert workload_users(sandbox_of(at)) == 0, "and removed the workload's users"


def test_stop_ends_the_strategy_run_and_says_so(app_env: str, held_run: threading.Event) -> None:
    at = start_a_small_run(lab4_with_samples())
    click(at, STRATEGY_STOP)
    wait_for_the_job(at, STRATEGY_STOP, "the stopped run to end")
    assert any("The run was stopped after 0 of 200 operations" in i.value for i in at.info), page_text(at)
    assert not [f for f in at.dataframe if "stale reads" in f.value.columns], "no result was invented"
    assert not at.error
    assert workload_users(sandbox_of(at)) == 0, "the stopped run removed its users"


def test_with_redis_refused_starting_the_workload_returns_at_once(app_env: str, held_run: threading.Event) -> None:
    """The learner's outage switch makes every cache call fail; the click that starts the run does not wait for it."""
    at = lab4_with_samples()
    at.radio(key="lab4_outage").set_value("Redis refuses connections").run()
    assert_no_exception(at)
    start_a_small_run(at)
    assert has_button(at, STRATEGY_STOP), "the click came back while the run waits in the background"
    assert any("Held by the test" in p.proto.text for p in at.get("progress")), "its progress is on the page"
    held_run.set()
    wait_for_the_job(at, STRATEGY_STOP, "the strategy run against a refusing Redis to end")
    table = strategy_table(at)
    failed = dict(zip(table["strategy"], table["operations Redis failed"], strict=True))
    assert failed == {"no cache": 0, "write-through": 100}, "every cached operation fell back to the database"
    assert not at.error
