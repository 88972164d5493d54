"""The floor for one click: Lab 1's *Create user* and nothing else, the least a Streamlit click can cost here.

One form (Email, Name, Occupation code, Education level, Years of experience) whose *Create user*
callback INSERTs one row in one transaction (in the button's callback, as the lab does); then the
page shows "Created <email>" and a static table of the 10 newest users. The database side is
``floor_db.py``: SQLAlchemy's async ORM over aiosqlite on one background event loop, as the lab's
stack. ``bench/lab_clicks.py`` measures
it beside the lab's clicks in the same run.
"""

import uuid

import floor_db  # type: ignore[import-not-found]  # beside this file: on sys.path when streamlit runs it
import streamlit as st

FIELDS = ("email", "name", "occupation_code", "education_level", "years_experience")


def create() -> None:
    s = st.session_state
    row = {f: (s[f].strip() or None) if isinstance(s[f], str) else s[f] for f in FIELDS}
    if not row["email"] or not row["name"]:
        s.outcome = ("error", "Email and name are required.")
        return
    row["id"] = str(uuid.uuid4())
    try:
        floor_db.insert(row)
    except Exception as exc:  # noqa: BLE001 - a taken email (UNIQUE) and the like: a message, not a traceback
        s.outcome = ("error", f"Not created: {type(exc).__name__}")
        return
    s.outcome = ("success", f"Created `{row['email']}`")
    s.update(email="", name="", occupation_code="", education_level="", years_experience=None)  # clear the form


with st.form("create_form"):
    st.text_input("Email", key="email")
    st.text_input("Name", key="name")
    st.text_input("Occupation code", key="occupation_code")
    st.text_input("Education level", key="education_level")
    st.number_input("Years of experience", value=None, step=0.5, key="years_experience")
    st.form_submit_button("Create user", key="create", on_click=create)

if outcome := st.session_state.pop("outcome", None):
    (st.success if outcome[0] == "success" else st.error)(outcome[1])

rows = floor_db.newest(10)
if rows:  # a statement, not a bare conditional expression: Streamlit's magic would st.write its value
    st.table(rows, hide_index=True)
else:
    st.caption("No users yet.")
