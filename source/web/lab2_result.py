"""Lab 2's result on the page: a finished experiment's metrics, notes and charts."""

from __future__ import annotations

import streamlit as st

from source.labs.pooling import charts, experiment, report
from source.labs.pooling.results import ExperimentResult, LabRun


def show_metrics(result: ExperimentResult) -> None:
    """Three to a row, so they stay readable at 1024 and 800 pixels wide."""
    figures = [
        ("Wall time", report.ms(result.wall_s * 1000)),
        ("Throughput", f"{result.throughput_rps:,.0f} req/s"),
        ("Bound ⌈K/C⌉·D", report.ms(result.bound_s * 1000)),
        ("Completed", f"{result.completed}"),
        ("Timeouts", f"{result.timeouts}"),
        ("Connections opened", f"{result.connections_opened}"),
    ]
    for start in range(0, len(figures), 3):
        for col, (label, value) in zip(st.columns(3), figures[start : start + 3], strict=False):
            col.metric(label, value, help="C = the connections that can be held at once" if "Bound" in label else None)


def show_run(run: LabRun) -> None:
    """The pooled run, and the NullPool run beside it if there was one."""
    pooled, cfg = run.pooled, run.pooled.config
    st.subheader(
        f"Pooled: K = {cfg.requests}, D = {cfg.delay_ms:g} ms, pool_size = {cfg.pool_size}, "
        f"max_overflow = {cfg.max_overflow}, pool_timeout = {cfg.pool_timeout_s:g} s ({pooled.backend})"
    )
    show_metrics(pooled)
    st.markdown(report.pooled_summary(pooled))
    if note := report.lent_while_queued_note(pooled):
        st.info(note, icon="🔎")
    if note := report.timeouts_note(pooled):
        st.warning(note)
    for result in run.results:
        if result.errors:
            st.error(f"{report.plural(result.errors, 'request')} failed ({result.strategy}): {result.first_error}")
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
        slower_ms = (nullpool.wall_s - pooled.wall_s) * 1000
        st.caption(
            f"{abs(slower_ms):,.0f} ms {'slower' if slower_ms >= 0 else 'faster'} than the pooled run, which opened "
            f"{report.plural(pooled.connections_opened, 'connection')}."
        )
        st.markdown(report.nullpool_note(nullpool))
        if nullpool.connect_ms:
            st.plotly_chart(charts.connect_figure(nullpool), key="lab2_connect", theme=None)
