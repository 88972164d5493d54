"""Background jobs on a page: a start button, live progress with Stop, and the last result.

The work itself runs on the app's event loop (:mod:`source.platform.jobs`), never in the page
script, so a click elsewhere or a visit to another page cannot cut it short. A page draws
:func:`start_button` (its callback starts the job) and :func:`job_section`: while the job runs,
a fragment that redraws its progress bar and Stop button by itself; once it has ended, the
last result, or why there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from source.platform.jobs import Job, JobRunner
from source.web import backends, sandbox
from source.web.actions import act, show_outcome
from source.web.fragments import in_fragment_run
from source.web.seats import fragment, redraw

T = TypeVar("T")
R = TypeVar("R", bound=JobRunner[Any])

#: How often a running job's progress is redrawn (seconds).
REDRAW_EVERY_S = 0.5


def start_button(  # noqa: PLR0913 - Streamlit's own arguments, plus the job
    where: Any,
    label: str,
    *,
    key: str,
    runner: type[R],
    start: Callable[[R], object],
    help: str,
    form: bool = False,
) -> None:
    """A primary button whose callback starts a job with ``start(runner)``; disabled while one runs.

    A refusal (a bad input, a job already running) is kept for :func:`job_section` to show.
    """
    running = runner.of(sandbox()).running() is not None

    def begin() -> None:
        start(runner.of(sandbox()))

    draw = where.form_submit_button if form else where.button
    draw(
        label,
        key=key,
        type="primary",
        disabled=running,
        on_click=act,
        args=(f"{key}_outcome", begin),
        help="Disabled while it runs: wait for it, or press Stop." if running else help,
    )


def _elsewhere(runner: JobRunner[Any]) -> None:
    """A run another of the lab's processes had going in this sandbox: still running there, or interrupted.

    An interrupted one becomes this runner's last outcome, shown like any job that was stopped.
    """
    durable = backends().durable
    if durable is None or runner.running() is not None:
        return
    sentence, interrupted = durable.job_elsewhere(runner.sandbox, runner.service)
    if sentence is None:
        return
    if interrupted:
        runner.last_note, runner.last_failed = sentence, True
    else:
        st.info(sentence, icon="🔁")


def job_section(
    runner: JobRunner[T],
    *,
    key: str,
    show: Callable[[T], None],
    start_key: str | None = None,
    hide_previous: bool = True,
    redraw_keys: tuple[str, ...] = (),
) -> None:
    """The job's live progress while it runs; afterwards, why it ended early (if it did) and its result.

    ``start_key`` names the start button whose refusals are shown here. With ``hide_previous``
    the last result is hidden while a new job runs, so no stale figures stand beside the bar.
    ``redraw_keys``: the keyed fragments that show the job's result (this section's among them); at
    the job's end only they are drawn again, not the whole page.
    """
    if start_key is not None:
        show_outcome(f"{start_key}_outcome")
    _elsewhere(runner)
    if runner.running() is not None:
        live_progress(runner.running, grace_s=runner.grace_s, key=f"{key}_stop", redraw_keys=redraw_keys)
        if runner.last is not None and hide_previous:
            st.caption("Your previous result is hidden while this runs; the new one replaces it when it ends.")
            return
    elif runner.last_note and runner.last_failed:
        st.warning(runner.last_note, icon="⚠️")
    elif runner.last_note:
        st.info(runner.last_note, icon="⏹️")
    if runner.last is not None:
        show(runner.last)


@fragment(run_every=REDRAW_EVERY_S)
def live_progress(
    find: Callable[[], Job[Any] | None], *, key: str, grace_s: float = 0.0, redraw_keys: tuple[str, ...] = ()
) -> None:
    """A progress bar and a Stop button for the job ``find()`` returns, redrawn by itself.

    ``find`` is called on every redraw, so the panel follows the job across the learner's other
    clicks. When the job has ended, the panels named by ``redraw_keys`` rerun to show its result
    (they stop drawing this one, so its timer stops too); without them, the whole page reruns once.
    """
    job = find()
    if job is None or not job.running:
        if redraw_keys and in_fragment_run():
            redraw(*redraw_keys)
        st.rerun(scope="app")
    bar, stop = st.columns([5, 1], vertical_alignment="center")
    bar.progress(job.fraction, text=job.describe())
    if stop.button("Stop", key=key, help="Stops it now: everything it holds is given back.", width="stretch"):
        job.stop(grace_s)
        bar.caption(job.stopping_text)
