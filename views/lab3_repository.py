"""Lab 3: the repository pattern and the N+1 problem, counted, located, plotted and guarded."""

import streamlit as st

from source import web
from source.domain import repositories
from source.instruments import n_plus_one, query_log
from source.labs.repository import jobs, measure, plans, scaling, seeding, strategies, trap
from source.web import lab3
from source.web.checks import knowledge_check

st.title("🔁 Lab 3 · Repository pattern & N+1")
st.markdown(
    "Pages and services never write SQL: they ask a **`UserRepository`** (`get_by_id`, `get_by_email`, "
    "`get_all_users_with_scores_eager`, …). That keeps the data layer in one place, and it is also where the "
    "most common ORM performance bug hides: load N users, then touch each one's `scores`, and the ORM sends "
    "**N + 1** queries. Here every query is counted by SQLAlchemy's cursor events, located by the line that "
    "sent it, and checked by an N+1 detector."
)
box = web.page_sandbox()  # this learner's sandbox, for every call below
lab3.schema_note(box)

# -- 1 · one user --------------------------------------------------------------------------
st.header("1 · One user, the lazy way and the eager way")
st.markdown(
    "As in the codelab: give a user three sample scores, then fetch the user and their scores twice. "
    "*Lazy*: the user, then `await user.awaitable_attrs.scores` (a second query). *Eager*: "
    "`get_user_with_scores_eager`, which asks for the scores up front with `selectinload`."
)
lab3.one_user_panel()
st.caption(
    "For one user both ways send two queries: 1 + N with N = 1. The difference appears when a page lists "
    "many users. That is the next section."
)
web.show_source(measure.fetch_user_lazily, measure.fetch_user_eagerly, seeding.add_sample_scores)

# -- 2 · seed ------------------------------------------------------------------------------
st.header("2 · Seed N users × M scores")
st.caption(
    f"Bulk inserts (Core `insert()`, one executemany per {seeding.BATCH_USERS} users) in one transaction: all or "
    f"nothing. Limits: N ≤ {seeding.MAX_USERS:,}, M ≤ {seeding.MAX_SCORES_PER_USER}. Seeded users' emails end "
    f"in `@{seeding.SEED_DOMAIN}`, so removing them leaves your own users alone."
)
st.caption(
    "Seeding, comparing and scaling run in the background of your sandbox, one at a time: you may use the rest of "
    "the page, or another lab, and come back to their results; Stop ends them. On this server at most "
    f"{jobs.MAX_JOBS_AT_ONCE} of them run at once (everybody's together), each for at most "
    f"{jobs.JOB_TIME_LIMIT_S:g} s."
)
lab3.seed_panel(box)
web.show_source(seeding.seed, repositories.UserRepository.bulk_insert_scores, jobs.Lab3Runner, jobs.SeedRunner)

# -- 3 · compare ---------------------------------------------------------------------------
st.header("3 · Load everyone, four ways")
st.markdown(
    "Each strategy loads **every user in your sandbox with their scores**. The *simulated network round trip* "
    "is injected before each statement with `asyncio.sleep` (the event loop keeps serving everyone else): "
    "a database across a network adds a round trip like this to every statement; your SQLite file is in this "
    "process and adds none."
)
lab3.comparison_panel(box)
web.show_source(*(s.load for s in strategies.STRATEGIES.values()), measure.run_strategy, measure.compare_strategies)

# -- 4 · scaling ---------------------------------------------------------------------------
st.header("4 · How it scales")
st.markdown(
    f"Every strategy at N = {', '.join(f'{n:,}' for n in scaling.SIZES)} users (as many as your sandbox holds), "
    "at 0 ms and at the round trip chosen above. Statements on the left, time on the right; both axes are "
    "logarithmic, so N + 1 is a rising line and a constant is a flat one."
)
lab3.scaling_panel(box)
web.show_source(scaling.run_scaling)

# -- 5 · traps and guards ------------------------------------------------------------------
st.header("5 · The asyncio trap, and a guard that catches N+1 before it ships")
lab3.traps_panel()
web.show_source(trap.trigger_missing_greenlet, strategies.load_lazy_guarded, repositories.UserRepository.list_all)

# -- 6 · query plans -----------------------------------------------------------------------
st.header("6 · Did the database use the index?")
st.caption(
    "The statements the strategies sent, run again with `EXPLAIN` (PostgreSQL) or `EXPLAIN QUERY PLAN` (SQLite) "
    f"and the same parameters. `{plans.INDEX}` is the index on `air_scores.user_id`."
)
lab3.plans_panel()
web.show_source(plans.query_plans, plans.explain)

# -- 7 · the instruments -------------------------------------------------------------------
st.header("7 · The instruments")
st.caption("How every figure on this page was measured: the query recorder and the N+1 detector.")
web.show_source(query_log.capture_queries, query_log.own_stack, n_plus_one.detect, n_plus_one.relationship_for)
knowledge_check("lab3")
