"""Lab 1's actions as widget callbacks: they run before the page, so it shows their effect in one run."""

from __future__ import annotations

import streamlit as st

from source import web
from source.domain.dtos import UserCreate, UserRow, UserUpdate, parse
from source.labs.data_models import actions, join, report
from source.services import users
from source.web.actions import act

#: The profile's fields; the create form's widgets are keyed ``lab1_<field>``, the edit form's ``lab1_edit_<field>``.
FIELDS = ("email", "name", "occupation_code", "education_level", "years_experience")


def typed(prefix: str, fields: tuple[str, ...]) -> dict[str, object]:
    return {field: st.session_state[prefix + field] for field in fields}


def create() -> None:
    data = typed("lab1_", FIELDS)
    if act("lab1_created", lambda: report.created(web.run(users.create_user(parse(UserCreate, **data))))):
        st.session_state.update({f"lab1_{f}": "" for f in FIELDS[:4]}, lab1_years_experience=None)  # cleared


def save(user: UserRow) -> None:
    data = typed("lab1_edit_", FIELDS[1:])
    if act("lab1_saved", lambda: report.saved(user, web.run(users.save_profile(user.id, parse(UserUpdate, **data))))):
        st.session_state.pop("lab1_edit_loaded", None)  # refill the fields from the saved row


def add_children(user: UserRow) -> None:
    n_assess, n_scores = st.session_state["lab1_n_assessments"], st.session_state["lab1_n_scores"]
    act(
        "lab1_children",
        lambda: report.children(user.email, web.run(users.add_sample_children(user.id, n_assess, n_scores))),
    )


def delete(user: UserRow) -> None:
    st.session_state.pop("lab1_confirm_delete", None)
    act("lab1_deleted", lambda: st.session_state.update(lab1_cascade=web.run(actions.delete_user(user.id))))


def join_page(offset: int) -> None:
    query = join.run_users_join_assessments(limit=join.JOIN_PAGE_ROWS, offset=max(0, offset))
    act("lab1_joined", lambda: st.session_state.update(lab1_join_result=web.run(query)))
