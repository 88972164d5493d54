"""Lab 3 on both backends: N+1 counted, located and fixed; the same data from every strategy."""

from __future__ import annotations

import inspect
import math

import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import selectinload

from source import Sandbox, User, get_session
from source.domain import repositories
from source.instruments.n_plus_one import detect
from source.instruments.query_log import capture_queries
from source.labs.repository import measure, plans, scaling, seeding, strategies, trap
from source.labs.repository.measure import LoadSettings, run_strategy
from source.labs.repository.seeding import SeedRequest
from source.platform.jobs import Progress

#: selectinload sends the users' query, then one ``IN (...)`` query per 500 users (its chunk size).
SELECTIN_CHUNK = 500


def seed(sandbox: Sandbox, users: int, scores: int) -> None:
    report = sandbox.run(seeding.seed(SeedRequest(users=users, scores_per_user=scores)))
    assert (report.users, report.scores) == (users, users * scores)


def line_of(function: object, fragment: str) -> int:
    """The line number of the first line of ``function`` that contains ``fragment``."""
    lines, first = inspect.getsourcelines(function)  # type: ignore[arg-type]
    return first + next(i for i, line in enumerate(lines) if fragment in line)


def test_a_thousand_users_every_strategy_counted_and_identical(sandbox: Sandbox) -> None:
    seed(sandbox, 1000, 5)
    comparison = sandbox.run(measure.compare_strategies(LoadSettings()))
    queries = {run.key: run.queries for run in comparison.runs}
    # N users: 1 query for the users + 1 per user for the lazy ones.
    assert queries["lazy"] == queries["per_user"] == 1000 + 1
    # selectinload: 1 for the users + ceil(1000 / 500) = 2 IN-queries -> 3, whatever the scores.
    assert queries["selectin"] == 1 + math.ceil(1000 / SELECTIN_CHUNK) == 3
    assert queries["joined"] == 1
    assert comparison.identical, "every strategy loaded the same users and the same scores"
    for run in comparison.runs:
        assert (run.loaded.user_count, run.loaded.score_count) == (1000, 5000)
        assert len({scores for _, scores in run.loaded.users}) == 1000, "each user has their own five scores"
        assert run.injected_ms == 0.0


def test_the_detector_names_the_relationship_and_the_line(sandbox: Sandbox) -> None:
    seed(sandbox, 40, 2)
    lazy = sandbox.run(run_strategy("lazy"))
    (finding,) = lazy.verdict.findings
    assert finding.relationship == "User.scores"
    assert finding.count == 40
    assert finding.caller is not None
    assert finding.caller.file == "source/labs/repository/strategies.py"
    assert finding.caller.line == line_of(strategies.load_lazy, "await user.awaitable_attrs.scores")
    assert finding.caller.function == "load_lazy"
    where = f"source/labs/repository/strategies.py:{finding.caller.line} load_lazy"
    assert finding.message == f"N+1: `User.scores` loaded 40 times from `{where}`"

    loop = sandbox.run(run_strategy("per_user"))
    (finding,) = loop.verdict.findings
    assert finding.relationship == "User.scores"
    assert finding.count == 40
    repo_line = line_of(repositories.UserRepository.list_scores_for_user, "await self.session.execute(")
    assert str(finding.caller) == f"source/domain/repositories.py:{repo_line} list_scores_for_user"
    loop_line = line_of(strategies.load_per_user_queries, "await repo.list_scores_for_user")
    assert str(finding.stack[1]) == f"source/labs/repository/strategies.py:{loop_line} load_per_user_queries"

    for key in ("selectin", "joined"):
        run = sandbox.run(run_strategy(key))
        assert not run.verdict.flagged, run.verdict.summary
        assert run.verdict.summary.startswith("No N+1")


def test_the_threshold_is_configurable(sandbox: Sandbox) -> None:
    seed(sandbox, 12, 1)
    run = sandbox.run(run_strategy("lazy"))
    assert detect(run.log, threshold=12).flagged
    assert not detect(run.log, threshold=13).flagged, "12 lazy loads stay under a threshold of 13"
    assert not sandbox.run(run_strategy("lazy", settings=LoadSettings(threshold=100))).verdict.flagged


def test_selectinload_at_1001_users_adds_a_third_batch_and_batches_are_not_n_plus_one(sandbox: Sandbox) -> None:
    seed(sandbox, 1001, 0)
    run = sandbox.run(run_strategy("selectin"))
    assert run.queries == 1 + 3, "1,001 users need three IN-lists of at most 500"
    assert not run.verdict.flagged
    assert run.verdict.batches == 2, "two IN-lists of 500; the last one holds a single id"


def test_raiseload_refuses_the_lazy_load(sandbox: Sandbox) -> None:
    seed(sandbox, 5, 1)

    async def guarded() -> None:
        async with get_session() as session:
            await strategies.load_lazy_guarded(session)

    with pytest.raises(InvalidRequestError, match=r"'User\.scores' is not available due to lazy='raise'"):
        sandbox.run(guarded())
    caught = sandbox.run(trap.trigger_raiseload())
    assert caught.error == "InvalidRequestError"
    assert caught.queries_before == 1, "only the users' query ran: the first lazy load was refused"


def test_the_asyncio_trap_is_caught_with_an_explanation(sandbox: Sandbox) -> None:
    seed(sandbox, 2, 1)
    caught = sandbox.run(trap.trigger_missing_greenlet())
    assert caught.error == "MissingGreenlet"
    assert "greenlet_spawn has not been called" in caught.message
    assert "awaitable_attrs" in caught.explanation


def test_one_user_lazily_and_eagerly(sandbox: Sandbox) -> None:
    seed(sandbox, 3, 0)
    ((_, user_id),) = sandbox.run(seeding.some_users(1))
    assert sandbox.run(seeding.add_sample_scores(user_id)) == 3
    lazy = sandbox.run(measure.fetch_user(user_id, "lazy"))
    eager = sandbox.run(measure.fetch_user(user_id, "eager"))
    assert len(lazy.statements) == len(eager.statements) == 2, "1 + N with N = 1, and selectinload's two"
    assert "IN (" in eager.sql[1]
    assert "= air_scores.user_id" in lazy.sql[1]
    assert sorted(s["id"] for s in lazy.scores) == sorted(s["id"] for s in eager.scores)  # type: ignore[type-var]
    assert len(lazy.scores) == 3
    assert not lazy.verdict.flagged


def test_the_per_user_lookup_uses_the_user_id_index(sandbox: Sandbox) -> None:
    seed(sandbox, 1000, 5)
    found = sandbox.run(plans.query_plans())
    assert [p.label.split(":")[0] for p in found] == [
        "lazy load of one user's scores (sent N times)",
        "selectinload",
        "joinedload",
    ]
    assert found[0].uses_index, found[0].plan
    assert plans.INDEX in found[0].plan
    assert "plab_" not in found[0].sql, "the sandbox's schema is not repeated on every line"


def test_the_scaling_experiment_counts_every_point(sandbox: Sandbox) -> None:
    seed(sandbox, 60, 1)
    progress = Progress()
    result = sandbox.run(scaling.run_scaling(1.0, progress))
    assert result.sizes == [10, 50], "only sizes the sandbox has users for"
    assert result.round_trips == [0.0, 1.0]
    assert result.identical
    assert progress.done == progress.total == 2 * 4 * scaling.REPEATS_WITHOUT_ROUND_TRIP + 2 * 4
    by = {(p.strategy, p.users, p.round_trip_ms): p for p in result.points}
    assert len(by) == 2 * 4 * 2
    for n in (10, 50):
        for delay in (0.0, 1.0):
            assert by["lazy loading (awaitable_attrs)", n, delay].queries == n + 1
            assert by["a query per user (loop)", n, delay].queries == n + 1
            assert by["selectinload", n, delay].queries == 2
            assert by["joinedload", n, delay].queries == 1
        assert by["lazy loading (awaitable_attrs)", n, 1.0].injected_ms >= (n + 1) * 1.0
        assert by["selectinload", n, 0.0].injected_ms == 0.0


def test_the_repository_sends_what_bare_selectinload_sends(sandbox: Sandbox) -> None:
    """The repository's eager load is the same statements as a hand-written selectinload: no extra work."""
    seed(sandbox, 20, 2)

    async def both() -> tuple[list[str], list[str]]:
        async with get_session() as session, capture_queries(sandbox.engine) as via_repository:
            await repositories.UserRepository(session).get_all_users_with_scores_eager()
        async with get_session() as session, capture_queries(sandbox.engine) as bare:
            query = select(User).options(selectinload(User.scores)).order_by(User.email)
            (await session.execute(query)).scalars().all()
        return via_repository.statements, bare.statements

    via_repository, bare = sandbox.run(both())
    assert via_repository == bare
    assert len(bare) == 2
