"""Lab 3: the repository pattern and the N+1 problem, counted, located, plotted and guarded."""

from __future__ import annotations

from typing import Any

import streamlit as st

from source import web
from source.domain import repositories
from source.domain.dtos import parse, parse_id
from source.instruments import n_plus_one, query_log
from source.labs.repository import charts, jobs, measure, plans, scaling, seeding, strategies, trap
from source.services.samples import create_sample_users
from source.web.checks import knowledge_check
from source.web.widgets import whole_number_input

st.title("🔁 Lab 3 · Repository pattern & N+1")
st.markdown(
    "Pages and services never write SQL: they ask a **`UserRepository`** (`get_by_id`, `get_by_email`, "
    "`get_all_users_with_scores_eager`, …). That keeps the data layer in one place, and it is also where the "
    "most common ORM performance bug hides: load N users, then touch each one's `scores`, and the ORM sends "
    "**N + 1** queries. Here every query is counted by SQLAlchemy's cursor events, located by the line that "
    "sent it, and checked by an N+1 detector."
)
box = web.page_sandbox()  # this learner's sandbox, for every call below
if box.schema:
    st.caption(f"Your tables live in schema `{box.schema}`; the SQL below is shown without that prefix.")


def run_job(coro: Any, label: str) -> Any:
    """A long job on the app's loop with a progress bar; stopped if the learner leaves or clicks again."""
    progress = jobs.Progress()
    bar = st.progress(0.0, text=label)
    future = jobs.start(box, coro(progress))
    ok, result = web.attempt(
        lambda: jobs.wait_with_progress(future, lambda: bar.progress(progress.fraction, progress.describe()))
    )
    bar.empty()
    return result if ok else None


def show_verdict(verdict: n_plus_one.Verdict) -> None:
    if not verdict.flagged:
        st.success(verdict.summary, icon="✅")
    for finding in verdict.findings:
        st.error(finding.message, icon="🔁")
        if finding.caller is not None:
            st.caption("Called via: " + " ← ".join(f"`{c}`" for c in finding.stack))


# -- 1 · one user --------------------------------------------------------------------------
st.header("1 · One user, the lazy way and the eager way")
st.markdown(
    "As in the codelab: give a user three sample scores, then fetch the user and their scores twice. "
    "*Lazy*: the user, then `await user.awaitable_attrs.scores` (a second query). *Eager*: "
    "`get_user_with_scores_eager`, which asks for the scores up front with `selectinload`."
)
if st.button("Create the sample users (Alex, Jane)", key="lab3_samples", help="Safe to press twice."):
    ok, made = web.attempt(lambda: box.run(create_sample_users()))
    if ok and made:
        st.session_state["lab3_user_id"] = made[0][1]
ok, known = web.attempt(lambda: box.run(seeding.some_users()))
if known:
    st.caption("Some user ids in your sandbox: " + " · ".join(f"{email} `{uid}`" for email, uid in known))
user_text = st.text_input("User id", key="lab3_user_id", max_chars=80, help="A user's UUID, e.g. Alex's.")
c1, c2, c3 = st.columns(3)
if c1.button("Add 3 sample scores", key="lab3_add_scores", help="Three INSERTs through UserRepository.add_score."):
    ok, total = web.attempt(lambda: box.run(seeding.add_sample_scores(parse_id(user_text))))
    if ok:
        st.success(f"Added 3 scores: this user now has {total}.")


def fetch(way: str) -> measure.UserFetch:
    return box.run(measure.fetch_user(parse_id(user_text), way))


for col, way, label in ((c2, "lazy", "Fetch the N+1 way"), (c3, "eager", "Fetch the eager way")):
    if col.button(label, key=f"lab3_fetch_{way}", help="Runs under the query recorder."):
        ok, fetched = web.attempt(lambda: fetch(way))  # noqa: B023 - called at once, inside this iteration
        if ok:
            st.session_state[f"lab3_fetched_{way}"] = fetched
fetched_cols = st.columns(2)
for col, way in zip(fetched_cols, ("lazy", "eager"), strict=True):
    result = st.session_state.get(f"lab3_fetched_{way}")
    if result is None:
        continue
    with col:
        st.subheader(f"{way.capitalize()}: {result.email}")
        m = st.columns(2)
        m[0].metric("Queries", len(result.statements))
        m[1].metric("Time", f"{result.wall_ms:.1f} ms")
        st.code(";\n".join(result.sql) + ";", language="sql", wrap_lines=True)
        show_verdict(result.verdict)
        st.dataframe(result.scores, hide_index=True, key=f"lab3_scores_{way}")
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
s1, s2 = st.columns(2)
n_users = whole_number_input(s1, "Users N", (1, seeding.MAX_USERS), 1000, step=100, key="lab3_n")
n_scores = whole_number_input(s2, "Scores per user M", (0, seeding.MAX_SCORES_PER_USER), 5, key="lab3_m")
b1, b2 = st.columns(2)
if b1.button("Seed", key="lab3_seed", type="primary", help="Refused if seeded users are already there."):
    ok, request = web.attempt(lambda: parse(seeding.SeedRequest, users=n_users, scores_per_user=n_scores))
    if ok and request is not None:
        report = run_job(lambda p: seeding.seed(request, p), "Seeding")
        if report is not None:
            st.success(
                f"Seeded {report.users:,} users and {report.scores:,} scores in {report.seconds * 1000:.0f} ms "
                f"({report.rows_per_s:,.0f} rows/s, measured)."
            )
if b2.button("Remove the seeded users", key="lab3_unseed", help="Three DELETEs: scores, assessments, users."):
    ok, removed = web.attempt(lambda: box.run(seeding.remove_seeded()))
    if ok:
        st.success(f"Removed {removed:,} seeded users and their scores.")
web.show_source(seeding.seed, repositories.UserRepository.bulk_insert_scores)

# -- 3 · compare ---------------------------------------------------------------------------
st.header("3 · Load everyone, four ways")
st.markdown(
    "Each strategy loads **every user in your sandbox with their scores**. The *simulated network round trip* "
    "is injected before each statement with `asyncio.sleep` (the event loop keeps serving everyone else): "
    "a database across a network adds a round trip like this to every statement; your SQLite file is in this "
    "process and adds none."
)
k1, k2 = st.columns(2)
round_trip = k1.slider(
    "Simulated network round trip per statement (ms)", 0.0, measure.MAX_ROUND_TRIP_MS, 0.0, 0.5, key="lab3_rtt"
)
threshold = whole_number_input(
    k2, "Detector threshold (repeats of one shape)", (2, 1000), n_plus_one.DEFAULT_THRESHOLD, key="lab3_threshold"
)
if st.button("Load with every strategy", key="lab3_compare", type="primary"):
    ok, settings = web.attempt(lambda: parse(measure.LoadSettings, round_trip_ms=round_trip, threshold=threshold))
    if ok and settings is not None:
        comparison = run_job(lambda p: measure.compare_strategies(settings, p), "Loading")
        if comparison is not None:
            st.session_state["lab3_comparison"] = comparison
comparison = st.session_state.get("lab3_comparison")
if comparison is not None:
    st.dataframe([run.row() for run in comparison.runs], hide_index=True, key="lab3_comparison_table")
    first = comparison.runs[0].loaded
    if comparison.identical:
        st.success(
            f"Checked: all {len(comparison.runs)} strategies returned the same {first.user_count:,} users "
            f"and the same {first.score_count:,} scores (ids compared one by one).",
            icon="✅",
        )
    else:
        st.error("The strategies did not return the same users and scores: the data changed while they ran.")
    for run in comparison.runs:
        with st.expander(f"{run.label}: {run.queries:,} statement(s), {len(run.shapes())} distinct shape(s)"):
            show_verdict(run.verdict)
            shapes = [{"sent": n, "statement shape": s} for n, s in run.shapes()]
            st.dataframe(shapes, hide_index=True, key=f"lab3_shapes_{run.key}")
web.show_source(*(s.load for s in strategies.STRATEGIES.values()), measure.run_strategy)

# -- 4 · scaling ---------------------------------------------------------------------------
st.header("4 · How it scales")
st.markdown(
    f"Every strategy at N = {', '.join(f'{n:,}' for n in scaling.SIZES)} users (as many as your sandbox holds), "
    "at 0 ms and at the round trip chosen above. Statements on the left, time on the right; both axes are "
    "logarithmic, so N + 1 is a rising line and a constant is a flat one."
)
if st.button("Run the scaling experiment", key="lab3_scale", help="Uses the round trip chosen in section 3."):
    result = run_job(lambda p: scaling.run_scaling(round_trip, p), "Scaling")
    if result is not None:
        st.session_state["lab3_scaling"] = result
result = st.session_state.get("lab3_scaling")
if result is not None:
    st.plotly_chart(charts.scaling_figure(result), key="lab3_scaling_chart", theme=None)
    verified = "returned the same users and scores at every N (checked)" if result.identical else "differed"
    st.caption(
        f"All strategies {verified}. Dashed lines include the simulated round trip. Each point without a round trip "
        f"is the median of {scaling.REPEATS_WITHOUT_ROUND_TRIP} runs; with one, a single run."
    )
    with st.expander("The measured points"):
        st.dataframe([p.__dict__ for p in result.points], hide_index=True, key="lab3_scaling_points")
web.show_source(scaling.run_scaling)

# -- 5 · traps and guards ------------------------------------------------------------------
st.header("5 · The asyncio trap, and a guard that catches N+1 before it ships")
t1, t2 = st.columns(2)
if t1.button("Read user.scores without await", key="lab3_trap", help="The curriculum's `u.scores`, for real."):
    ok, caught = web.attempt(lambda: box.run(trap.trigger_missing_greenlet()))
    if ok and caught is not None:
        t1.error(f"`{caught.error}`: {caught.message}")
        t1.markdown(caught.explanation)
if t2.button("Run the lazy loop under raiseload('*')", key="lab3_guard"):
    ok, caught = web.attempt(lambda: box.run(trap.trigger_raiseload()))
    if ok and caught is not None:
        t2.error(f"`{caught.error}`: {caught.message}")
        t2.markdown(f"{caught.explanation} Statements sent before it stopped: **{caught.queries_before}** (the users).")
web.show_source(trap.trigger_missing_greenlet, strategies.load_lazy_guarded, repositories.UserRepository.list_all)

# -- 6 · query plans -----------------------------------------------------------------------
st.header("6 · Did the database use the index?")
st.caption(
    "The statements the strategies sent, run again with `EXPLAIN` (PostgreSQL) or `EXPLAIN QUERY PLAN` (SQLite) "
    f"and the same parameters. `{plans.INDEX}` is the index on `air_scores.user_id`."
)
if st.button("Show the query plans", key="lab3_plans"):
    ok, found = web.attempt(lambda: box.run(plans.query_plans()))
    for plan in found or []:
        used = "uses" if plan.uses_index else "does not use"
        st.markdown(f"**{plan.label}**: {used} `{plans.INDEX}`")
        st.code(plan.sql, language="sql", wrap_lines=True)
        st.code(plan.plan, language="text")
    if found and not all(p.uses_index for p in found):
        st.info(
            "Where a plan does not use the index, the planner estimated a full scan cheaper for this many rows "
            "(compare the cost figures in the plans): one pass over a small table can beat hundreds of lookups."
        )

# -- 7 · the instruments -------------------------------------------------------------------
st.header("7 · The instruments")
st.caption("How every figure on this page was measured: the query recorder and the N+1 detector.")
web.show_source(query_log.capture_queries, query_log.own_stack, n_plus_one.detect, n_plus_one.relationship_for)
knowledge_check("lab3")
