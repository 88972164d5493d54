"""The instructor page's panels: reset, seed (in the background, with progress), presets, class view, CSV export."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from source import web
from source.course import COURSE
from source.learning import class_view, measurements, presets
from source.learning.seed import MAX_EVENTS, MAX_USERS, SeedReport, parse_request
from source.learning.seed_job import SeedRunner
from source.platform.sandbox import Sandbox
from source.web.actions import button
from source.web.confirm import confirmed_button
from source.web.jobs import job_section, start_button

#: How long one demo may take before the page stops waiting for it (seconds).
PRESET_TIMEOUT_S = 120.0


def reset_panel(box: Sandbox) -> None:
    confirmed_button(
        st,
        "Reset my sandbox",
        key="ins_reset",
        question="Reset empties your users, scores, events, Redis keys and progress. This cannot be undone.",
        yes="Yes, reset",
        action=web.reset,
        help="Asks first, then empties your database and Redis keys, progress included.",
    )


def seed_panel(box: Sandbox) -> None:
    """The seed form; the seed itself runs in the background of the sandbox, with live progress and Stop."""
    with st.form("ins_seed_form"):
        c = st.columns(4)
        # No min/max on the widgets: the seeder checks the bounds and says which one was broken. Float inputs
        # shown as whole numbers, because a whole-number input raises on a forged infinity before any check.
        c[0].number_input("Users", value=200.0, step=100.0, key="ins_users", help=f"1 to {MAX_USERS:,}.", format="%.0f")
        c[1].number_input("Assessments each", value=2.0, step=1.0, key="ins_assessments", help="0 to 5.", format="%.0f")
        c[2].number_input("AI-R scores each", value=5.0, step=1.0, key="ins_scores", help="0 to 10.", format="%.0f")
        c[3].number_input(
            "Pending events",
            value=0.0,
            step=500.0,
            key="ins_pending",
            help=f"0 to {MAX_EVENTS:,}, for the outbox.",
            format="%.0f",
        )
        start_button(
            st,
            "Seed",
            key="ins_seed",
            runner=SeedRunner,
            start=_start_seed,
            form=True,
            help="Runs in the background of your sandbox: you may leave this page and come back to its result.",
        )
    job_section(SeedRunner.of(box), key="ins_seed", start_key="ins_seed", show=_show_seed, hide_previous=False)


def _start_seed(runner: SeedRunner) -> None:
    """The Seed button's callback: check the sizes, then start the seed in the background."""
    state = st.session_state
    request = parse_request(
        users=state["ins_users"],
        assessments_per_user=state["ins_assessments"],
        scores_per_user=state["ins_scores"],
        pending_events=state["ins_pending"],
    )
    runner.start(request)


def _show_seed(report: SeedReport) -> None:
    st.success(
        f"Seeded {report.users:,} users, {report.assessments:,} assessments, {report.scores:,} scores and "
        f"{report.events:,} events in {report.ms:,.0f} ms."
    )


def presets_panel(box: Sandbox) -> None:
    """One button per demo; each runs in its callback and says what is now there, under itself."""
    for preset in COURSE.presets:
        button(st, preset.title, key=f"ins_preset_{preset.id}", action=_preset(preset))
        st.caption(preset.explanation)


def _preset(preset: presets.Preset) -> Callable[[], str]:
    def run() -> str:
        # In the click's callback: the instructor's own sandbox (their first action takes a seat).
        return f"**{preset.title}**: {web.sandbox().run(preset.run(), timeout=PRESET_TIMEOUT_S)}"

    return run


def class_view_panel(box: Sandbox) -> None:
    ok, found = web.attempt(lambda: box.run(measurements.load(box)))
    if not ok or found is None:
        return
    if not found:
        st.info("No measurements yet: run a preset or an experiment in any lab, and it shows up here.")
        return
    st.download_button(
        "Download all measurements (CSV)",
        measurements.to_csv(found),
        file_name="persistence-lab-measurements.csv",
        mime="text/csv",
        key="ins_csv",
    )
    for lab in dict.fromkeys(m.lab for m in found):
        title = COURSE.labs[lab].title if lab in COURSE.labs else lab.capitalize()
        st.subheader(title)
        table = class_view.runs_table(found, lab)
        st.dataframe(table, hide_index=True, key=f"ins_table_{lab}")
        if len(table) > 1:
            st.plotly_chart(class_view.lab_figure(found, lab), key=f"ins_chart_{lab}", theme=None)
        else:
            st.caption("One run so far: a second one draws the plot.")
