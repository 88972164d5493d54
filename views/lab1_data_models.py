"""Lab 1: the data models drawn, created, edited, deleted with cascade and joined, in your own sandbox."""

from __future__ import annotations

import streamlit as st

from source import web
from source.domain import models, repositories
from source.labs.data_models import actions, join
from source.services import users
from source.web import lab1
from source.web.checks import knowledge_check

st.title("🧱 Lab 1 · Data models")
st.markdown(
    "InnovateAI's data layer starts with four SQLAlchemy models: **users** own **assessments** and "
    "**AI-R scores**, and **domain events** wait in an outbox for later labs. Everything below runs "
    "against your own sandbox database, so feel free to break things."
)

st.header("1 · The schema, drawn from the models")
st.caption(
    "The diagram and the DDL are generated from `Base.metadata`, the same metadata the app uses to talk "
    "to the database. Change a model and both change with it."
)
lab1.schema_panel()
web.show_source(
    models.TimestampMixin,
    models.User,
    models.Assessment,
    models.AIRScore,
    models.DomainEvent,
    label="The models behind the diagram",
)


st.header("2 · Create a user")
st.caption(
    "The form's values are validated by a Pydantic model (`UserCreate`) before any SQL runs. "
    "Submit the same email twice to watch the UNIQUE index on `users.email` refuse the second row."
)
lab1.workbench()  # the form, your users and the user to work with: Create user reruns only this part
lab1.user_controls()
# The code behind sections 2 and 3: outside the fragment, so a click there does not resend it.
web.show_source(
    actions.create_user_and_show,
    users.create_user_and_newest,
    repositories.UserRepository.create,
    repositories.UserRepository.list_newest,
    label="The code that created the user",
)
web.show_source(
    actions.save_profile,
    users.save_profile,
    users.update_user,
    actions.add_children,
    users.add_sample_children,
    actions.delete_user,
    users.delete_user,
    repositories.UserRepository.delete,
    repositories.UserRepository.count_children,
    label="The code behind edit, sample data and delete",
)

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
lab1.join_panel()
web.show_source(
    actions.join_page,
    join.users_join_assessments_statement,
    join.run_users_join_assessments,
    label="The code behind the join",
)
knowledge_check("lab1")
