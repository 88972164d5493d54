"""The class's own measurements, one plot per lab: every learner's runs side by side, against the lab's idea.

Each lab's plot says what its lesson predicts: Lab 2's measured time against the bound ⌈K/C⌉·D,
Lab 3's N+1 statements and time against eager loading for each learner's user count, Lab 4's measured
T_avg against the formula at each learner's hit ratio, Lab 5's publish rates and what each learner's
faults did to their drains. Each dot is a run, named by its learner (or "Learner n" on a projector). A
lab without a plan of its own gets every value it recorded, run by run. One metric per lab picks out
learners far from the class (see :func:`~source.learning.classroom.dashboard.outliers`).
"""

from __future__ import annotations

import html
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from source.learning.classroom.dashboard import Outlier, Run, Snapshot, outliers

#: Points get their learner's name written beside them up to this many learners (then only on hover).
LABELLED_UP_TO = 30
#: Figures kept for redraws (each a class's plotted lab, as labelled).
KEPT_FIGURES = 16
SYMBOLS = ("circle", "diamond", "square", "triangle-up", "x", "star")

Value = Callable[[Run], float | None]


def _named(name: str) -> Value:
    return lambda run: run.value(name)


def _ratio(top: str, bottom: str) -> Value:
    def value(run: Run) -> float | None:
        a, b = run.value(top), run.value(bottom)
        return a / b if a is not None and b else None

    return value


def _hit_ratio(run: Run) -> float | None:
    hits, reads = run.value("hits"), run.value("reads")
    return hits / reads if hits is not None and reads else None


def _formula_ms(run: Run) -> float | None:
    """T_avg = H·T_cache + (1−H)·(T_cache + T_db), from the learner's own terms."""
    h, cache, db = _hit_ratio(run), run.value("cache_ms"), run.value("db_ms")
    if h is None or cache is None or db is None:
        return None
    return h * cache + (1 - h) * (cache + db)


def _rows_removed(run: Run) -> float | None:
    a, s = run.value("assessments_removed"), run.value("scores_removed")
    return a + s if a is not None and s is not None else None


def _publish_rate(run: Run) -> float | None:
    published, ms = run.value("published"), run.value("publish_ms")
    return published / (ms / 1000) if published is not None and ms else None


#: What a learner's faults did during a drain of Lab 5 (see ``source/labs/outbox/record.py``).
FAULT_EFFECTS = ("held", "crashed", "dead_lettered")


def _through_faults(run: Run) -> bool:
    return any(run.value(name) for name in FAULT_EFFECTS)


def _rate_without_faults(run: Run) -> float | None:
    return None if _through_faults(run) else _publish_rate(run)


def _rate_through_faults(run: Run) -> float | None:
    return _publish_rate(run) if _through_faults(run) else None


def _effect(name: str) -> Value:
    """A fault's effect in a drain, when it had one (a drain without it draws no point at zero)."""
    return lambda run: run.value(name) or None


def _within_bound(run: Run) -> float | None:
    """Measured time of a run in which no request gave up (a timeout never holds a connection)."""
    return run.value("wall_ms") if not run.value("timeouts") else None


def _gave_up(run: Run) -> float | None:
    return run.value("wall_ms") if run.value("timeouts") else None


@dataclass(frozen=True)
class Series:
    name: str
    y: Value


@dataclass(frozen=True)
class Panel:
    title: str
    series: tuple[Series, ...]
    log: bool = False


@dataclass(frozen=True)
class LabPlot:
    """How one lab's runs are plotted, and the metric that names outliers."""

    x_title: str
    x: Value
    panels: tuple[Panel, ...]
    caption: str
    metric: Value
    metric_text: Callable[[float], str]
    diagonal: str | None = None  # a y = x line with this name (Lab 2's bound)


PLOTS: dict[str, LabPlot] = {
    "lab1": LabPlot(
        "rows the delete removed",
        _rows_removed,
        (Panel("statements sent", (Series("delete with cascade", _named("statements")),)),),
        "Each dot is one learner's delete with cascade: the rows it took with it, and the statements it sent.",
        _named("statements"),
        lambda v: f"{v:,.0f} statements",
    ),
    "lab2": LabPlot(
        "the bound ⌈K/C⌉·D (ms)",
        _named("bound_ms"),
        (
            Panel(
                "measured time (ms)",
                (Series("no request gave up", _within_bound), Series("some requests gave up", _gave_up)),
            ),
        ),
        "Every run of the pool experiment: measured time against its bound ⌈K/C⌉·D. On the line, the pool "
        "was the only wait; above it, something else (the machine, the database) added time; a run in which "
        "requests gave up can finish under it.",
        _ratio("wall_ms", "bound_ms"),
        lambda v: f"{v:.2f}× the bound",
        diagonal="the bound",
    ),
    "lab3": LabPlot(
        "users loaded",
        _named("users"),
        (
            Panel(
                "SQL statements",
                (Series("N+1 (lazy loading)", _named("lazy_queries")), Series("eager", _named("eager_queries"))),
                log=True,
            ),
            Panel(
                "time (ms)",
                (Series("N+1 time", _named("lazy_ms")), Series("eager time", _named("eager_ms"))),
                log=True,
            ),
        ),
        "Every comparison of loading strategies: the N+1 loop sends one statement per user, eager loading a "
        "constant few, whatever the user count; the times follow.",
        _ratio("lazy_ms", "eager_ms"),
        lambda v: f"N+1 took {v:,.1f}× the eager time",
    ),
    "lab4": LabPlot(
        "hit ratio H",
        _hit_ratio,
        (Panel("T_avg (ms)", (Series("measured", _named("avg_ms")), Series("formula", _formula_ms))),),
        "Each learner's window of reads: the measured average time against T_avg = H·T_cache + (1−H)·(T_cache "
        "+ T_db) filled in with their own terms.",
        _ratio("avg_ms", "cache_ms"),
        lambda v: f"T_avg {v:,.1f}× T_cache",
    ),
    "lab5": LabPlot(
        "events published in the drain",
        _named("published"),
        (
            Panel(
                "publish rate (events/s)",
                (
                    Series("drain, no fault", _rate_without_faults),
                    Series("drain through a fault", _rate_through_faults),
                ),
            ),
            Panel(
                "what the faults did",
                (
                    Series("events held: broker away or its answer lost", _effect("held")),
                    Series("batches crashed before marking (sent again)", _effect("crashed")),
                    Series("events dead-lettered", _effect("dead_lettered")),
                ),
            ),
        ),
        "Every drain of a learner's outbox: events published and the rate the publisher reached (time spent "
        "waiting for the broker does not count), drains that went through a fault the learner injected drawn "
        "apart. On the right, what those faults did in each drain: events held pending while the broker was "
        "away or its answer was lost (no try spent; they went again), batches published and then crashed "
        "before marking (published again: the consumer's inbox drops the copies), events refused until they "
        "reached the dead letter.",
        _publish_rate,
        lambda v: f"{v:,.0f} events/s",
    ),
    "create": LabPlot(
        "events written",
        _named("events_written"),
        (Panel("time (ms)", (Series("insert", _named("insert_ms")), Series("claim", _named("claim_ms")))),),
        "Every Create check: the 1,000 sample events written into each learner's table, and the claim's time.",
        _named("insert_ms"),
        lambda v: f"{v:,.0f} ms to insert",
    ),
}


def plot_for(lab: str) -> LabPlot | None:
    return PLOTS.get(lab)


_drawn: OrderedDict[tuple[object, ...], go.Figure] = OrderedDict()
_drawn_lock = threading.Lock()


def lab_figure(shot: Snapshot, *, anonymous: bool, large: bool = False) -> go.Figure:
    """The class's runs of the snapshot's lab in one figure (a panel per quantity).

    Building a figure takes plotly tens of milliseconds; the dashboard redraws every few seconds,
    mostly with the same runs. So the figure of the same runs under the same labels is kept (a few).
    """
    labels = tuple(_label(shot, run, anonymous) for run in shot.runs)
    key = (shot.lab, large, tuple((run.n, run.run) for run in shot.runs), labels)
    with _drawn_lock:
        if (kept := _drawn.get(key)) is not None:
            _drawn.move_to_end(key)
            return kept
    fig = _draw(shot, anonymous=anonymous, large=large)
    with _drawn_lock:
        _drawn[key] = fig
        while len(_drawn) > KEPT_FIGURES:
            _drawn.popitem(last=False)
    return fig


def _draw(shot: Snapshot, *, anonymous: bool, large: bool) -> go.Figure:
    spec = PLOTS.get(shot.lab or "")
    if spec is None:
        return _every_value(shot, anonymous=anonymous, large=large)
    fig = make_subplots(rows=1, cols=len(spec.panels), subplot_titles=[p.title for p in spec.panels])
    labelled = len({run.n for run in shot.runs}) <= LABELLED_UP_TO
    symbol = 0
    for col, panel in enumerate(spec.panels, 1):
        for series in panel.series:
            points = [(spec.x(r), series.y(r), _label(shot, r, anonymous)) for r in shot.runs]
            points = [(x, y, t) for x, y, t in points if x is not None and y is not None]
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in points],
                    y=[p[1] for p in points],
                    text=[p[2] for p in points],
                    mode="markers+text" if labelled else "markers",
                    textposition="top center",
                    marker={"symbol": SYMBOLS[symbol % len(SYMBOLS)], "size": 12 if large else 9},
                    name=series.name,
                    hovertemplate="%{text}: %{y:,.4g} at %{x:,.4g}<extra>" + series.name + "</extra>",
                ),
                row=1,
                col=col,
            )
            symbol += 1
        fig.update_xaxes(title_text=spec.x_title, row=1, col=col)
        if panel.log:
            fig.update_yaxes(type="log", row=1, col=col)
    if spec.diagonal is not None:
        xs = [x for r in shot.runs if (x := spec.x(r)) is not None]
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=[0, max(xs) * 1.1],
                    y=[0, max(xs) * 1.1],
                    mode="lines",
                    line={"dash": "dash", "color": "#64748b"},
                    name=spec.diagonal,
                    hoverinfo="skip",
                ),
                row=1,
                col=1,
            )
    return _layout(fig, large)


def _every_value(shot: Snapshot, *, anonymous: bool, large: bool) -> go.Figure:
    """A lab without a plan of its own: each value it recorded, one trace per name, run by run."""
    fig = go.Figure()
    names = list(dict.fromkeys(name for run in shot.runs for name in run.values))
    for i, name in enumerate(names):
        runs = [r for r in shot.runs if name in r.values]
        fig.add_trace(
            go.Scatter(
                x=[_label(shot, r, anonymous) for r in runs],
                y=[r.values[name][0] for r in runs],
                mode="markers",
                marker={"symbol": SYMBOLS[i % len(SYMBOLS)], "size": 12 if large else 9},
                name=f"{name} ({runs[0].values[name][1]})",
            )
        )
    return _layout(fig, large)


def _layout(fig: go.Figure, large: bool) -> go.Figure:
    fig.update_layout(
        height=520 if large else 420,
        margin={"t": 50, "b": 40, "l": 50, "r": 20},
        legend={"orientation": "h", "y": -0.2},
        font={"size": 20 if large else 13},
    )
    return fig


def _label(shot: Snapshot, run: Run, anonymous: bool) -> str:
    """The run's learner as the plot writes it: plotly reads tags in text, so a display name is escaped."""
    return html.escape(_label_of(shot, run.n, anonymous))


def named_outliers(shot: Snapshot, *, anonymous: bool) -> list[str]:
    """Sentences naming the learners far from the class on the plotted lab's metric (their newest run).

    Plain text: a page that shows them as Markdown escapes the display names first.
    """
    spec = PLOTS.get(shot.lab or "")
    if spec is None:
        return []
    values = {n: v for n, run in shot.latest().items() if (v := spec.metric(run)) is not None}
    found: list[Outlier] = outliers(values)
    return [
        f"{_label_of(shot, o.n, anonymous)}: {spec.metric_text(o.value)} (the class's median: "
        f"{spec.metric_text(o.median)})"
        for o in found
    ]


def _label_of(shot: Snapshot, n: int, anonymous: bool) -> str:
    learner = shot.learner(n)
    return learner.label(anonymous) if learner is not None else f"Learner {n}"
