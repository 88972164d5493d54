"""Lab 4's panels: every button runs one of the lab's actions in its callback, long work runs as a job.

Streamlit only: what each action decides (the sentence, whether it is a success or a warning)
comes from :mod:`source.labs.caching.actions`; the strategy run and the stampede are jobs of
the learner's sandbox (:mod:`source.labs.caching.jobs`), so leaving the page never stops them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import streamlit as st

from source import web
from source.domain.dtos import UserRow
from source.labs.caching import actions, charts, jobs
from source.labs.caching.stampede import MAX_STAMPEDE, StampedeResult
from source.labs.caching.strategies import MAX_KEYS, MAX_OPERATIONS, STRATEGIES, StrategyRun
from source.platform.outcome import Outcome
from source.platform.sandbox import Sandbox
from source.web.actions import act, button, say, show_outcome
from source.web.checks import check_key
from source.web.confirm import confirmed_button
from source.web.jobs import job_section, start_button
from source.web.seats import fragment, redraw
from source.web.widgets import whole_number_input

#: The session's read log: the newest reads first, this many kept, the first few shown.
LOG_KEY, LOG_KEPT, LOG_SHOWN = "lab4_log", 50, 12
#: The panels a read or an invalidation changes, by fragment key: the read panel itself (its outcome and
#: the log), the TTL bars (section 2), the hit ratio and the formula (section 4), the cache's state (section 6).
READ_CHANGES = ("lab4_read", "lab4_keys", "lab4_counts", "lab4_cache_state")


def _act(outcome_key: str, action: Callable[[], str | Outcome | None]) -> None:
    """:func:`~source.web.actions.act` as a widget's callback (Streamlit's callbacks return nothing)."""
    act(outcome_key, action)


def user_picker() -> UserRow:
    """The sample users' button and the user every section acts on; the page stops while there is none."""
    button(
        st,
        "Add Alex and Jane with a score each",
        key="lab4_samples",
        help="The course's sample users.",
        action=lambda: web.run(actions.add_samples()).outcome(),
    )
    _, listed = web.attempt(lambda: web.run(actions.lab_users()))
    rows = {r.id: r for r in listed or []}
    if not rows:
        st.info(web.no_users_yet("add the samples above, or create users in Lab 1"))
        st.stop()
    uid = st.selectbox("User", list(rows), format_func=lambda i: f"{rows[i].name} · {rows[i].email}", key="lab4_user")
    return rows[str(uid)]


def settings_panel(box: Sandbox) -> None:
    """TTLs, stampede protection and early refresh; Apply keeps the settings the form does not show."""
    current = actions.current_settings(box)
    with st.expander("Cache settings (TTLs, stampede protection, early refresh)"):
        with st.form("lab4_settings"):
            c = st.columns(2)
            c[0].number_input("User TTL (s)", value=current.user_ttl_s, step=1.0, key="lab4_user_ttl")
            c[1].number_input("Latest-score TTL (s)", value=current.score_ttl_s, step=1.0, key="lab4_score_ttl")
            st.checkbox("Stampede protection", current.stampede_protection, key="lab4_protect_default")
            st.checkbox(
                "Early refresh (reload a key in the background before it expires)",
                current.early_refresh,
                key="lab4_early",
            )
            st.form_submit_button("Apply", key="lab4_apply", on_click=_act, args=("lab4_apply_outcome", _apply))
        show_outcome("lab4_apply_outcome")


def _apply() -> Outcome:
    state = st.session_state
    return web.run(
        actions.apply_settings(
            user_ttl_s=state["lab4_user_ttl"],
            score_ttl_s=state["lab4_score_ttl"],
            stampede_protection=state["lab4_protect_default"],
            early_refresh=state["lab4_early"],
        )
    )


def _read(action: Callable[[], str | Outcome | None], *, measured: bool) -> None:
    """A read's or an invalidation's callback: the action, then only the panels it changed are drawn again.

    A read is recorded for the knowledge check (``measured``), so its questions are drawn again too.
    """
    act("lab4_read", action)
    redraw(*READ_CHANGES, *((check_key("lab4"),) if measured else ()))


@fragment(key="lab4_read")
def read_panel(user: UserRow) -> None:
    """Fetch the user or their latest score through the cache, invalidate, and the session's read log.

    A fragment: a click here redraws it and the panels the read changed (:data:`READ_CHANGES`), not the page.
    """
    b = st.columns(3)
    b[0].button(
        "Fetch user (cached)",
        key="lab4_fetch_user",
        help="Read the user through the cache: Redis first, the database on a miss.",
        on_click=_read,
        args=(lambda: _fetch("fetch user", actions.fetch_user, user.id),),
        kwargs={"measured": True},
    )
    b[1].button(
        "Fetch latest score",
        key="lab4_fetch_score",
        help="Read the user's newest AI-R score through the cache.",
        on_click=_read,
        args=(lambda: _fetch("fetch latest score", actions.fetch_latest_score, user.id),),
        kwargs={"measured": True},
    )
    b[2].button(
        "Invalidate user",
        key="lab4_invalidate",
        help="Delete this user's two cached keys (profile and latest score).",
        on_click=_read,
        args=(lambda: web.run(actions.invalidate(user.id)),),
        kwargs={"measured": False},
    )
    show_outcome("lab4_read")
    if log := st.session_state.get(LOG_KEY):
        st.dataframe(log[:LOG_SHOWN], hide_index=True, key="lab4_log_table")


def _fetch(action: str, read: Callable[[str], Coroutine[Any, Any, actions.Fetched[Any]]], user_id: str) -> Outcome:
    fetched = web.run(read(user_id))
    log: list[dict[str, object]] = st.session_state.setdefault(LOG_KEY, [])
    log.insert(0, fetched.row(action))
    del log[LOG_KEPT:]  # a session keeps the newest reads
    return fetched.outcome(action)


def ttl_panel(user_id: str) -> None:
    """Cache the user with a short TTL, then both keys' remaining TTL, redrawn every second while Live is on."""
    c = st.columns(2)
    c[0].button(
        f"Cache for {actions.DEMO_TTL_S:g} s and watch",
        key="lab4_ttl_demo",
        help="Writes both keys with a short TTL and turns Live on: the bars reach zero, then a fetch is a miss.",
        on_click=_act,
        args=("lab4_ttl_outcome", lambda: _watch(user_id)),
    )
    live = c[1].toggle("Live: refresh every second", key="lab4_live")
    show_outcome("lab4_ttl_outcome")
    fragment(run_every=1.0 if live else None, key="lab4_keys")(_key_bars)(user_id)


def _watch(user_id: str) -> Outcome:
    done = web.run(actions.watch_ttl(user_id))
    st.session_state["lab4_live"] = True  # a callback runs before the toggle is drawn: it is drawn on
    return done


def _key_bars(user_id: str) -> None:
    _, states = web.attempt(lambda: web.run(actions.key_states(user_id)))
    for state in states or []:
        st.progress(state.fraction, text=state.describe())


def writes_panel(user: UserRow) -> None:
    """The write paths: save with and without invalidation, a new score, delete."""
    w = st.columns(3)
    w[0].text_input("New name", value=user.name, max_chars=255, key="lab4_new_name")
    button(
        w[0],
        "Save (update_user)",
        key="lab4_save_name",
        help="Lab 1's update_user: UPDATE, commit, then delete the keys.",
        action=lambda: web.run(actions.save_name(user.id, st.session_state["lab4_new_name"])),
    )
    button(
        w[0],
        "Save, no DEL (bug)",
        key="lab4_stale_write",
        help="The classic bug, on purpose: UPDATE and commit, and forget the cache.",
        action=lambda: web.run(actions.rename_without_invalidating(user.id, st.session_state["lab4_new_name"])),
    )
    w[1].number_input("New AI-R score", 0.0, 100.0, 80.0, step=0.5, format="%.1f", key="lab4_new_score")
    button(
        w[1],
        "Add score",
        key="lab4_add_score",
        help="INSERT, commit, then delete the cached latest score.",
        action=lambda: web.run(actions.add_score(user.id, float(st.session_state["lab4_new_score"]))),
    )
    confirmed_button(
        w[2],
        "Delete user",
        key="lab4_delete",
        question=f"Delete `{user.email}` and all their assessments and scores? This cannot be undone.",
        yes="Yes, delete",
        action=lambda: _delete(user.id),
        help="Lab 1's delete_user: asks first, then DELETE with cascade, commit, and the cached keys dropped.",
        about=user.id,
    )


def _delete(user_id: str) -> Outcome:
    done = web.run(actions.delete_user(user_id))
    st.session_state.pop("lab4_user", None)  # the picker moves on to a user who still exists
    return done


@fragment(key="lab4_counts")
def counts_panel() -> None:
    """The window of reads as tiles, the T_avg formula filled in from the same reads, Redis's own counts, a reset.

    A fragment, drawn again by a read in section 1; a reset redraws it alone.
    """
    _, status = web.attempt(lambda: web.run(actions.status()))
    if status is None:
        return
    st.markdown(status.window_note())
    for col, (label, value) in zip(st.columns(6), status.window.tiles(), strict=True):
        col.metric(label, value)
    st.caption(status.counts.note())
    st.latex(r"T_{avg} = H \cdot T_{cache} + (1-H)\cdot(T_{cache} + T_{db})")
    if status.formula is not None:
        st.latex(status.formula.filled_in())
        st.markdown(status.formula.measured())
    button(st, "Reset the counters", key="lab4_reset_counts", action=lambda: web.run(actions.reset_counts()))


def stampede_panel(box: Sandbox, user_id: str) -> None:
    """N concurrent cold readers of one key, as a job; the database reads of the last few runs, charted."""
    s = st.columns(3)
    whole_number_input(s[0], "Concurrent readers", (1, MAX_STAMPEDE), 50, key="lab4_readers")
    s[1].toggle("Stampede protection", True, key="lab4_protection")
    start_button(
        s[2],
        "Fire the readers",
        key="lab4_stampede",
        runner=jobs.StampedeRunner,
        start=lambda runner: runner.start(
            user_id, round(st.session_state["lab4_readers"]), bool(st.session_state["lab4_protection"])
        ),
        help="Deletes the key, then every reader reads it at once.",
    )
    runner = jobs.StampedeRunner.of(box)

    def show(result: StampedeResult) -> None:
        say(result.outcome())
        st.plotly_chart(charts.stampede_figure(runner.history), key="lab4_stampede_chart")

    job_section(runner, key="lab4_stampede_job", start_key="lab4_stampede", show=show)


def outage_panel(box: Sandbox) -> None:
    """The learner's own switch: their cache's Redis available, refusing, or silent."""
    labels = list(actions.OUTAGES)
    st.radio(
        "Your cache's Redis",
        labels,
        index=labels.index(actions.outage_choice(box)),
        horizontal=True,
        key="lab4_outage",
        on_change=_act,
        args=("lab4_outage_outcome", lambda: web.run(actions.set_outage_mode(st.session_state["lab4_outage"]))),
    )
    show_outcome("lab4_outage_outcome")
    cache_state()


@fragment(key="lab4_cache_state")
def cache_state() -> None:
    """Whether the cache is bypassed, the invalidations Redis has not taken yet, and the cache's time limits.

    A fragment: a read in section 1 may open the breaker or leave an invalidation pending, and redraws it.
    """
    _, now = web.attempt(lambda: web.run(actions.status()))
    if now is None:
        return
    if note := now.bypassed():
        st.warning(note)
    elif pending := now.pending():
        st.warning(pending)
    st.caption(now.timings())


def strategies_panel(box: Sandbox) -> None:
    """The workload's form and the strategy run as a job: live progress with Stop, then the table and charts."""
    with st.form("lab4_strategy_form"):
        f = st.columns(6)
        whole_number_input(f[0], "Operations", (10, MAX_OPERATIONS), 600, step=100, key="lab4_ops")
        whole_number_input(f[1], "Keys", (1, MAX_KEYS), 20, key="lab4_keys")
        f[2].number_input("Share of reads", 0.0, 1.0, 0.9, step=0.05, key="lab4_read_share")
        f[3].number_input("Zipf skew s", 0.0, 3.0, 1.0, step=0.1, key="lab4_skew")
        whole_number_input(f[4], "TTL (ms)", (10, 60_000), 300, step=50, key="lab4_ttl_ms")
        whole_number_input(f[5], "Seed", (0, 10_000), 7, key="lab4_seed")
        st.multiselect("Strategies", STRATEGIES, STRATEGIES, key="lab4_strategies")
        start_button(
            st,
            "Run the workload",
            key="lab4_run_strategies",
            runner=jobs.StrategyRunner,
            start=_start_strategies,
            form=True,
            help="Runs in the background of your sandbox: you may leave this page and come back to its result.",
        )
    job_section(
        jobs.StrategyRunner.of(box), key="lab4_strategy_job", start_key="lab4_run_strategies", show=_show_strategies
    )


def _start_strategies(runner: jobs.StrategyRunner) -> None:
    state = st.session_state
    runner.start(
        state["lab4_strategies"],
        operations=round(state["lab4_ops"]),
        keys=round(state["lab4_keys"]),
        read_share=state["lab4_read_share"],
        skew=state["lab4_skew"],
        ttl_ms=round(state["lab4_ttl_ms"]),
        seed=round(state["lab4_seed"]),
    )


def _show_strategies(run: StrategyRun) -> None:
    st.dataframe([r.row() for r in run.results], hide_index=True, key="lab4_strategy_table")
    st.plotly_chart(charts.strategies_figure(run), key="lab4_strategy_chart")
    st.caption(
        "One client runs the operations in order. A stale read returned an older version than the database "
        "held when the read began; write-behind can also serve reads ahead of the database. An operation Redis "
        "failed got no answer within the cache's time limit and used the database instead; under write-behind "
        "that can cache a row the flusher has not updated yet, and stale reads follow."
    )


def structures_panel(user_id: str) -> None:
    """Build the six structures from the learner's data; each in a tab with the commands that built it."""
    button(st, "Build them from my data", key="lab4_structures", action=lambda: _build(user_id))
    built = st.session_state.get("lab4_built")
    if not built:
        return
    for tab, item in zip(st.tabs([f"{x.kind} · {x.key}" for x in built]), built, strict=True):
        tab.code("\n".join(item.commands), language="bash")
        tab.write(item.contents)
        tab.caption(f"When to choose a {item.kind}: {item.when}")


def _build(user_id: str) -> None:
    st.session_state["lab4_built"] = web.run(actions.build_structures(user_id))
