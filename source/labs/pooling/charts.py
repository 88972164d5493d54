"""Lab 2's charts: what one pool experiment measured, drawn so each strategy stays readable.

Every point comes from an :class:`~source.labs.pooling.experiment.ExperimentResult`: waits timed per
request, connection opening timed per connection, and pool counters sampled while it ran.
"""

from __future__ import annotations

import plotly.graph_objects as go

from source.labs.pooling.experiment import ExperimentResult, LabRun

#: One colour per strategy, used on every chart.
COLOURS = {"pool": "#2563eb", "new connection per request": "#d97706"}


def waits_figure(run: LabRun) -> go.Figure:
    """How long requests waited for a connection, as a cumulative curve per strategy.

    A point (x, y) reads "a fraction y of all K requests held a connection within x ms".
    Unlike two overlaid histograms, the curves stay readable where they cross. Requests
    that gave up never got a connection, so a curve with timeouts stops below 100 %.
    """
    fig = go.Figure()
    for result in (run.pooled, run.nullpool):
        if result is None:
            continue
        waits = sorted(result.waits_ms)
        total = result.config.requests
        name = result.strategy
        if result.timeouts:
            name += f" ({result.timeouts} gave up)"
        fig.add_trace(
            go.Scatter(
                x=waits,
                y=[(i + 1) / total for i in range(len(waits))],
                mode="lines",
                line={"shape": "hv", "color": COLOURS[result.strategy], "width": 2},
                name=name,
            )
        )
    fig.update_layout(
        xaxis_title="waited for a connection at most (ms)",
        yaxis={"title": "share of all requests", "tickformat": ".0%", "range": [0, 1.05]},
        legend={"orientation": "h", "y": -0.25},
        margin={"t": 30},
        height=360,
    )
    return fig


def timeline_figure(result: ExperimentResult) -> go.Figure:
    """The pool over time: connections checked out, the overflow among them, requests queued.

    Drawn from the counters sampled while the experiment ran, as steps (a counter holds
    its value until the next reading). Dashed lines mark ``pool_size`` and the cap
    ``pool_size + max_overflow``.
    """
    samples = result.timeline
    t = [s.t_ms for s in samples]
    fig = go.Figure()
    step = {"shape": "hv", "width": 2}
    fig.add_trace(
        go.Scatter(x=t, y=[s.checked_out for s in samples], name="checked out", line={**step, "color": "#2563eb"})
    )
    if result.config.max_overflow:
        fig.add_trace(
            go.Scatter(
                x=t, y=[s.overflow_in_use for s in samples], name="overflow open", line={**step, "color": "#7c3aed"}
            )
        )
    fig.add_trace(
        go.Scatter(
            x=t,
            y=[s.waiting for s in samples],
            name="waiting for a connection",
            line={**step, "color": "#9ca3af", "dash": "dot"},
            yaxis="y2",
        )
    )
    config = result.config
    fig.add_hline(y=config.pool_size, line_dash="dash", line_color="#2563eb", annotation_text="pool_size")
    if config.max_overflow:
        fig.add_hline(
            y=config.connections_at_once, line_dash="dash", line_color="#7c3aed", annotation_text="+ max_overflow"
        )
    fig.update_layout(
        xaxis_title="time since the requests were fired (ms)",
        yaxis={"title": "connections", "rangemode": "tozero", "automargin": True},
        yaxis2={"title": "requests waiting", "overlaying": "y", "side": "right", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.25},
        margin={"t": 30},
        height=360,
    )
    return fig


def connect_figure(result: ExperimentResult) -> go.Figure:
    """Box plot of the time each new connection took to open."""
    fig = go.Figure(go.Box(x=result.connect_ms, name="", boxpoints="outliers", marker_color=COLOURS[result.strategy]))
    fig.update_layout(
        xaxis_title="time to open one new connection (ms)",
        yaxis={"showticklabels": False},
        margin={"t": 30, "l": 20},
        height=200,
        showlegend=False,
    )
    return fig
