"""Lab 4's cache, on SQLite + fakeredis and on PostgreSQL + Redis: miss then hit, TTL expiry,
every write path invalidates, exact counts, stampede protection, repair, bad input."""

from __future__ import annotations

import asyncio

import fakeredis
import pytest
from sqlalchemy import delete

from source import Sandbox
from source.domain.dtos import UserRow, UserUpdate
from source.domain.errors import InvalidInput, NotFound
from source.domain.models import User
from source.labs.caching import actions, stampede
from source.labs.caching.cache import RedisCache, latest_score_key, user_key
from source.labs.caching.dtos import MAX_OP_TIMEOUT_S, CacheSettings
from source.labs.caching.jobs import StampedeRunner
from source.labs.caching.lookup import Lookup
from source.labs.caching.metrics import CacheCounts
from source.labs.caching.repository import CachedUserRepository
from source.labs.caching.sandbox_cache import cache_for, default_cache
from source.labs.caching.stampede import LinedUpCache, StartLine
from source.platform.session import get_session
from source.services import users
from source.services.samples import create_sample_airscore, create_sample_users
from tests.waiting import eventually

UNKNOWN = "00000000-0000-4000-8000-000000000000"

#: None of these tests is about timeouts: Redis gets as long as the settings allow (see conftest).
pytestmark = pytest.mark.usefixtures("patient_cache")


def alex(sandbox: Sandbox, scores: int = 1) -> str:
    async def make() -> str:
        uid = (await create_sample_users())[0][1]
        for i in range(scores):
            await create_sample_airscore(uid, air_score=70.0 + i)
        return uid

    return sandbox.run(make())


def counts(sandbox: Sandbox) -> CacheCounts:
    return sandbox.run(cache_for(sandbox).metrics.counts())


def cached_text(sandbox: Sandbox, logical: str) -> str | None:
    return sandbox.run(cache_for(sandbox).peek(logical))[0]


def patient_settings(**values: float | bool) -> CacheSettings:
    """The page's settings with ``values``, keeping the longest Redis call timeout."""
    return actions.settings_from(op_timeout_s=MAX_OP_TIMEOUT_S, **values)


def test_miss_then_hit_for_user_and_latest_score(sandbox: Sandbox) -> None:
    uid = alex(sandbox, scores=2)
    first = sandbox.run(actions.fetch_user(uid))
    second = sandbox.run(actions.fetch_user(uid))
    assert (first.lookup.outcome, second.lookup.outcome) == ("miss", "hit")
    assert first.value == second.value
    assert second.value is not None
    assert second.value.name == "Alex Smith"
    assert first.lookup.db_ms > 0
    assert second.lookup.db_ms == 0
    s1, s2 = sandbox.run(actions.fetch_latest_score(uid)), sandbox.run(actions.fetch_latest_score(uid))
    assert (s1.lookup.outcome, s2.lookup.outcome) == ("miss", "hit")
    assert s2.value is not None
    assert s2.value.air_score == 71.0, "the newest of the two scores"
    assert not first.stale
    assert not second.stale
    assert not s1.stale
    assert not s2.stale
    c = counts(sandbox)
    assert (c.hits, c.misses, c.errors, c.bypassed, c.stale) == (2, 2, 0, 0, 0)
    assert c.hit_ratio == 0.5
    assert c.from_redis
    assert c.in_process == 0


def test_counts_are_exact_over_a_sequence(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    for _ in range(5):
        sandbox.run(actions.fetch_user(uid))
    sandbox.run(actions.invalidate(uid))
    for _ in range(3):
        sandbox.run(actions.fetch_user(uid))
    sandbox.run(actions.fetch_user(UNKNOWN))
    c = counts(sandbox)
    assert (c.hits, c.misses, c.requests) == (6, 3, 9)
    formula = cache_for(sandbox).metrics.formula()
    assert formula is not None
    assert formula.reads == 9
    assert formula.hit_ratio == pytest.approx(6 / 9)
    sandbox.run(actions.reset_counts())
    assert counts(sandbox).requests == 0


def test_counts_are_kept_in_redis_under_the_sandbox(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    sandbox.run(actions.fetch_user(uid))
    cache = cache_for(sandbox)
    sandbox.run(cache.metrics.flush())
    shared = sandbox.host.redis  # the process-wide client: full key names, prefix included
    assert sandbox.run(shared.hgetall(sandbox.key_prefix + "cache:stats")) == {"misses": "1"}
    assert sandbox.run(shared.exists(sandbox.key_prefix + user_key(uid))) == 1


def test_ttl_expiry_makes_the_next_read_a_miss(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    sandbox.run(actions.configure(patient_settings(user_ttl_s=0.4)))
    assert sandbox.run(actions.fetch_user(uid)).lookup.outcome == "miss"
    state = sandbox.run(actions.key_states(uid))[0]
    assert state.ttl_ms is not None
    assert 0 < state.ttl_ms <= 400
    assert sandbox.run(actions.fetch_user(uid)).lookup.outcome == "hit"
    eventually(lambda: sandbox.run(actions.key_states(uid))[0].ttl_ms is None, "the cached user to expire")
    assert cached_text(sandbox, user_key(uid)) is None
    assert sandbox.run(actions.fetch_user(uid)).lookup.outcome == "miss"


def test_every_write_path_invalidates(sandbox: Sandbox) -> None:
    uid = alex(sandbox)

    def warm() -> None:
        sandbox.run(actions.fetch_user(uid))
        sandbox.run(actions.fetch_latest_score(uid))
        assert cached_text(sandbox, user_key(uid)) is not None
        assert cached_text(sandbox, latest_score_key(uid)) is not None

    warm()
    sandbox.run(users.update_user(uid, UserUpdate(name="Alex Renamed")))
    assert cached_text(sandbox, user_key(uid)) is None
    fetched = sandbox.run(actions.fetch_user(uid))
    assert fetched.value is not None
    assert fetched.value.name == "Alex Renamed"
    assert not fetched.stale

    warm()
    added = sandbox.run(actions.add_score(uid, 99.5))
    assert (added.kind, added.text) == ("success", "Added AI-R 99.5; the cached latest score was invalidated.")
    assert cached_text(sandbox, latest_score_key(uid)) is None
    score = sandbox.run(actions.fetch_latest_score(uid))
    assert score.value is not None
    assert score.value.air_score == 99.5, "the new score, not the one cached before it"
    assert not score.stale

    warm()
    sandbox.run(users.add_sample_children(uid, 0, 1))
    assert cached_text(sandbox, latest_score_key(uid)) is None

    warm()
    sandbox.run(users.delete_user(uid))
    assert cached_text(sandbox, user_key(uid)) is None
    assert cached_text(sandbox, latest_score_key(uid)) is None
    gone = sandbox.run(actions.fetch_user(uid))
    assert gone.value is None
    assert not gone.stale
    assert gone.verdict == "no such user"
    assert counts(sandbox).stale == 0


def test_a_write_that_skips_invalidation_is_caught_as_a_stale_read(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    sandbox.run(actions.fetch_user(uid))
    sandbox.run(actions.rename_without_invalidating(uid, "Alex Forgotten"))
    served = sandbox.run(actions.fetch_user(uid))
    assert served.lookup.outcome == "hit"
    assert served.value is not None
    assert served.value.name == "Alex Smith"
    assert served.stale
    assert served.verdict.startswith("STALE")
    assert counts(sandbox).stale == 1
    sandbox.run(actions.invalidate(uid))
    fresh = sandbox.run(actions.fetch_user(uid))
    assert fresh.value is not None
    assert fresh.value.name == "Alex Forgotten"
    assert not fresh.stale


def test_user_deleted_behind_the_cache_is_reported_stale(sandbox: Sandbox) -> None:
    uid = alex(sandbox, scores=0)
    sandbox.run(actions.fetch_user(uid))

    async def delete_without_invalidating() -> None:
        async with get_session() as session:
            await session.execute(delete(User).where(User.id == uid))
            await session.commit()

    sandbox.run(delete_without_invalidating())
    served = sandbox.run(actions.fetch_user(uid))
    assert served.value is not None
    assert served.stale
    assert "no such user any more" in served.verdict


@pytest.mark.parametrize(
    "damage", ["{not json", '{"id": "x", "name": "an older shape"}', "", "null"], ids=["text", "shape", "empty", "null"]
)
def test_a_malformed_cached_value_is_a_miss_that_repairs_itself(sandbox: Sandbox, damage: str) -> None:
    uid = alex(sandbox)
    cache = cache_for(sandbox)
    sandbox.run(cache.client.set(cache.key(user_key(uid)), damage, px=60_000))
    fetched = sandbox.run(actions.fetch_user(uid))
    assert fetched.lookup.outcome == "miss"
    assert fetched.lookup.repaired
    assert fetched.value is not None
    assert fetched.value.name == "Alex Smith"
    assert not fetched.stale
    repaired = cached_text(sandbox, user_key(uid))
    assert repaired is not None
    assert repaired != damage
    assert '"Alex Smith"' in repaired
    assert sandbox.run(actions.fetch_user(uid)).lookup.outcome == "hit"
    c = counts(sandbox)
    assert (c.misses, c.repaired, c.hits) == (1, 1, 1)


def test_a_malformed_value_of_a_deleted_user_is_removed(sandbox: Sandbox) -> None:
    cache = cache_for(sandbox)
    sandbox.run(cache.client.set(cache.key(user_key(UNKNOWN)), "garbage", px=60_000))
    fetched = sandbox.run(actions.fetch_user(UNKNOWN))
    assert fetched.value is None
    assert fetched.lookup.repaired
    assert cached_text(sandbox, user_key(UNKNOWN)) is None


def test_unknown_user_is_none_and_not_cached(sandbox: Sandbox) -> None:
    fetched = sandbox.run(actions.fetch_user(UNKNOWN))
    assert fetched.value is None
    assert fetched.lookup.outcome == "miss"
    assert fetched.verdict == "no such user"
    assert cached_text(sandbox, user_key(UNKNOWN)) is None
    assert sandbox.run(actions.fetch_latest_score(UNKNOWN)).value is None


@pytest.mark.parametrize("readers", [50])
def test_stampede_protection_makes_one_database_read(sandbox: Sandbox, readers: int) -> None:
    uid = alex(sandbox)
    protected = sandbox.run(stampede.run_stampede(uid, readers, protection=True))
    assert (protected.cold, protected.db_reads, protected.misses) == (readers, 1, 1), protected
    assert protected.hits == protected.waited == readers - 1, "the others waited for that one read"
    assert protected.other == 0
    unprotected = sandbox.run(stampede.run_stampede(uid, readers, protection=False))
    assert unprotected.cold == unprotected.db_reads == unprotected.misses == readers, unprotected
    assert unprotected.hits == unprotected.other == 0
    c = counts(sandbox)
    assert c.misses == protected.misses + unprotected.misses
    assert c.hits == protected.hits + unprotected.hits


@pytest.mark.parametrize("protection", [True, False], ids=["protected", "unprotected"])
def test_a_stampede_reader_that_starts_late_still_finds_the_key_cold(sandbox: Sandbox, protection: bool) -> None:
    """Nobody loads the key before every reader has looked it up, however late one starts."""
    uid = alex(sandbox)
    base = cache_for(sandbox)

    class Watched(StartLine):
        first_in = asyncio.Event()

        def count_in(self) -> None:
            super().count_in()
            self.first_in.set()

    line = Watched(2)
    settings = base.settings.model_copy(update={"stampede_protection": protection})
    cache = LinedUpCache(base.client, settings, prefix=base.prefix, line=line)

    async def read() -> Lookup:
        async with get_session() as session:
            repo = CachedUserRepository(session, cache.client, cache=cache)
            try:
                assert await repo.get_by_id_cached(uid) is not None
            finally:
                line.count_in()
            assert repo.last is not None
            return repo.last

    async def early_then_late() -> tuple[Lookup, Lookup, str | None]:
        early = asyncio.create_task(read())
        await line.first_in.wait()  # the early reader missed and waits at the line
        cached_before_the_late_reader = await cache.client.get(cache.key(user_key(uid)))
        late = await read()
        await cache.aclose()
        return await early, late, cached_before_the_late_reader

    early, late, cached = sandbox.run(early_then_late())
    assert cached is None, "the early reader did not load while the late one had not looked"
    for lookup in (early, late):  # a miss, or (with protection) a hit only after waiting for the other's load
        assert lookup.outcome == "miss" or (lookup.outcome == "hit" and lookup.waited), lookup


def test_single_flight_across_processes(sandbox: Sandbox) -> None:
    """Two caches with their own in-process locks (two app servers) share one Redis lock."""
    uid = alex(sandbox)
    base = cache_for(sandbox)
    servers = [RedisCache(base.client, base.settings, prefix=base.prefix) for _ in range(2)]

    async def storm() -> int:
        loads = 0

        async def reader(cache: RedisCache) -> None:
            nonlocal loads
            async with get_session() as session:
                repo = CachedUserRepository(session, cache.client, cache=cache)
                assert (await repo.get_by_id_cached(uid)) is not None
                loads += repo.db_reads

        await asyncio.gather(*(reader(servers[i % 2]) for i in range(50)))
        for cache in servers:
            await cache.aclose()
        return loads

    assert sandbox.run(storm()) <= 2


def test_early_refresh_renews_a_hot_key_in_the_background(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    cache = cache_for(sandbox)
    sandbox.run(actions.configure(patient_settings(user_ttl_s=2.0, early_refresh=True, early_refresh_share=0.9)))
    assert sandbox.run(actions.fetch_user(uid)).lookup.outcome == "miss"
    eventually(lambda: (sandbox.run(actions.key_states(uid))[0].ttl_ms or 0) < 1700, "the key to enter its last 85%")
    hit = sandbox.run(actions.fetch_user(uid))
    assert hit.lookup.outcome == "hit"
    assert hit.lookup.db_ms == 0, "the reader did not wait for the refresh"
    sandbox.run(cache.early.wait_idle())
    ttl = sandbox.run(actions.key_states(uid))[0].ttl_ms
    assert ttl is not None
    assert ttl > 1700, "refreshed with a full TTL"
    assert counts(sandbox).refreshes == 1


def test_any_redis_client_works_as_the_notebook_passes_one(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    own = fakeredis.FakeAsyncRedis(decode_responses=True)

    async def notebook_style() -> tuple[str, str, CacheCounts]:
        default_cache(own).configure(patient_settings())  # the cache a repository given only `own` uses
        async with get_session() as session:
            repo = CachedUserRepository(session, own)
            await repo.get_by_id_cached(uid)
            first = repo.last
        async with get_session() as session:
            repo = CachedUserRepository(session, own)
            user = await repo.get_by_id_cached(uid)
            assert user is not None
            assert user.name == "Alex Smith"
            second = repo.last
            assert await own.get(user_key(uid)) is not None, "plain logical key names on a plain client"
            stats = await repo.cache.metrics.counts()
        assert first is not None
        assert second is not None
        return first.outcome, second.outcome, stats

    first, second, stats = sandbox.run(notebook_style())
    assert (first, second) == ("miss", "hit")
    assert (stats.hits, stats.misses) == (1, 1)
    assert counts(sandbox).requests == 0, "the sandbox's own counters are untouched"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"user_ttl_s": 0}, "User TTL (s): input should be greater than 0"),
        ({"score_ttl_s": -5}, "Latest-score TTL (s): input should be greater than 0"),
        ({"user_ttl_s": 10**9}, "User TTL (s): input should be less than or equal to 86400"),
    ],
)
def test_bad_ttls_are_refused_with_a_clear_message(sandbox: Sandbox, values: dict[str, float], message: str) -> None:
    before = cache_for(sandbox).settings
    with pytest.raises(InvalidInput) as caught:
        actions.settings_from(**values)
    assert message in str(caught.value)
    assert "previous settings are kept" in str(caught.value)
    assert cache_for(sandbox).settings == before


@pytest.mark.parametrize("readers", [0, -1, stampede.MAX_STAMPEDE + 1])
def test_stampede_sizes_out_of_range_are_refused(sandbox: Sandbox, readers: int) -> None:
    with pytest.raises(InvalidInput, match="between 1 and"):
        sandbox.run(stampede.run_stampede(UNKNOWN, readers, protection=True))


def test_bad_scores_and_names_are_refused(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    with pytest.raises(InvalidInput, match="between 0 and 100"):
        sandbox.run(actions.add_score(uid, 101))
    with pytest.raises(InvalidInput, match="name: is required"):
        sandbox.run(actions.rename_without_invalidating(uid, "   "))
    with pytest.raises(NotFound):
        sandbox.run(actions.add_score(UNKNOWN, 50))


def test_a_read_says_what_kind_of_news_it_is(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    miss = sandbox.run(actions.fetch_user(uid)).outcome("fetch user")
    assert miss.kind == "success"
    assert miss.text.startswith("fetch user: **MISS** in ")
    sandbox.run(actions.rename_without_invalidating(uid, "Alex Forgotten"))
    stale = sandbox.run(actions.fetch_user(uid)).outcome("fetch user")
    assert stale.kind == "warning", "a stale hit is no success"
    assert "STALE" in stale.text


def test_save_name_keeps_the_profile_and_update_user_invalidates(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    sandbox.run(actions.fetch_user(uid))
    said = sandbox.run(actions.save_name(uid, "  Alex Saved  "))
    assert (said.kind, said.text) == (
        "success",
        "Saved, and the cached user was invalidated: the next fetch is a miss with the new name.",
    )
    assert cached_text(sandbox, user_key(uid)) is None, "update_user's AFTER_WRITE hook deleted the key"
    fetched = sandbox.run(actions.fetch_user(uid))
    assert fetched.lookup.outcome == "miss"
    assert fetched.value is not None
    saved = fetched.value
    assert (saved.name, saved.occupation_code, saved.education_level, saved.years_experience) == (
        "Alex Saved",
        "SW_ENG",
        "Masters",
        5.0,
    ), "only the name changed"
    with pytest.raises(InvalidInput, match="Please fix: name"):
        sandbox.run(actions.save_name(uid, "   "))
    with pytest.raises(NotFound):
        sandbox.run(actions.save_name(UNKNOWN, "Nobody"))


def test_delete_user_says_what_the_cascade_removed(sandbox: Sandbox) -> None:
    uid = alex(sandbox, scores=2)
    sandbox.run(actions.fetch_user(uid))
    said = sandbox.run(actions.delete_user(uid))
    assert said.text == (
        "Deleted alex.smith@innovateai.com with 0 assessment(s) and 2 score(s); the user's cached keys were "
        "invalidated."
    )
    assert cached_text(sandbox, user_key(uid)) is None


def test_apply_changes_what_the_form_shows_and_keeps_the_rest(sandbox: Sandbox) -> None:
    said = sandbox.run(
        actions.apply_settings(user_ttl_s=30.0, score_ttl_s=10.0, stampede_protection=False, early_refresh=True)
    )
    assert said.text.startswith("Applied.")
    applied = cache_for(sandbox).settings
    assert (applied.user_ttl_s, applied.score_ttl_s, applied.stampede_protection, applied.early_refresh) == (
        30.0,
        10.0,
        False,
        True,
    )
    assert applied.op_timeout_s == MAX_OP_TIMEOUT_S, "a setting the form does not show is kept"
    with pytest.raises(InvalidInput, match="User TTL"):
        sandbox.run(actions.apply_settings(user_ttl_s=0.0))
    assert cache_for(sandbox).settings == applied


def test_the_stampede_as_a_job_keeps_the_last_results_for_the_chart(sandbox: Sandbox) -> None:
    uid = alex(sandbox)
    runner = StampedeRunner.of(sandbox)
    for protection in (True, False):
        runner.start(uid, 10, protection)
        eventually(lambda: runner.running() is None, "the stampede to end")
    assert [(r.protection, r.readers, r.cold) for r in runner.history] == [(True, 10, 10), (False, 10, 10)]
    assert runner.last is runner.history[-1]
    assert runner.last.outcome().kind == "success"
    with pytest.raises(InvalidInput, match="between 1 and"):
        runner.start(uid, stampede.MAX_STAMPEDE + 1, True)


def test_the_cold_cache_preset_counts_users_in_the_database_and_drops_every_cached_key(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's list of users stops at a limit; the preset counts the table, and forgets every cached user."""
    from source.labs.caching import presets
    from source.learning.seed import parse_request, seed

    sandbox.run(seed(parse_request(users=600, assessments_per_user=0, scores_per_user=0)), timeout=300)
    uid = alex(sandbox)
    last = sandbox.run(users.list_users())[-1].id
    for user_id in (uid, last):
        sandbox.run(actions.fetch_user(user_id))
    sandbox.run(actions.fetch_latest_score(uid))

    async def listed(limit: int = 2) -> list[UserRow]:  # a page's list stops at a limit: never the count
        raise AssertionError("the preset counts the users in the database, not in a list")

    monkeypatch.setattr(users, "list_users", listed)
    said = sandbox.run(presets.cold_cache())
    assert said.startswith("Cold cache: 602 user(s), none cached, counters at zero"), said
    assert "(3 cached key(s) deleted)" in said
    for logical in (user_key(uid), user_key(last), latest_score_key(uid)):
        assert cached_text(sandbox, logical) is None
    assert counts(sandbox).requests == 0
