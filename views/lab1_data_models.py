"""Lab 1: the data models drawn, created, edited, deleted with cascade and joined, in your own sandbox."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from source import web
from source.domain import models, repositories
from source.domain.dtos import UserCreate, UserRow, UserUpdate, parse
from source.labs.data_models import schema_docs, users

st.title("🧱 Lab 1 · Data models")
st.markdown(
    "InnovateAI's data layer starts with four SQLAlchemy models: **users** own **assessments** and "
    "**AI-R scores**, and **domain events** wait in an outbox for later labs. Everything below runs "
    "against your own sandbox database, so feel free to break things."
)


def _when(value: datetime) -> str:
    """Timestamps as a learner reads them: date, time and milliseconds."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _label(row: UserRow) -> str:
    return f"{row.email} · {row.name}"


# -- 1. The schema -------------------------------------------------------------------------
st.header("1 · The schema, drawn from the models")
st.caption(
    "The diagram and the DDL are generated from `Base.metadata`, the same metadata the app uses to talk "
    "to the database. Change a model and both change with it."
)
diagram, summary = st.columns([3, 2])
diagram.graphviz_chart(schema_docs.er_diagram_dot(), width="stretch")
summary.dataframe(schema_docs.table_summary(), hide_index=True, key="lab1_table_summary")
summary.caption(
    "Every arrow in the diagram is a foreign key: many assessments (or scores) point at one user. "
    "The index on `users.email` is UNIQUE, and `ix_events_status_created` serves the outbox in Lab 5."
)
tab_sqlite, tab_pg = st.tabs(["DDL as SQLite runs it", "DDL as PostgreSQL runs it"])
for tab, dialect in ((tab_sqlite, "SQLite"), (tab_pg, "PostgreSQL")):
    with tab:
        st.caption(
            f"The same models compiled for {dialect}. Compare the types: a `DateTime(timezone=True)` "
            "becomes `DATETIME` on SQLite and `TIMESTAMP WITH TIME ZONE` on PostgreSQL."
        )
        st.code(schema_docs.ddl(dialect), language="sql")
web.show_source(
    models.TimestampMixin,
    models.User,
    models.Assessment,
    models.AIRScore,
    models.DomainEvent,
    label="The models behind the diagram",
)

# -- 2. Create -----------------------------------------------------------------------------
st.header("2 · Create a user")
st.caption(
    "The form's values are validated by a Pydantic model (`UserCreate`) before any SQL runs. "
    "Submit the same email twice to watch the UNIQUE index on `users.email` refuse the second row."
)
if st.session_state.pop("lab1_clear_form", False):
    st.session_state.update(lab1_email="", lab1_name="", lab1_occupation="", lab1_education="", lab1_years=None)
with st.form("lab1_create_form"):
    email = st.text_input("Email", key="lab1_email", max_chars=255, help="Checked for shape; must be unique.")
    name = st.text_input("Name", key="lab1_name", max_chars=255, help="Required, up to 255 characters.")
    c1, c2, c3 = st.columns(3)
    occupation = c1.text_input(
        "Occupation code", key="lab1_occupation", max_chars=20, help="Optional, e.g. an O*NET code like 15-1252."
    )
    education = c2.text_input("Education level", key="lab1_education", max_chars=50, help="Optional, e.g. Bachelor's.")
    years = c3.number_input(
        "Years of experience", 0.0, 70.0, value=None, step=0.5, key="lab1_years", help="Optional, 0 to 70."
    )
    submitted = st.form_submit_button("Create user", key="lab1_create", help="One INSERT in one transaction.")
if submitted:
    new_user = {
        "email": email,
        "name": name,
        "occupation_code": occupation,
        "education_level": education,
        "years_experience": years,
    }
    ok, created = web.attempt(lambda: web.run(users.create_user(parse(UserCreate, **new_user))))
    if ok and created is not None:
        st.session_state["lab1_flash"] = f"Created `{created.email}` with id `{created.id}`."
        st.session_state["lab1_clear_form"] = True  # on failure the typed values stay, to be fixed
        st.rerun()
if flash := st.session_state.pop("lab1_flash", None):
    st.success(flash)
web.show_source(users.create_user, repositories.UserRepository.create, label="The code that created the user")

# -- 3. Work with one user -----------------------------------------------------------------
st.header("3 · Edit, fill and delete a user")
read_ok, listed = web.attempt(lambda: web.run(users.list_users()))
rows: dict[str, UserRow] = {r.id: r for r in listed or []}
if read_ok and not rows:  # only a read that succeeded may claim the table is empty
    st.info("Your sandbox has no users yet. Create one above.")
elif rows:
    picked = st.selectbox(
        "User",
        list(rows),
        format_func=lambda i: _label(rows[i]),
        key="lab1_user",
        help="The user the edit, sample-data and delete controls below act on.",
    )
    chosen = rows[str(picked)]
    uid = chosen.id
    if st.session_state.get("lab1_edit_loaded") != uid:  # fill the edit fields with this user's values
        st.session_state.update(
            lab1_edit_loaded=uid,
            lab1_edit_name=chosen.name,
            lab1_edit_occupation=chosen.occupation_code or "",
            lab1_edit_education=chosen.education_level or "",
            lab1_edit_years=chosen.years_experience,
        )
    edit, fill = st.columns(2)
    with edit:
        st.subheader("Edit")
        st.caption("`updated_at` has `onupdate=func.now()`: the database clock moves it on every real UPDATE.")
        new_name = st.text_input("Name", key="lab1_edit_name", max_chars=255, help="Required.")
        new_occ = st.text_input("Occupation code", key="lab1_edit_occupation", max_chars=20, help="Optional.")
        new_edu = st.text_input("Education level", key="lab1_edit_education", max_chars=50, help="Optional.")
        new_years = st.number_input(
            "Years of experience", 0.0, 70.0, step=0.5, key="lab1_edit_years", help="Optional, 0 to 70."
        )
        if st.button("Save changes", key="lab1_save", help="Validates with UserUpdate, then one UPDATE."):
            change = {
                "name": new_name,
                "occupation_code": new_occ,
                "education_level": new_edu,
                "years_experience": new_years,
            }
            ok, saved = web.attempt(lambda: web.run(users.update_user(uid, parse(UserUpdate, **change))))
            if ok and saved is not None:
                st.session_state["lab1_edit_result"] = (uid, chosen.updated_at, saved.updated_at)
                st.session_state.pop("lab1_edit_loaded", None)  # reload the fields from the saved row
                st.rerun()
        edited, before, after = st.session_state.pop("lab1_edit_result", (None, None, None))
        if edited == uid:  # shown once, right after the save it reports
            st.success(f"Saved `{chosen.email}`. updated_at: {_when(before)} → {_when(after)}")
            if before == after:
                st.caption("Nothing changed, so SQLAlchemy sent no UPDATE and `updated_at` stayed put.")
    with fill:
        st.subheader("Give them children")
        st.caption("Sample assessments and AI-R scores that point at this user through `user_id`.")
        n_assess = st.number_input("Assessments", 0, 5, value=2, key="lab1_n_assessments", help="0 to 5 per click.")
        n_scores = st.number_input("Scores", 0, 5, value=3, key="lab1_n_scores", help="0 to 5 per click.")
        if st.button("Add sample assessments and scores", key="lab1_add_children", help="INSERTs child rows."):
            ok, counts = web.attempt(
                lambda: web.run(users.add_sample_children(uid, int(n_assess or 0), int(n_scores or 0)))
            )
            if ok and counts is not None:
                st.success(f"{chosen.email} now has {counts[0]} assessments and {counts[1]} scores.")
        st.subheader("Delete")
        st.caption(
            "The relationships use `cascade='all, delete-orphan'`: the ORM loads and deletes the children "
            "first, then the user. The counts below are measured before and after, not predicted."
        )
        if st.button("Delete this user", key="lab1_delete", type="primary", help="Deletes the user and children."):
            ok, report = web.attempt(lambda: web.run(users.delete_user(uid)))
            if ok and report is not None:
                st.session_state["lab1_cascade"] = report
                st.rerun()
if report := st.session_state.get("lab1_cascade"):
    st.subheader(f"Last delete: `{report.user_email}`")
    m1, m2, m3 = st.columns(3)
    m1.metric("Assessments removed", report.assessments_removed)
    m2.metric("Scores removed", report.scores_removed)
    m3.metric("SQL statements", len(report.statements))
    st.caption(
        "The statements the database received during the delete, in order. First the ORM loads the children "
        "(the cascade needs them in the session); a DELETE that removes several rows is sent once with many "
        "parameter sets (executemany), so it counts as one statement."
        + (" Table names carry your sandbox's schema, your private copy." if web.sandbox().schema else "")
    )
    st.code(";\n".join(report.statements) + ";", language="sql", wrap_lines=True)
web.show_source(
    users.update_user,
    users.add_sample_children,
    users.delete_user,
    repositories.UserRepository.delete,
    repositories.UserRepository.count_children,
    label="The code behind edit, sample data and delete",
)

st.subheader("Your users, as the database has them now")
if rows:
    st.dataframe([r.model_dump() for r in rows.values()], hide_index=True, key="lab1_users_table")
    st.caption(f"{len(rows)} user(s), oldest first. A sandbox keeps at most {users.MAX_USERS}.")
elif read_ok:
    st.caption("None yet: the `users` table is empty.")

# -- 4. The join ---------------------------------------------------------------------------
st.header("4 · users ⋈ assessments")
st.markdown(
    "A foreign key implies a join. The curriculum writes the question *all assessments with their users* "
    "in relational algebra as:"
)
st.latex(
    r"\pi_{\text{Assessment.*}}(\text{Users} \bowtie_{\text{Users.id} = \text{Assessments.user\_id}}"
    r" \text{Assessments})"
)
st.caption(
    "⋈ pairs every user row with every assessment row whose `user_id` equals the user's `id`; "
    "π then keeps only the columns we ask for. Here we keep the user's name and email next to each "
    "assessment's component, status and ability. Users without assessments drop out: it is an inner join."
)
if st.button("Run the join", key="lab1_join", help="One SELECT … JOIN; shows the SQL as sent and the rows."):
    ok, joined = web.attempt(lambda: web.run(users.run_users_join_assessments()))
    if ok and joined is not None:
        st.code(joined.sql, language="sql", wrap_lines=True)
        if web.sandbox().schema:
            st.caption("On PostgreSQL every table name carries your sandbox's schema: that is your private copy.")
        if joined.rows:
            st.dataframe([dict(zip(joined.columns, r, strict=True)) for r in joined.rows], key="lab1_join_rows")
        st.caption(f"{len(joined.rows)} row(s). Give a user sample assessments above to see more.")
web.show_source(
    users.users_join_assessments_statement, users.run_users_join_assessments, label="The code behind the join"
)
