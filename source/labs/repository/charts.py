"""Lab 3's chart: statements and time per strategy as N grows, without and with a round trip."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from source.labs.repository.scaling import ScalingResult
from source.labs.repository.strategies import STRATEGIES

#: One colour per strategy, on every chart.
COLOURS = dict(zip((s.label for s in STRATEGIES.values()), ("#dc2626", "#d97706", "#2563eb", "#059669"), strict=True))
#: The two N+1 strategies send exactly as many statements: a wide pale line under a narrow one keeps both visible.
WIDTHS = dict(zip(COLOURS, (7, 2, 2, 2), strict=True))


def scaling_figure(result: ScalingResult) -> go.Figure:
    """Left: statements sent (log scale). Right: wall time; dashed lines carry the simulated round trip."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("statements sent", "time (ms)"), horizontal_spacing=0.1)
    for label, colour in COLOURS.items():
        for delay in result.round_trips:
            points = sorted(
                (p for p in result.points if p.strategy == label and p.round_trip_ms == delay), key=lambda p: p.users
            )
            if not points:
                continue
            name = label if delay == 0 else f"{label}, {delay:g} ms round trip"
            style = {"color": colour, "dash": "solid" if delay == 0 else "dash", "width": WIDTHS[label]}
            users = [p.users for p in points]
            if delay == 0:  # the count of statements does not depend on the delay: drawn once
                fig.add_trace(
                    go.Scatter(
                        x=users,
                        y=[p.queries for p in points],
                        name=label,
                        legendgroup=label,
                        line=style,
                        opacity=0.45 if WIDTHS[label] > 2 else 1.0,
                    ),
                    row=1,
                    col=1,
                )
            fig.add_trace(
                go.Scatter(
                    x=users,
                    y=[round(p.wall_ms, 1) for p in points],
                    name=name,
                    legendgroup=label,
                    line=style,
                    showlegend=delay != 0,
                ),
                row=1,
                col=2,
            )
    fig.update_xaxes(title_text="users loaded (N)", type="log")
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(height=420, margin={"t": 40}, legend={"orientation": "h", "y": -0.25})
    return fig
