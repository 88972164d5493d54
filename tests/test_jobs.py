"""The one background-job mechanism (source/platform/jobs.py), on both backends: what every long action relies on."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from typing import ClassVar

import pytest

from source import Backends, Sandbox
from source.domain.errors import LabError
from source.platform.jobs import JobRunner, Progress
from source.platform.sandbox import STOP_TIMEOUT_S
from tests.waiting import eventually


class Counting(JobRunner[int]):
    """Counts to ``total``, one step per tick; Stop lets it finish the step it is in."""

    service = "test.counting"
    busy_text = "A count is already running."
    time_limit_s = 30.0


async def count_to(progress: Progress, total: int, tick_s: float = 0.01) -> int:
    progress.begin("Counting", total, "steps")
    while progress.done < total and not progress.stopping:
        await asyncio.sleep(tick_s)
        progress.done += 1
    return progress.done


async def forever(_: Progress) -> int:
    await asyncio.sleep(3600)
    raise AssertionError("never reached")


def ended(runner: JobRunner[int]) -> bool:
    return runner.running() is None


def test_a_job_runs_in_the_background_and_its_result_is_kept(sandbox: Sandbox) -> None:
    runner = Counting.of(sandbox)
    job = runner.launch(lambda p: count_to(p, 20))
    assert runner.running() is job, "the page gets the running job back on its next rerun"
    with pytest.raises(LabError, match="already running"):
        runner.launch(lambda p: count_to(p, 1))
    eventually(lambda: ended(runner), "the count to end")
    assert runner.last == 20
    assert runner.last_note is None
    assert job.progress.describe() == "Counting · 20 of 20 steps"
    assert Counting.of(sandbox) is runner, "a learner who comes back finds the same runner and its result"


def test_stop_cancels_work_that_does_not_watch_it_and_keeps_the_last_result(sandbox: Sandbox) -> None:
    runner = Counting.of(sandbox)
    runner.launch(lambda p: count_to(p, 3))
    eventually(lambda: ended(runner), "a first count to end")
    job = runner.launch(forever)
    assert runner.stop()
    eventually(lambda: ended(runner), "the stopped job to end")
    assert not job.running
    assert runner.last == 3, "the last finished result stays on the page"
    assert runner.last_note == "It was stopped before it finished; the last result is kept."
    assert not runner.last_failed
    assert not runner.stop(), "nothing left to stop"


class Graceful(Counting):
    service = "test.graceful"
    grace_s = 30.0


def test_with_a_grace_period_stop_lets_the_work_end_by_itself(sandbox: Sandbox) -> None:
    runner = Graceful.of(sandbox)
    job = runner.launch(lambda p: count_to(p, 10**6))
    eventually(lambda: job.progress.done > 0, "the count to start")
    runner.stop()
    assert job.describe() == "Stopping…"
    eventually(lambda: ended(runner), "the count to notice Stop and return")
    assert runner.last is not None
    assert 0 < runner.last < 10**6, "it returned what it had, instead of being cancelled"


def test_a_driver_that_answers_stop_with_an_error_of_its_own_still_reads_as_stopped(sandbox: Sandbox) -> None:
    """asyncpg interrupted mid-``executemany`` may hold on until its command timeout and raise TimeoutError."""
    runner = Counting.of(sandbox)

    async def interrupted_statement(progress: Progress) -> int:
        progress.begin("In a statement")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise TimeoutError from None  # what the driver raised instead of the cancellation
        raise AssertionError("never reached")

    job = runner.launch(interrupted_statement)
    eventually(lambda: job.progress.phase == "In a statement", "the statement to start")
    assert runner.stop()
    eventually(lambda: ended(runner), "the stopped job to end")
    assert runner.last_note == "It was stopped before it finished; the last result is kept."
    assert not runner.last_failed, "the learner pressed Stop: nothing failed"


class Hurried(Counting):
    service = "test.hurried"
    time_limit_s = 0.05


def test_a_job_past_its_time_limit_ends_with_a_sentence_and_a_driver_timeout_is_not_mistaken_for_it(
    sandbox: Sandbox,
) -> None:
    runner = Hurried.of(sandbox)
    runner.launch(forever)
    eventually(lambda: ended(runner), "the limit to stop it")
    assert runner.last_note == "It took longer than the lab's 0.05 s limit and was stopped."
    assert runner.last_failed

    async def driver_gave_up(_: Progress) -> int:
        raise TimeoutError

    runner.launch(driver_gave_up)
    eventually(lambda: ended(runner), "the job to fail")
    assert runner.last_note is not None
    assert "limit" not in runner.last_note
    assert "did not answer in time" in runner.last_note


class Capped(Counting):
    """At most one at a time across the whole process: a second sandbox's job waits, then gives up."""

    service = "test.capped"
    at_once = 1
    admission_timeout_s = 0.2
    gate: ClassVar[str | None] = "test-capped-gate"


def test_the_process_wide_cap_makes_other_learners_wait_then_says_why(backends: Backends, sandbox: Sandbox) -> None:
    other = backends.open_sandbox()
    try:
        first = Capped.of(sandbox)
        first.launch(forever)
        second = Capped.of(other)
        waiting = second.launch(forever)
        eventually(lambda: "Waiting for a free slot" in waiting.describe(), "the second job to say it waits")
        eventually(lambda: ended(second), "the second job to give up waiting")
        assert second.last_note == "Other learners' runs are using every place right now; try again in a few seconds."
        first.stop()
        eventually(lambda: ended(first), "the first job to stop")
        second.launch(lambda p: count_to(p, 2))
        eventually(lambda: ended(second), "the second job, admitted now")
        assert second.last == 2
    finally:
        backends.release(other)


def test_a_job_can_be_started_from_the_event_loop_and_a_reset_stops_it(backends: Backends) -> None:
    box = backends.open_sandbox()
    try:
        runner = Counting.of(box)

        async def start_on_the_loop() -> None:
            runner.launch(forever)  # as a lab's coroutine (Lab 5's publisher) starts one

        box.run(start_on_the_loop())
        job = runner.job
        assert job is not None
        eventually(lambda: job.task is not None, "the job to start")
        box.run(box.reset())
        assert not job.running, "the reset waited until the job had ended"
        assert Counting.of(box) is not runner, "the reset sandbox starts with a fresh runner"
    finally:
        backends.release(box)


class BulkWriter(Counting):
    service = "test.bulk"
    writes_in_bulk = True


class OtherBulkWriter(Counting):
    service = "test.bulk.other"
    writes_in_bulk = True


def test_on_sqlite_a_sandboxs_bulk_writers_take_turns(sandbox: Sandbox) -> None:
    first, second = BulkWriter.of(sandbox), OtherBulkWriter.of(sandbox)
    first.launch(forever)
    waiting = second.launch(lambda p: count_to(p, 2))
    if sandbox.dialect != "sqlite":  # PostgreSQL locks rows, not the database: both write at once
        eventually(lambda: ended(second), "the second writer, side by side with the first")
        first.stop()
        return
    eventually(lambda: "Waiting for your sandbox's other job" in waiting.describe(), "the second writer to wait")
    first.stop()
    eventually(lambda: ended(second), "the second writer, once the first is done")
    assert second.last == 2


def test_a_busy_sqlite_file_is_explained_not_reported_raw() -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from source.platform.errors import explain

    said = explain(OperationalError("INSERT …", {}, sqlite3.OperationalError("database is locked")))
    assert said.startswith("Your SQLite database was busy: SQLite writes one transaction at a time")
    assert "database is locked" not in said


def test_every_kind_of_job_stops_within_what_a_reset_or_a_release_waits_for() -> None:
    """A job is cancelled after its grace; the sandbox waits for each stopper ``STOP_TIMEOUT_S``.

    With a grace as long as that wait, the two timers raced and a reset could return while the job it
    had stopped still ran. Every kind of job the course starts is checked, so a new one cannot bring it back.
    """
    import source

    for module in pkgutil.walk_packages(source.__path__, "source."):  # every module that defines kinds of job
        if "job" in module.name.rsplit(".", 1)[-1]:
            importlib.import_module(module.name)

    def kinds(cls: type[JobRunner[object]]) -> list[type[JobRunner[object]]]:
        return [k for sub in cls.__subclasses__() for k in (sub, *kinds(sub))]

    found = {
        k.__module__ + "." + k.__qualname__: k.grace_s for k in kinds(JobRunner) if k.__module__.startswith("source")
    }
    assert len(found) >= 8, f"the course's kinds of job: {sorted(found)}"
    margin = 2.0  # the cancelled work unwinds, and a loaded loop runs its callbacks late
    too_long = {name: grace for name, grace in found.items() if grace + margin > STOP_TIMEOUT_S}
    assert not too_long, f"these jobs' grace leaves the sandbox's {STOP_TIMEOUT_S:g} s wait no room: {too_long}"
