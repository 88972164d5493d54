"""Lab 2's panels: initialise, the live pool's counters, the experiment's form, its progress and its result.

The buttons run Lab 2's actions (:mod:`source.labs.pooling.actions`) in their callbacks; the
experiment itself runs as a background job of the sandbox (:mod:`source.labs.pooling.jobs`), so
the learner may click elsewhere, or leave, and find its result when they come back.
"""

from __future__ import annotations

import streamlit as st

from source import web
from source.labs.pooling import actions, charts, config, experiment, report
from source.labs.pooling.jobs import ExperimentRunner
from source.labs.pooling.results import ExperimentResult, LabRun
from source.platform.outcome import Outcome
from source.platform.sandbox import Sandbox
from source.web.actions import button
from source.web.checks import check_key
from source.web.jobs import job_section, start_button
from source.web.seats import fragment
from source.web.widgets import whole_number_input

#: How often the live pool panel redraws itself while "Live" is on (seconds).
LIVE_EVERY_S = 1.0


# -- 1 · initialise ----------------------------------------------------------------------------
def _initialise() -> Outcome:
    done = web.run(actions.initialise())
    st.session_state["lab2_sample_users"] = done.users  # drawn once, under the sentence
    return done.outcome


@fragment
def initialise_panel(box: Sandbox) -> None:
    """A fragment: pressing the button reruns only this panel."""
    label = "Initialise the database & create the sample users"
    button(st, label, key="lab2_init", action=_initialise, type="primary")
    for line in st.session_state.pop("lab2_sample_users", []):
        st.markdown(line)
    if note := actions.backend_notes(box).storage:
        st.caption(note)


# -- 2 · the live pool ---------------------------------------------------------------------------
def pool_panel(box: Sandbox) -> None:
    """Whose pool this is, the Live toggle, and the four counters (redrawn every second while Live is on)."""
    notes = actions.backend_notes(box)
    st.info(notes.live_pool, icon=notes.live_pool_icon)
    live = st.toggle("Live: refresh every second", key="lab2_live")
    fragment(pool_counters, run_every=LIVE_EVERY_S if live else None)()


def pool_counters() -> None:
    ok, reading = web.attempt(lambda: web.run(actions.read_pool()))
    if not ok or reading is None:
        return
    status = reading.status
    if status is None:
        st.info(reading.said)
        return
    top, bottom = st.columns(2), st.columns(2)
    top[0].metric("Size (pool_size)", status.size)
    top[1].metric("Checked in (idle)", status.checked_in)
    bottom[0].metric("Checked out (in use)", status.checked_out)
    bottom[1].metric("Overflow", status.overflow)
    st.caption(reading.said)


# -- 3 · the experiment ------------------------------------------------------------------------------
def limits(box: Sandbox) -> None:
    """What a "connection" is on SQLite (nothing to add on PostgreSQL), and the limits of this server."""
    notes = actions.backend_notes(box)
    if notes.connections:
        st.info(notes.connections, icon="ℹ️")
    st.caption(notes.limits)


def _start(runner: ExperimentRunner) -> None:
    """The Run button's callback: the form's values, as typed, to the lab's action."""
    state = st.session_state
    actions.start_experiment(
        runner,
        requests=state["lab2_k"],
        delay_ms=state["lab2_d"],
        pool_size=state["lab2_size"],
        max_overflow=state["lab2_overflow"],
        pool_timeout_s=state["lab2_timeout"],
        compare_nullpool=state["lab2_compare"],
    )


@fragment(key="lab2_experiment")
def experiment_panel(box: Sandbox) -> None:
    """A fragment: Run reruns this section (the form, the progress, the result), not the whole page.

    At the run's end it is drawn again with the knowledge check, whose questions are computed from
    the run just recorded: the rest of the page does not change.
    """
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
            runner=ExperimentRunner,
            start=_start,
            form=True,
            help="Runs in the background of your sandbox.",
        )
    job_section(
        ExperimentRunner.of(box),
        key="lab2",
        start_key="lab2_run",
        show=show_run,
        redraw_keys=("lab2_experiment", check_key("lab2")),
    )


# -- the result of a finished experiment ------------------------------------------------------------
def show_metrics(result: ExperimentResult) -> None:
    """Three to a row, so they stay readable at 1024 and 800 pixels wide."""
    figures = [
        ("Wall time", report.ms(result.wall_s * 1000), None),
        ("Throughput", f"{result.throughput_rps:,.0f} req/s", None),
        ("Bound ⌈K/C⌉·D", report.ms(result.bound_s * 1000), "C = the connections that can be held at once"),
        ("Completed", f"{result.completed}", None),
        ("Timeouts", f"{result.timeouts}", None),
        ("Connections opened", f"{result.connections_opened}", None),
    ]
    for start in range(0, len(figures), 3):
        for col, (label, value, help_) in zip(st.columns(3), figures[start : start + 3], strict=False):
            col.metric(label, value, help=help_)


def show_run(run: LabRun) -> None:
    """The pooled run, and the NullPool run beside it if there was one."""
    pooled = run.pooled
    st.subheader(report.pooled_title(pooled))
    show_metrics(pooled)
    st.markdown(report.pooled_summary(pooled))
    if note := report.lent_while_queued_note(pooled):
        st.info(note, icon="🔎")
    if note := report.timeouts_note(pooled):
        st.warning(note)
    for failed in report.failures(run):
        st.error(failed)
    st.markdown(
        "**The pool while it ran**: its own counters, read every "
        f"{experiment.SAMPLE_EVERY_S * 1000:g} ms during the pooled run."
    )
    st.plotly_chart(charts.timeline_figure(pooled), key="lab2_timeline", theme=None)
    st.markdown("**How long requests waited**: for a connection, or until they gave up")
    st.plotly_chart(charts.waits_figure(run), key="lab2_waits", theme=None)

    nullpool = run.nullpool
    if nullpool is not None:
        st.subheader("Versus a new connection per request (NullPool)")
        show_metrics(nullpool)
        st.caption(report.versus_pooled(nullpool, pooled))
        st.markdown(report.nullpool_note(nullpool))
        if nullpool.connect_ms:
            st.plotly_chart(charts.connect_figure(nullpool), key="lab2_connect", theme=None)
