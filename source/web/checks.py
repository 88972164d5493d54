"""A lab's knowledge check at the end of its page: one call, ``knowledge_check("lab1")``.

Every question is its own form (so typing does not rerun the page) with explicit keys:
``kc_<question id>`` for the answer, ``kc_<question id>_submit`` for the button. The grade
stays under the question until the learner answers again.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from source import web
from source.course import COURSE
from source.learning import measurements, progress
from source.learning.measurements import Measurement
from source.learning.questions import Grade, Locked, MultipleChoice, Numeric, grade
from source.platform.errors import explain
from source.platform.sandbox import Sandbox

_SHOW = {"correct": (st.success, "✅"), "wrong": (st.warning, "🤔"), "invalid": (st.info, "✍️")}


async def _open(sandbox: Sandbox, lab: str) -> tuple[list[Measurement], set[str]]:
    await progress.visit(sandbox, lab)
    found = await measurements.load(sandbox, lab)
    mine = await progress.load(sandbox)
    return found, mine.passed.get(lab, set())


def record_visit(page: str) -> None:
    """Count ``page`` as visited in the learner's progress (quietly: a visit is not worth an error box)."""
    ok, box = web.attempt(web.sandbox)
    if ok and box is not None:
        try:
            box.run(progress.visit(box, page))
        except Exception as exc:  # noqa: BLE001
            st.caption(f"Your visit could not be saved to your progress: {explain(exc)}")


def knowledge_check(lab: str) -> None:
    """Render ``lab``'s knowledge check and record that the learner visited the lab."""
    ok, box = web.attempt(web.sandbox)
    if not ok or box is None:
        return
    st.divider()
    st.header("✅ Knowledge check")
    try:
        found, passed = box.run(_open(box, lab))
    except Exception as exc:  # noqa: BLE001 - the questions still work; only saving progress does not
        st.warning(f"Your progress could not be read, so it will not be saved this time: {explain(exc)}")
        found, passed = [], set()
    questions = COURSE.questions_for(lab, found)
    if not questions:
        st.info("This lab's knowledge check is on its way.")
        return
    objective = questions[0].objective
    summary = st.empty()  # filled in after the answers of this run are graded
    for number, question in enumerate(questions, 1):
        if _render(box, question, number, question.id in passed):
            passed = passed | {question.id}
    summary.caption(
        f"Objective: **{objective}**. Every answer gets an explanation; questions with numbers are computed from "
        f"your own measurements on this page. You have answered {len(passed & {q.id for q in questions})} of "
        f"{len(questions)} correctly so far."
    )


def _render(box: Sandbox, question: MultipleChoice | Numeric | Locked, number: int, passed_before: bool) -> bool:
    """Draw one question and its last grade; True when it was answered correctly in this run."""
    key = f"kc_{question.id}"
    if isinstance(question, Locked):
        st.markdown(f"**{number}. {question.prompt}**")
        st.info(f"🔒 Unlocks when you {question.unlock_by}")
        return False
    answer: Any
    with st.form(f"{key}_form"):
        st.markdown(f"**{number}.** {question.prompt}" + (" ✅" if passed_before else ""))
        if isinstance(question, MultipleChoice):
            texts = {o.id: o.text for o in question.options}
            answer = st.radio(
                "Your answer",
                list(texts),
                index=None,
                format_func=texts.__getitem__,
                key=key,
                label_visibility="collapsed",
            )
        else:
            answer = st.text_input(
                f"Your answer, in {question.unit}",
                key=key,
                max_chars=40,
                help=f"A number; accepted {question.tolerance_text()} of the value computed from your run.",
            )
            st.caption(f"Computed from {question.measured_from}; accepted {question.tolerance_text()}.")
        submitted = st.form_submit_button("Check my answer", key=f"{key}_submit")
    passed_now = False
    if submitted:
        result = grade(question, answer)
        st.session_state[f"{key}_grade"] = result.model_dump()
        if result.passed:
            passed_now, _ = web.attempt(lambda: box.run(progress.pass_check(box, question.lab, question.id)))
            if not passed_now:
                st.caption("Your answer is right, but it could not be saved to your progress.")
    shown = st.session_state.get(f"{key}_grade")
    if shown is not None:
        result = Grade.model_validate(shown)
        show, icon = _SHOW[result.status]
        show(result.message, icon=icon)
    return passed_now
