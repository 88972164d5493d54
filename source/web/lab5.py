"""Lab 5's panels: the write, the publisher and the consumers with their live panel, the faults, the outbox table.

Every button runs its action (``source/labs/outbox/actions.py``) in its callback and shows
what it reported right under it; the live panel redraws itself every second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from source import web
from source.labs.outbox import actions, consumers, history, retention, writes
from source.labs.outbox.jobs import MAX_PUBLISHERS
from source.labs.outbox.metrics import STATUSES
from source.platform.outcome import Outcome
from source.platform.sandbox import Sandbox
from source.web.actions import act, button, say, show_outcome
from source.web.checks import check_key
from source.web.confirm import confirmed_button
from source.web.fragments import alone_in_run, in_fragment_run
from source.web.seats import fragment, redraw
from source.web.widgets import whole_number_input

#: How many rows each of the outbox's tabs shows.
TABLE_ROWS = 50
#: The panels a write changes, by fragment key: the write panel itself, the live panel's counts (section 2)
#: and the outbox table (section 4). The knowledge check changes when the drain that follows is recorded:
#: the live panel redraws it then (:func:`live_panel`).
WRITE_CHANGES = ("lab5_write", "lab5_live", "lab5_tables")
#: Session-state key: the drains recorded when the knowledge check was last drawn with the live panel.
DRAINS_SEEN = "lab5_drains_seen"


def _state(key: str) -> Any:
    return st.session_state[key]


# -- 1. The write ---------------------------------------------------------------------------------
@fragment(key="lab5_write")
def write_panel() -> None:
    """Pick a user and write a score with its event (or many, or an assessment); without users, add the samples.

    A fragment: a write redraws it and the panels the write changed (:data:`WRITE_CHANGES`), not the page.
    """
    show_outcome("lab5_samples_outcome")
    ok, people = web.attempt(lambda: web.run(actions.users_to_score()))
    if not ok or people is None:
        return
    if not people:
        st.info(web.no_users_yet("add the course's two sample users to score them"))
        button(
            st,
            "Add Alex and Jane",
            key="lab5_samples",
            action=lambda: web.run(actions.add_samples()),
            help="Creates the two sample users.",
        )
        return
    left, right = st.columns(2)
    left.selectbox("User", list(people), format_func=people.__getitem__, key="lab5_user", help="Who is scored.")
    left.text_input("Occupation code", "SW_ENG", max_chars=20, key="lab5_occupation", help="1–20 chars.")
    left.checkbox(
        "Fail before COMMIT", key="lab5_fail", help="Raise after both INSERTs ran: the rollback must remove both rows."
    )
    button(
        left,
        "Calculate and store the score",
        key="lab5_calc",
        action=_record_score,
        redraws=WRITE_CHANGES,
        type="primary",
        help="Score + event, one COMMIT.",
    )
    whole_number_input(
        right, "Scores at once", (1, writes.MAX_BATCH), 200, key="lab5_many_n", help="A backlog to drain."
    )
    button(
        right,
        "Calculate many (one transaction)",
        key="lab5_many",
        action=lambda: web.run(actions.calculate_many(str(_state("lab5_user")), round(_state("lab5_many_n")))),
        redraws=WRITE_CHANGES,
        help="N scores and N events, one COMMIT.",
    )
    button(
        right,
        "Complete an assessment",
        key="lab5_assessment",
        action=lambda: web.run(actions.complete_sample_assessment(str(_state("lab5_user")))),
        redraws=WRITE_CHANGES,
        help="Records `assessment.completed`.",
    )


def _record_score() -> Outcome:
    user_id, occupation, fail = str(_state("lab5_user")), _state("lab5_occupation"), bool(_state("lab5_fail"))
    return web.run(actions.record_score(user_id, occupation, fail_before_commit=fail))


# -- 2. Publisher and consumers ---------------------------------------------------------------------
def publisher_panel() -> None:
    """The publisher's knobs, and Start/Stop for the publisher and for the consumers."""
    # Two knobs a row, so each label reads whole on a projector at 1024 px; the detail is in the help.
    c = [*st.columns(2), *st.columns(2)]
    whole_number_input(
        c[0], "Batch size", (1, 1000), 100, key="lab5_max_events", help="Max events per claim, 1 to 1000."
    )
    whole_number_input(
        c[1], "Max attempts", (1, 20), 5, key="lab5_max_attempts", help="Own failures before the dead letter, 1 to 20."
    )
    c[2].number_input(
        "Backoff base (s)", 0.05, 60.0, 1.0, key="lab5_backoff", help="Wait before try n: ≈ base·2^(n−1) + jitter."
    )
    whole_number_input(
        c[3], "Publishers", (1, MAX_PUBLISHERS), 1, key="lab5_publishers", help="On PostgreSQL they share the work."
    )
    publishing, consuming = st.columns(2)
    button(
        publishing,
        "▶ Start publisher",
        key="lab5_start",
        action=_start_publisher,
        help="Refused if it is already running.",
        use_container_width=True,
    )
    button(
        publishing,
        "⏹ Stop publisher",
        key="lab5_stop",
        action=lambda: web.run(actions.stop_publisher()),
        help="Finishes its batch, or rolls it back.",
        use_container_width=True,
    )
    button(
        consuming,
        "👂 Start consumers",
        key="lab5_listen",
        action=lambda: web.run(actions.start_consumers()),
        help="A Pub/Sub subscriber and a Stream consumer; they reconnect when Redis goes away.",
        use_container_width=True,
    )
    button(
        consuming,
        "🔇 Stop consumers",
        key="lab5_unlisten",
        action=lambda: web.run(actions.stop_consumers()),
        help="Nobody listens any more.",
        use_container_width=True,
    )


def _start_publisher() -> str:
    options = {
        "max_events": round(_state("lab5_max_events")),
        "max_attempts": round(_state("lab5_max_attempts")),
        "backoff_base": float(_state("lab5_backoff")),
    }
    return web.run(actions.start_publisher(round(_state("lab5_publishers")), **options))


@fragment(run_every="1s", key="lab5_live")
def live_panel() -> None:
    """The outbox's counts, the broker's and the consumers' state and the last deliveries, redrawn every second."""
    ok, status = web.attempt(lambda: web.run(actions.live_status()))
    if not ok or status is None:
        return
    _follow_drains(status.drains_recorded)
    m = status.metrics
    total = m.pending + m.published + m.failed + m.skipped
    st.progress(m.published / total if total else 0.0, text=f"{m.published} of {total} events published")
    # Three figures a row: the outbox's counts, then what is waiting and why, then the flow.
    c = [*st.columns(3), *st.columns(3), *st.columns(3)]
    c[0].metric("Pending", m.pending, help="Waiting to be published: due now, in backoff, or behind a dead letter.")
    c[1].metric("Published", m.published)
    c[2].metric("Dead letters", m.failed, help="Failed by their own fault (refused, not encodable) max-attempts times.")
    c[3].metric("Oldest wait", _age(m.oldest_pending_age_s), help="How long the oldest pending event has waited.")
    c[4].metric("Held back", m.behind_dead_letter, help="Pending events waiting behind a dead letter.")
    c[5].metric("Failed tries", m.attempts, help="Tries spent by events not yet published: outages spend none.")
    c[6].metric("Per second", f"{status.rate:,.0f}", help="Events published over the last 5 seconds, ÷ 5.")
    c[7].metric("Copies ignored", status.duplicates_ignored, help="Duplicates the consumer's inbox dropped.")
    c[8].metric("Reconnections", status.reconnections, help="Times the consumers connected to Redis again.")
    st.caption(status.summary())
    for notice in status.notices():
        say(notice)
    st.markdown(
        f"**Consumer's effect** (applied once per event id): `{status.effects or {}}` · "
        f"deliveries: `{status.feed_counts or {}}`"
    )
    if status.feed:
        st.dataframe(status.feed_rows(), hide_index=True, key="lab5_feed")


def _follow_drains(recorded: int) -> None:
    """A drain recorded since the knowledge check was drawn: on the timer's rerun, redraw it with this panel.

    Its numbers (the publisher's rate) come from the last drain, which the publisher records after the
    write's click has been drawn. A whole page draws the check anyway; a click that reruns several panels
    leaves the count for the next tick, so that none of them is cut short.
    """
    whole_page, alone = not in_fragment_run(), alone_in_run()
    if not (whole_page or alone):
        return
    seen = st.session_state.get(DRAINS_SEEN)
    st.session_state[DRAINS_SEEN] = recorded
    if alone and seen is not None and recorded != seen:
        redraw("lab5_live", check_key("lab5"))


def _age(seconds: float | None) -> str:
    return f"{seconds:,.1f} s" if seconds is not None else "—"


# -- 3. Faults ------------------------------------------------------------------------------------
def faults_panel(box: Sandbox) -> None:
    """The broker down (a toggle that follows the real state), a lost reply, a poisoned event, a crash before the
    mark, a consumer's death, nobody listening, and Redis restarting without persistence."""
    f1, f2 = st.columns(2)
    st.session_state["lab5_broker_down"] = actions.broker_is_down(box)  # a preset or another tab may have flipped it
    f1.toggle(
        "Broker down",
        key="lab5_broker_down",
        help="Route the publisher to an address where nothing listens (the real Redis is untouched).",
        on_change=_switch_broker,
    )
    show_outcome("lab5_broker_down_outcome", f1)
    f1.caption(
        "An outage is nobody's fault in the batch: the breaker opens, the events stay pending **without spending a "
        "try**, and the publisher probes the broker with a growing pause (tenacity's exponential + jitter). When it "
        "answers, they drain in order."
    )
    for column, faults in zip((f1, f2), fault_buttons(), strict=True):
        for fault in faults:
            button(column, fault.label, key=fault.key, action=fault.action, help=fault.help)
            if fault.note:
                column.caption(fault.note)


@dataclass(frozen=True)
class FaultButton:
    """One fault's button: its label, widget key, action and help, and what to watch for once it is pressed."""

    label: str
    key: str
    action: Callable[[], Outcome]
    help: str
    note: str | None = None


def fault_buttons() -> tuple[tuple[FaultButton, ...], tuple[FaultButton, ...]]:
    """The fault buttons, column by column (under the Broker down toggle, then beside it), as of this drawing:
    a note states the setting the code uses now (the consumers' idle time before a takeover)."""
    return (
        (
            FaultButton(
                "Lose the next reply",
                "lab5_lost_reply",
                lambda: web.run(actions.lose_next_reply()),
                "The batch is delivered; its answer never comes (as from a frozen Redis).",
                "An unknown outcome is published again, never dead-lettered: the inbox drops the copies by event id.",
            ),
            FaultButton(
                "Poison an event",
                "lab5_poison",
                lambda: web.run(actions.poison_event(_state_or_none("lab5_user"))),
                "Three events of one pathway; the broker refuses the first one's message.",
                "Tries are for what is the event's own fault: it goes to the dead letter after *Max attempts* of them, "
                "and the later events of its aggregate wait behind it until you requeue or skip it (section 4).",
            ),
            FaultButton(
                "Crash after publish, before mark",
                "lab5_crash",
                lambda: web.run(actions.crash_next_batch()),
                "The next batch is published, not marked.",
                "Delivery is **at-least-once**: the crashed batch is published again, and the consumer's inbox "
                "ignores the duplicate (its effect count does not move).",
            ),
        ),
        (
            FaultButton(
                "Consumer dies before XACK",
                "lab5_consumer_crash",
                lambda: web.run(actions.crash_consumer_before_ack()),
                "Its entries stay pending in the group.",
                f"A successor takes the dead consumer's entries over with `XAUTOCLAIM` after "
                f"{consumers.CLAIM_IDLE_MS / 1000:g} s idle.",
            ),
            FaultButton(
                "Publish with nobody listening",
                "lab5_nobody",
                lambda: web.run(actions.publish_with_nobody_listening()),
                "Stop the consumers and the publisher first.",
            ),
            FaultButton(
                "Redis restarts without persistence",
                "lab5_redis_restart",
                lambda: web.run(actions.restart_redis_without_persistence()),
                "Your stream and its group are lost (the shared Redis is untouched); the consumers reconnect.",
                "What a Redis that keeps nothing on disk loses when it restarts, counted: the stream's entries no "
                "consumer had read yet. The consumers reconnect with backoff and create their group again.",
            ),
        ),
    )


def _switch_broker() -> None:
    act("lab5_broker_down_outcome", lambda: web.run(actions.set_broker_down(bool(_state("lab5_broker_down")))))


def _state_or_none(key: str) -> str | None:
    value = st.session_state.get(key)
    return None if value is None else str(value)


# -- 4. The table ---------------------------------------------------------------------------------
@fragment(key="lab5_tables")
def tables_panel() -> None:
    """The outbox's rows by status, then requeue or skip one (or requeue all failed), and the clean-up.

    A fragment, drawn again by a write in section 1. Its own buttons redraw it and the live panel
    (whose counts they move); the clean-up and a skip, asked first, redraw it alone, and the live
    panel follows within its second.
    """
    for tab, status in zip(st.tabs([s.capitalize() for s in STATUSES]), STATUSES, strict=True):
        _event_tab(tab, status)
    r1, r2 = st.columns(2)
    r1.text_input("Failed event id", key="lab5_requeue_id", max_chars=64, help="From the Failed tab.")
    button(
        r1,
        "Requeue it",
        key="lab5_requeue",
        action=lambda: web.run(actions.requeue(_state("lab5_requeue_id"))),
        redraws=("lab5_tables", "lab5_live"),
        help="Back to pending with fresh attempts, in its place: it goes before the later events of its aggregate.",
    )
    confirmed_button(
        r1,
        "Skip it",
        key="lab5_skip",
        question="Skip this dead letter for good? It will never be published; the events behind it go now.",
        yes="Yes, skip it",
        action=lambda: web.run(actions.skip(_state("lab5_requeue_id"))),
        help="Asks first. The events of its aggregate waiting behind it are published.",
        about=str(st.session_state.get("lab5_requeue_id") or ""),
    )
    button(
        r1,
        "Requeue all failed",
        key="lab5_requeue_all",
        action=lambda: web.run(actions.requeue_all()),
        redraws=("lab5_tables", "lab5_live"),
        help="One UPDATE.",
    )
    whole_number_input(
        r2,
        "Keep published events for (s)",
        (0, retention.MAX_RETENTION_S),
        60,
        key="lab5_retention",
        help="0 s to 30 days. Pending and failed events are never cleaned up.",
    )
    confirmed_button(
        r2,
        "Clean up published events",
        key="lab5_cleanup",
        question="Delete the published events older than that? Pending and failed ones stay; this cannot be undone.",
        yes="Yes, clean up",
        action=lambda: web.run(actions.clean_up(round(_state("lab5_retention")))),
        help="Asks first, then one DELETE of published rows older than that.",
    )


def _event_tab(tab: Any, status: str) -> None:
    ok, rows = web.attempt(lambda: web.run(actions.event_table(status, TABLE_ROWS)), where=tab)
    if ok and rows is not None:
        tab.dataframe(rows, hide_index=True, key=f"lab5_{status}")
        tab.caption(f"Up to {TABLE_ROWS} rows, {'next to go first' if status == 'pending' else 'newest first'}.")


# -- 5. History ----------------------------------------------------------------------------------
def history_panel(box: Sandbox) -> None:
    """Explain the claim; add drained history; explain again: the last plans side by side."""
    left, right = st.columns(2)
    button(
        left,
        "Explain the claim",
        key="lab5_explain",
        action=_explain,
        help="Runs the claim under EXPLAIN, in a transaction rolled back.",
    )
    whole_number_input(
        right, "Events of history", (1, history.MAX_HISTORY), 20_000, key="lab5_history_n", help="Up to 20,000."
    )
    button(
        right,
        "Add drained history",
        key="lab5_history",
        action=lambda: web.run(actions.add_history(round(_state("lab5_history_n")))),
        help="Written pending, then marked published in batches of 500, as a drain leaves them.",
    )
    plans = actions.claim_plans(box)
    for where, plan in zip(st.columns(max(1, len(plans))), plans, strict=False):
        where.markdown(f"**{plan.at.astimezone():%H:%M:%S}** · {plan.headline()}")
        where.code(plan.plan, language="text", wrap_lines=True)  # wrapped: a projector shows it whole


def _explain() -> None:
    web.run(actions.explain_claim())  # kept with the sandbox's last plans, which the panel draws
