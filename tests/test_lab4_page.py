"""Lab 4's page driven like a learner would, on both backend pairs: every control, with the
figures a learner would check (miss then hit, invalidation, stale reads, the stampede, an
outage, the strategy table, the data structures) and bad input answered with a message."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from source import web
from source.labs.caching.dtos import CacheSettings
from source.labs.caching.sandbox_cache import cache_for
from tests.conftest import assert_no_exception, open_app, page_text

PAGE = "views/lab4_caching.py"


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


def outcomes(at: AppTest) -> list[str]:
    frame = next(f.value for f in at.dataframe if "outcome" in f.value.columns)
    return list(frame["outcome"])[::-1]  # oldest first


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
    click(at, "lab4_reset_counts")
    assert metrics(at)["Hits"] == "0"
    at.toggle(key="lab4_live").set_value(True).run()
    assert_no_exception(at)
    assert any("cache:user:" in p.proto.text and "s left of 3600 s" in p.proto.text for p in at.get("progress"))


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
    click(at, "lab4_delete")
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
    at.toggle(key="lab4_protection").set_value(False).run()
    click(at, "lab4_stampede")
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
    box, _ = web.backends().sandboxes.find(at.session_state[web.TOKEN_KEY])
    assert box is not None
    cache_for(box).configure(CacheSettings(op_timeout_s=0.4, cooldown_s=2.5))
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
    table = next(f.value for f in at.dataframe if "stale reads" in f.value.columns)
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
