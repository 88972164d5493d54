"""Create: design an outbox table for pub/sub; the app builds it in your sandbox and checks it for real."""

import streamlit as st

from source import web
from source.learning.event_table import build, claim, probe
from source.web import create_form
from source.web.checks import record_visit

st.title("🛠️ Create · Design an event table")
st.markdown(
    """
InnovateAI announces every new AI-R score to other services. With the **outbox pattern** the event is
written to a table in the same transaction as the score, and a **publisher** claims waiting events,
sends them to the broker and marks them published. Your task: design that table.

When you press *Build and check*, the app builds your table in **your sandbox** with SQLAlchemy's
`Table`/`Column` objects, writes 1,000 sample events (50 still pending), claims the oldest 10 with the
publisher's query, reads the query's plan, and tries what consumers and retries will do: a duplicate id,
an event with no aggregate, a failed send. Then it tells you what is missing, why it matters and what
would go wrong. No SQL you type is ever run: names are checked, types and defaults come from lists.
"""
)
record_visit("create")
create_form.design_form()
create_form.check_button()
st.caption(
    "On PostgreSQL the plan is read with `enable_seqscan = off`: at a classroom's thousand rows the planner may "
    "prefer reading the whole table anyway, so this asks whether an index *can* serve the claim."
)
web.show_source(build.to_table, claim.claim_statement, probe.run_probes, label="The code that built and probed it")
