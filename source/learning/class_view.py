"""The instructor's class view: every measurement of this sandbox, per lab, as tables and plots."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from source.learning.measurements import Measurement


def frame(found: list[Measurement]) -> pd.DataFrame:
    return pd.DataFrame([m.model_dump() for m in found], columns=["at", "lab", "run", "name", "value", "unit"])


def runs_table(found: list[Measurement], lab: str) -> pd.DataFrame:
    """One row per run of ``lab``, one column per measurement ("wall_ms (ms)"), oldest first."""
    df = frame([m for m in found if m.lab == lab])
    if df.empty:
        return df
    df["measurement"] = df["name"] + " (" + df["unit"] + ")"
    table = df.pivot_table(index=["at", "run"], columns="measurement", values="value", aggfunc="first", sort=False)
    return table.reset_index().drop(columns="run").rename(columns={"at": "when (UTC)"})


def lab_figure(found: list[Measurement], lab: str) -> go.Figure:
    """Each measurement of ``lab`` across its runs, one panel per unit so the scales stay readable."""
    df = frame([m for m in found if m.lab == lab])
    units = list(dict.fromkeys(df["unit"]))
    fig = make_subplots(rows=max(1, len(units)), cols=1, subplot_titles=units, vertical_spacing=0.12)
    for row, unit in enumerate(units, 1):
        part = df[df["unit"] == unit]
        for name in dict.fromkeys(part["name"]):
            series = part[part["name"] == name]
            fig.add_trace(
                go.Scatter(x=series["at"], y=series["value"], name=name, mode="lines+markers"), row=row, col=1
            )
    fig.update_layout(height=220 * max(1, len(units)) + 60, margin={"t": 40, "b": 20}, legend={"orientation": "h"})
    return fig
