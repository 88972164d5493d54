"""Taking a seat is cheap: a new SQLite sandbox is a copy of a migrated template, and still a full sandbox.

A copy must be what a migration would have made: the newest revision, foreign keys enforced,
nothing shared with the other copies. A template is made per migration head: once a new migration
arrives, copies of the old one are never handed out, and a sandbox made before it is migrated up.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from source import Backends, Base, Sandbox
from source.domain.dtos import UserCreate, parse
from source.platform import sqlite_template
from source.platform.migrate import migration_head, migration_lock, upgrade_to
from source.services.users import create_user, list_users


def _version(sandbox: Sandbox) -> str:
    async def read() -> str:
        table = f'"{sandbox.schema}".alembic_version' if sandbox.schema else "alembic_version"
        async with sandbox.engine.connect() as conn:
            return str((await conn.execute(text(f"SELECT version_num FROM {table}"))).scalar_one())

    return sandbox.run(read())


def _indexes(sandbox: Sandbox) -> set[str]:
    """The names of the outbox table's indexes (0003 replaced two of them with partial ones)."""

    async def read() -> set[str]:
        if sandbox.schema:
            query = text("SELECT indexname FROM pg_indexes WHERE schemaname = :s AND tablename = 'domain_events'")
            params = {"s": sandbox.schema}
        else:
            query = text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'domain_events'")
            params = {}
        async with sandbox.engine.connect() as conn:
            return {str(name) for name in (await conn.execute(query, params)).scalars()}

    return sandbox.run(read())


def test_a_new_sandbox_is_at_the_newest_migration_and_enforces_foreign_keys(backends: Backends) -> None:
    sandbox = backends.open_sandbox()
    try:
        assert _version(sandbox) == migration_head() == "0003"
        if sandbox.directory is not None:  # a SQLite copy is its owner's alone, as its folder is
            assert (sandbox.directory / "lab.db").stat().st_mode & 0o077 == 0, "no other user may read it"
        assert {"ix_events_pending_sequence", "ix_events_unpublished_aggregate"} <= _indexes(sandbox)

        async def orphan_score() -> None:
            scores = Base.metadata.tables["air_scores"]  # a Table: schema_translate_map finds the learner's schema
            now = datetime.now(UTC)
            async with sandbox.engine.begin() as conn:
                await conn.execute(
                    scores.insert().values(
                        id="s1",
                        user_id="nobody",
                        occupation_code="x",
                        air_score=1,
                        vr_score=1,
                        hr_score=1,
                        synergy_score=1,
                        ci_lower=0,
                        ci_upper=2,
                        parameter_version="v1",
                        calculation_metadata={},
                        created_at=now,
                        updated_at=now,
                    )
                )

        with pytest.raises(IntegrityError):
            sandbox.run(orphan_score())
    finally:
        backends.release(sandbox)


def test_copies_of_one_template_share_nothing(backends: Backends) -> None:
    first, second = backends.open_sandbox(), backends.open_sandbox()
    try:
        first.run(create_user(parse(UserCreate, email="first@innovateai.com", name="First")))
        assert [u.email for u in first.run(list_users())] == ["first@innovateai.com"]
        assert second.run(list_users()) == [], "a write in one sandbox is not seen in another"
        third = backends.open_sandbox()
        try:
            assert third.run(list_users()) == [], "the template itself was not written to"
        finally:
            backends.release(third)
    finally:
        backends.release(first)
        backends.release(second)


def test_a_template_for_an_older_head_is_not_handed_out_after_a_new_migration(
    backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process saw 0002 as the newest migration and made its template; then 0003 arrived."""
    monkeypatch.setattr(sqlite_template, "migration_head", lambda: "0002")
    older = backends.open_sandbox()
    monkeypatch.undo()
    newer = backends.open_sandbox()
    try:
        if older.schema is None:
            assert _version(older) == "0002", "the template was made for the head of its time"
            assert "ix_events_status_sequence" in _indexes(older)
        assert _version(newer) == "0003"
        indexes = _indexes(newer)
        assert "ix_events_pending_sequence" in indexes
        assert "ix_events_status_sequence" not in indexes, "0003 dropped it"
    finally:
        backends.release(older)
        backends.release(newer)


def test_a_sandbox_made_before_the_newest_migration_is_migrated_up(backends: Backends) -> None:
    """A sandbox resumed from before a migration (its file or schema at 0002) is brought to the newest."""
    sandbox = backends.open_sandbox(migrate=False)
    try:

        async def make_it_old() -> None:
            async with migration_lock(), sandbox.engine.begin() as conn:
                if sandbox.schema:
                    await conn.execute(text(f'CREATE SCHEMA "{sandbox.schema}"'))
                await conn.run_sync(upgrade_to, sandbox.schema, "0002")

        sandbox.run(make_it_old())
        sandbox.run(create_user(parse(UserCreate, email="kept@innovateai.com", name="Kept")))
        assert _version(sandbox) == "0002"

        sandbox.run(sandbox.migrate())

        assert _version(sandbox) == "0003"
        assert "ix_events_pending_sequence" in _indexes(sandbox)
        assert [u.email for u in sandbox.run(list_users())] == ["kept@innovateai.com"], "its data stayed"
    finally:
        backends.release(sandbox)
