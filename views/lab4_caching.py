"""Lab 4: caching with Redis — real hits and misses, invalidation, stampedes, strategies, data
structures, and Redis going down, all in your own sandbox."""

import streamlit as st

from source import web
from source.labs.caching import actions, cache, jobs, metrics, record, repository, stampede, structures
from source.labs.caching.sandbox_cache import invalidate_user
from source.labs.caching.strategies import run as strategy_run
from source.labs.caching.strategies import workload
from source.services import users
from source.web import lab4
from source.web.checks import knowledge_check

st.title("⚡ Lab 4 · Caching with Redis")
st.markdown(
    "A **read-through** cache answers from Redis when it can and from the database when it must, then keeps "
    "the answer for a TTL. Every figure below is counted or timed for real: the cache is "
    f"{web.backends().status.redis} and the database is your own sandbox's {web.backends().status.database}."
)
box = web.page_sandbox()  # this learner's sandbox, for every call below
user = lab4.user_picker()  # the page stops here until the sandbox has a user
lab4.settings_panel(box)

# -- 1 · read-through ---------------------------------------------------------------------
st.header("1 · Miss, then hit")
lab4.read_panel(user)
st.caption(
    "After each read the page reads the row again from the database (outside the timed part) to check "
    "whether the cache served something stale."
)
web.show_source(repository.CachedUserRepository, cache.RedisCache.read_through, actions.fetch_user, actions.judge)

# -- 2 · TTL, live ----------------------------------------------------------------------------
st.header("2 · Watch the TTL run out")
st.caption(
    f"Your cache writes a profile with a {actions.current_settings(box).user_ttl_s:g} s TTL (the settings above). "
    f"The demo writes both keys with a {actions.DEMO_TTL_S:g} s TTL, short enough to watch: when the bars reach "
    "zero, Redis has dropped the keys and the next fetch is a miss."
)
lab4.ttl_panel(user.id)
web.show_source(actions.watch_ttl)

# -- 3 · write paths ----------------------------------------------------------------------
st.header("3 · Writes invalidate")
lab4.writes_panel(user)
web.show_source(
    actions.save_name,
    users.update_user,
    invalidate_user,
    actions.add_score,
    actions.rename_without_invalidating,
)

# -- 4 · counts and the formula -----------------------------------------------------------
st.header("4 · Hit ratio and average access time")
lab4.counts_panel()
web.show_source(metrics.ReadWindow.of, record.cache_reads)

# -- 5 · stampede -------------------------------------------------------------------------
st.header("5 · A stampede on one cold key")
st.caption(
    "The readers run in the background of your sandbox: you may use the rest of the page meanwhile. Each one "
    "that misses waits at a start line until every reader has looked the key up, so all of them find it cold."
)
lab4.stampede_panel(box, user.id)
web.show_source(
    cache.RedisCache._single_flight,
    cache.RedisCache._load_once_across_processes,
    stampede.run_stampede,
    stampede.StartLine,
    stampede.LinedUpCache,
    jobs.StampedeRunner,
)

# -- 6 · Redis down ----------------------------------------------------------------------
st.header("6 · Make Redis unavailable (for you only)")
lab4.outage_panel(box)

# -- 7 · strategies -----------------------------------------------------------------------
st.header("7 · Strategies compared on one workload")
st.caption(
    f"The run goes on in the background of your sandbox, even if you leave this page; Stop ends it. It is "
    f"stopped after {jobs.STRATEGY_TIME_LIMIT_S:g} s, and at most {jobs.RUNS_AT_ONCE} runs share this server "
    "at once (another waits its turn)."
)
lab4.strategies_panel(box)
web.show_source(strategy_run._read, strategy_run._write, workload.generate, jobs.StrategyRunner)

# -- 8 · data structures ------------------------------------------------------------------
st.header("8 · Redis data structures, with your data")
lab4.structures_panel(user.id)
web.show_source(structures.build_structures)
knowledge_check("lab4")
