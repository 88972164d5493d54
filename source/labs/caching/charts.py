"""Lab 4's charts: strategies side by side, and what a stampede cost the database."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from source.labs.caching.stampede import StampedeResult
from source.labs.caching.strategies.results import StrategyRun, mean_ms, p95_ms

COLOURS = ["#6b7280", "#2563eb", "#d97706", "#059669", "#7c3aed"]


def strategies_figure(run: StrategyRun) -> go.Figure:
    """Four panels, one bar per strategy: hit ratio, database load, read latency, stale reads."""
    names = [r.strategy for r in run.results]
    colours = COLOURS[: len(names)]
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=("hit ratio H", "database statements", "read latency (ms)", "stale reads"),
        vertical_spacing=0.18,
    )
    fig.add_trace(go.Bar(x=names, y=[r.hit_ratio for r in run.results], marker_color=colours, showlegend=False), 1, 1)
    bars = [
        (1, 2, "SELECT", "#2563eb", [r.db_reads for r in run.results]),
        (1, 2, "UPDATE", "#d97706", [r.db_writes for r in run.results]),
        (2, 1, "mean", "#059669", [mean_ms(r.read_ms) for r in run.results]),
        (2, 1, "p95", "#7c3aed", [p95_ms(r.read_ms) for r in run.results]),
    ]
    for row, col, label, colour, values in bars:
        fig.add_trace(go.Bar(x=names, y=values, name=label, marker_color=colour), row, col)
    fig.add_trace(go.Bar(x=names, y=[r.stale_reads for r in run.results], marker_color=colours, showlegend=False), 2, 2)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05], row=1, col=1)
    fig.update_layout(barmode="group", height=620, margin={"t": 40}, legend={"orientation": "h", "y": -0.12})
    return fig


def stampede_figure(results: list[StampedeResult]) -> go.Figure:
    """Database reads per stampede: N readers of one cold key, with and without protection."""
    labels = [f"{r.readers} readers, {'protected' if r.protection else 'unprotected'}" for r in results]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=[r.db_reads for r in results],
            marker_color=["#059669" if r.protection else "#dc2626" for r in results],
            text=[r.db_reads for r in results],
            textposition="outside",
        )
    )
    fig.update_layout(yaxis_title="database reads (SELECTs counted)", height=320, margin={"t": 30})
    return fig
