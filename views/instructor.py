"""Instructor tools: class mode (a class, its live dashboard, the projector) and the instructor's own sandbox."""

import streamlit as st

from source import web
from source.course import COURSE
from source.learning import class_view, measurements, seed, seed_job
from source.learning.classroom import dashboard, feed, figures
from source.web import classroom, instructor

st.title("🎓 Instructor")
st.header("Class mode")
st.caption(
    "Start a class, put its join code and QR code on the projector, and follow your learners live: who is where, "
    "their progress, every knowledge-check question's answers and the class's own measurements side by side."
)
if classroom.class_mode_sections():  # the projector shows the class and nothing of your sandbox
    st.stop()
web.show_source(feed.answered, dashboard.snapshot, figures.lab_figure, label="How the class is kept and read")

st.markdown(
    "The tools below act on **your own sandbox**, like the labs do: seeding or resetting never touches a learner's "
    "data."
)
box = web.page_sandbox()  # this learner's sandbox, for every call below

st.header("Start afresh")
instructor.reset_panel(box)

st.header("Seed a realistic data set")
st.caption(
    "Users with plausible profiles, their assessments and AI-R scores, and the domain events they would have "
    f"announced. At most {seed.MAX_USERS:,} users and {seed.MAX_EVENTS:,} extra pending events per seed. It runs "
    f"in the background of your sandbox and is stopped after {seed_job.SEED_TIME_LIMIT_S:g} s."
)
instructor.seed_panel(box)
web.show_source(seed.seed, seed_job.SeedRunner, label="The code that seeds")

st.header("One-click demos")
st.caption("Each runs the lab's own code in your sandbox and records what it measured (below).")
instructor.presets_panel(box)
web.show_source(*(p.run for p in COURSE.presets), label="The code behind the presets")
classroom.example_panel(box)  # the Create exercise's answer: only once class mode is unlocked

st.header("Your own measurements, lab by lab")
st.caption(
    "What the labs and the demos recorded as they ran in your sandbox (the latest 2,000 values). Your class's "
    "measurements are on its dashboard, under Class mode."
)
instructor.class_view_panel(box)
web.show_source(measurements.record_run, class_view.runs_table, label="How measurements are kept and tabled")
