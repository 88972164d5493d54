"""Lab 1's panels: the schema, the create form, the edit/fill/delete controls and the paged join.

Every button runs Lab 1's action (:mod:`source.labs.data_models.actions`) in its callback, so the
page that follows already shows the effect. Widget keys are the page's public names: the tests,
the browser walk and the benchmarks press them.
"""

from __future__ import annotations

import pyarrow as pa
import streamlit as st

from source import web
from source.domain.dtos import CascadeReport, UserRow
from source.labs.data_models import actions, schema_docs
from source.labs.data_models.actions import JoinPage
from source.services import users
from source.web import kept
from source.web.actions import act, show_outcome
from source.web.confirm import confirmed_button
from source.web.fragments import in_fragment_run
from source.web.seats import fragment
from source.web.widgets import literal, whole_number_input

#: Session-state keys: the users table's page, the picked user, and the user the controls were drawn for.
TABLE_PAGE, PICKED, CONTROLS_FOR = "lab1_users_table_page", "lab1_user", "lab1_controls_for"
#: The users table's columns: every field of a user row but the id.
COLUMNS = tuple(name for name in UserRow.model_fields if name != "id")
#: Session-state key: the users as *Create user* read them back, with the table's page, for the run that follows.
SHOWN_NEXT = "lab1_users_after_create"


def _table_page() -> int:
    return int(st.session_state.get(TABLE_PAGE, 1))


# -- 1 · the schema --------------------------------------------------------------------------
def schema_panel() -> None:
    """The ER diagram and a table summary side by side, then the DDL as each dialect runs it."""
    diagram, summary = st.columns([3, 2])
    diagram.graphviz_chart(schema_docs.er_diagram_dot(), width="stretch")
    summary.dataframe(list(schema_docs.table_summary()), hide_index=True, key="lab1_table_summary")
    summary.caption(
        "Every arrow in the diagram is a foreign key: many assessments (or scores) point at one user. "
        "The index on `users.email` is UNIQUE, and `ix_events_status_created` serves the outbox in Lab 5."
    )
    dialects = list(schema_docs.DIALECTS)
    for tab, dialect in zip(st.tabs([f"DDL as {d} runs it" for d in dialects]), dialects, strict=True):
        tab.caption(
            f"The same models compiled for {dialect}. Compare the types: a `DateTime(timezone=True)` "
            "becomes `DATETIME` on SQLite and `TIMESTAMP WITH TIME ZONE` on PostgreSQL."
        )
        tab.code(schema_docs.ddl(dialect), language="sql", wrap_lines=True)


# -- 2 · create ------------------------------------------------------------------------------
def _form(prefix: str, fields: tuple[str, ...]) -> dict[str, object]:
    """What the learner typed: the create form's widgets are ``lab1_<field>``, the edit form's ``lab1_edit_<field>``."""
    return {field: st.session_state.get(prefix + field) for field in fields}


def _create() -> None:
    page = _table_page()

    def create() -> str:
        made = web.run(actions.create_user_and_show(_form("lab1_", actions.PROFILE), page))
        st.session_state[SHOWN_NEXT] = (page, made.now)  # the users, as the write read them back
        return made.said

    if act("lab1_created", create):
        # Cleared for the next user; a refused form keeps what was typed, to be fixed.
        st.session_state.update({f"lab1_{f}": "" for f in actions.PROFILE[:4]}, lab1_years_experience=None)


def create_form() -> None:
    with st.form("lab1_create_form"):
        st.text_input("Email", key="lab1_email", max_chars=1000, help="Checked for shape; must be unique.")
        st.text_input("Name", key="lab1_name", max_chars=1000, help="Required, up to 255 characters.")
        # One field under another: every layout block (columns) is one more message on every click.
        st.text_input("Occupation code", key="lab1_occupation_code", max_chars=1000, help="Optional, ≤ 20 characters.")
        st.text_input("Education level", key="lab1_education_level", max_chars=1000, help="Optional, ≤ 50 characters.")
        st.number_input("Years of experience", value=None, step=0.5, key="lab1_years_experience", help="0 to 70.")
        help_ = "Two INSERTs and a SELECT, in one transaction."  # the user, their event; the users read back
        st.form_submit_button("Create user", key="lab1_create", help=help_, on_click=_create)
    show_outcome("lab1_created")


# -- 2 and 3 · the users now, and the one to work with ------------------------------------------
@fragment
def workbench() -> None:
    """The create form, the users as they are now, and the choice of a user: *Create user* reruns only this.

    Everything a create changes (the new user, in the table and among the users to pick) is in this
    fragment, so a click sends only these few widgets. The controls for the chosen user are drawn
    by the page's own run (:func:`user_controls`), so a save, new children or a delete there redraws
    this table too.
    """
    said = st.session_state.get("lab1_created")  # shown once by the form; kept if the page must redraw
    create_form()
    page = _table_page()
    # This run follows a create (the button is pressed only in the run after the click)? It read them back.
    given = st.session_state.pop(SHOWN_NEXT, None)
    if given is not None and given[0] == page and st.session_state.get("lab1_create"):
        ok, now = True, given[1]
    else:
        ok, now = web.attempt(lambda: web.run(actions.users_now(page)))
    if not ok or now is None:
        st.warning("Your users could not be read just now; try again in a moment.")
        return
    users_table(now)
    if pick(now):
        st.session_state["lab1_created"] = said  # the page's own run shows it again, under the form
        st.rerun(scope="app")


def users_table(now: actions.Users) -> None:
    """Your users as the database has them now: a page of the table, and one line saying which."""
    if now.total > actions.TABLE_ROWS:
        pages = (now.total + actions.TABLE_ROWS - 1) // actions.TABLE_ROWS
        whole_number_input(st, f"Page (of {pages:,})", (1, pages), 1, key=TABLE_PAGE)
    if now.page:
        # An Arrow table, not a list of dicts: Streamlit would make those a pandas frame first, whose
        # metadata doubles what every click sends (1.4 kB against 2.8 kB for ten rows).
        # Built column by column from the rows' attributes: no dict per row (model_dump) on every click.
        st.table(pa.table({c: [literal(getattr(r, c)) for r in now.page] for c in COLUMNS}), hide_index=True)
    # One caption for the table and the choice below it: every element is one more message on every click.
    among = f" The choice below offers the {len(now.newest)} newest." if now.total > len(now.newest) else ""
    st.caption(
        f"**Your users, as the database has them now**: {now.said}{among} A sandbox holds at most {users.MAX_USERS:,}."
    )


def pick(now: actions.Users) -> bool:
    """The user the controls below act on, among the newest; True when the page must redraw them.

    Only this fragment ran when a user was created or picked here; the controls are drawn by the
    page's own run, so they need it again when they show another user, or none yet (the first user).
    Later creates keep the user picked, and cost no second run.
    """
    if not now.newest:
        st.info(web.no_users_yet("create one above"))
        return False
    names = {u.id: label(u) for u in now.newest}
    drawn = st.session_state.get(CONTROLS_FOR)
    if drawn is not None and drawn[0] not in names and now.total:  # older than the newest: still pickable
        names[drawn[0]] = drawn[1]
    picked = st.selectbox(
        "User for section 3",
        list(names),
        format_func=names.__getitem__,
        key=PICKED,
        help="The user the edit, sample-data and delete controls below act on.",
    )
    return in_fragment_run() and picked != (drawn or ("",))[0]


def label(user: UserRow) -> str:
    return f"{user.email} · {user.name}"


def user_controls() -> None:
    """Edit, fill and delete the picked user, then what the last delete removed: in the page's own run."""
    st.header("3 · Edit, fill and delete a user")
    picked = st.session_state.get(PICKED)
    ok, chosen = web.attempt(lambda: web.run(actions.user(str(picked)))) if picked else (True, None)
    if ok and chosen is not None:
        st.session_state[CONTROLS_FOR] = (chosen.id, label(chosen))
        controls(chosen)
    elif ok:
        st.session_state.pop(CONTROLS_FOR, None)
    if cascade := kept.get("lab1_cascade"):
        cascade_panel(cascade)


def _save(user: UserRow) -> None:
    if act("lab1_saved", lambda: web.run(actions.save_profile(user, _form("lab1_edit_", actions.EDITABLE)))):
        st.session_state.pop("lab1_edit_loaded", None)  # refill the fields from the saved row


def _add_children(user: UserRow) -> None:
    wanted = st.session_state["lab1_n_assessments"], st.session_state["lab1_n_scores"]
    act("lab1_children", lambda: web.run(actions.add_children(user, *wanted)))


def _delete(user: UserRow) -> None:
    kept.put("lab1_cascade", web.run(actions.delete_user(user.id)))
    for gone in (PICKED, CONTROLS_FOR):  # the page picks the newest user now
        st.session_state.pop(gone, None)


def controls(chosen: UserRow) -> None:
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
        help_ = "Validates with UserUpdate, then one UPDATE if anything changed."
        st.form_submit_button("Save changes", key="lab1_save", help=help_, on_click=_save, args=(chosen,))
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
                on_click=_add_children,
                args=(chosen,),
            )
        show_outcome("lab1_children")
        delete_controls(chosen)


def delete_controls(chosen: UserRow) -> None:
    """Delete, after the learner confirmed: the first click only asks."""
    st.subheader("Delete")
    st.caption(
        "The relationships use `cascade='all, delete-orphan'`: the ORM loads and deletes the children "
        "first, then the user. The counts below are measured before and after, not predicted."
    )
    confirmed_button(
        st,
        "Delete this user",
        key="lab1_delete",
        question=f"Delete `{chosen.email}` and all their assessments and scores? This cannot be undone.",
        yes="Yes, delete",
        action=lambda: _delete(chosen),
        help="Asks you to confirm, then deletes the user and their children.",
        about=chosen.id,
    )


def cascade_panel(cascade: CascadeReport) -> None:
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


# -- 4 · the join ------------------------------------------------------------------------------
def _join(offset: int) -> None:
    act("lab1_joined", lambda: kept.put("lab1_join_result", web.run(actions.join_page(offset))))


@fragment
def join_panel() -> None:
    """A fragment: running the join or turning its pages reruns only this panel."""
    st.button(
        "Run the join",
        key="lab1_join",
        help="One SELECT … JOIN, a page at a time; shows the SQL as sent and the rows.",
        on_click=_join,
        args=(0,),
    )
    show_outcome("lab1_joined")
    page: JoinPage | None = kept.get("lab1_join_result")
    if page is None:
        return
    joined = page.result
    st.code(joined.sql, language="sql", wrap_lines=True)
    if joined.rows:
        st.dataframe([dict(zip(joined.columns, r, strict=True)) for r in joined.rows], key="lab1_join_rows")
    st.caption(page.said)
    for col, label, offset in zip(st.columns(2), ("Previous", "Next"), (page.previous, page.next), strict=True):
        col.button(
            f"{label} page",
            key=f"lab1_join_{label.lower()}",
            disabled=offset is None,
            on_click=_join,
            args=(offset or 0,),
        )
