"""Lab 5: the transactional outbox, published for real to Redis, broken on purpose, and nothing lost."""

from __future__ import annotations

import streamlit as st

from source import web
from source.domain.events import DomainEventRepository
from source.labs.outbox import actions, claim, dead_letter, history, jobs, publish, publisher, retention, writes
from source.labs.outbox.breaker import BrokerBreaker
from source.labs.outbox.consumers import StreamConsumer, stay_connected
from source.labs.outbox.inbox import Inbox
from source.web import lab5
from source.web.checks import knowledge_check

st.title("📬 Lab 5 · The outbox pattern")
st.markdown(
    "A score and the event that announces it are written **in one transaction**: both or neither. A publisher "
    "then claims pending events, **publishes them to Redis**, and marks them published in the same transaction as "
    "its claim. Break it below (the broker down, a lost reply, a poisoned event, a crash, nobody listening, Redis "
    "restarting) and watch that nothing is lost and every aggregate's events arrive in order."
)
box = web.page_sandbox()  # this learner's sandbox, for every call below

# -- 1. The write ------------------------------------------------------------------------------
st.header("1 · A business change and its event, atomically")
lab5.write_panel()
web.show_source(
    actions.record_score,
    writes.calculate_and_store_airscore,
    DomainEventRepository.add,
    label="The code that wrote them",
)

# -- 2. Publisher and consumers -----------------------------------------------------------------
st.header("2 · The publisher and the consumers, in the background")
st.caption(
    "They run as background jobs of your sandbox on the app's event loop, not on this page's thread: the page "
    "stays responsive, they keep running while you visit another lab, and the panel below refreshes itself every "
    "second. **Stop** lets the batch in flight finish (published and marked); past a few seconds it is cancelled "
    "and its transaction rolls back. Each claim takes at most *Batch size* events, "
    + (
        "with `FOR UPDATE SKIP LOCKED` (several publishers skip each other's rows)."
        if box.dialect == "postgresql"
        else "inside `BEGIN IMMEDIATE`: SQLite has no row locks, so several publishers simply take turns."
    )
)
lab5.publisher_panel()
lab5.live_panel()
web.show_source(
    jobs.publish_loop,
    publisher.OutboxPublisher.publish_batch,
    publisher.OutboxPublisher._claim_publish_mark,
    claim.claim_statement,
    claim.an_older_event_waits,
    claim.lease_for,
    publish.send,
    claim.record_failure,
    label="The publisher's code that ran",
)
st.caption(
    "**Per-aggregate order**: only the *oldest event of its aggregate not yet out* is claimable (the subquery "
    "above). The next one of the same aggregate waits until it is published, with several publishers, "
    "across a crash, while the first one waits for its backoff, and while it waits in the dead letter."
)
web.show_source(
    BrokerBreaker.record_outage,
    publisher.OutboxPublisher._broker_is_back,
    stay_connected,
    label="An outage is not an event's failure: the breaker, and consumers that reconnect",
)
web.show_source(
    jobs.PublisherRunner,
    jobs.publish_until_stopped,
    jobs.consume,
    label="The background jobs: Stop finishes the batch in flight",
)

# -- 3. Faults ---------------------------------------------------------------------------------
st.header("3 · Break it")
lab5.faults_panel(box)
web.show_source(Inbox.apply_once, StreamConsumer.take_over, StreamConsumer.run, label="The consumer's code")

# -- 4. The table ------------------------------------------------------------------------------
st.header("4 · The outbox table")
lab5.tables_panel()
web.show_source(dead_letter.requeue, dead_letter.skip, retention.cleanup_published, label="Requeue, skip, clean-up")

# -- 5. History --------------------------------------------------------------------------------
st.header("5 · The claim, with and without history")
st.caption(
    "The table keeps every published event until retention deletes it, while the work (the pending events) stays "
    "small. The claim's two indexes are **partial**: they hold only the rows still to publish, so the claim's cost "
    "follows the work, not the history. Until vacuum, the entries of rows just published stay in them too: the first "
    "claim that meets them marks them dead (on PostgreSQL it touches their pages once), the next ones skip them. "
    "*Explain the claim*, add drained history, explain it twice, and compare what each read."
)
lab5.history_panel(box)
web.show_source(history.explain_claim, history.add_history, label="EXPLAIN, and history as a drain leaves it")
knowledge_check("lab5")
