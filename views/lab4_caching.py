"""Lab 4: caching with Redis — real hits and misses, invalidation, stampedes, strategies, data
structures, and Redis going down, all in your own sandbox."""

from __future__ import annotations

from typing import Any

import streamlit as st

from source import web
from source.domain.dtos import UserUpdate, parse
from source.labs.caching import cache, charts, demo, repository, strategies, strategy_results, structures, workload
from source.labs.caching.audit import Fetched
from source.labs.caching.sandbox_cache import cache_for, invalidate_user, set_outage
from source.labs.caching.stampede import MAX_STAMPEDE, run_stampede
from source.labs.caching.start_line import LinedUpCache, StartLine
from source.services import users
from source.web.checks import knowledge_check
from source.web.widgets import whole_number_input

st.title("⚡ Lab 4 · Caching with Redis")
st.markdown(
    "A **read-through** cache answers from Redis when it can and from the database when it must, then keeps "
    "the answer for a TTL. Every figure below is counted or timed for real: the cache is "
    f"{web.backends().status.redis} and the database is your own sandbox's {web.backends().status.database}."
)
ok, box = web.attempt(web.sandbox)
ok_users, listed = web.attempt(lambda: web.run(users.list_users()))
rows = {r.id: r for r in listed or [] if not r.email.endswith(strategies.EMAIL_DOMAIN)}
if (
    st.button("Add Alex and Jane with a score each", key="lab4_samples", help="The course's sample users.")
    and web.attempt(lambda: web.run(demo.add_samples()))[0]
):
    st.rerun()
if not rows or box is None:
    st.info("Your sandbox has no users yet: add the samples above, or create users in Lab 1.")
    st.stop()
uid = str(st.selectbox("User", list(rows), format_func=lambda i: f"{rows[i].name} · {rows[i].email}", key="lab4_user"))
log: list[dict[str, Any]] = st.session_state.setdefault("lab4_log", [])

# -- 0 · settings ---------------------------------------------------------------------------
with st.expander("Cache settings (TTLs, stampede protection, early refresh)"), st.form("lab4_settings"):
    current = cache_for(box).settings
    c = st.columns(2)
    user_ttl = c[0].number_input("User TTL (s)", value=current.user_ttl_s, step=1.0, key="lab4_user_ttl")
    score_ttl = c[1].number_input("Latest-score TTL (s)", value=current.score_ttl_s, step=1.0, key="lab4_score_ttl")
    protect = st.checkbox("Stampede protection", current.stampede_protection, key="lab4_protect_default")
    early = st.checkbox(
        "Early refresh (reload a key in the background before it expires)", current.early_refresh, key="lab4_early"
    )
    if st.form_submit_button("Apply", key="lab4_apply"):
        values = {
            "user_ttl_s": user_ttl,
            "score_ttl_s": score_ttl,
            "stampede_protection": protect,
            "early_refresh": early,
        }
        if web.attempt(lambda: web.run(demo.configure(demo.settings_from(**values))))[0]:
            st.success("Applied. Keys already cached keep the TTL they were written with.")

# -- 1 · read-through ---------------------------------------------------------------------
st.header("1 · Miss, then hit")
b = st.columns(3)
actions = {
    "fetch user": (b[0].button("Fetch user (cached)", key="lab4_fetch_user"), demo.fetch_user),
    "fetch latest score": (b[1].button("Fetch latest score (cached)", key="lab4_fetch_score"), demo.fetch_latest_score),
}
for label, (clicked, action) in actions.items():
    ok, got = web.attempt(lambda: web.run(action(uid))) if clicked else (False, None)  # noqa: B023 - called at once
    if isinstance(got, Fetched):
        log.insert(0, got.row(label))
        del log[50:]  # a session keeps the newest 50 reads
        (st.warning if got.stale else st.success)(got.message(label))
if b[2].button("Invalidate this user's cache", key="lab4_invalidate"):
    ok, done = web.attempt(lambda: web.run(demo.invalidate(uid)))
    if ok:
        st.info("Deleted both keys." if done else "Redis did not answer: the delete is kept and sent when it does.")
if log:
    st.dataframe(log[:12], hide_index=True, key="lab4_log_table")
st.caption(
    "After each read the page reads the row again from the database (outside the timed part) to check "
    "whether the cache served something stale."
)
web.show_source(repository.CachedUserRepository, cache.RedisCache.read_through, demo.fetch_user)

# -- 2 · TTL, live ----------------------------------------------------------------------------
st.header("2 · Watch the TTL run out")
live = st.toggle("Live: refresh every second", key="lab4_live")


@st.fragment(run_every=1.0 if live else None)
def ttl_panel() -> None:
    _, states = web.attempt(lambda: web.run(demo.key_states(uid)))
    for state in states or []:
        left = f"{state.ttl_ms / 1000:.1f} s left of {state.configured_s:g} s" if state.ttl_ms else "not cached"
        left = state.unavailable or left
        st.progress(min(1.0, (state.ttl_ms or 0) / 1000 / state.configured_s), text=f"`{state.key}`: {left}")


ttl_panel()

# -- 3 · write paths ----------------------------------------------------------------------
st.header("3 · Writes invalidate")
w = st.columns(3)
new_name = w[0].text_input("New name", value=rows[uid].name, max_chars=255, key="lab4_new_name")
if w[0].button("Save (Lab 1's update_user)", key="lab4_save_name", help="UPDATE, commit, then delete the keys."):
    change = {
        "name": new_name,
        "occupation_code": rows[uid].occupation_code,
        "education_level": rows[uid].education_level,
        "years_experience": rows[uid].years_experience,
    }
    if web.attempt(lambda: web.run(users.update_user(uid, parse(UserUpdate, **change))))[0]:
        st.success("Saved, and the cached user was invalidated: the next fetch is a miss with the new name.")
if (
    w[0].button("Save WITHOUT invalidating (the bug)", key="lab4_stale_write")
    and web.attempt(lambda: web.run(demo.rename_without_invalidating(uid, new_name)))[0]
):
    st.warning("Saved to the database only. Fetch the user: the cache still serves the old name (stale).")
new_score = w[1].number_input("New AI-R score", 0.0, 100.0, 80.0, step=0.5, key="lab4_new_score")
if (
    w[1].button("Add score", key="lab4_add_score", help="INSERT, commit, then delete the cached latest score.")
    and web.attempt(lambda: web.run(demo.add_score(uid, float(new_score))))[0]
):
    st.success("Added; the cached latest score was invalidated.")
if (
    w[2].button("Delete user (Lab 1's delete_user)", key="lab4_delete", type="primary")
    and web.attempt(lambda: web.run(users.delete_user(uid)))[0]
):
    st.rerun()
web.show_source(users.update_user, invalidate_user, demo.add_score, demo.rename_without_invalidating)

# -- 4 · counts and the formula -----------------------------------------------------------
st.header("4 · Hit ratio and average access time")
ok, status = web.attempt(lambda: web.run(demo.status()))
if status is not None:
    for col, (label, value) in zip(st.columns(6), status.counts.tiles(), strict=True):
        col.metric(label, value)
    st.caption(status.counts.note())
    st.latex(r"T_{avg} = H \cdot T_{cache} + (1-H)\cdot(T_{cache} + T_{db})")
    if (formula := status.formula) is not None:
        st.latex(formula.filled_in())
        st.markdown(
            f"Measured over the same {formula.reads} reads: **{formula.measured_ms:.3f} ms** on average. The formula "
            "leaves out what a miss does after the database answers (storing the value in Redis)."
        )
    if (
        st.button("Reset the counters", key="lab4_reset_counts")
        and web.attempt(lambda: web.run(demo.reset_counts()))[0]
    ):
        st.rerun()

# -- 5 · stampede -------------------------------------------------------------------------
st.header("5 · A stampede on one cold key")
s = st.columns(3)
readers = whole_number_input(s[0], "Concurrent readers", (1, MAX_STAMPEDE), 50, key="lab4_readers")
protection = s[1].toggle("Stampede protection", True, key="lab4_protection")
if s[2].button("Fire the readers", key="lab4_stampede"):
    ok, hit = web.attempt(lambda: web.run(run_stampede(uid, int(readers), protection)))
    if ok and hit is not None:
        st.session_state["lab4_stampedes"] = [*st.session_state.get("lab4_stampedes", [])[-5:], hit]
        st.success(hit.message())
if st.session_state.get("lab4_stampedes"):
    st.plotly_chart(charts.stampede_figure(st.session_state["lab4_stampedes"][-6:]), key="lab4_stampede_chart")
web.show_source(
    cache.RedisCache._single_flight,
    cache.RedisCache._load_once_across_processes,
    run_stampede,
    StartLine,
    LinedUpCache,
)

# -- 6 · Redis down ----------------------------------------------------------------------
st.header("6 · Make Redis unavailable (for you only)")
modes = {"Redis available": None, "Redis refuses connections": "refused", "Redis black-holed": "black-holed"}
choice = st.radio("Your cache's Redis", list(modes), horizontal=True, key="lab4_outage")
web.attempt(lambda: web.run(set_outage(box, modes[str(choice)])))  # type: ignore[arg-type]
ok, now = web.attempt(lambda: web.run(demo.status()))
if now is not None and (now.outage or now.breaker != "closed"):
    st.warning(
        f"Cache bypassed: reads come from the database. Breaker {now.breaker}; last error: "
        f"{now.last_error or '—'}; {now.pending_invalidations} invalidation(s) waiting for Redis."
    )
timings = cache_for(box).settings  # this learner's cache, as it runs
st.caption(
    f"Each cache call gives up after {timings.op_timeout_s * 1000:g} ms; after a failure the cache is skipped for "
    f"{timings.cooldown_s:g} s, then tried again, so caching resumes by itself. Switch Redis back and fetch: no "
    "stale value returns."
)

# -- 7 · strategies -----------------------------------------------------------------------
st.header("7 · Strategies compared on one workload")
with st.form("lab4_strategy_form"):
    f = st.columns(6)
    ops = whole_number_input(f[0], "Operations", (10, workload.MAX_OPERATIONS), 600, step=100, key="lab4_ops")
    keys = whole_number_input(f[1], "Keys", (1, workload.MAX_KEYS), 20, key="lab4_keys")
    share = f[2].number_input("Share of reads", 0.0, 1.0, 0.9, step=0.05, key="lab4_read_share")
    skew = f[3].number_input("Zipf skew s", 0.0, 3.0, 1.0, step=0.1, key="lab4_skew")
    ttl_ms = whole_number_input(f[4], "TTL (ms)", (10, 60_000), 300, step=50, key="lab4_ttl_ms")
    seed = whole_number_input(f[5], "Seed", (0, 10_000), 7, key="lab4_seed")
    chosen = st.multiselect("Strategies", strategies.STRATEGIES, strategies.STRATEGIES, key="lab4_strategies")
    go = st.form_submit_button("Run the workload", key="lab4_run_strategies", type="primary")
if go:
    ok, config = web.attempt(
        lambda: workload.parse_workload(
            operations=ops, keys=keys, read_share=share, skew=skew, ttl_ms=ttl_ms, seed=seed
        )
    )
    if ok and config is not None:
        progress, bar = strategy_results.Progress(), st.progress(0.0, text="Starting…")
        future = strategies.start(box, strategies.run_strategy_lab(config, progress, tuple(chosen)))
        ok, run = web.attempt(
            lambda: strategies.wait_with_progress(future, lambda: bar.progress(progress.fraction, progress.describe()))
        )
        bar.empty()
        if ok and run is not None:
            st.session_state["lab4_strategy_run"] = run
if (run := st.session_state.get("lab4_strategy_run")) is not None:
    st.dataframe([r.row() for r in run.results], hide_index=True, key="lab4_strategy_table")
    st.plotly_chart(charts.strategies_figure(run), key="lab4_strategy_chart")
    st.caption(
        "One client runs the operations in order. A stale read returned an older version than the database "
        "held when the read began; write-behind can also serve reads ahead of the database. An operation Redis "
        "failed got no answer within the cache's time limit and used the database instead; under write-behind "
        "that can cache a row the flusher has not updated yet, and stale reads follow."
    )
web.show_source(strategies._read, strategies._write, workload.generate)

# -- 8 · data structures ------------------------------------------------------------------
st.header("8 · Redis data structures, with your data")
if st.button("Build them from my data", key="lab4_structures"):
    ok, built = web.attempt(lambda: web.run(structures.build_structures(uid)))
    if ok and built:
        for tab, item in zip(st.tabs([f"{x.kind} · {x.key}" for x in built]), built, strict=True):
            tab.code("\n".join(item.commands), language="bash")
            tab.write(item.contents)
            tab.caption(f"When to choose a {item.kind}: {item.when}")
web.show_source(structures.build_structures)
knowledge_check("lab4")
