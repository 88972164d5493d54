"""Lab 1: the data models drawn, created, edited, deleted with cascade and joined, in your own sandbox."""

from __future__ import annotations

import streamlit as st

from source import web
from source.domain import models, repositories
from source.domain.dtos import UserRow
from source.labs.data_models import join, schema_docs
from source.services import users
from source.web.actions import show_outcome
from source.web.checks import knowledge_check
from source.web.lab1_actions import add_children, create, delete, join_page, save
from source.web.widgets import paged_table

#: Users shown per page of the table.
PAGE_ROWS = 25

st.title("🧱 Lab 1 · Data models")
st.markdown(
    "InnovateAI's data layer starts with four SQLAlchemy models: **users** own **assessments** and "
    "**AI-R scores**, and **domain events** wait in an outbox for later labs. Everything below runs "
    "against your own sandbox database, so feel free to break things."
)


# -- 1. The schema (drawn from the models once per process) -------------------------------
st.header("1 · The schema, drawn from the models")
st.caption(
    "The diagram and the DDL are generated from `Base.metadata`, the same metadata the app uses to talk "
    "to the database. Change a model and both change with it."
)
diagram, summary = st.columns([3, 2])
diagram.graphviz_chart(schema_docs.er_diagram_dot(), width="stretch")
summary.dataframe(list(schema_docs.table_summary()), hide_index=True, key="lab1_table_summary")
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


# -- 2 and 3. Create, edit, fill, delete: one fragment, so a click reruns only this part ----
@st.fragment
def workbench() -> None:
    st.header("2 · Create a user")
    st.caption(
        "The form's values are validated by a Pydantic model (`UserCreate`) before any SQL runs. "
        "Submit the same email twice to watch the UNIQUE index on `users.email` refuse the second row."
    )
    with st.form("lab1_create_form"):
        st.text_input("Email", key="lab1_email", max_chars=1000, help="Checked for shape; must be unique.")
        st.text_input("Name", key="lab1_name", max_chars=1000, help="Required, up to 255 characters.")
        c1, c2, c3 = st.columns(3)
        c1.text_input("Occupation code", key="lab1_occupation_code", max_chars=1000, help="Optional, ≤ 20 characters.")
        c2.text_input("Education level", key="lab1_education_level", max_chars=1000, help="Optional, ≤ 50 characters.")
        c3.number_input("Years of experience", value=None, step=0.5, key="lab1_years_experience", help="0 to 70.")
        st.form_submit_button("Create user", key="lab1_create", help="One INSERT in one transaction.", on_click=create)
    show_outcome("lab1_created")

    st.header("3 · Edit, fill and delete a user")
    ok, listed = web.attempt(lambda: web.run(users.list_users()))
    if not ok:
        st.warning("Your users could not be read just now, so this section is empty; try again in a moment.")
        return
    rows: dict[str, UserRow] = {r.id: r for r in listed or []}
    show_outcome("lab1_deleted")
    if rows:
        user_controls(rows)
    else:
        st.info("Your sandbox has no users yet. Create one above.")
    if cascade := st.session_state.get("lab1_cascade"):
        st.subheader(f"Last delete: `{cascade.user_email}`")
        m1, m2, m3 = st.columns(3)
        m1.metric("Assessments removed", cascade.assessments_removed)
        m2.metric("Scores removed", cascade.scores_removed)
        m3.metric("SQL statements", len(cascade.statements))
        st.caption(
            "The statements the database received during the delete, in order. First the ORM loads the children "
            "(the cascade needs them in the session); a DELETE that removes several rows is sent once with many "
            "parameter sets (executemany), so it counts as one statement."
        )
        st.code(";\n".join(cascade.statements) + ";", language="sql", wrap_lines=True)
    users_table(list(rows.values()))


def user_controls(rows: dict[str, UserRow]) -> None:
    picked = st.selectbox(
        "User",
        list(rows),
        format_func=lambda i: f"{rows[i].email} · {rows[i].name}",
        key="lab1_user",
        help="The user the edit, sample-data and delete controls below act on.",
    )
    chosen = rows[str(picked)]
    if st.session_state.get("lab1_edit_loaded") != chosen.id:  # fill the edit fields with this user's values
        st.session_state.update(
            lab1_edit_loaded=chosen.id,
            lab1_edit_name=chosen.name,
            lab1_edit_occupation_code=chosen.occupation_code or "",
            lab1_edit_education_level=chosen.education_level or "",
            lab1_edit_years_experience=chosen.years_experience,
        )
    edit, fill = st.columns(2)
    with edit, st.form("lab1_edit_form", border=False):
        st.subheader("Edit")
        st.caption("`updated_at` has `onupdate=func.now()`: the database clock moves it on every real UPDATE.")
        st.text_input("Name", key="lab1_edit_name", max_chars=1000, help="Required.")
        st.text_input("Occupation code", key="lab1_edit_occupation_code", max_chars=1000, help="Optional.")
        st.text_input("Education level", key="lab1_edit_education_level", max_chars=1000, help="Optional.")
        st.number_input("Years of experience", value=None, step=0.5, key="lab1_edit_years_experience", help="0–70.")
        st.form_submit_button(
            "Save changes",
            key="lab1_save",
            help="Validates with UserUpdate, then one UPDATE if anything changed.",
            on_click=save,
            args=(chosen,),
        )
    show_outcome("lab1_saved", where=edit)
    with fill:
        st.subheader("Give them children")
        st.caption("Sample assessments and AI-R scores that point at this user through `user_id`.")
        with st.form("lab1_children_form", border=False):
            st.slider("Assessments", 0, 5, 2, key="lab1_n_assessments", help="0 to 5 per click.")
            st.slider("Scores", 0, 5, 3, key="lab1_n_scores", help="0 to 5 per click.")
            st.form_submit_button(
                "Add sample assessments and scores",
                key="lab1_add_children",
                help="INSERTs child rows.",
                on_click=add_children,
                args=(chosen,),
            )
        show_outcome("lab1_children")
        st.subheader("Delete")
        st.caption(
            "The relationships use `cascade='all, delete-orphan'`: the ORM loads and deletes the children "
            "first, then the user. The counts below are measured before and after, not predicted."
        )
        if st.session_state.get("lab1_confirm_delete") == chosen.id:
            st.warning(f"Delete `{chosen.email}` and all their assessments and scores? This cannot be undone.")
            yes, no = st.columns(2)
            yes.button("Yes, delete", key="lab1_delete_yes", type="primary", on_click=delete, args=(chosen,))
            no.button("Cancel", key="lab1_delete_cancel", on_click=st.session_state.pop, args=("lab1_confirm_delete",))
        else:
            confirm = {"lab1_confirm_delete": chosen.id}
            help_ = "Asks you to confirm, then deletes the user and their children."
            st.button(
                "Delete this user", key="lab1_delete", help=help_, on_click=st.session_state.update, kwargs=confirm
            )


def users_table(rows: list[UserRow]) -> None:
    st.subheader("Your users, as the database has them now")
    if not rows:
        st.caption("None yet: the `users` table is empty.")
        return
    paged_table([r.model_dump() for r in rows], key="lab1_users_table", page_rows=PAGE_ROWS, noun="user")
    st.caption(f"Oldest first. A sandbox keeps at most {users.MAX_USERS} users.")


workbench()
# The code behind sections 2 and 3: outside the fragment, so a click there does not resend it.
web.show_source(users.create_user, repositories.UserRepository.create, label="The code that created the user")
web.show_source(
    users.save_profile,
    users.update_user,
    users.add_sample_children,
    users.delete_user,
    repositories.UserRepository.delete,
    repositories.UserRepository.count_children,
    label="The code behind edit, sample data and delete",
)


# -- 4. The join: a fragment of its own, paginated ------------------------------------------
@st.fragment
def join_section() -> None:
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
    st.button(
        "Run the join",
        key="lab1_join",
        help="One SELECT … JOIN, a page at a time; shows the SQL as sent and the rows.",
        on_click=join_page,
        args=(0,),
    )
    show_outcome("lab1_joined")
    joined = st.session_state.get("lab1_join_result")
    if joined is not None:
        st.code(joined.sql, language="sql", wrap_lines=True)
        if joined.rows:
            shown = [dict(zip(joined.columns, r, strict=True)) for r in joined.rows]
            st.dataframe(shown, key="lab1_join_rows")
        last = joined.offset + len(joined.rows)
        st.caption(
            f"{joined.total} row(s). Showing {joined.offset + 1 if joined.rows else 0}–{last}, as of the last click "
            "(`LIMIT`/`OFFSET` in the SQL above). Give a user sample assessments above to see more."
        )
        step, ends = join.JOIN_PAGE_ROWS, (joined.offset == 0, last >= joined.total)
        for col, label, offset, end in zip(st.columns(2), ("Previous", "Next"), (-step, step), ends, strict=True):
            col.button(
                f"{label} page",
                key=f"lab1_join_{label.lower()}",
                disabled=end,
                on_click=join_page,
                args=(joined.offset + offset,),
            )


join_section()
web.show_source(
    join.users_join_assessments_statement, join.run_users_join_assessments, label="The code behind the join"
)
knowledge_check("lab1")
