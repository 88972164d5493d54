"""Lab 2: async connectivity and connection pooling, on a real pool you can load and time out."""

from datetime import datetime

import streamlit as st

from source import Backends, web
from source.instruments import pool_probe
from source.labs.pooling import background, config, experiment, initialise, report, requests
from source.platform.session import initialize_db
from source.services.samples import create_sample_users
from source.web.checks import knowledge_check
from source.web.jobs import job_section, start_button
from source.web.lab2_result import show_run
from source.web.widgets import whole_number_input

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

box = web.page_sandbox()  # this learner's sandbox, for every call below
backend = experiment.backend_name(box)

# -- 1 · initialise ---------------------------------------------------------------------
st.header("1 · Initialise your database and the sample users")
st.markdown(
    "This migrates your sandbox to the newest schema and creates **Alex Smith** and **Jane Doe**. "
    "Press it twice: the second time nobody new is created, because the database's UNIQUE email "
    "index recognises them."
)


@st.fragment
def initialise_panel() -> None:
    """A fragment: pressing the button reruns only this panel."""
    if st.button("Initialise the database & create the sample users", key="lab2_init", type="primary"):
        ok, init = web.attempt(lambda: box.run(initialise.initialise_with_samples()))
        if ok and init is not None:
            st.success(f"Your sandbox is at migration `{init.revision}`.")
            for user in init.users:
                state = "created now" if user.created_now else "already existed"
                st.markdown(f"- **{user.name}** · {user.email} · id `{user.id}` · _{state}_")


initialise_panel()
if backend == "SQLite":
    st.caption(
        "On SQLite your database is a temporary *file*, not `:memory:`: an in-memory SQLite database gets "
        "a single shared connection (StaticPool), so there would be no pool to study."
    )
web.show_source(initialise.initialise_with_samples, initialize_db, create_sample_users)

# -- 2 · live pool status -----------------------------------------------------------------
st.header("2 · Watch a live pool")
if backend == "PostgreSQL":
    st.info(
        "This panel reads the app's **shared** PostgreSQL pool, the one the other labs use: every learner's "
        "sandbox (their own schema) borrows connections from it, so these numbers move with everybody's clicks.",
        icon="👥",
    )
else:
    st.info("This panel reads the pool of your own SQLite file, the one the other labs use.", icon="🙋")
st.caption(
    "The experiment in section 3 builds an engine of its own: its pool's counters show in the progress bar "
    "while it runs, and as a chart afterwards."
)
live = st.toggle("Live: refresh every second", key="lab2_live")


@st.fragment(run_every=1.0 if live else None)
def pool_panel() -> None:
    ok, status = web.attempt(lambda: box.run(pool_probe.read_pool_status(box.engine)))
    if not ok:
        return
    if status is None:
        st.info("This engine's pool keeps no counters (it is not a QueuePool).")
        return
    top, bottom = st.columns(2), st.columns(2)
    top[0].metric("Size (pool_size)", status.size)
    top[1].metric("Checked in (idle)", status.checked_in)
    bottom[0].metric("Checked out (in use)", status.checked_out)
    bottom[1].metric("Overflow", status.overflow)
    st.caption(
        f"{status.pool_class}, read at {datetime.now():%H:%M:%S}. SQLAlchemy counts overflow up from −pool_size: "
        f"overflow {status.overflow} with size {status.size} means {report.plural(status.opened, 'connection')} "
        "open now; a positive number is how many extra connections beyond pool_size are open."
    )


pool_panel()
web.show_source(pool_probe.read_pool_status, pool_probe.pool_status)

# -- 3 · the experiment ---------------------------------------------------------------------
st.header("3 · Load a pool of your own")
st.markdown(
    "Fire **K** concurrent simulated requests. Each borrows a connection, runs `SELECT 1`, then holds the "
    "connection for **D** ms. That hold is injected with `asyncio.sleep` to model a slow query or a slow "
    "network; everything else (waiting for a connection, opening one, timing out) is real. The experiment "
    "builds its own engine with your pool settings and disposes of it afterwards. It runs in the background "
    "of your sandbox: you may use the rest of the page, or another lab, and come back to its result."
)
if backend == "SQLite":
    st.info(
        'You are on SQLite. A SQLite "connection" opens a file inside this process and starts a worker thread '
        "(aiosqlite): no network handshake. On PostgreSQL it is a TCP connection, authentication and a new server "
        "process. Either way the time to open one is measured below, not assumed. And SQLite allows one writer "
        "at a time: these requests only read, but with writes they would also queue on the file's lock "
        "(busy_timeout), not just on the pool, where PostgreSQL locks only the rows each one touches.",
        icon="ℹ️",
    )
st.caption(
    f"Limits, so nobody can exhaust the shared host: K ≤ {config.MAX_REQUESTS}, D ≤ {config.MAX_DELAY_MS} ms, "
    f"pool_size ≤ {config.MAX_POOL_SIZE}, max_overflow ≤ {config.MAX_OVERFLOW}, pool_timeout "
    f"{config.MIN_POOL_TIMEOUT_S:g}–{config.MAX_POOL_TIMEOUT_S:g} s. One experiment per learner. On this server "
    f"at most {config.MAX_EXPERIMENTS_AT_ONCE} experiments run at once, holding at most "
    f"{experiment.connection_budget(box)} connections together: an experiment that does not fit waits its turn "
    f"(up to {experiment.ADMISSION_TIMEOUT_S:g} s), so two large ones run one after the other."
)


def start_experiment(runner: background.ExperimentRunner) -> None:
    state = st.session_state
    chosen = config.ExperimentConfig.parse(
        requests=round(state["lab2_k"]),
        delay_ms=state["lab2_d"],
        pool_size=round(state["lab2_size"]),
        max_overflow=round(state["lab2_overflow"]),
        pool_timeout_s=state["lab2_timeout"],
    )
    runner.start(chosen, compare_nullpool=bool(state["lab2_compare"]))


@st.fragment
def experiment_section() -> None:
    """A fragment: Run reruns this section (the form, the progress, the result), not the whole page."""
    with st.form("lab2_form"):
        c = st.columns(3)
        whole_number_input(c[0], "Requests K", (1, config.MAX_REQUESTS), 100, key="lab2_k", help="Fired at once.")
        c[1].number_input(
            "Hold D (ms)", 1.0, float(config.MAX_DELAY_MS), 20.0, step=5.0, key="lab2_d", help="Injected per request."
        )
        c[2].number_input(
            "pool_timeout (s)",
            config.MIN_POOL_TIMEOUT_S,
            config.MAX_POOL_TIMEOUT_S,
            5.0,
            step=0.1,
            key="lab2_timeout",
            help="How long a request waits for a connection before it gives up.",
        )
        p = st.columns(3)  # the third column stays empty, so the inputs line up with the row above
        whole_number_input(
            p[0], "pool_size", (1, config.MAX_POOL_SIZE), 5, key="lab2_size", help="Connections kept open."
        )
        whole_number_input(
            p[1], "max_overflow", (0, config.MAX_OVERFLOW), 0, key="lab2_overflow", help="Extra ones opened under load."
        )
        st.checkbox("Also run it with a new connection per request (NullPool)", True, key="lab2_compare")
        start_button(
            st,
            "Run the experiment",
            key="lab2_run",
            runner=background.ExperimentRunner,
            start=start_experiment,
            form=True,
            help="Runs in the background of your sandbox.",
        )
    job_section(background.ExperimentRunner.of(box), key="lab2", start_key="lab2_run", show=show_run)


experiment_section()
web.show_source(
    experiment.run_experiment,
    experiment.measure,
    requests.pooled_request,
    requests.new_connection_request,
    requests.hold_connection,
    requests.QueuedRequest,
    pool_probe.PoolProbe,
    Backends.experiment_engine,
    config.ExperimentConfig,
    background.ExperimentRunner,
)
knowledge_check("lab2")
