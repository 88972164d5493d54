"""A lab's knowledge check at the end of its page: one call, ``knowledge_check("lab1")``.

Every question is its own form (so typing does not rerun the page) with explicit keys:
``kc_<question id>`` for the answer, ``kc_<question id>_submit`` to check it and
``kc_<question id>_reveal`` for *Show me*. Options are shown in an order of the learner's own
(stable across reruns, different from learner to learner), so "the first one" is no answer.
Grading runs in the buttons' callbacks; the grade stays under the question until the next try.
A learner in a class also tells their class how the try went (nothing at all for one who is not).

Each question is a fragment: a try reruns that question alone, not the lab's page above it. A try
that changes the learner's progress (a first pass, a first reveal) redraws the whole page once,
so the count under the questions and the sidebar's progress show it at once.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from source import web
from source.course import COURSE
from source.learning import measurements, progress
from source.learning.catalogue import AnyQuestion
from source.learning.classroom import answers, feed, membership
from source.learning.measurements import Measurement
from source.learning.questions import Grade, Locked, MultipleChoice, grade, reveal
from source.platform.errors import explain
from source.platform.sandbox import Sandbox
from source.web.fragments import in_fragment_run
from source.web.seats import fragment

#: Session-state key: the last try changed the learner's progress, so the whole page is drawn again.
PROGRESS_CHANGED = "kc_progress_changed"

_SHOW = {
    "correct": (st.success, "✅"),
    "wrong": (st.warning, "🤔"),
    "invalid": (st.info, "✍️"),
    "revealed": (st.info, "👁️"),
}


@dataclass
class Standing:
    """What the learner has done with this lab's questions so far."""

    found: list[Measurement] = field(default_factory=list)
    passed: set[str] = field(default_factory=set)
    revealed: set[str] = field(default_factory=set)


async def _open(sandbox: Sandbox, lab: str, *, visit: bool = True) -> Standing:
    if sandbox.visitor:  # a visitor has no progress yet, and a visit alone writes nothing
        return Standing()
    if visit:
        await progress.visit(sandbox, lab)
    found = await measurements.load(sandbox, lab)
    mine = await progress.load(sandbox)
    return Standing(found, mine.passed.get(lab, set()), mine.revealed.get(lab, set()))


def record_visit(page: str) -> None:
    """Count ``page`` as visited in the learner's progress (quietly: a visit is not worth an error box)."""
    ok, box = web.attempt(web.sandbox)
    if ok and box is not None and not box.visitor:  # a visit alone takes no seat and writes nothing
        try:
            box.run(progress.visit(box, page))
        except Exception as exc:  # noqa: BLE001
            st.caption(f"Your visit could not be saved to your progress: {explain(exc)}")


def knowledge_check(lab: str) -> None:
    """Render ``lab``'s knowledge check and record that the learner visited the lab.

    The questions are a fragment keyed ``kc_<lab>``: a click that records a measurement the questions
    are computed from (a read in Lab 4, an experiment's end in Lab 2) redraws them with its own panels
    (:func:`source.web.seats.redraw`), not the whole page.
    """
    ok, box = web.attempt(web.sandbox)
    if not ok or box is None:
        return
    st.divider()
    st.header("✅ Knowledge check")
    fragment(_questions, key=check_key(lab))(lab)


def check_key(lab: str) -> str:
    """The fragment key of ``lab``'s questions, for a click whose measurement changes them."""
    return f"kc_{lab}"


def _questions(lab: str) -> None:
    """The lab's questions computed from the learner's measurements now, and how many they have answered.

    It asks for the sandbox itself: a fragment's rerun keeps the arguments of the page's run, and the
    learner may have taken a seat since. A visit is recorded by the page's run only.
    """
    ok, box = web.attempt(web.sandbox)
    if not ok or box is None:
        return
    try:
        standing = box.run(_open(box, lab, visit=not in_fragment_run()))
    except Exception as exc:  # noqa: BLE001 - the questions still work; only saving progress does not
        st.warning(f"Your progress could not be read, so it will not be saved this time: {explain(exc)}")
        standing = Standing()
    questions = COURSE.questions_for(lab, standing.found)
    if not questions:
        st.info("This lab's knowledge check is on its way.")
        return
    st.caption(
        f"Objective: **{questions[0].objective}**. A wrong answer gets a hint; the answer shows after a second "
        "wrong try or when you press *Show me*, and a question whose answer was shown does not count as passed. "
        "Questions with numbers are computed from your own measurements on this page."
    )
    for number, question in enumerate(questions, 1):
        _question(box, question, number, standing)
    ids = {q.id for q in questions}
    st.caption(
        f"You have answered {len(standing.passed & ids)} of {len(questions)} correctly so far"
        + (f"; {len(standing.revealed & ids)} answer(s) shown." if standing.revealed & ids else ".")
    )


def shuffled(question: MultipleChoice, sandbox: Sandbox) -> list[Any]:
    """The options in this learner's own order: the same on every rerun, not the same for every learner."""
    options = list(question.options)
    random.Random(f"{sandbox.id}:{question.id}").shuffle(options)  # noqa: S311 - an order, not a secret
    return options


@fragment
def _question(box: Sandbox, question: AnyQuestion, number: int, standing: Standing) -> None:
    """One question, a fragment: a try reruns only this, unless it changed the learner's progress."""
    if st.session_state.pop(PROGRESS_CHANGED, False) and in_fragment_run():
        st.rerun(scope="app")  # the count under the questions and the sidebar's progress move too
    _render(box, question, number, standing)


def _render(box: Sandbox, question: AnyQuestion, number: int, standing: Standing) -> None:
    """Draw one question, its buttons and its last grade."""
    key = f"kc_{question.id}"
    if isinstance(question, Locked):
        st.markdown(f"**{number}. {question.prompt}**")
        st.info(f"🔒 Unlocks when you {question.unlock_by}")
        return
    mark = " ✅" if question.id in standing.passed else (" 👁️" if question.id in standing.revealed else "")
    with st.form(f"{key}_form"):
        st.markdown(f"**{number}.** {question.prompt}{mark}")
        if isinstance(question, MultipleChoice):
            texts = {o.id: o.text for o in shuffled(question, box)}
            st.radio(
                "Your answer",
                list(texts),
                index=None,
                format_func=texts.__getitem__,
                key=key,
                label_visibility="collapsed",
            )
        else:
            st.text_input(
                f"Your answer, in {question.unit}",
                key=key,
                max_chars=40,
                help=f"A number; accepted {question.tolerance_text()} of the value computed from your run.",
            )
            st.caption(f"Computed from {question.measured_from}; accepted {question.tolerance_text()}.")
        left, right = st.columns([1, 1])
        left.form_submit_button("Check my answer", key=f"{key}_submit", on_click=_check, args=(box, question, standing))
        right.form_submit_button(
            "Show me",
            key=f"{key}_reveal",
            on_click=_show,
            args=(box, question, standing),
            help="Shows the answer and why; the question then counts as revealed, not passed.",
        )
    if (shown := st.session_state.get(f"{key}_grade")) is not None:
        result = Grade.model_validate(shown)
        show, icon = _SHOW[result.status]
        show(result.message, icon=icon)
        if note := st.session_state.get(f"{key}_note"):
            st.caption(note)


def _check(box: Sandbox, question: AnyQuestion, standing: Standing) -> None:
    """The *Check my answer* callback: grade this try, and keep a pass or a reveal in the learner's progress."""
    key = f"kc_{question.id}"
    answer = st.session_state.get(key)
    first = grade(question, answer)
    st.session_state.pop(f"{key}_note", None)
    if first.status == "invalid":  # a malformed answer is no try (and takes no seat)
        st.session_state[f"{key}_grade"] = first.model_dump()
        return
    try:
        box = _own(box, key)  # an answer is an action: a visitor's first one takes a seat, so it counts in progress
    except _NotSeated:
        st.session_state[f"{key}_grade"] = grade(question, answer, tries=1).model_dump()
        return
    try:
        tries = box.run(progress.count_try(box, question.id))
    except Exception as exc:  # noqa: BLE001 - graded all the same, as a first try
        tries = 1
        st.session_state[f"{key}_note"] = f"Your answer could not be saved to your progress: {explain(exc)}"
    result = grade(question, answer, tries=tries)
    st.session_state[f"{key}_grade"] = result.model_dump()
    if (kind := answers.kind_of(result.status)) is not None:
        _tell_class(box, question, kind, answers.wrong_label(question, answer) if kind != "right" else "")
    if result.status == "correct":
        counted = _save(
            box,
            key,
            progress.pass_check(box, question.lab, question.id),
            "This one's answer was shown earlier, so it counts as revealed, not passed.",
        )
        _note_change(counted and question.id not in standing.passed)
    elif result.status == "revealed":
        _save(box, key, progress.reveal_check(box, question.lab, question.id), None)
        _note_change(question.id not in standing.revealed)


def _show(box: Sandbox, question: AnyQuestion, standing: Standing) -> None:
    """The *Show me* callback: the answer and why, and the question recorded as revealed."""
    key = f"kc_{question.id}"
    st.session_state[f"{key}_grade"] = reveal(question).model_dump()
    st.session_state.pop(f"{key}_note", None)
    try:
        box = _own(box, key)
    except _NotSeated:
        return
    _save(box, key, progress.reveal_check(box, question.lab, question.id), None)
    _note_change(question.id not in standing.revealed)
    _tell_class(box, question, "shown", "")


def _note_change(changed: bool) -> None:
    """A pass or a reveal the page does not show yet: the question's fragment redraws the whole page."""
    if changed:
        st.session_state[PROGRESS_CHANGED] = True


def _own(box: Sandbox, key: str) -> Sandbox:
    """The learner's own sandbox for an answer drawn from the visitor's: their seat, taken now.

    If no seat can be had (the lab is full), the answer is graded all the same, nothing is written, and a
    note under the grade says why it is not in their progress.
    """
    if not box.visitor:
        return box
    try:
        seated = web.sandbox()
        _note_change(True)  # the page was drawn for a visitor: redraw it all, with the seat just taken
        return seated
    except Exception as exc:
        st.session_state[f"{key}_note"] = f"Your answer could not be saved to your progress: {explain(exc)}"
        raise _NotSeated from exc


class _NotSeated(Exception):
    """No seat for this answer: it is graded, and nothing is written."""


def _tell_class(box: Sandbox, question: AnyQuestion, kind: answers.Kind, label: str) -> None:
    """The learner's class hears of this try (a learner in no class: no call at all; never an error box)."""
    if membership.may_be_seated(box):
        with contextlib.suppress(Exception):
            box.run(feed.answered(box, question.id, question.lab, kind, label))


def _save(box: Sandbox, key: str, saving: Any, refused: str | None) -> bool:
    """Write a pass or a reveal; a pass that did not count (or could not be written) is said under the grade.

    True when it was written and counts.
    """
    try:
        counted = box.run(saving)
    except Exception as exc:  # noqa: BLE001 - the grade stands; only the progress is not saved
        st.session_state[f"{key}_note"] = f"Your answer could not be saved to your progress: {explain(exc)}"
        return False
    if counted is False and refused:
        st.session_state[f"{key}_note"] = refused
    return counted is not False
