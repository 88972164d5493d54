"""One learner's clicks never touch another's data, and a released sandbox leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text

from source import Backends, Sandbox
from source.domain.dtos import UserCreate, parse
from source.platform.engines import SQLITE_COMPILED
from source.platform.orphans import VISITOR_FOLDER_PREFIX, hold_folder, sweep_dead_visitor_folders
from source.platform.visitor import open_visitor
from source.services.users import create_user, list_users


def _emails(sandbox: Sandbox) -> list[str]:
    return [u.email for u in sandbox.run(list_users())]


def test_two_learners_see_only_their_own_data(backends: Backends) -> None:
    a, b = backends.open_sandbox(), backends.open_sandbox()
    try:
        a.run(create_user(parse(UserCreate, email="a@innovateai.com", name="A")))
        b.run(create_user(parse(UserCreate, email="b@innovateai.com", name="B")))
        # The same email is free in every sandbox: uniqueness is per learner.
        b.run(create_user(parse(UserCreate, email="a@innovateai.com", name="A in B")))
        a.run(a.redis.set("greeting", "hello from A"))
        b.run(b.redis.set("greeting", "hello from B"))

        assert _emails(a) == ["a@innovateai.com"]
        assert sorted(_emails(b)) == ["a@innovateai.com", "b@innovateai.com"]

        a.run(a.reset())

        assert _emails(a) == []
        assert a.run(a.redis.get("greeting")) is None
        assert sorted(_emails(b)) == ["a@innovateai.com", "b@innovateai.com"], "A's reset left B alone"
        assert b.run(b.redis.get("greeting")) == "hello from B"
    finally:
        backends.release(a)
        backends.release(b)


def test_the_same_statement_in_two_sandboxes_reads_each_ones_own_rows(backends: Backends) -> None:
    # On SQLite every learner's file engine compiles through one shared dialect and statement cache:
    # the second learner's statements are the first one's compiled SQL, run on the second one's file.
    a, b = backends.open_sandbox(), backends.open_sandbox()
    try:
        a.run(create_user(parse(UserCreate, email="first@innovateai.com", name="First")))
        a.run(create_user(parse(UserCreate, email="second@innovateai.com", name="Second")))
        b.run(create_user(parse(UserCreate, email="only@innovateai.com", name="Only")))

        assert sorted(_emails(a)) == ["first@innovateai.com", "second@innovateai.com"]
        assert _emails(b) == ["only@innovateai.com"]
        if b.dialect == "sqlite":
            assert SQLITE_COMPILED.shares(b.engine.sync_engine)

            async def foreign_keys() -> int:
                async with b.engine.connect() as conn:
                    return int((await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one())

            assert b.run(foreign_keys()) == 1, "a new connection is still set up with the lab's pragmas"
    finally:
        backends.release(a)
        backends.release(b)


def test_a_table_of_the_same_name_keeps_each_sandboxs_own_columns(backends: Backends) -> None:
    # Two learners design a table under the same name with different columns (as in the Create exercise).
    a, b = backends.open_sandbox(), backends.open_sandbox()
    notes_a = Table("notes", MetaData(), Column("id", Integer, primary_key=True), Column("body", String(40)))
    notes_b = Table(
        "notes",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("title", String(40)),
        Column("body", String(40)),
    )

    async def write_and_read(box: Sandbox, notes: Table, row: dict[str, object]) -> list[dict[str, object]]:
        async with box.engine.begin() as conn:
            await conn.run_sync(notes.metadata.create_all)
            await conn.execute(insert(notes), [row])
            return [dict(r._mapping) for r in await conn.execute(select(notes))]

    try:
        assert a.run(write_and_read(a, notes_a, {"body": "from A"})) == [{"id": 1, "body": "from A"}]
        assert b.run(write_and_read(b, notes_b, {"title": "B", "body": "from B"})) == [
            {"id": 1, "title": "B", "body": "from B"}
        ]
        assert a.run(write_and_read(a, notes_a, {"body": "again"})) == [
            {"id": 1, "body": "from A"},
            {"id": 2, "body": "again"},
        ]
    finally:
        backends.release(a)
        backends.release(b)


def test_released_sandbox_leaves_nothing_behind(backends: Backends) -> None:
    sb = backends.open_sandbox()
    sb.run(create_user(parse(UserCreate, email="gone@innovateai.com", name="Gone")))
    sb.run(sb.redis.set("k", "v"))
    directory, schema, prefix = sb.directory, sb.schema, sb.key_prefix

    backends.release(sb)

    async def leftover_keys() -> list[str]:
        return [k async for k in backends.redis.scan_iter(match=prefix + "*")]

    assert backends.runtime.run(leftover_keys()) == []
    if schema is not None:

        async def schema_exists() -> bool:
            async with backends.admin_engine().connect() as conn:
                found = await conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema})
                return found.first() is not None

        assert backends.runtime.run(schema_exists()) is False
    else:
        assert directory is not None
        assert not Path(directory).exists()
    assert sb.closed


def test_many_reruns_from_many_threads_share_one_loop(backends: Backends) -> None:
    """Streamlit runs each rerun on a new thread; every call must still land on the one loop.

    Four learners, each doing 15 "reruns" on fresh threads, each rerun writing to the
    database and reading and writing Redis. With ``asyncio.run()`` per rerun this fails on
    asyncpg and redis.asyncio ("attached to a different loop", "Event loop is closed").
    """
    learners = [backends.open_sandbox() for _ in range(4)]
    errors: list[BaseException] = []

    def rerun(sb: Sandbox, i: int) -> None:
        try:
            sb.run(create_user(parse(UserCreate, email=f"u{i}@innovateai.com", name=f"U{i}")))
            sb.run(sb.redis.incr("reruns"))
            assert len(sb.run(list_users())) == i + 1
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    def learner(sb: Sandbox) -> None:
        for i in range(15):
            t = threading.Thread(target=rerun, args=(sb, i))
            t.start()
            t.join()

    try:
        threads = [threading.Thread(target=learner, args=(sb,)) for sb in learners]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        for sb in learners:
            assert len(_emails(sb)) == 15
            assert sb.run(sb.redis.get("reruns")) == "15"
    finally:
        for sb in learners:
            backends.release(sb)


def test_orphaned_schemas_are_swept_and_live_ones_kept(backends: Backends) -> None:
    """A process that died leaves its learners' schemas; the next one drops the old ones."""
    if backends.shared_engine is None:
        pytest.skip("SQLite sandboxes are temporary files, deleted on release: no schemas to sweep")
    live = backends.open_sandbox()
    orphan = "plab_orphan0test"

    async def make_orphan() -> None:
        async with backends.admin_engine().begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{orphan}"'))
            await conn.execute(
                text(f"COMMENT ON SCHEMA \"{orphan}\" IS 'persistence-lab sandbox created 2020-01-01T00:00:00+00:00'")
            )

    async def existing() -> set[str]:
        async with backends.admin_engine().connect() as conn:
            rows = await conn.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname IN (:a, :b)"), {"a": orphan, "b": live.schema}
            )
            return set(rows.scalars())

    try:
        backends.runtime.run(make_orphan())
        assert backends.runtime.run(backends.sweep_stale_schemas()) >= 1
        assert backends.runtime.run(existing()) == {live.schema}
    finally:
        backends.release(live)


def test_orphaned_sqlite_folders_are_swept_and_fresh_ones_kept() -> None:
    from source.platform.backends import SQLITE_FOLDER_PREFIX, sweep_stale_sqlite_folders

    old = Path(tempfile.mkdtemp(prefix=SQLITE_FOLDER_PREFIX))
    fresh = Path(tempfile.mkdtemp(prefix=SQLITE_FOLDER_PREFIX))
    for folder in (old, fresh):
        (folder / "lab.db").write_bytes(b"")
    long_ago = 1_600_000_000  # 2020: older than any session lives
    os.utime(old / "lab.db", (long_ago, long_ago))
    os.utime(old, (long_ago, long_ago))
    try:
        assert sweep_stale_sqlite_folders() >= 1
        assert not old.exists()
        assert fresh.exists()
    finally:
        for folder in (old, fresh):
            if folder.exists():
                for f in folder.iterdir():
                    f.unlink()
                folder.rmdir()


# -- the visitor's SQLite folder: kept while its process lives, swept once it has died -----------------
#: A process that makes a visitor's folder the way the app does, says so, then waits to be killed.
HOLDER = """
import sys, tempfile
from pathlib import Path
from source.platform.orphans import VISITOR_FOLDER_PREFIX, hold_folder
folder = Path(tempfile.mkdtemp(prefix=VISITOR_FOLDER_PREFIX, dir=sys.argv[1]))
(folder / "lab.db").write_bytes(b"")
hold_folder(folder)
print(folder, flush=True)
sys.stdin.read()
"""


def test_a_visitor_folder_is_kept_while_its_process_lives_and_swept_once_it_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        cwd=Path(__file__).parent.parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        theirs = Path(holder.stdout.readline().strip())
        assert theirs.name.startswith(VISITOR_FOLDER_PREFIX), "the other process made its folder"
        long_ago = 1_600_000_000  # 2020: its age says nothing while its process lives
        os.utime(theirs / "lab.db", (long_ago, long_ago))
        assert sweep_dead_visitor_folders() == 0
        assert (theirs / "lab.db").exists(), "another live process's folder is left alone"
        holder.kill()  # no clean shutdown: nothing removes the folder
        holder.wait(timeout=60)
        assert theirs.exists(), "a killed process leaves its folder behind"
        assert sweep_dead_visitor_folders() == 1
        assert not theirs.exists(), "the sweep removes a dead process's folder"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=60)


def test_the_sweep_keeps_this_process_visitor_and_judges_lockless_folders_by_age(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ours = Path(tempfile.mkdtemp(prefix=VISITOR_FOLDER_PREFIX))
    lock = hold_folder(ours)
    fresh, old = (Path(tempfile.mkdtemp(prefix=VISITOR_FOLDER_PREFIX)) for _ in range(2))  # no lock file
    long_ago = 1_600_000_000
    for folder in (ours, fresh, old):
        (folder / "lab.db").write_bytes(b"")
    for path in (ours / "lab.db", old / "lab.db", old):
        os.utime(path, (long_ago, long_ago))
    try:
        assert sweep_dead_visitor_folders() == 1
        assert ours.exists(), "held by this very process: kept, however old"
        assert fresh.exists(), "no lock yet (a process still making it): kept while young"
        assert not old.exists(), "no lock and untouched for longer than any session: swept"
    finally:
        if lock is not None:
            os.close(lock)
    assert sweep_dead_visitor_folders() == 1, "once its lock is let go, the folder is a dead process's"
    assert not ours.exists()


def test_housekeeping_sweeps_a_dead_visitor_folder_and_the_process_keeps_its_own(
    backends: Backends, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mine = backends.runtime.run(open_visitor(backends, None))  # the SQLite visitor, as a process opens it
    dead = Path(tempfile.mkdtemp(prefix=VISITOR_FOLDER_PREFIX))
    lock = hold_folder(dead)
    assert lock is not None
    os.close(lock)  # what the kernel does when the process that held it dies
    try:
        assert mine.directory is not None
        assert mine.directory.parent == tmp_path
        backends.runtime.run(backends.housekeeping.sweep_orphans())
        assert not dead.exists(), "a dead process's visitor folder is swept"
        assert mine.directory.exists(), "this process's own is kept"
        assert mine.run(mine.redis.ping()), "and still serves"
    finally:
        backends.runtime.run(mine.aclose())
    assert not mine.directory.exists(), "a clean shutdown removes it"


def test_learners_arriving_together_each_get_a_migrated_sandbox(backends: Backends) -> None:
    """Four sessions opening at once: each sandbox must be migrated, and only its own.

    Alembic keeps the running migration in module globals, so migrations that overlap on
    the one event loop would trample each other; the sandbox makes them take turns.
    """
    opened: list[Sandbox] = []
    errors: list[BaseException] = []

    def arrive() -> None:
        try:
            opened.append(backends.open_sandbox())
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=arrive) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert len(opened) == 4
        for i, sb in enumerate(opened):
            sb.run(create_user(parse(UserCreate, email=f"same{i}@innovateai.com", name="Same")))
        assert [_emails(sb) for sb in opened] == [[f"same{i}@innovateai.com"] for i in range(4)]
    finally:
        for sb in opened:
            backends.release(sb)


def test_background_work_stops_before_reset_and_release(backends: Backends) -> None:
    """A lab's background task (say, a publisher) never outlives the sandbox it works in."""
    import asyncio

    sb = backends.open_sandbox()
    stopped: list[str] = []

    async def start(name: str) -> None:
        task = asyncio.create_task(asyncio.sleep(3600))

        async def stop() -> None:
            task.cancel()
            stopped.append(name)

        sb.on_stop(stop)
        sb.services[name] = task

    sb.run(start("publisher"))
    sb.run(sb.reset())
    assert stopped == ["publisher"]
    assert sb.services == {}, "a reset forgets the stopped services"
    sb.run(start("consumer"))
    backends.release(sb)
    assert stopped == ["publisher", "consumer"]
