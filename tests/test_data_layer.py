"""The course's data layer, run against every backend pair (SQLite+fakeredis, PostgreSQL+Redis)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import MissingGreenlet, StatementError

from source import (
    AIRScore,
    DuplicateEmail,
    InvalidInput,
    NotFound,
    Sandbox,
    User,
    UserRepository,
    create_sample_airscore,
    create_sample_user,
    create_sample_users,
    get_session,
    initialize_db,
)
from source.domain.dtos import UserCreate, UserUpdate, parse, parse_id
from source.labs.data_models import actions, join
from source.platform.migrate import migration_head
from source.services.samples import create_sample_assessment
from source.services.users import add_sample_children, create_user, delete_user, list_users, update_user


def test_initialize_db_is_idempotent_and_reaches_head(sandbox: Sandbox) -> None:
    first = sandbox.run(initialize_db())
    second = sandbox.run(initialize_db())
    assert first == second == migration_head() == "0003", "both calls leave the schema at the newest migration"


def test_sample_users_twice_is_harmless(sandbox: Sandbox) -> None:
    first = sandbox.run(create_sample_users())
    second = sandbox.run(create_sample_users())
    assert [created for _, _, created in first] == [True, True]
    assert [created for _, _, created in second] == [False, False]
    assert [uid for _, uid, _ in first] == [uid for _, uid, _ in second]
    assert [u.name for u in sandbox.run(list_users())] == ["Alex Smith", "Jane Doe"]


def test_duplicate_email_is_refused_and_original_survives(sandbox: Sandbox) -> None:
    original = sandbox.run(create_user(parse(UserCreate, email="ada@innovateai.com", name="Ada")))
    with pytest.raises(DuplicateEmail, match="already exists"):
        sandbox.run(create_user(parse(UserCreate, email="ada@innovateai.com", name="Impostor")))
    rows = sandbox.run(list_users())
    assert [(r.id, r.name) for r in rows] == [(original.id, "Ada")]
    assert sandbox.run(create_sample_user("ada@innovateai.com", "Again")) is None


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"email": "not-an-email", "name": "X"}, "email"),
        ({"email": "x@innovateai.com", "name": "   "}, "name: is required"),
        ({"email": "x@innovateai.com", "name": "X", "years_experience": -3}, "years experience"),
        ({"email": "x@innovateai.com", "name": "X" * 300}, "name"),
        ({"email": "x@innovateai.com", "name": "X", "occupation_code": "C" * 21}, "occupation code"),
        ({"email": "x@innovateai.com", "name": "X", "years_experience": 70.5}, "must be between 0 and 70"),
        ({"email": "x@innovateai.com", "name": "X", "years_experience": float("inf")}, "must be between 0 and 70"),
        (
            {"email": "x@innovateai.com", "name": "Nul\x00Byte"},
            r"name: must not contain control characters \(found U\+0000\)",
        ),
        ({"email": "x\x00@innovateai.com", "name": "X"}, "email: must not contain control characters"),
        ({"email": "x@innovateai.com", "name": "X", "education_level": "a\x1bb"}, "education level: must not contain"),
    ],
)
def test_bad_input_gets_a_clear_message(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse(UserCreate, **values)


def test_malformed_id_is_rejected_before_the_database() -> None:
    with pytest.raises(InvalidInput, match="not a user id"):
        parse_id("1; DROP TABLE users")


def test_edit_moves_updated_at_and_unknown_id_is_not_found(sandbox: Sandbox) -> None:
    row = sandbox.run(create_user(parse(UserCreate, email="bo@innovateai.com", name="Bo")))
    edited = sandbox.run(update_user(row.id, parse(UserUpdate, name="Bo Renamed", years_experience=3)))
    assert edited.name == "Bo Renamed"
    assert edited.updated_at > row.updated_at
    assert edited.created_at == row.created_at
    with pytest.raises(NotFound):
        sandbox.run(update_user(parse_id("00000000-0000-4000-8000-000000000000"), parse(UserUpdate, name="Nobody")))


def test_cascade_delete_counts_the_children_it_removed(sandbox: Sandbox) -> None:
    keep = sandbox.run(create_user(parse(UserCreate, email="keep@innovateai.com", name="Keep")))
    gone = sandbox.run(create_user(parse(UserCreate, email="gone@innovateai.com", name="Gone")))
    assert sandbox.run(add_sample_children(gone.id, assessments=2, scores=3)) == (2, 3)
    assert sandbox.run(add_sample_children(keep.id, assessments=1, scores=1)) == (1, 1)

    report = sandbox.run(delete_user(gone.id))

    assert (report.assessments_removed, report.scores_removed) == (2, 3)
    # On PostgreSQL the table names carry the learner's schema: DELETE FROM plab_….air_scores
    deletes = [s.split(" WHERE ")[0] for s in report.statements if s.startswith("DELETE FROM")]
    tables = [d.rsplit(".", 1)[-1].removeprefix("DELETE FROM ") for d in deletes]
    assert sorted(tables[:-1]) == ["air_scores", "assessments"], "children go first"
    assert tables[-1] == "users", "the user goes last"
    assert [r.email for r in sandbox.run(list_users())] == ["keep@innovateai.com"]

    async def counts_for_keep() -> tuple[int, int]:
        async with get_session() as session:
            return await UserRepository(session).count_children(keep.id)

    assert sandbox.run(counts_for_keep()) == (1, 1), "another user's children are untouched"
    with pytest.raises(NotFound):
        sandbox.run(delete_user(gone.id))


def test_json_column_round_trips_and_latest_score_wins(sandbox: Sandbox) -> None:
    alex = sandbox.run(create_sample_user("alex.smith@innovateai.com", "Alex Smith"))
    assert alex is not None
    sandbox.run(create_sample_airscore(alex.id, air_score=70.0))
    sandbox.run(create_sample_airscore(alex.id, occupation_code="DATA_SCI", air_score=91.0))

    async def latest() -> AIRScore | None:
        async with get_session() as session:
            return await UserRepository(session).get_latest_score(alex.id)

    score = sandbox.run(latest())
    assert score is not None
    assert score.air_score == 91.0
    assert score.occupation_code == "DATA_SCI"
    assert score.calculation_metadata == {"model": "deep_eval_v3", "factors": ["fluency", "domain"]}


def test_repository_eager_loading_and_the_lazy_load_trap(sandbox: Sandbox) -> None:
    users = sandbox.run(create_sample_users())
    alex_id, jane_id = users[0][1], users[1][1]
    for _ in range(2):
        sandbox.run(create_sample_airscore(alex_id))
    sandbox.run(create_sample_airscore(jane_id))
    sandbox.run(create_sample_assessment(alex_id))

    async def eager() -> dict[str, int]:
        async with get_session() as session:
            repo = UserRepository(session)
            one = await repo.get_user_with_scores_eager(alex_id)
            assert one is not None
            assert len(one.scores) == 2
            assert (await repo.get_by_email("jane.doe@innovateai.com")) is not None
            return {u.name: len(u.scores) for u in await repo.get_all_users_with_scores_eager()}

    assert sandbox.run(eager()) == {"Alex Smith": 2, "Jane Doe": 1}

    async def implicit_lazy_load() -> None:
        async with get_session() as session:
            user = (await session.execute(select(User).where(User.id == alex_id))).scalar_one()
            assert "assessments" in inspect(user).unloaded
            _ = user.assessments  # an implicit lazy load: I/O inside attribute access

    # Depending on the driver SQLAlchemy raises it bare or wrapped in a StatementError.
    with pytest.raises((MissingGreenlet, StatementError), match="greenlet_spawn has not been called"):
        sandbox.run(implicit_lazy_load())

    async def explicit_lazy_load() -> int:
        async with get_session() as session:
            user = await UserRepository(session).get_by_id(alex_id)
            assert user is not None
            return len(await user.awaitable_attrs.assessments)

    assert sandbox.run(explicit_lazy_load()) == 1


def test_get_session_works_in_both_course_forms(sandbox: Sandbox) -> None:
    async def both() -> list[str]:
        async with get_session() as session:
            session.add(User(email="with@innovateai.com", name="With"))
            await session.commit()
        async for session in get_session():
            session.add(User(email="for@innovateai.com", name="For"))
            await session.commit()
        async with get_session() as session:
            session.add(User(email="uncommitted@innovateai.com", name="Rolled back"))
            await session.flush()
        return [u.email for u in await list_users()]

    assert sandbox.run(both()) == ["with@innovateai.com", "for@innovateai.com"], "no commit means rollback"


def test_a_sandbox_cannot_grow_without_limit(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    import source.services.users as users_module

    monkeypatch.setattr(users_module, "MAX_USERS", 2)
    monkeypatch.setattr(users_module, "MAX_CHILDREN", 3)
    first = sandbox.run(create_user(parse(UserCreate, email="one@innovateai.com", name="One")))
    sandbox.run(create_user(parse(UserCreate, email="two@innovateai.com", name="Two")))
    with pytest.raises(InvalidInput, match="already holds 2 users"):
        sandbox.run(create_user(parse(UserCreate, email="three@innovateai.com", name="Three")))
    assert sandbox.run(add_sample_children(first.id, assessments=3, scores=1)) == (3, 1)
    with pytest.raises(InvalidInput, match="at most 3 assessments"):
        sandbox.run(add_sample_children(first.id, assessments=1, scores=0))
    assert len(sandbox.run(list_users())) == 2


def test_a_refused_statement_is_not_reported_as_a_dead_server(sandbox: Sandbox) -> None:
    from sqlalchemy import literal_column
    from sqlalchemy.exc import DBAPIError

    from source import explain

    async def bad_sql() -> None:
        async with get_session() as session:
            await session.execute(select(literal_column("no_such_column")).select_from(User))

    with pytest.raises(DBAPIError) as caught:  # wraps the driver's own error, which differs per backend
        sandbox.run(bad_sql())
    message = explain(caught.value)
    assert message.startswith("The database refused the statement"), message
    assert "no_such_column" in message


def test_text_with_a_nul_byte_never_reaches_either_database(sandbox: Sandbox) -> None:
    """PostgreSQL refuses NUL in text and SQLite stores it; validation refuses it first, for both."""
    with pytest.raises(InvalidInput, match="control characters"):
        sandbox.run(create_user(parse(UserCreate, email="nul@innovateai.com", name="Nul\x00")))
    assert sandbox.run(list_users()) == []


def test_caps_hold_when_clicks_arrive_together(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty creates at once with room for two: exactly two land, as for children."""
    import source.services.users as users_module

    monkeypatch.setattr(users_module, "MAX_USERS", 5)
    monkeypatch.setattr(users_module, "MAX_CHILDREN", 4)
    for n in range(3):
        sandbox.run(create_user(parse(UserCreate, email=f"early{n}@innovateai.com", name="Early")))

    async def create_twenty() -> list[BaseException | object]:
        attempts = [create_user(parse(UserCreate, email=f"rush{n}@innovateai.com", name="Rush")) for n in range(20)]
        return await asyncio.gather(*attempts, return_exceptions=True)

    outcomes = sandbox.run(create_twenty())
    refused = [o for o in outcomes if isinstance(o, InvalidInput)]
    assert len(refused) == 18, [o for o in outcomes if isinstance(o, BaseException) and o not in refused]
    assert len(sandbox.run(list_users())) == 5, "never more than the cap"

    first = sandbox.run(list_users())[0]

    async def add_ten() -> list[BaseException | object]:
        return await asyncio.gather(*(add_sample_children(first.id, 1, 1) for _ in range(10)), return_exceptions=True)

    sandbox.run(add_ten())

    async def children() -> tuple[int, int]:
        async with get_session() as session:
            return await UserRepository(session).count_children(first.id)

    assert sandbox.run(children()) == (4, 4), "never more children than the cap"


# -- what Lab 1's buttons call (source/labs/data_models/actions.py) ---------------------------
def test_lab1_actions_turn_a_form_into_a_sentence(sandbox: Sandbox) -> None:
    """The form's text as typed (blank means not given) is validated, written, and reported with what it did."""
    form = {"email": " Form@InnovateAI.com ", "name": "Form", "occupation_code": "", "years_experience": None}
    assert sandbox.run(actions.create_user(form)).startswith("Created `form@innovateai.com` with id `")
    row = sandbox.run(actions.users_now()).newest[0]
    assert row.occupation_code is None, "a blank field is stored as 'not given'"
    same = sandbox.run(actions.save_profile(row, {"name": "Form", "occupation_code": "  "}))
    assert "nothing had changed, so SQLAlchemy sent **0 UPDATE statements**" in same
    renamed = sandbox.run(actions.save_profile(row, {"name": "Formal"}))
    assert "**1 UPDATE statement**" in renamed
    assert f"updated_at: {actions.when(row.updated_at)} → " in renamed
    with pytest.raises(InvalidInput, match="name: is required"):
        sandbox.run(actions.save_profile(row, {"name": "   "}))
    assert sandbox.run(actions.add_children(row, 1, 2)) == "form@innovateai.com now has 1 assessments and 2 scores."


def test_the_users_page_and_their_count_come_in_one_statement(sandbox: Sandbox) -> None:
    from source.instruments.query_log import capture_queries

    for n in range(13):
        sandbox.run(actions.create_user({"email": f"u{n:02d}@example.com", "name": f"U{n:02d}"}))

    async def read(page: int) -> tuple[actions.Users, int]:
        async with capture_queries(sandbox.engine) as log:
            now = await actions.users_now(page)
        return now, log.count

    first, statements = sandbox.run(read(1))
    assert statements == 1
    assert first.total == 13
    assert [u.email for u in first.page][:2] == ["u12@example.com", "u11@example.com"], "the newest first"
    assert len(first.page) == actions.TABLE_ROWS
    assert first.said == "13 user(s), the newest first; showing 1–10."
    second, _ = sandbox.run(read(2))
    assert [u.email for u in second.page] == ["u02@example.com", "u01@example.com", "u00@example.com"]
    assert second.said.endswith("showing 11–13.")


def test_a_create_comes_back_with_the_users_the_page_shows_next(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One transaction: the user and their event in one flush, then the newest users and the total, read once."""
    import source.services.users as users_module
    from source.domain.models import DomainEvent
    from source.instruments.query_log import capture_queries

    for n in range(11):
        sandbox.run(actions.create_user({"email": f"u{n:02d}@example.com", "name": f"U{n:02d}"}))

    async def create(email: str, page: int) -> tuple[actions.Created, list[str]]:
        async with capture_queries(sandbox.engine) as log:
            made = await actions.create_user_and_show({"email": email, "name": "New"}, page)
        kinds = [
            f"INSERT {s.split()[2].rpartition('.')[2]}" if s.startswith("INSERT") else s.split()[0]
            for s in log.statements
        ]
        return made, kinds

    made, statements = sandbox.run(create("new@example.com", 1))
    assert sorted(statements) == ["INSERT domain_events", "INSERT users", "SELECT"], statements
    assert made.said.startswith("Created `new@example.com` with id `")
    assert made.now.total == 12
    assert [u.email for u in made.now.page][:2] == ["new@example.com", "u10@example.com"], "the new user first"
    assert made.now.said == "12 user(s), the newest first; showing 1–10."
    second, _ = sandbox.run(create("newer@example.com", 2))
    assert [u.email for u in second.now.page] == ["u02@example.com", "u01@example.com", "u00@example.com"]

    async def events_of(email: str) -> int:
        async with get_session() as session:
            user = await UserRepository(session).get_by_email(email)
            of_user = DomainEvent.aggregate_id == (user.id if user else "")
            return len((await session.scalars(select(DomainEvent).where(of_user))).all())

    assert sandbox.run(events_of("new@example.com")) == 1, "the user's event committed with the user"
    monkeypatch.setattr(users_module, "MAX_USERS", 13)
    with pytest.raises(InvalidInput, match="already holds 13 users"):
        sandbox.run(actions.create_user_and_show({"email": "over@example.com", "name": "Over"}))
    assert sandbox.run(actions.users_now()).total == 13, "over the cap, nothing was written"
    assert sandbox.run(events_of("over@example.com")) == 0


def test_lab1_join_is_paged_with_previous_and_next(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(join, "JOIN_PAGE_ROWS", 2)
    sandbox.run(actions.create_user({"email": "paged@innovateai.com", "name": "Paged"}))
    row = sandbox.run(actions.users_now()).newest[0]
    empty = sandbox.run(actions.join_page(0))
    assert (empty.first, empty.last, empty.previous, empty.next) == (0, 0, None, None), "no assessments: no rows"
    assert "0 row(s). Showing 0–0" in empty.said
    sandbox.run(actions.add_children(row, 5, 0))
    first = sandbox.run(actions.join_page(-3))  # clamped to the first page
    assert (first.first, first.last, first.previous, first.next) == (1, 2, None, 2)
    assert "LIMIT" in first.result.sql
    middle = sandbox.run(actions.join_page(2))
    assert (middle.first, middle.last, middle.previous, middle.next) == (3, 4, 0, 4)
    last = sandbox.run(actions.join_page(4))
    assert (last.first, last.last, last.previous, last.next) == (5, 5, 2, None)
    assert "5 row(s). Showing 5–5" in last.said
