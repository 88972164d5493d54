"""Lab 2: async connectivity and connection pooling, on a real pool you can load and time out."""

import streamlit as st

from source import Backends, web
from source.instruments import pool_probe
from source.labs.pooling import actions, config, experiment, initialise, jobs, requests
from source.platform.session import initialize_db
from source.services.samples import create_sample_users
from source.web import lab2
from source.web.checks import knowledge_check

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

st.header("1 · Initialise your database and the sample users")
st.markdown(
    "This migrates your sandbox to the newest schema and creates **Alex Smith** and **Jane Doe**. "
    "Press it twice: the second time nobody new is created, because the database's UNIQUE email "
    "index recognises them."
)
lab2.initialise_panel(box)
web.show_source(actions.initialise, initialise.initialise_with_samples, initialize_db, create_sample_users)

st.header("2 · Watch a live pool")
st.caption(
    "The experiment in section 3 builds an engine of its own: its pool's counters show in the progress bar "
    "while it runs, and as a chart afterwards."
)
lab2.pool_panel(box)
web.show_source(actions.read_pool, pool_probe.read_pool_status, pool_probe.pool_status)

st.header("3 · Load a pool of your own")
st.markdown(
    "Fire **K** concurrent simulated requests. Each borrows a connection, runs `SELECT 1`, then holds the "
    "connection for **D** ms. That hold is injected with `asyncio.sleep` to model a slow query or a slow "
    "network; everything else (waiting for a connection, opening one, timing out) is real. The experiment "
    "builds its own engine with your pool settings and disposes of it afterwards. It runs in the background "
    "of your sandbox: you may use the rest of the page, or another lab, and come back to its result."
)
lab2.limits(box)
lab2.experiment_panel(box)
web.show_source(
    actions.start_experiment,
    config.ExperimentConfig,
    jobs.ExperimentRunner,
    experiment.run_experiment,
    experiment.measure,
    requests.pooled_request,
    requests.new_connection_request,
    requests.hold_connection,
    requests.QueuedRequest,
    pool_probe.PoolProbe,
    Backends.experiment_engine,
)
knowledge_check("lab2")
