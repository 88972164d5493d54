"""Lab 5: the transactional outbox, published for real to Redis, broken on purpose, and nothing lost."""

from __future__ import annotations

import streamlit as st

from source import web
from source.domain.events import DomainEventRepository
from source.labs.outbox import claim, control, dead_letter, publish, publisher, retention, writes
from source.labs.outbox.consumers import CLAIM_IDLE_MS, StreamConsumer
from source.labs.outbox.inbox import Inbox
from source.labs.outbox.metrics import list_events
from source.services import users
from source.services.samples import create_sample_users
from source.web.checks import knowledge_check
from source.web.widgets import whole_number_input

st.title("📬 Lab 5 · The outbox pattern")
st.markdown(
    "A score and the event that announces it are written **in one transaction**: both or neither. A publisher "
    "then claims pending events, **publishes them to Redis**, and marks them published in the same transaction as "
    "its claim. Break it below (the broker down, a crash, nobody listening) and watch that nothing is lost."
)
box = web.page_sandbox()  # this learner's sandbox, for every call below
pg = box.schema is not None


def _flash(key: str) -> None:
    if message := st.session_state.pop(key, None):
        st.success(message)


# -- 1. The write ------------------------------------------------------------------------------
st.header("1 · A business change and its event, atomically")
ok, people = web.attempt(lambda: web.run(users.list_users()))
rows = {r.id: f"{r.name} · {r.email}" for r in people or []}
if not rows:
    st.info("Your sandbox has no users yet: add the course's two sample users to score them.")
    added = st.button("Add Alex and Jane", key="lab5_samples", help="Creates the two sample users.")
    if added and web.attempt(lambda: web.run(create_sample_users()))[0]:
        st.rerun()
else:
    left, right = st.columns(2)
    user_id = left.selectbox("User", list(rows), format_func=rows.__getitem__, key="lab5_user", help="Who is scored.")
    occupation = left.text_input("Occupation code", "SW_ENG", max_chars=20, key="lab5_occupation", help="1–20 chars.")
    fail = left.checkbox(
        "Fail before COMMIT", key="lab5_fail", help="Raise after both INSERTs ran: the rollback must remove both rows."
    )
    if left.button("Calculate and store the score", key="lab5_calc", type="primary", help="Score + event, one COMMIT."):
        if fail:
            ok, rolled = web.attempt(lambda: web.run(control.record_score_expecting_rollback(str(user_id), occupation)))
            if ok and rolled is not None:
                st.error(rolled.failure, icon="💥")
                st.caption(
                    f"Counted in your sandbox before and after: scores {rolled.scores[0]} → {rolled.scores[1]}, "
                    f"events {rolled.events[0]} → {rolled.events[1]}. Both INSERTs ran; the rollback removed both."
                )
        else:
            ok, made = web.attempt(lambda: web.run(control.record_score(str(user_id), occupation)))
            if ok and made:
                st.session_state["lab5_flash_write"] = f"Score `{made[0]}` and its pending event `{made[1]}` committed."
                st.rerun()
    many = whole_number_input(
        right, "Scores at once", (1, writes.MAX_BATCH), 200, key="lab5_many_n", help="A backlog to drain."
    )
    bulk = right.button("Calculate many (one transaction)", key="lab5_many", help="N scores and N events, one COMMIT.")
    if bulk and web.attempt(lambda: web.run(writes.calculate_many_scores(str(user_id), int(many))))[0]:
        st.session_state["lab5_flash_write"] = f"{int(many)} scores and {int(many)} pending events committed."
        st.rerun()
    if right.button("Complete an assessment", key="lab5_assessment", help="Records `assessment.completed`."):
        ok, event_id = web.attempt(lambda: web.run(control.complete_sample_assessment(str(user_id))))
        if ok:
            st.session_state["lab5_flash_write"] = f"Assessment completed; event `{event_id}` is pending."
            st.rerun()
_flash("lab5_flash_write")
web.show_source(writes.calculate_and_store_airscore, DomainEventRepository.add, label="The code that wrote them")

# -- 2. Publisher and consumers -----------------------------------------------------------------
st.header("2 · The publisher and the consumers, in the background")
st.caption(
    "They run as tasks on the app's event loop, not on this page's thread: the page stays responsive and the "
    "panel below refreshes itself every second. Each claim takes at most *max events*, "
    + (
        "with `FOR UPDATE SKIP LOCKED` (several publishers skip each other's rows)."
        if pg
        else "inside `BEGIN IMMEDIATE`: SQLite has no row locks, so several publishers simply take turns."
    )
)
c1, c2, c3, c4 = st.columns(4)
max_events = whole_number_input(c1, "Max events per batch", (1, 1000), 100, key="lab5_max_events", help="1 to 1000.")
max_attempts = whole_number_input(c2, "Max attempts", (1, 20), 5, key="lab5_max_attempts", help="Then: dead letter.")
base = c3.number_input("Backoff base (s)", 0.05, 60.0, 1.0, key="lab5_backoff", help="≈ base·2^(n−1) + jitter.")
count = whole_number_input(
    c4, "Publishers", (1, 4), 1, key="lab5_publishers", help="On PostgreSQL they share the work."
)
b1, b2, b3, b4 = st.columns(4)
options = {"max_events": max_events, "max_attempts": max_attempts, "backoff_base": base}
if b1.button("▶ Start publisher", key="lab5_start", help="Refused if it is already running."):
    web.attempt(lambda: web.run(control.start_publisher(int(count), **options)))
if b2.button("⏹ Stop publisher", key="lab5_stop", help="Finishes its batch, or rolls it back."):
    ok, graceful = web.attempt(lambda: web.run(control.stop_publisher()))
    if ok:
        st.success("Stopped after finishing its batch." if graceful else "Stopped; its batch was rolled back.")
listen = b3.button("👂 Start consumers", key="lab5_listen", help="A Pub/Sub subscriber and a Stream consumer.")
if listen and web.attempt(lambda: web.run(control.start_consumers()))[0]:
    st.success("Listening: a Pub/Sub subscriber and a Stream consumer.")
unlisten = b4.button("🔇 Stop consumers", key="lab5_unlisten", help="Nobody listens any more.")
if unlisten and web.attempt(lambda: web.run(control.stop_consumers()))[0]:
    st.success("Nobody listens now: Pub/Sub messages reach no one; the Stream keeps them.")


@st.fragment(run_every="1s")
def live_panel() -> None:
    ok, status = web.attempt(lambda: web.run(control.live_status()))
    if not ok or status is None:
        return
    m = status.metrics
    total = m.pending + m.published + m.failed
    st.progress(m.published / total if total else 0.0, text=f"{m.published} of {total} events published")
    k = st.columns(6)
    k[0].metric("Pending", m.pending, help="Waiting to be published (due now or in backoff).")
    k[1].metric("Published", m.published)
    k[2].metric("Failed (dead letter)", m.failed)
    k[3].metric("Oldest pending", f"{m.oldest_pending_age_s:.1f} s" if m.oldest_pending_age_s is not None else "—")
    k[4].metric("Published/s", f"{status.rate:,.0f}", help="Measured over the last 5 s.")
    k[5].metric("Failed tries recorded", m.attempts, help="attempts on events not yet published.")
    running = f"{status.publishers} publisher(s) running" if status.publisher_running else "publisher stopped"
    listening = "consumers listening" if status.consumers_running else "nobody listening"
    broker = "🔴 broker DOWN (dead address)" if status.broker_down else "🟢 broker up"
    st.caption(
        f"{running} · {listening} · {broker} · broker failures {status.broker_failures} · "
        f"crashes {status.crashes} (restarted {status.restarts}) · published to nobody {status.unheard} · "
        f"stream length {status.stream_length}"
    )
    for problem in filter(None, (status.last_error, status.loop_error)):
        st.warning(f"Last failure: {problem}")
    st.markdown(
        f"**Consumer's effect** (applied once per event id): `{status.effects or {}}` · "
        f"deliveries: `{status.feed_counts or {}}`"
    )
    if status.feed:
        st.dataframe(
            [
                {
                    "via": d.via,
                    "type": d.event_type,
                    "event": d.event_id[:8],
                    "aggregate": d.aggregate_id[:8],
                    "sequence": d.sequence,
                    "outcome": d.outcome,
                    "at": d.at.strftime("%H:%M:%S.%f")[:-3],
                }
                for d in status.feed
            ],
            hide_index=True,
            key="lab5_feed",
        )


live_panel()
web.show_source(
    publisher.OutboxPublisher.publish_batch,
    claim.claim_statement,
    claim.oldest_pending_of_aggregate,
    publish.send,
    claim.record_failure,
    label="The publisher's code that ran",
)
st.caption(
    "**Per-aggregate order**: only the *oldest pending* event of an aggregate is claimable (the correlated "
    "subquery above). The next one of the same aggregate waits until it is published, even with several "
    "publishers, and even while the first one waits for its backoff. A dead-lettered event steps out of the line."
)


# -- 3. Faults ---------------------------------------------------------------------------------
def _broker_switched() -> None:
    web.attempt(lambda: web.run(control.set_broker_down(bool(st.session_state.lab5_broker_down))))


st.header("3 · Break it")
f1, f2 = st.columns(2)
f1.toggle(
    "Broker down",
    key="lab5_broker_down",
    help="Route the publisher to an address where nothing listens (the real Redis is untouched).",
    on_change=_broker_switched,
)
f1.caption(
    "Events stay pending; attempts climb with backoff (tenacity's exponential + jitter), then they drain "
    "when the broker is back, or land in the dead letter after *max attempts*."
)
if f1.button("Crash after publish, before mark", key="lab5_crash", help="The next batch is published, not marked."):
    ok, armed = web.attempt(lambda: web.run(control.crash_next_batch()))
    if ok and armed is not None:
        crashes, running = armed
        where = "the running publisher" if running else "the publisher (start it to see it happen)"
        f1.info(f"Armed: {crashes} batch(es) of {where} will be published but not marked.")
f1.caption(
    "Delivery is **at-least-once**: the crashed batch is published again, and the consumer's inbox "
    "ignores the duplicate (its effect count does not move)."
)
if f2.button("Consumer dies before XACK", key="lab5_consumer_crash", help="Its entries stay pending in the group."):
    web.attempt(lambda: web.run(control.crash_consumer_before_ack()))
f2.caption(
    f"A successor takes the dead consumer's entries over with `XAUTOCLAIM` after {CLAIM_IDLE_MS / 1000:g} s idle."
)
if f2.button("Publish with nobody listening", key="lab5_nobody", help="Stop the consumers and the publisher first."):
    ok, report = web.attempt(lambda: web.run(control.publish_with_nobody_listening()))
    if ok and report:
        f2.info(
            f"`PUBLISH` reached **{report.subscribers_reached}** subscribers: Pub/Sub dropped it. The Stream "
            f"{'**kept** it' if report.in_stream else 'lost it'} ({report.stream_length} entries): start the "
            "consumers and the stream consumer reads it."
        )
web.show_source(Inbox.apply_once, StreamConsumer.take_over, label="The consumer's code: inbox and takeover")

# -- 4. The table ------------------------------------------------------------------------------
st.header("4 · The outbox table")
tabs = st.tabs(["Pending", "Published", "Failed"])
for tab, status_name in zip(tabs, ("pending", "published", "failed"), strict=True):
    ok, listed = web.attempt(lambda name=status_name: web.run(list_events(name, 50)), where=tab)  # type: ignore[misc]
    if ok and listed is not None:
        tab.dataframe([r.model_dump(exclude={"payload"}) for r in listed], hide_index=True, key=f"lab5_{status_name}")
        tab.caption(f"Up to 50 rows, {'next to go first' if status_name == 'pending' else 'newest first'}.")
r1, r2 = st.columns(2)
event_id = r1.text_input("Failed event id", key="lab5_requeue_id", max_chars=64, help="From the Failed tab.")
requeue = r1.button("Requeue it", key="lab5_requeue", help="Back to pending with fresh attempts.")
if requeue and web.attempt(lambda: web.run(dead_letter.requeue(event_id or "")))[0]:
    st.success(f"Requeued `{event_id.strip()}`.")
if r1.button("Requeue all failed", key="lab5_requeue_all", help="One UPDATE."):
    ok, n = web.attempt(lambda: web.run(dead_letter.requeue_all_failed()))
    if ok:
        st.success(f"{n} event(s) back in the queue.")
keep = whole_number_input(
    r2,
    "Keep published events for (s)",
    (0, retention.MAX_RETENTION_S),
    60,
    key="lab5_retention",
    help="0 s to 30 days. Pending and failed events are never cleaned up.",
)
if r2.button("Clean up published events", key="lab5_cleanup", help="One DELETE of published rows older than that."):
    ok, n = web.attempt(lambda: web.run(retention.cleanup_published(keep)))
    if ok:
        st.success(f"Deleted {n} published event(s) older than {keep} s.")
web.show_source(dead_letter.requeue, retention.cleanup_published, label="The code behind requeue and clean-up")
knowledge_check("lab5")
