"""Persistence Lab: the navigation shell. Every page lives in views/, every idea in source/."""

import streamlit as st

from source.web import drawing
from source.web.classroom import class_sidebar
from source.web.learning import begin_run, sidebar_progress
from source.web.sidebar import navigation_links, sidebar_status
from source.web.transport import send_replies_at_once

st.set_page_config(page_title="Persistence Lab", page_icon="🗄️", layout="wide")

home = st.Page("views/home.py", title="Welcome", icon="🏠", default=True)
join = st.Page("views/join_class.py", title="Join a class", icon="👥", url_path="join")
labs = [
    st.Page("views/lab1_data_models.py", title="1 · Data models", icon="🧱", url_path="data-models"),
    st.Page("views/lab2_connectivity.py", title="2 · Async connectivity & pooling", icon="🔌", url_path="pooling"),
    st.Page("views/lab3_repository.py", title="3 · Repository & N+1", icon="🔁", url_path="repository"),
    st.Page("views/lab4_caching.py", title="4 · Caching with Redis", icon="⚡", url_path="caching"),
    st.Page("views/lab5_outbox.py", title="5 · Outbox pattern", icon="📬", url_path="outbox"),
]
create = st.Page("views/create_exercise.py", title="Create · Design an event table", icon="🛠️", url_path="create")
instructor = st.Page("views/instructor.py", title="Instructor", icon="🎓", url_path="instructor")
send_replies_at_once()  # no reply waits for the browser's delayed ACK (see source/web/transport.py)
sections = {"Start": [home, join], "Labs": labs, "Practise": [create], "Teach": [instructor]}
# The links are drawn by the app (valid list markup for screen readers); Streamlit's own menu is hidden.
page = st.navigation(sections, position="hidden")
with drawing():  # drawing a page takes no seat; the first action (a widget's callback, run before) does
    navigation_links(sections)
    sidebar_status()  # before the page, so a reset is visible on the page at once
    begin_run(page)  # a learner in a class tells it which page they opened
    class_sidebar()
    page.run()
    sidebar_progress()  # after the page, so an answer just checked is counted at once
