"""Lab 2: async connectivity and connection pooling, on a real pool you can load and time out."""

from datetime import datetime

import streamlit as st

from source import web
from source.domain.samples import create_sample_users
from source.labs.pooling import charts as pool_charts
from source.labs.pooling import experiment as pool_lab
from source.platform.session import initialize_db

st.title("🔌 Lab 2 · Async connectivity & pooling")
st.markdown(
    r"""
InnovateAI's API serves many requests at once. Each one that touches the database needs a
**connection**, and opening one is expensive (on PostgreSQL: a TCP connection, authentication and a new
server process). So the app keeps a **pool** of open connections and lends them out. With asyncio, a
request that waits for the database does not block the others: the event loop serves them meanwhile,
which is what raises throughput $\Theta = \frac{\text{requests}}{\text{total time}}$.
"""
)

ok, maybe_box = web.attempt(web.sandbox)
if not ok or maybe_box is None:
    st.stop()
box = maybe_box  # this learner's sandbox, for every call below
backend = pool_lab.backend_name(box)

# -- 1 · initialise ---------------------------------------------------------------------
st.header("1 · Initialise your database and the sample users")
st.markdown(
    "This migrates your sandbox to the newest schema and creates **Alex Smith** and **Jane Doe**. "
    "Press it twice: the second time nobody new is created, because the database's UNIQUE email "
    "index recognises them."
)
if st.button("Initialise the database & create the sample users", key="lab2_init", type="primary"):
    ok, report = web.attempt(lambda: box.run(pool_lab.initialise_with_samples()))
    if ok and report is not None:
        st.success(f"Your sandbox is at migration `{report.revision}`.")
        for user in report.users:
            state = "created now" if user.created_now else "already existed"
            st.markdown(f"- **{user.name}** · {user.email} · id `{user.id}` · _{state}_")
if backend == "SQLite":
    st.caption(
        "On SQLite your database is a temporary *file*, not `:memory:`: an in-memory SQLite database gets "
        "a single shared connection (StaticPool), so there would be no pool to study."
    )
web.show_source(pool_lab.initialise_with_samples, initialize_db, create_sample_users)

# -- 2 · live pool status -----------------------------------------------------------------
st.header("2 · Watch a live pool")
if backend == "PostgreSQL":
    st.info(
        "This panel reads the app's **shared** PostgreSQL pool, the one the other labs use: every learner's "
        "sandbox (their own schema) borrows connections from it, so these numbers move with everybody's clicks. "
        "It is mostly idle, because a click holds a connection for a few milliseconds.",
        icon="👥",
    )
else:
    st.info(
        "This panel reads the pool of your own SQLite file, the one the other labs use: only your clicks move "
        "it, for a few milliseconds each, so it is mostly idle.",
        icon="🙋",
    )
st.caption(
    "The experiment in section 3 builds an engine of its own: its pool's counters show in the progress bar "
    "while it runs, and as a chart afterwards."
)
live = st.toggle("Live: refresh every second", key="lab2_live")


@st.fragment(run_every=1.0 if live else None)
def pool_panel() -> None:
    ok, status = web.attempt(lambda: box.run(pool_lab.read_pool_status(box.engine)))
    if not ok:
        return
    if status is None:
        st.info("This engine's pool keeps no counters (it is not a QueuePool).")
        return
    cols = st.columns(4)
    cols[0].metric("Size (pool_size)", status.size)
    cols[1].metric("Checked in (idle)", status.checked_in)
    cols[2].metric("Checked out (in use)", status.checked_out)
    cols[3].metric("Overflow", status.overflow)
    st.caption(
        f"{status.pool_class}, read at {datetime.now():%H:%M:%S}. SQLAlchemy counts overflow up from −pool_size: "
        f"overflow {status.overflow} with size {status.size} means {status.opened} connection(s) are open now; "
        "a positive number is how many extra connections beyond pool_size are open."
    )


pool_panel()
web.show_source(pool_lab.read_pool_status, pool_lab.pool_status)

# -- 3 · the experiment ---------------------------------------------------------------------
st.header("3 · Load a pool of your own")
st.markdown(
    "Fire **K** concurrent simulated requests. Each borrows a connection, runs `SELECT 1`, then holds the "
    "connection for **D** ms. That hold is injected with `asyncio.sleep` to model a slow query or a slow "
    "network; everything else (waiting for a connection, opening one, timing out) is real. The experiment "
    "builds its own engine with your pool settings and disposes of it afterwards."
)
if backend == "SQLite":
    st.info(
        'You are on SQLite. A SQLite "connection" opens a file inside this process (plus a worker thread for '
        "aiosqlite): no network handshake, so opening one is cheap; on PostgreSQL it is a TCP connection, "
        "authentication and a new server process, which is why pooling matters far more there. And SQLite allows "
        "one writer at a time: these requests only read, but with writes they would also queue on the file's lock "
        "(busy_timeout), not just on the pool, where PostgreSQL locks only the rows each one touches.",
        icon="ℹ️",
    )
st.caption(
    f"Limits, so nobody can exhaust the shared host: K ≤ {pool_lab.MAX_REQUESTS}, D ≤ {pool_lab.MAX_DELAY_MS} ms, "
    f"pool_size ≤ {pool_lab.MAX_POOL_SIZE}, max_overflow ≤ {pool_lab.MAX_OVERFLOW}, pool_timeout "
    f"{pool_lab.MIN_POOL_TIMEOUT_S:g}–{pool_lab.MAX_POOL_TIMEOUT_S:g} s; at most "
    f"{pool_lab.MAX_EXPERIMENTS_AT_ONCE} experiments run at once across all learners, and one per learner: "
    "starting a new one stops your previous one."
)
with st.form("lab2_form"):
    c = st.columns(5)
    k = c[0].number_input("Requests K", 1, pool_lab.MAX_REQUESTS, 100, step=10, key="lab2_k")
    d = c[1].number_input("Hold D (ms)", 1, pool_lab.MAX_DELAY_MS, 20, step=5, key="lab2_d")
    size = c[2].number_input("pool_size", 1, pool_lab.MAX_POOL_SIZE, 5, key="lab2_size")
    overflow = c[3].number_input("max_overflow", 0, pool_lab.MAX_OVERFLOW, 0, key="lab2_overflow")
    timeout = c[4].number_input(
        "pool_timeout (s)", pool_lab.MIN_POOL_TIMEOUT_S, pool_lab.MAX_POOL_TIMEOUT_S, 5.0, step=0.1, key="lab2_timeout"
    )
    compare = st.checkbox("Also run it with a new connection per request (NullPool)", True, key="lab2_compare")
    submitted = st.form_submit_button("Run the experiment", key="lab2_run", type="primary")

if submitted:
    ok, config = web.attempt(lambda: pool_lab.ExperimentConfig(k, d, size, overflow, timeout))
    if ok and config is not None:
        progress = pool_lab.Progress()
        bar = st.progress(0.0, text="Starting…")
        future = pool_lab.start(box, pool_lab.run_experiment(config, compare_nullpool=compare, progress=progress))
        ok, run = web.attempt(
            lambda: pool_lab.wait_with_progress(future, lambda: bar.progress(progress.fraction, progress.describe()))
        )
        bar.empty()
        if ok and run is not None:
            st.session_state["lab2_last_run"] = run

run = st.session_state.get("lab2_last_run")
if run is not None:
    pooled, cfg = run.pooled, run.pooled.config
    st.subheader(
        f"Pooled: K = {cfg.requests}, D = {cfg.delay_ms:g} ms, pool_size = {cfg.pool_size}, "
        f"max_overflow = {cfg.max_overflow}, pool_timeout = {cfg.pool_timeout_s:g} s ({pooled.backend})"
    )
    m = st.columns(5)
    m[0].metric("Wall time", f"{pooled.wall_s * 1000:.0f} ms")
    m[1].metric("Throughput", f"{pooled.throughput_rps:.0f} req/s")
    m[2].metric("Bound ⌈K/C⌉·D", f"{pooled.bound_s * 1000:.0f} ms", help="C = pool_size + max_overflow")
    m[3].metric("Completed", pooled.completed)
    m[4].metric("Pool timeouts", pooled.timeouts)
    opened = f"It opened **{pooled.connections_opened}** connection(s)"
    if pooled.median_connect_ms is not None:
        opened += (
            f"; opening one took a median of {pooled.median_connect_ms:.1f} ms, timed from asking the driver "
            "until the pool's `connect` event"
        )
    if pooled.bound_ratio is not None:
        st.markdown(
            f"At most **C = {pooled.concurrency}** requests can hold a connection at once (peak seen: "
            f"{pooled.peak_in_use}), so no schedule beats ⌈{cfg.requests}/{pooled.concurrency}⌉ rounds of "
            f"{cfg.delay_ms:g} ms. This run took **{pooled.bound_ratio:.2f}×** that bound. {opened}. "
            "Every other request reused one of those. The page does not split the gap further: besides opening "
            "connections it holds the event loop's own work per request and whatever else the shared host is "
            "doing, so run it twice to see how much it varies. "
            f"The longest wait for a connection was {pooled.max_wait_ms:.0f} ms."
        )
    else:
        st.markdown(
            f"The bound ⌈K/C⌉·D assumes every request is served; **{pooled.timeouts}** gave up after "
            f"pool_timeout and {pooled.errors} failed, so this wall time is not compared with it. {opened}. "
            f"The longest wait of a request that was served was {pooled.max_wait_ms:.0f} ms."
        )
    lent = pooled.lent_while_queued
    if pooled.closed_while_queued and lent is not None:
        st.info(
            f"While requests queued, the pool lent out **{lent:.1f}** connections on average, not C = "
            f"{pooled.concurrency}: it closed {pooled.closed_while_queued} connection(s) while requests were "
            "waiting. A QueuePool keeps at most pool_size idle connections, so an overflow connection returned "
            "when it already holds that many is closed, and requests already waiting take a returned connection "
            "instead of opening a new one. The chart below shows when.",
            icon="🔎",
        )
    if pooled.timeouts:
        st.warning(
            f"{pooled.timeouts} request(s) waited longer than pool_timeout = {cfg.pool_timeout_s:g} s and got "
            '`sqlalchemy.exc.TimeoutError`: the pool\'s way of saying "no connection became free in time". '
            "In a web app that request fails fast instead of piling up."
        )
    for result in (pooled, run.nullpool):
        if result is not None and result.errors:
            st.error(f"{result.errors} request(s) failed ({result.strategy}): {result.first_error}")
    st.markdown(
        "**The pool while it ran**: its own counters, read every "
        f"{pool_lab.SAMPLE_EVERY_S * 1000:g} ms during the pooled run."
    )
    st.plotly_chart(pool_charts.timeline_figure(pooled), key="lab2_timeline", theme=None)
    st.markdown("**How long requests waited for a connection**")
    st.plotly_chart(pool_charts.waits_figure(run), key="lab2_waits", theme=None)

    nullpool = run.nullpool
    if nullpool is not None:
        st.subheader("Versus a new connection per request (NullPool)")
        n = st.columns(6)
        slower_ms = (nullpool.wall_s - pooled.wall_s) * 1000
        n[0].metric("Wall time", f"{nullpool.wall_s * 1000:.0f} ms", f"{slower_ms:+.0f} ms vs pool", "inverse")
        n[1].metric("Throughput (req/s)", f"{nullpool.throughput_rps:.0f}")
        n[2].metric("Completed", nullpool.completed)
        n[3].metric("Timeouts", nullpool.timeouts)
        n[4].metric(
            "Connections opened",
            nullpool.connections_opened,
            delta=f"the pool opened {pooled.connections_opened}",
            delta_color="off",
            delta_arrow="off",
        )
        connect = nullpool.median_connect_ms
        n[5].metric("Opening one (median)", f"{connect:.1f} ms" if connect is not None else "–")
        st.markdown(
            "`NullPool` has no limit and no timeout of its own, so two stand-ins play the pool's part: an "
            f"`asyncio.Semaphore` lets at most {nullpool.concurrency} requests hold a connection at once, and "
            f"`asyncio.wait_for` gives up on waiting for it after pool_timeout = {cfg.pool_timeout_s:g} s. "
            "Same requests, same cap, same timeout: the difference is that nothing is reused, so every request "
            f"opens its own connection ({nullpool.total_connect_ms:.0f} ms of opening in total, measured)."
        )
        if nullpool.connect_ms:
            st.plotly_chart(pool_charts.connect_figure(nullpool), key="lab2_connect", theme=None)

web.show_source(
    pool_lab.run_experiment,
    pool_lab.pooled_request,
    pool_lab.new_connection_request,
    pool_lab.hold_connection,
    pool_lab.QueuedRequest,
    pool_lab.time_new_connections,
    pool_lab.sample_pool,
    pool_lab.build_engine,
    pool_lab.ExperimentConfig,
)
