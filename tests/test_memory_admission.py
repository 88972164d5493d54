"""Admission by memory: a sandbox or a heavy job that would pass ``PLAB_MEMORY_MB`` is refused with a sentence.

No test here puts the machine under memory pressure: the process's resident memory is read
through a function the test hands in, so each test says exactly how full the process is.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from source import Settings, web
from source.platform.admission import (
    JOB_FLOOR_MB,
    SANDBOX_FLOOR_MB,
    SETTLING_S,
    MemoryAdmission,
    OutOfMemoryBudget,
)
from source.platform.backends import Backends
from source.platform.orphans import SQLITE_FOLDER_PREFIX
from tests.conftest import assert_no_exception, open_app
from tests.test_lab3_page import click, errors, stop_buttons


class FakeMemory:
    """The process's RSS as the test sets it (MB), and how many sandboxes it holds."""

    def __init__(self, rss_mb: float, live: int = 0) -> None:
        self.rss_mb = rss_mb
        self.live = live

        self.now = 0.0

    def admission(self, budget_mb: float) -> MemoryAdmission:
        return MemoryAdmission(budget_mb, live=lambda: self.live, read_rss=lambda: self.rss_mb, clock=lambda: self.now)


def test_a_sandbox_costs_the_average_growth_so_far_never_less_than_the_floor() -> None:
    memory = FakeMemory(200)
    admission = memory.admission(600)
    assert admission.sandbox_cost_mb() == SANDBOX_FLOOR_MB  # nothing measured yet
    memory.rss_mb, memory.live = 230, 10  # ten learners grew the process by 30 MB
    assert admission.sandbox_cost_mb() == pytest.approx(3.0)
    memory.rss_mb = 202
    assert admission.sandbox_cost_mb() == SANDBOX_FLOOR_MB


def test_what_the_first_pages_imported_once_is_not_charged_to_every_later_learner() -> None:
    memory = FakeMemory(200)
    admission = memory.admission(10_000)
    for live in range(13):  # the first learner's pages import 100 MB of libraries; each later one adds 2 MB
        memory.live, memory.rss_mb = live, 200 if live == 0 else 300 + 2 * live
        admission.admit_sandbox()
    memory.live, memory.rss_mb = 13, 326
    assert admission.sandbox_cost_mb() == pytest.approx(2.0)  # the growth over the latest ten sandboxes


def test_a_class_arriving_together_after_visitors_drew_the_pages_is_let_in() -> None:
    """Visitors' pages import 80 MB of libraries before anyone takes a seat: no learner pays for them."""
    memory = FakeMemory(150)  # the backends are built
    admission = memory.admission(600)
    memory.rss_mb = 230  # thirty visitors drew Lab 1: the page's libraries are in
    admission.admit_sandbox()  # the first learner clicks; each sandbox grows the process by 2 MB
    memory.live, memory.rss_mb = 1, 232
    for _ in range(29):  # then everyone else, before any of their sandboxes is open
        admission.admit_sandbox()
    memory.live, memory.rss_mb = 30, 290
    assert admission.refused_sandboxes == 0
    assert admission.sandbox_cost_mb() == pytest.approx(2.0)


def test_with_every_sandbox_released_the_memory_kept_is_the_new_base() -> None:
    memory = FakeMemory(150)
    admission = memory.admission(600)
    for arrived in range(20):
        admission.admit_sandbox()
        memory.live, memory.rss_mb = arrived + 1, 200 + 3 * arrived
    memory.live = 0  # all released; the allocator keeps its 257 MB for reuse
    admission.admit_sandbox()
    memory.live, memory.rss_mb = 1, 260
    assert admission.sandbox_cost_mb() == pytest.approx(3.0)


def test_a_new_sandbox_that_would_pass_the_budget_is_refused_with_one_sentence() -> None:
    memory = FakeMemory(200)
    admission = memory.admission(600)
    memory.rss_mb, memory.live = 596, 132  # 3 MB a learner so far: a 133rd needs 3 MB, and 599 fits
    admission.admit_sandbox()
    memory.rss_mb = 598  # 598 + 3 passes 600
    with pytest.raises(OutOfMemoryBudget) as refused:
        admission.admit_sandbox()
    said = str(refused.value)
    assert said.startswith("The lab is full for now: its server is using 598 MB of its 600 MB memory budget")
    assert "needs about 3.0 MB more" in said
    assert said.endswith("try again in a few minutes.")
    assert said.count(". ") == 0, "one sentence"
    assert admission.refused_sandboxes == 1


def test_sandboxes_opened_together_hold_room_for_each_other_until_they_settle() -> None:
    memory = FakeMemory(200)
    admission = memory.admission(600)
    memory.rss_mb, memory.live = 590, 130  # 3 MB a learner so far
    admission.admit_sandbox()  # 590 + 3
    admission.admit_sandbox()  # 590 + 3 + 3: the first one has not grown yet
    admission.admit_sandbox()  # 590 + 9
    with pytest.raises(OutOfMemoryBudget, match=r"needs about 3\.0 MB more \(12 MB with the 3 who just arrived\)"):
        admission.admit_sandbox()  # 590 + 12 would pass 600, although the RSS has not moved
    memory.now += SETTLING_S + 1  # they have settled: what they cost is in the RSS now
    memory.rss_mb, memory.live = 592, 133
    admission.admit_sandbox()


def test_a_heavy_job_holds_its_room_while_it_runs_and_is_measured_when_it_ends() -> None:
    memory = FakeMemory(500)
    admission = memory.admission(600)
    first = admission.admit_job("lab3.seed")
    assert admission.reserved_mb == JOB_FLOOR_MB
    memory.rss_mb = 530  # the first seed grew the process by 30 MB while it ran
    admission.give_back(first)
    assert admission.reserved_mb == 0
    assert admission.job_cost_mb("lab3.seed") == pytest.approx(30)
    assert admission.job_cost_mb("lab4.strategies") == JOB_FLOOR_MB  # another kind: not measured yet
    memory.rss_mb = 560  # 560 + 30 fits once...
    running = admission.admit_job("lab3.seed")
    with pytest.raises(OutOfMemoryBudget) as refused:  # ...but not twice: the first one holds its 30 MB
        admission.admit_job("lab3.seed", "Seeding")
    said = str(refused.value)
    assert said.startswith("Seeding was not started: the lab's server is using 560 MB of its 600 MB memory budget")
    assert "(30 MB held for runs under way)" in said
    assert "needs about 30 MB" in said
    admission.give_back(running)
    admission.give_back(running)  # a second give-back (two callbacks) changes nothing
    assert admission.reserved_mb == 0


def test_heavy_work_outside_a_job_is_refused_the_same_way() -> None:
    memory = FakeMemory(595)
    admission = memory.admission(600)
    with (
        pytest.raises(OutOfMemoryBudget, match=r"^Writing them was not started: the lab's server is using 595 MB"),
        admission.heavy("outbox.bulk_writes", "Writing them"),
    ):
        pytest.fail("the work must not run")
    assert admission.reserved_mb == 0


@pytest.fixture
def embedded_backends() -> Iterator[Backends]:
    b = Backends.build(Settings())
    try:
        yield b
    finally:
        b.close()
        b.runtime.stop()


def test_opening_a_sandbox_past_the_budget_makes_nothing(embedded_backends: Backends) -> None:
    memory = FakeMemory(590, live=0)
    embedded_backends.admission = memory.admission(600)
    memory.rss_mb = 599.5  # half a megabyte left: less than the 1 MB floor
    folders = set(Path(tempfile.gettempdir()).glob(SQLITE_FOLDER_PREFIX + "*"))
    with pytest.raises(OutOfMemoryBudget, match="no new sandbox can open"):
        embedded_backends.open_sandbox()
    assert embedded_backends.open_sandboxes == 0
    assert set(Path(tempfile.gettempdir()).glob(SQLITE_FOLDER_PREFIX + "*")) == folders, "no SQLite file made"
    memory.rss_mb = 590
    box = embedded_backends.open_sandbox()  # room again: the next learner gets in
    assert not box.closed


def test_a_seed_refused_for_memory_says_so_on_the_page(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app("views/lab3_repository.py")
    memory = FakeMemory(595, live=1)
    monkeypatch.setattr(web.backends(), "admission", memory.admission(600))
    at.number_input(key="lab3_n").set_value(100)
    click(at, "lab3_seed")
    assert_no_exception(at)
    assert "was not started: the lab's server is using 595 MB of its 600 MB memory budget" in errors(at)
    assert not stop_buttons(at, "lab3_seed"), "nothing runs"


@pytest.mark.parametrize(
    ("raw", "expected", "note"),
    [
        ("450", 450.0, None),
        ("1024.5", 1024.5, None),
        ("100", 600.0, "PLAB_MEMORY_MB='100' is below the 256 MB the app itself needs"),
        ("lots", 600.0, "PLAB_MEMORY_MB='lots' is not a positive number; using 600.0."),
        ("-5", 600.0, "is not a positive number"),
        ("inf", 600.0, "is not a positive number"),
        ("nan", 600.0, "is not a positive number"),
    ],
)
def test_the_memory_budget_setting_is_validated(
    raw: str, expected: float, note: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAB_MEMORY_MB", raw)
    settings = Settings.load()
    assert settings.memory_mb == expected
    if note is None:
        assert not any("PLAB_MEMORY_MB" in n for n in settings.notes)
    else:
        assert any(note in n for n in settings.notes), settings.notes


def test_the_memory_budget_comes_from_secrets_too_and_defaults_under_the_smallest_cloud_box(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PLAB_MEMORY_MB", raising=False)
    assert Settings.load().memory_mb == 600.0 < 690
    assert Settings.load({"PLAB_MEMORY_MB": "500"}).memory_mb == 500.0
