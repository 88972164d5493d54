"""The course around the labs: the story and objectives on the home page, progress in the sidebar."""

from __future__ import annotations

from typing import Any

import streamlit as st

from source import web
from source.course import COURSE
from source.learning import overview
from source.learning.overview import Overview
from source.platform.errors import explain
from source.web import classroom

STORY = """
**InnovateAI** builds an assessment platform: people take adaptive **assessments**, an AI model turns
their answers into **AI-R scores**, and other services (recommendations, reporting, notifications)
must hear about every score as a **domain event**. The platform has outgrown its first database code:
pages wait on slow queries, the database runs out of connections at peak time, the same profile is
read thousands of times a minute, and events get lost when the message broker hiccups.

You are the engineer asked to fix the data layer. Each lab below hands you one of those problems on a
real database and a real Redis of your own, lets you break it, and asks you to prove the fix with
numbers you measured yourself.
"""


#: The standing the page read during this run, kept for the sidebar drawn after it (one read per rerun).
READ_THIS_RUN_KEY = "plab_progress_read_this_run"


def begin_run(page: Any = None) -> None:
    """Forget a standing read in an earlier run (``app.py`` calls this before the page runs).

    A run cut short between the page's read and the sidebar's would otherwise leave it for
    the next run, which may follow a checked answer. A learner in a class also tells their
    class which ``page`` they are on (a learner in no class: nothing is sent).
    """
    st.session_state.pop(READ_THIS_RUN_KEY, None)
    if page is not None:
        classroom.note_visit(str(page.title))


def _overview() -> Overview | None:
    """The learner's standing, read from the sandbox the sidebar already opened.

    Progress never opens a sandbox itself: a learner without one (a visitor, or one the lab had no
    seat for) is shown the standing of the empty visitor's view: nothing done yet.
    """
    try:
        b = web.backends()
        box, _ = b.sandboxes.find(st.session_state.get(web.TOKEN_KEY))
        if box is None:  # a visitor: their standing (nothing yet) is read from the empty, read-only view
            box = b.visitor()
        return box.run(overview.load(box, COURSE))
    except Exception as exc:  # noqa: BLE001 - progress is a nicety; the page goes on without it
        st.caption(f"Your progress is not available right now: {explain(exc)}")
        return None


def _lab_line(mine: Overview | None, lab_id: str) -> str:
    if mine is None:
        return ""
    standing = mine.standing(lab_id)
    if lab_id == "create":
        return "done ✅" if mine.exercise else ("visited" if standing.visited else "not started")
    parts = ["visited" if standing.visited else "not visited yet"]
    if standing.checks:
        parts.append(f"{standing.passed}/{standing.checks} checks")
    return " · ".join(parts)


def objectives_and_progress() -> None:
    """The home page's story, the five objectives linked to their labs, and the learner's progress."""
    st.header("The story")
    st.markdown(STORY)
    mine = _overview()
    st.session_state[READ_THIS_RUN_KEY] = (mine,)  # the sidebar, drawn after this page, shows the same read
    st.header("Five objectives, and where you practise each")
    for objective in COURSE.objectives:
        with st.container(border=True):
            st.markdown(f"**{objective.level}** · {objective.goal}")
            cols = st.columns(len(objective.labs))
            for col, lab_id in zip(cols, objective.labs, strict=True):
                lab = COURSE.labs[lab_id]
                col.page_link(lab.page, label=lab.title, icon=lab.icon)
                if line := _lab_line(mine, lab_id):
                    col.caption(line)
    if mine is not None:
        st.header("Your progress")
        c = st.columns(3)
        c[0].metric("Knowledge checks passed", f"{mine.passed} / {mine.checks}")
        c[1].metric("Labs visited", f"{mine.visited} / {len(mine.labs)}")
        c[2].metric("Create exercise", "done" if mine.exercise else "to do")
        if mine.exercise:
            st.caption(f"Your passing design: {mine.exercise}")
        if web.seat() is None:
            st.caption(
                "Nothing kept yet: your first action (an answer, a click in a lab) takes a seat, a sandbox "
                "of your own, which keeps your progress."
            )
        else:
            st.caption("Kept in your sandbox, so it survives a refresh; *Reset my sandbox* starts it afresh.")


def sidebar_progress() -> None:
    """Checks passed, labs visited and the exercise, in the sidebar."""
    with st.sidebar:
        # The home page has read it in this run already; every other page leaves the read to the sidebar,
        # after the page, so that an answer just checked is counted at once.
        read = st.session_state.pop(READ_THIS_RUN_KEY, None)
        mine = read[0] if read is not None else _overview()
        if mine is None:
            return
        st.subheader("Your progress")
        st.progress(mine.passed / mine.checks if mine.checks else 0.0)
        exercise = "done ✅" if mine.exercise else "to do"
        st.caption(
            f"Knowledge checks passed: {mine.passed}/{mine.checks} · labs visited: {mine.visited}/{len(mine.labs)} · "
            f"Create exercise: {exercise}"
        )
