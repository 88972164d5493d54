"""Lab 3's panels: one user fetched two ways, the seed, four strategies compared, scaling, a trap and the plans.

Streamlit only. Every button runs its action (``source/labs/repository/actions.py``) in its
callback, so the page that follows already shows the effect; the long ones start a job in the
background of the learner's sandbox (``source/labs/repository/jobs.py``), drawn with live
progress and Stop by :func:`~source.web.jobs.job_section`. Leaving the page does not stop a job:
its result is waiting when the learner comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import streamlit as st

from source import web
from source.instruments import n_plus_one
from source.labs.repository import actions, charts, jobs, measure, scaling, seeding
from source.labs.repository.actions import Way
from source.platform.outcome import Outcome
from source.platform.sandbox import Sandbox
from source.web import kept
from source.web.actions import button, say
from source.web.confirm import confirmed_button
from source.web.jobs import job_section, start_button
from source.web.seats import fragment
from source.web.widgets import whole_number_input

T = TypeVar("T")


def _keep(key: str, work: Callable[[], Coroutine[Any, Any, T]]) -> Callable[[], None]:
    """An action that runs ``work()`` in the sandbox and keeps its result under ``key`` for a panel to draw.

    The result is kept with the sandbox (``source/web/kept.py``), so it stays across reruns, a refresh
    and another tab, until the next click; a click that fails clears it, so no earlier result stands
    beside its error.
    """

    def run() -> None:
        kept.drop(key)
        kept.put(key, web.run(work()))

    return run


def schema_note(box: Sandbox) -> None:
    if box.schema and box.visitor:
        st.caption(
            f"No tables of your own yet: your first action takes a seat, a sandbox with a schema of your own; "
            f"{web.VISITOR_VIEW} (schema `{box.schema}`). The SQL below is shown without a schema prefix."
        )
    elif box.schema:
        st.caption(f"Your tables live in schema `{box.schema}`; the SQL below is shown without that prefix.")


def show_verdict(verdict: n_plus_one.Verdict) -> None:
    """The N+1 detector's verdict: all clear, or each finding with the call chain that sent it."""
    if not verdict.flagged:
        st.success(verdict.summary, icon="✅")
    for finding in verdict.findings:
        st.error(finding.message, icon="🔁")
        if finding.caller is not None:
            st.caption("Called via: " + " ← ".join(f"`{c}`" for c in finding.stack))


# -- 1 · one user --------------------------------------------------------------------------------
def _create_samples() -> Outcome:
    made = web.run(actions.create_samples())
    st.session_state["lab3_user_id"] = made.user_id  # a callback may fill a widget before it is drawn
    return made.outcome


def _typed_id() -> str:
    return str(st.session_state.get("lab3_user_id") or "")


def _fetch(way: Way) -> Callable[[], None]:
    """The fetch button's action: the typed user, fetched ``way``, kept for the panel (until the next fetch)."""
    return _keep(f"lab3_fetched_{way}", lambda: actions.fetch_user(_typed_id(), way))


@fragment
def one_user_panel() -> None:
    """Sample users, a user id, three sample scores, and that user fetched lazily and eagerly.

    A fragment: what its buttons change is drawn here alone, so a fetch reruns this panel, not
    the page's seven sections. It asks for the sandbox itself: a fragment's rerun keeps the arguments of
    the page's run, and the learner may have taken a seat since.
    """
    box = web.sandbox()
    samples = "Create the sample users (Alex, Jane)"
    button(st, samples, key="lab3_samples", action=_create_samples, help="Safe to press twice.")
    _, known = web.attempt(lambda: box.run(actions.some_users()))
    if known:
        st.caption(known)
    st.text_input("User id", key="lab3_user_id", max_chars=80, help="A user's UUID, e.g. Alex's.")
    c1, c2, c3 = st.columns(3)
    button(
        c1,
        "Add 3 sample scores",
        key="lab3_add_scores",
        action=lambda: web.run(actions.add_sample_scores(_typed_id())),
        help="Three INSERTs through UserRepository.add_score.",
    )
    recorded = "Runs under the query recorder."
    button(c2, "Fetch the N+1 way", key="lab3_fetch_lazy", action=_fetch("lazy"), help=recorded)
    button(c3, "Fetch the eager way", key="lab3_fetch_eager", action=_fetch("eager"), help=recorded)
    ways: tuple[Way, ...] = ("lazy", "eager")
    for col, way in zip(st.columns(2), ways, strict=True):
        fetched = kept.get(f"lab3_fetched_{way}")
        if fetched is not None:
            with col:
                _show_fetch(fetched, way)


def _show_fetch(result: measure.UserFetch, way: Way) -> None:
    st.subheader(f"{way.capitalize()}: {result.email}")
    m = st.columns(2)
    m[0].metric("Queries", len(result.statements))
    m[1].metric("Time", f"{result.wall_ms:.1f} ms")
    st.code(";\n".join(result.sql) + ";", language="sql", wrap_lines=True)
    show_verdict(result.verdict)
    st.dataframe(result.scores, hide_index=True, key=f"lab3_scores_{way}")


# -- 2 · seed ----------------------------------------------------------------------------------------
def _start_seed(runner: jobs.SeedRunner) -> None:
    state = st.session_state
    actions.start_seed(runner, users=round(state["lab3_n"]), scores_per_user=round(state["lab3_m"]))


def seed_panel(box: Sandbox) -> None:
    """N and M, Seed (in the background, with progress and Stop) and Remove, then the seed's report."""
    s1, s2 = st.columns(2)
    whole_number_input(s1, "Users N", (1, seeding.MAX_USERS), 1000, step=100, key="lab3_n")
    whole_number_input(s2, "Scores per user M", (0, seeding.MAX_SCORES_PER_USER), 5, key="lab3_m")
    b1, b2 = st.columns(2)
    start_button(
        b1,
        "Seed",
        key="lab3_seed",
        runner=jobs.SeedRunner,
        start=_start_seed,
        help="Refused if seeded users are already there. Runs in the background: you may leave the page meanwhile.",
    )
    confirmed_button(
        b2,
        "Remove the seeded users",
        key="lab3_unseed",
        question=f"Delete every user whose email ends in @{seeding.SEED_DOMAIN}, and their scores? Yours stay.",
        yes="Yes, remove them",
        action=lambda: web.run(actions.remove_seeded()),
        help="Asks first, then three DELETEs: scores, assessments, users.",
    )
    job_section(
        jobs.SeedRunner.of(box),
        key="lab3_seed",
        start_key="lab3_seed",
        show=_show_seed,
        hide_previous=False,
    )


def _show_seed(report: seeding.SeedReport) -> None:
    st.success(actions.seeded(report))


# -- 3 · compare -----------------------------------------------------------------------------------
def _start_comparison(runner: jobs.ComparisonRunner) -> None:
    state = st.session_state
    actions.start_comparison(runner, round_trip_ms=state["lab3_rtt"], threshold=round(state["lab3_threshold"]))


def comparison_panel(box: Sandbox) -> None:
    """The round trip and the threshold, the comparison job, and its table, check and statement shapes."""
    k1, k2 = st.columns(2)
    k1.slider(
        "Simulated network round trip per statement (ms)", 0.0, measure.MAX_ROUND_TRIP_MS, 0.0, 0.5, key="lab3_rtt"
    )
    whole_number_input(
        k2, "Detector threshold (repeats of one shape)", (2, 1000), n_plus_one.DEFAULT_THRESHOLD, key="lab3_threshold"
    )
    start_button(
        st,
        "Load with every strategy",
        key="lab3_compare",
        runner=jobs.ComparisonRunner,
        start=_start_comparison,
        help="Runs in the background: you may leave the page and come back to its result.",
    )
    job_section(jobs.ComparisonRunner.of(box), key="lab3_compare", start_key="lab3_compare", show=_show_comparison)


def _show_comparison(comparison: measure.Comparison) -> None:
    st.dataframe([run.row() for run in comparison.runs], hide_index=True, key="lab3_comparison_table")
    say(actions.comparison_check(comparison))
    for run in comparison.runs:
        with st.expander(f"{run.label}: {run.queries:,} statement(s), {len(run.shapes())} distinct shape(s)"):
            show_verdict(run.verdict)
            shapes = [{"sent": n, "statement shape": s} for n, s in run.shapes()]
            st.dataframe(shapes, hide_index=True, key=f"lab3_shapes_{run.key}")


# -- 4 · scaling -------------------------------------------------------------------------------------
def _start_scaling(runner: jobs.ScalingRunner) -> None:
    actions.start_scaling(runner, round_trip_ms=st.session_state["lab3_rtt"])


def scaling_panel(box: Sandbox) -> None:
    """The scaling job (at the round trip chosen for the comparison), then its chart and points."""
    start_button(
        st,
        "Run the scaling experiment",
        key="lab3_scale",
        runner=jobs.ScalingRunner,
        start=_start_scaling,
        help="Uses the round trip chosen in section 3. Runs in the background.",
    )
    job_section(jobs.ScalingRunner.of(box), key="lab3_scale", start_key="lab3_scale", show=_show_scaling)


def _show_scaling(result: scaling.ScalingResult) -> None:
    st.plotly_chart(charts.scaling_figure(result), key="lab3_scaling_chart", theme=None)
    st.caption(actions.scaling_caption(result))
    with st.expander("The measured points"):
        st.dataframe([p.__dict__ for p in result.points], hide_index=True, key="lab3_scaling_points")


# -- 5 · the trap and the guard ---------------------------------------------------------------------
def traps_panel() -> None:
    """Two real failures, each caught and explained under its button."""
    t1, t2 = st.columns(2)
    _refusal(
        t1,
        "Read user.scores without await",
        key="lab3_trap",
        work=actions.read_without_await,
        help="The curriculum's `u.scores`, for real.",
    )
    _refusal(t2, "Run the lazy loop under raiseload('*')", key="lab3_guard", work=actions.lazy_loop_under_raiseload)


def _refusal(
    where: Any,
    label: str,
    *,
    key: str,
    work: Callable[[], Coroutine[Any, Any, actions.Refusal]],
    help: str | None = None,
) -> None:
    """A button that triggers a real failure; under it, the exception's first line and what it means."""
    button(where, label, key=key, action=_keep(f"{key}_caught", work), help=help)  # it may refuse to try
    caught: actions.Refusal | None = kept.get(f"{key}_caught")
    if caught is not None:
        where.error(caught.headline)
        where.markdown(caught.explanation)


# -- 6 · plans -----------------------------------------------------------------------------------------
def plans_panel() -> None:
    """Each plan: whether it used the index, the statement, the plan itself."""
    button(st, "Show the query plans", key="lab3_plans", action=_keep("lab3_plans_found", actions.query_plans))
    found: actions.PlanReport | None = kept.get("lab3_plans_found")
    if found is None:
        return
    for plan in found.plans:
        st.markdown(plan.headline)
        st.code(plan.sql, language="sql", wrap_lines=True)
        st.code(plan.plan, language="text", wrap_lines=True)
    if found.note:
        st.info(found.note)
