"""Create: design an outbox table for pub/sub; the app builds it in your sandbox and checks it for real."""

import streamlit as st

from source import web
from source.learning.event_table import build, claim, probe
from source.learning.event_table.design import parse_design
from source.learning.event_table.exercise import check_design
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
raw = create_form.design_form()
if st.button("Build and check my table", key="cx_check", type="primary", help="Creates the table in your sandbox."):
    ok, design = web.attempt(lambda: parse_design(raw))
    if ok and design is not None:
        valid = design
        with st.spinner("Building your table and putting it to work…"):
            ok, report = web.attempt(lambda: web.run(check_design(valid), timeout=60))
        if ok and report is not None:
            st.session_state["cx_report"] = report
if (report := st.session_state.get("cx_report")) is not None:
    st.header(f"What the check found in `{report.design.table}`")
    create_form.show_report(report)
st.caption(
    "On PostgreSQL the plan is read with `enable_seqscan = off`: at a classroom's thousand rows the planner may "
    "prefer reading the whole table anyway, so this asks whether an index *can* serve the claim."
)
web.show_source(build.to_table, claim.claim_statement, probe.run_probes, label="The code that built and probed it")
