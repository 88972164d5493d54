"""Lab 5: the transactional outbox, published for real to Redis, broken on purpose, and nothing lost."""

from __future__ import annotations

import streamlit as st

from source import web
from source.domain.events import DomainEventRepository
from source.labs.outbox import actions, claim, dead_letter, jobs, publish, publisher, retention, writes
from source.labs.outbox.consumers import StreamConsumer
from source.labs.outbox.inbox import Inbox
from source.web import lab5
from source.web.checks import knowledge_check

st.title("📬 Lab 5 · The outbox pattern")
st.markdown(
    "A score and the event that announces it are written **in one transaction**: both or neither. A publisher "
    "then claims pending events, **publishes them to Redis**, and marks them published in the same transaction as "
    "its claim. Break it below (the broker down, a crash, nobody listening) and watch that nothing is lost."
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
    "and its transaction rolls back. Each claim takes at most *max events*, "
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
web.show_source(
    jobs.PublisherRunner,
    jobs.publish_until_stopped,
    jobs.consume,
    label="The background jobs: Stop finishes the batch in flight",
)

# -- 3. Faults ---------------------------------------------------------------------------------
st.header("3 · Break it")
lab5.faults_panel(box)
web.show_source(Inbox.apply_once, StreamConsumer.take_over, label="The consumer's code: inbox and takeover")

# -- 4. The table ------------------------------------------------------------------------------
st.header("4 · The outbox table")
lab5.tables_panel()
web.show_source(dead_letter.requeue, retention.cleanup_published, label="The code behind requeue and clean-up")
knowledge_check("lab5")
