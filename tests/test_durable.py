"""Sandboxes outlive the process: a restart, or another process, finds a learner's link and data again.

Two ``Backends`` in one test are two processes of the lab sharing one store: the same PostgreSQL
and Redis, or the same data folder on the embedded default. Time is never waited for: where a test
needs a sandbox to be old, or a process to have stopped beating, it writes that into the store.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from source import Backends, Sandbox, Settings, web
from source.domain.dtos import UserCreate, parse
from source.labs.pooling.jobs import ExperimentRunner
from source.platform.admission import MemoryAdmission, OutOfMemoryBudget
from source.platform.directory import ENTRY_FILE, Directory, FileDirectory, PostgresDirectory, token_hash
from source.platform.durable import ELSEWHERE_KEY, INTERRUPTED, OPENED_KEY, ORPHAN_GRACE_S
from source.platform.errors import ServiceUnavailable
from source.platform.jobs import JobRunner, Progress
from source.platform.orphans import SCHEMA_COMMENT_PREFIX
from source.services.users import create_user, list_users
from source.web import TOKEN_PARAM
from tests.conftest import (
    BACKEND_KINDS,
    ROOT,
    assert_no_exception,
    check_services,
    configure_app,
    give_seat,
    settings_for,
)
from tests.waiting import eventually

HOURS_13 = 13 * 3600


@pytest.fixture(params=BACKEND_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The settings two processes of the lab share: the services, or one data folder."""
    kind = str(request.param)
    return Settings(data_dir=str(tmp_path / "data")) if kind == "embedded" else settings_for(kind)


@pytest.fixture
def processes(store: Settings) -> Iterator[tuple[Backends, Backends]]:
    """Two processes of the lab on one store, each with its own event loop; stopped afterwards."""
    built: list[Backends] = []
    try:
        for _ in range(2):
            b = Backends.build(store)
            built.append(b)
            if store.database_url:
                check_services(b)
            assert b.durable is not None, "the directory was set up"
        yield built[0], built[1]
    finally:
        for b in built:
            b.close()
            b.runtime.stop()


def linked(b: Backends, email: str) -> tuple[Sandbox, str]:
    """A learner's sandbox with a link, and one user in it."""
    box = b.open_sandbox()
    token = b.sandboxes.issue(box)
    box.run(create_user(parse(UserCreate, email=email, name="Kept")))
    return box, token


def resumed(b: Backends, token: str) -> Sandbox:
    """``token``'s sandbox found through the directory, once its process has marked it opened (in the background)."""
    box, why = b.sandboxes.find(token)
    assert box is not None, why
    eventually(lambda: OPENED_KEY in box.services, "the resumed sandbox to be marked opened")
    return box


def emails(box: Sandbox) -> list[str]:
    return [u.email for u in box.run(list_users())]


def run_sql(b: Backends, statement: str, **params: object) -> None:
    async def go() -> None:
        async with b.admin_engine().begin() as conn:
            await conn.execute(text(statement), params)

    b.runtime.run(go())


def exists(b: Backends, box: Sandbox) -> bool:
    """Whether the sandbox's schema (PostgreSQL) or folder (SQLite) is still there."""
    if box.schema is None:
        return box.directory is not None and (box.directory / "lab.db").exists()

    async def go() -> bool:
        async with b.admin_engine().connect() as conn:
            found = await conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": box.schema})
            return found.first() is not None

    return b.runtime.run(go())


def age_entry(b: Backends, box: Sandbox, *, created_s: float = 0.0, idle_s: float = 0.0) -> None:
    """Make the directory say ``box`` was made ``created_s`` ago and last used ``idle_s`` ago."""
    directory = b.durable.directory if b.durable else None
    if isinstance(directory, PostgresDirectory):
        run_sql(
            b,
            "UPDATE persistence_lab.sandboxes SET created = now() - make_interval(secs => :c), "
            "last_active = now() - make_interval(secs => :i) WHERE sandbox_id = :id",
            c=float(created_s),
            i=float(idle_s),
            id=box.id,
        )
        comment = f"{SCHEMA_COMMENT_PREFIX}2020-01-01T00:00:00+00:00"  # made long ago, as the old sweep reads it
        run_sql(b, f"COMMENT ON SCHEMA \"{box.schema}\" IS '{comment}'")
        return
    assert box.directory is not None
    entry = box.directory / ENTRY_FILE
    data = json.loads(entry.read_text())
    data["created"], data["last_active"] = time.time() - created_s, time.time() - idle_s
    entry.write_text(json.dumps(data))
    old = time.time() - created_s
    for path in [box.directory, *box.directory.rglob("*")]:
        os.utime(path, (old, old))  # untouched for as long, as the old sweep reads a folder


# -- binding a link ---------------------------------------------------------------------------
def test_a_restart_finds_the_link_and_its_data_again(store: Settings) -> None:
    first = Backends.build(store)
    try:
        if store.database_url:
            check_services(first)
        box, token = linked(first, "restart@innovateai.com")
        box.run(box.redis.set("progress", "lab1"))
        kept_id, kept_prefix = box.id, box.key_prefix
        assert first.leave() == 1, "a stopping process keeps the linked sandbox"
    finally:
        first.close()
        first.runtime.stop()
    second = Backends.build(store)
    try:
        found, why = second.sandboxes.find(token)
        assert found is not None, why
        assert (found.id, found.key_prefix) == (kept_id, kept_prefix), "the same sandbox, the same Redis prefix"
        assert emails(found) == ["restart@innovateai.com"], "the learner's data came back"
        if store.redis_url:
            assert found.run(found.redis.get("progress")) in ("lab1", b"lab1"), "and its Redis keys"
        else:
            assert "a restart loses them" in second.durability, "the page says what fakeredis cannot keep"
        assert second.sandboxes.find(token)[0] is found, "the next rerun finds it in memory"
        second.release(found)
        assert second.sandboxes.find(token)[0] is None, "a released sandbox's link stops working"
    finally:
        second.close()
        second.runtime.stop()


def test_the_directory_keeps_a_hash_of_the_link_never_the_link(processes: tuple[Backends, Backends]) -> None:
    a, _ = processes
    box, token = linked(a, "hash@innovateai.com")
    directory = a.durable.directory if a.durable else None
    if isinstance(directory, FileDirectory):
        assert box.directory is not None
        assert box.directory.name == "persistence-lab-" + token_hash(token)[:32]
        stored = (box.directory / ENTRY_FILE).read_text()
    else:

        async def rows() -> str:
            async with a.admin_engine().connect() as conn:
                found = await conn.execute(
                    text("SELECT row_to_json(s)::text FROM persistence_lab.sandboxes s WHERE sandbox_id = :id"),
                    {"id": box.id},
                )
                return str(found.scalar_one())

        stored = a.runtime.run(rows())
    assert token_hash(token) in stored
    assert token not in stored, "the secret itself is never written down"


def test_a_link_used_on_another_process_resumes_there(processes: tuple[Backends, Backends]) -> None:
    a, b = processes
    box_a, token = linked(a, "moved@innovateai.com")
    box_b, why = b.sandboxes.find(token)
    assert box_b is not None, why
    assert box_b.id == box_a.id
    assert box_b is not box_a
    box_b.run(create_user(parse(UserCreate, email="second@innovateai.com", name="Second")))
    assert sorted(emails(box_a)) == ["moved@innovateai.com", "second@innovateai.com"], "one sandbox, two processes"


def test_a_guessed_link_is_not_in_the_directory(processes: tuple[Backends, Backends]) -> None:
    a, _ = processes
    linked(a, "owner@innovateai.com")
    found, why = a.sandboxes.find("A" * 22)
    assert found is None
    assert why is not None
    assert "does not exist here" in why


def test_a_directory_that_does_not_answer_never_hands_the_link_a_new_sandbox(
    processes: tuple[Backends, Backends], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = processes
    _, token = linked(a, "waiting@innovateai.com")
    assert b.durable is not None

    async def silent(*_: object) -> None:
        raise TimeoutError("the directory did not answer")

    monkeypatch.setattr(b.durable.directory, "find", silent)
    with pytest.raises(ServiceUnavailable, match="Nothing is lost: reload the page"):
        b.sandboxes.find(token)
    assert not b.sandboxes.live, "no sandbox was opened in its place"
    monkeypatch.undo()
    assert emails(resumed(b, token)) == ["waiting@innovateai.com"], "once it answers, the same link finds the work"


def test_a_sandbox_resumed_from_the_directory_is_admitted_by_the_memory_budget(
    processes: tuple[Backends, Backends],
) -> None:
    a, b = processes
    _, token = linked(a, "budget@innovateai.com")
    rss = {"mb": 599.5}  # half a megabyte left in b: less than a sandbox's 1 MB floor
    b.admission = MemoryAdmission(600, live=lambda: len(b.sandboxes.live), read_rss=lambda: rss["mb"])
    with pytest.raises(OutOfMemoryBudget, match=r"cannot be opened here just now \(nothing in it is lost\)"):
        b.sandboxes.find(token)
    assert not b.sandboxes.live, "nothing was attached past the budget"
    rss["mb"] = 400.0
    assert emails(resumed(b, token)) == ["budget@innovateai.com"], "with room again, the same link finds the work"


# -- housekeeping across processes --------------------------------------------------------------
def test_another_process_sweep_keeps_a_sandbox_in_use_however_old(processes: tuple[Backends, Backends]) -> None:
    """Process B's sweep never drops what A serves: made 13 h ago, used just now, it stays."""
    a, b = processes
    box, _ = linked(a, "old@innovateai.com")
    age_entry(a, box, created_s=HOURS_13, idle_s=0)
    assert b.housekeeping.durable is not None
    b.runtime.run(b.housekeeping.sweep_orphans())
    if box.schema is not None:
        b.runtime.run(b.sweep_stale_schemas())  # the sweep by age alone, as before the directory
    assert exists(a, box), "a sandbox used within the idle expiry is kept, whatever process made it"
    assert emails(box) == ["old@innovateai.com"], "and A's next page still finds its data"


def test_a_sandbox_nobody_used_for_the_idle_expiry_is_swept_by_any_process(
    processes: tuple[Backends, Backends],
) -> None:
    a, b = processes
    box, token = linked(a, "gone@innovateai.com")
    a.sandboxes.detach_soon(box)  # as if A had stopped: nobody serves it
    eventually(lambda: box.closed and box.id not in {s.id for s in a.sandboxes.live}, "A to let the sandbox go")
    age_entry(b, box, created_s=HOURS_13, idle_s=b.sandboxes.idle_s + ORPHAN_GRACE_S + 60)
    b.runtime.run(b.housekeeping.sweep_orphans())
    assert not exists(b, box), "an expired entry's sandbox is dropped"
    assert b.sandboxes.find(token)[0] is None, "and its link leads nowhere"


def test_idle_here_but_used_elsewhere_is_let_go_not_dropped(processes: tuple[Backends, Backends]) -> None:
    a, b = processes
    box_a, token = linked(a, "busy@innovateai.com")
    box_b = resumed(b, token)
    assert a.durable is not None
    assert b.durable is not None
    box_a.last_used = time.monotonic() - a.sandboxes.idle_s - 1  # nobody clicked here for the idle expiry
    assert a.runtime.run(a.durable.expire_idle()) == 1
    eventually(lambda: box_a.closed, "A to let go of its copy")
    assert exists(b, box_b), "used on B within the idle expiry: not dropped"
    assert emails(box_b) == ["busy@innovateai.com"]
    assert resumed(a, token).id == box_b.id, "A finds it again through the directory"

    # Now idle everywhere: B's expiry drops it.
    box_b.last_used = time.monotonic() - b.sandboxes.idle_s - 1
    age_entry(b, box_b, idle_s=b.sandboxes.idle_s + 1)
    assert b.runtime.run(b.durable.expire_idle()) == 1
    eventually(lambda: box_b.released, "B to release it")
    assert not exists(b, box_b)


def test_housekeeping_writes_activity_and_heartbeat(processes: tuple[Backends, Backends]) -> None:
    a, _ = processes
    box, _token = linked(a, "beat@innovateai.com")
    assert a.durable is not None
    age_entry(a, box, idle_s=600)
    box.touch()
    a.runtime.run(a.durable.keep_current())
    entry = a.runtime.run(a.durable.directory.entries())[box.id]
    assert time.time() - entry.last_active.timestamp() < 120, "a sandbox used here is active in the directory"


# -- jobs of a process that stopped ---------------------------------------------------------------
class Endless(JobRunner[int]):
    service = "tests.endless"
    time_limit_s = None

    def start(self) -> None:
        async def work(progress: Progress) -> int:
            progress.begin("Working")
            await asyncio.Event().wait()
            return 0

        self.launch(work)


def beat_age(b: Backends, seconds: float) -> None:
    """Make ``b``'s heartbeat ``seconds`` old, as if it had stopped beating then."""
    directory = b.durable.directory if b.durable else None
    if isinstance(directory, FileDirectory):
        beat = directory.processes / directory.process_id
        os.utime(beat, (time.time() - seconds, time.time() - seconds))
    elif directory is not None:
        run_sql(
            b,
            "UPDATE persistence_lab.processes SET beat = now() - make_interval(secs => :s) WHERE process_id = :p",
            s=float(seconds),
            p=directory.process_id,
        )


def test_a_job_of_a_process_that_stopped_is_reported_as_interrupted(store: Settings) -> None:
    # A beat every 200 s and no housekeeping round: nothing rewrites the faked heartbeat meanwhile.
    quiet = replace(store, sweep_interval_s=3600.0, heartbeat_grace_s=600.0)
    a, b = Backends.build(quiet), Backends.build(quiet)
    try:
        if store.database_url:
            check_services(a)
        box_a, token = linked(a, "job@innovateai.com")
        Endless.of(box_a).start()
        assert a.durable is not None
        eventually(
            lambda: a.runtime.run(a.durable.directory.jobs(box_a.id, Endless.service, 30.0)) if a.durable else None,
            "A to write its running job down",
        )
        box_b, _ = b.sandboxes.find(token)
        assert box_b is not None
        assert b.durable is not None
        eventually(lambda: "tests.endless" in box_b.services.get(ELSEWHERE_KEY, {}), "B to read A's running job")
        sentence, interrupted = b.durable.job_elsewhere(box_b, "tests.endless")
        assert not interrupted, "A still beats: running there"
        assert sentence is not None
        assert "another" in sentence

        beat_age(a, a.settings.heartbeat_grace_s + 5)
        sentence, interrupted = b.durable.job_elsewhere(box_b, "tests.endless")
        assert interrupted, "no heartbeat: reported as stopped"
        assert sentence == INTERRUPTED
        assert b.durable.job_elsewhere(box_b, "tests.endless") == (None, False), "reported once, then it is a last note"
        Endless.of(box_a).stop()
    finally:
        for x in (a, b):
            x.close()
            x.runtime.stop()


# -- the learner's page ---------------------------------------------------------------------------
LAB2 = "views/lab2_connectivity.py"


def lab2(token: str | None = None) -> AppTest:
    """A new browser session on Lab 2, with or without a link."""
    configure_app()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if token is not None:
        at.query_params[TOKEN_PARAM] = token
    else:
        give_seat(at)  # a learner who has acted: their link names a sandbox of their own
    at.run()
    at.switch_page(LAB2).run()
    assert_no_exception(at)
    return at


def test_the_page_reports_a_run_whose_process_stopped_when_the_link_lands_here(
    app_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAB_DATA_DIR", str(tmp_path / "data"))
    token = lab2().query_params[TOKEN_PARAM]
    b = web.backends()
    box, _ = b.sandboxes.find(token)
    assert box is not None
    assert b.durable is not None
    # The experiment as a process that has stopped left it in the directory: running, no heartbeat.
    here = b.durable.directory
    stopped: Directory
    if isinstance(here, FileDirectory):
        stopped = FileDirectory(here.root, process_id="a-process-that-stopped")
    else:
        stopped = PostgresDirectory(b.admin_engine(), process_id="a-process-that-stopped")
    assert b.runtime.run(stopped.find(token_hash(token), 3600.0)) is not None
    b.runtime.run(stopped.job_started(box.id, ExperimentRunner.service))
    b.sandboxes.detach_soon(box)  # this process no longer serves the link: it lands here as on another process
    eventually(lambda: box.closed, "the process to let the sandbox go")

    at = lab2(token)
    warnings = [w.value for w in at.warning]
    assert INTERRUPTED in warnings, warnings
    assert at.query_params[TOKEN_PARAM] == token, "the same link, the same sandbox"
    again = lab2(token)
    assert INTERRUPTED in [w.value for w in again.warning], "it stays as the last run's outcome until a new run"


def test_a_live_process_beats_often_enough_never_to_look_stopped(store: Settings) -> None:
    b = Backends.build(replace(store, heartbeat_grace_s=1.5))  # a beat every 0.5 s
    try:
        if store.database_url:
            check_services(b)
        assert b.durable is not None
        box, _ = linked(b, "beating@innovateai.com")
        Endless.of(box).start()

        def alive() -> bool | None:
            jobs = b.runtime.run(b.durable.directory.jobs(box.id, Endless.service, 1.5)) if b.durable else []
            return jobs[0].process_alive if jobs else None

        eventually(lambda: alive() is not None, "the job to be written down")
        beat_age(b, 60)
        assert alive() is False, "a heartbeat a minute old reads as a stopped process"
        eventually(alive, "the process's own next beat, within the grace")
        Endless.of(box).stop()
    finally:
        b.close()
        b.runtime.stop()
