"""The Create exercise's form and report: widgets with explicit keys, logic in source.learning.event_table.

Keys: ``cx_table``; per column *i* ``cx_col{i}_name|type|role|null|default|pk|unique``;
``cx_status``, ``cx_check_status``; per index *j* ``cx_ix{j}_cols|unique|pending``;
buttons ``cx_add``, ``cx_remove``, ``cx_check``. The design being drafted and the last check's
report are kept with the sandbox, so a refresh or another tab finds them as they were.
"""

from __future__ import annotations

from typing import Any, Literal

import streamlit as st

from source import web
from source.learning.event_table import design as d
from source.learning.event_table.design import parse_design
from source.learning.event_table.exercise import Report, check_design
from source.learning.event_table.plan import Verdict
from source.web import kept
from source.web.actions import button

#: How long the check (build, write 1,000 events, claim, plan, probes) may take before the page gives up.
CHECK_TIMEOUT_S = 60.0

#: Where a learner starts: three columns, none of the hard parts done for them.
STARTER = [
    {"name": "id", "type": "uuid text (36)", "role": "event id", "null": False, "default": "none", "pk": True},
    {"name": "payload", "type": "JSON", "role": "payload", "null": False, "default": "none", "pk": False},
    {"name": "status", "type": "short text (100)", "role": "status", "null": True, "default": "none", "pk": False},
]
NO_ROLE = "(no role)"
ICONS = {"ok": "✅", "advice": "💡", "missing": "❌"}
PLAN_ICONS: dict[Verdict, str] = {"served": "✅", "sorts": "💡", "walks": "❌", "full scan": "❌"}


def _restore() -> None:
    """Put back the design after a visit to another page, a refresh or in another tab.

    Streamlit forgets the state of widgets a run did not draw, and a refresh starts a new
    session: a copy of the design kept with the sandbox (``source/web/kept.py``) brings it back.
    """
    for key, value in kept.get(DRAFT, {}).items():
        if key not in st.session_state:
            st.session_state[key] = value


def _save() -> None:
    kept.put(DRAFT, {k: v for k, v in st.session_state.items() if str(k).startswith("cx_") and k not in _NOT_SAVED})


#: Where the design being drafted is kept, and the last check's report.
DRAFT, REPORT = "cx_saved", "cx_report"
_NOT_SAVED = {DRAFT, REPORT, "cx_flash", "cx_add", "cx_remove", "cx_check", "cx_check_outcome"}


def _start() -> None:
    state = st.session_state
    _restore()
    if "cx_rows" in state:
        return
    state["cx_rows"] = len(STARTER)
    state["cx_table"] = "outbox_events"
    state["cx_status"] = "pending, published, failed"
    for i, col in enumerate(STARTER):
        state.update(
            {
                f"cx_col{i}_name": col["name"],
                f"cx_col{i}_type": col["type"],
                f"cx_col{i}_role": col["role"],
                f"cx_col{i}_null": col["null"],
                f"cx_col{i}_default": col["default"],
                f"cx_col{i}_pk": col["pk"],
            }
        )


def _add() -> None:
    if st.session_state["cx_rows"] >= d.MAX_COLUMNS:
        st.session_state["cx_flash"] = (
            f"An event table here has at most {d.MAX_COLUMNS} columns: a publisher reads every one of them on "
            "every claim. Remove one first."
        )
    else:
        st.session_state[f"cx_col{st.session_state['cx_rows']}_null"] = True  # a new column allows NULL at first
        st.session_state["cx_rows"] += 1


def _remove() -> None:
    st.session_state["cx_rows"] = max(1, st.session_state["cx_rows"] - 1)


def design_form() -> dict[str, Any]:
    """Draw the form and return what it holds, as plain values for ``parse_design``."""
    _start()
    st.text_input("Table name", key="cx_table", max_chars=60, help="Lowercase letters, digits and _; not a SQL word.")
    st.markdown("**Columns**: name, type, the role it plays for a publisher, NULL allowed, default, keys.")
    for i in range(st.session_state["cx_rows"]):
        # Two lines per column, so every label stays whole on a 1024-pixel projector.
        c = st.columns(4)
        visible: Literal["visible", "collapsed"] = "visible" if i == 0 else "collapsed"
        c[0].text_input("Name", key=f"cx_col{i}_name", max_chars=60, label_visibility=visible)
        c[1].selectbox("Type", d.TYPES, key=f"cx_col{i}_type", label_visibility=visible)
        c[2].selectbox("Role", (NO_ROLE, *d.ROLES), key=f"cx_col{i}_role", label_visibility=visible)
        c[3].selectbox("Default", d.DEFAULTS, key=f"cx_col{i}_default", label_visibility=visible)
        flags = st.columns(4)
        flags[0].checkbox("NULL ok", key=f"cx_col{i}_null")
        flags[1].checkbox("PK", key=f"cx_col{i}_pk", help="Primary key")
        flags[2].checkbox("UNIQUE", key=f"cx_col{i}_unique")
    left, right = st.columns(2)
    left.button("Add a column", key="cx_add", on_click=_add, help=f"Up to {d.MAX_COLUMNS} columns.")
    right.button("Remove the last column", key="cx_remove", on_click=_remove)
    if flash := st.session_state.pop("cx_flash", None):
        st.warning(flash)
    st.text_input(
        "Status values, separated by commas", key="cx_status", max_chars=200, help="The claim asks for 'pending'."
    )
    st.checkbox("Allow only these status values (a CHECK constraint)", key="cx_check_status")
    names = [c["name"] for c in current_design()["columns"] if c["name"]]
    st.markdown("**Indexes** (up to three; the order you pick the columns in is the index's column order)")
    for j in range(d.MAX_INDEXES):
        key = f"cx_ix{j}_cols"
        if key in st.session_state:  # a renamed or removed column leaves the index
            st.session_state[key] = [n for n in st.session_state[key] if n in names]
        cols, unique, pending = st.columns([3, 1.4, 2.4])
        cols.multiselect(f"Index {j + 1}", names, key=key, max_selections=d.MAX_INDEX_COLUMNS)
        unique.checkbox("UNIQUE", key=f"cx_ix{j}_unique")
        pending.checkbox(
            "Pending rows only", key=f"cx_ix{j}_pending", help="A partial index: WHERE status = 'pending'."
        )
    _save()
    return current_design()


def current_design() -> dict[str, Any]:
    """The design as the form holds it right now (for the check's callback, which runs before the form is drawn)."""
    state = st.session_state
    columns = [
        {
            "name": str(state.get(f"cx_col{i}_name") or "").strip(),
            "role": None if state.get(f"cx_col{i}_role", NO_ROLE) == NO_ROLE else state.get(f"cx_col{i}_role"),
            "type": state.get(f"cx_col{i}_type", d.TYPES[0]),
            "nullable": bool(state.get(f"cx_col{i}_null")),
            "default": state.get(f"cx_col{i}_default", d.DEFAULTS[0]),
            "primary_key": bool(state.get(f"cx_col{i}_pk")),
            "unique": bool(state.get(f"cx_col{i}_unique")),
        }
        for i in range(int(state.get("cx_rows", 0)))
    ]
    indexes = [
        {
            "columns": cols,
            "unique": bool(state.get(f"cx_ix{j}_unique")),
            "pending_only": bool(state.get(f"cx_ix{j}_pending")),
        }
        for j in range(d.MAX_INDEXES)
        if (cols := list(state.get(f"cx_ix{j}_cols") or []))
    ]
    status = str(state.get("cx_status") or "")
    return {
        "table": str(state.get("cx_table") or "").strip(),
        "columns": columns,
        "indexes": indexes,
        "status_values": [v.strip() for v in status.split(",") if v.strip()],
        "check_status": bool(state.get("cx_check_status")),
    }


def check_button() -> None:
    """Build and check the design: in the button's callback; the report is kept with the sandbox."""
    button(
        st,
        "Build and check my table",
        key="cx_check",
        type="primary",
        help="Creates the table in your sandbox and puts it to work.",
        action=_check,
    )
    if (report := kept.get(REPORT)) is not None:
        st.header(f"What the check found in `{report.design.table}`")
        show_report(report)


def _check() -> None:
    design = parse_design(current_design())
    kept.drop(REPORT)
    kept.put(REPORT, web.run(check_design(design), timeout=CHECK_TIMEOUT_S))


def show_report(report: Report) -> None:
    """What the check did and found, with the evidence."""
    facts, findings = report.facts, report.assessment.findings
    missing = [f for f in findings if f.severity == "missing"]
    if report.passed:
        st.success(f"Your design passes: a publisher can claim, retry and order events in `{report.design.table}`.")
        if not report.saved:
            st.caption("It could not be saved to your progress (Redis did not answer).")
    else:
        st.warning(f"{len(missing)} thing(s) missing. Each is explained below, with what the run showed.")
    m = st.columns(4)
    m[0].metric("Events written", facts.inserted)
    m[1].metric("Writing them", f"{facts.insert_ms:.0f} ms")
    m[2].metric("Claiming 10", f"{facts.claim.ms:.1f} ms" if facts.claim else "–")
    m[3].metric("Plan", f"{PLAN_ICONS[facts.plan.verdict]} {facts.plan.verdict}" if facts.plan else "–")
    for finding in sorted(findings, key=lambda f: ("missing", "advice", "ok").index(f.severity)):
        lines = [f"{ICONS[finding.severity]} **{finding.title}**"]
        lines += [
            f"{label}: {text}"
            for label, text in (("Why", finding.why), ("Otherwise", finding.consequence), ("Seen", finding.evidence))
            if text
        ]
        st.markdown("  \n".join(lines))
    if facts.ddl:
        st.markdown("**The DDL SQLAlchemy generated from your design** (and ran in your sandbox)")
        st.code(";\n\n".join(facts.ddl) + ";", language="sql", wrap_lines=True)
    if facts.claim is not None:
        st.markdown("**The publisher's claim query**, as sent")
        st.code(facts.claim.sql, language="sql", wrap_lines=True)
    if facts.plan is not None:
        st.markdown("**Its plan**, as the database printed it")
        st.code("\n".join(facts.plan.lines), language="text", wrap_lines=True)
