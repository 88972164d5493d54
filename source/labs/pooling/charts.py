"""Lab 2's charts: what one pool experiment measured, drawn so each strategy stays readable.

Every point comes from an :class:`~source.labs.pooling.results.ExperimentResult`: waits timed per
request, connection opening timed per connection, and pool counters sampled while it ran.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go

from source.labs.pooling.results import NEW_CONNECTION, POOL, ExperimentResult, LabRun

#: One colour per strategy, used on every chart.
COLOURS = {POOL: "#2563eb", NEW_CONNECTION: "#d97706"}


def whole_ticks(highest: float) -> dict[str, object]:
    """Axis settings for counts: whole-number ticks only, about five of them, from zero."""
    return {"rangemode": "tozero", "tickformat": "d", "dtick": max(1, math.ceil(highest / 5))}


def waits_figure(run: LabRun) -> go.Figure:
    """How long requests waited, as a cumulative curve per strategy and outcome.

    A point (x, y) on a solid curve reads "a fraction y of all K requests held a connection
    within x ms". Requests that gave up never got a connection: a dotted curve shows when
    they gave up, so a run where nearly everybody timed out still shows what happened.
    """
    fig = go.Figure()
    for result in run.results:
        total = result.config.requests
        colour = COLOURS[result.strategy]
        for waits, name, dash in (
            (result.waits_ms, f"{result.strategy}: held a connection", "solid"),
            (result.timeout_waits_ms, f"{result.strategy}: gave up", "dot"),
        ):
            if not waits:
                continue
            ordered = sorted(waits)
            fig.add_trace(
                go.Scatter(
                    x=ordered,
                    y=[(i + 1) / total for i in range(len(ordered))],
                    mode="lines+markers" if len(ordered) == 1 else "lines",
                    line={"shape": "hv", "color": colour, "width": 2, "dash": dash},
                    name=f"{name} ({len(ordered)})",
                )
            )
    fig.update_layout(
        xaxis={"title": "waited (ms)", "rangemode": "tozero"},
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
        yaxis={"title": "connections", "automargin": True, **whole_ticks(config.connections_at_once)},
        yaxis2={
            "title": "requests waiting",
            "overlaying": "y",
            "side": "right",
            **whole_ticks(max((s.waiting for s in samples), default=1)),
        },
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
