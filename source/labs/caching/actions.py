"""What Lab 4's page does, one coroutine per button: cached reads (checked against the database
afterwards), invalidation, the write paths, the keys' TTLs, the counters, the settings, the
learner's own Redis outage, and the data structures.

Each runs in the learner's sandbox and returns plain data or an :class:`Outcome`: the sentence
the learner reads and what kind of news it is (a read that could not use Redis is a warning,
never a green success; an invalidation is "done" only when Redis confirmed it, and *pending*
until then). The page only shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from sqlalchemy import update

from source.domain.dtos import UserRow, UserUpdate, parse
from source.domain.errors import InvalidInput, NotFound
from source.domain.models import User
from source.domain.repositories import UserRepository
from source.labs.caching import record, structures
from source.labs.caching.breaker import CacheUnavailable
from source.labs.caching.cache import RedisCache, latest_score_key, user_key
from source.labs.caching.dtos import CacheSettings, ScoreRow
from source.labs.caching.lookup import Lookup
from source.labs.caching.metrics import SAMPLES_KEPT, CacheCounts, Formula, ReadWindow
from source.labs.caching.repository import CachedUserRepository
from source.labs.caching.sandbox_cache import cache_for, outage_of, set_outage
from source.labs.caching.strategies import EMAIL_DOMAIN
from source.platform.context import current_sandbox
from source.platform.dead_redis import OutageMode
from source.platform.outcome import Kind, Outcome
from source.platform.sandbox import Sandbox
from source.platform.session import get_session
from source.services import users
from source.services.samples import create_sample_airscore, create_sample_users

T = TypeVar("T")

LABELS = {
    "user_ttl_s": "User TTL (s)",
    "score_ttl_s": "Latest-score TTL (s)",
    "early_refresh_share": "Early refresh share",
    "op_timeout_s": "Redis call timeout (s)",
    "cooldown_s": "Bypass cool-down (s)",
    "lock_ttl_s": "Stampede lock TTL (s)",
}
#: The TTL the "watch it run out" demo caches a user with: short enough to watch it reach zero.
DEMO_TTL_S = 20.0
#: What each outcome of a read is, on the page: a read that could not use Redis is never green.
OUTCOME_KIND: dict[str, Kind] = {"hit": "success", "miss": "success", "error": "warning", "bypassed": "warning"}
#: How the read log marks each outcome: a colour and a word, so it reads without the colour too.
OUTCOME_MARK = {"hit": "🟢", "miss": "🔵", "error": "🟠", "bypassed": "🟠"}
#: The outage switch's choices, as the page labels them, and the dead Redis each one stands for.
OUTAGES: dict[str, OutageMode | None] = {
    "Redis available": None,
    "Redis refuses connections": "refused",
    "Redis black-holed": "black-holed",
}


def _cache() -> RedisCache:
    return cache_for(current_sandbox())


# -- the users the page reads ---------------------------------------------------------------
@dataclass(frozen=True)
class Samples:
    """Alex's and Jane's ids, and how many of them this click created."""

    ids: list[str]
    created: int

    def outcome(self) -> Outcome:
        if self.created:
            return Outcome("Added Alex Smith and Jane Doe, each with a first AI-R score.")
        return Outcome("Alex Smith and Jane Doe were already in your sandbox.", "info")


async def add_samples() -> Samples:
    """Alex and Jane from the course story, each with a first AI-R score."""
    made = await create_sample_users()
    for (_, user_id, created), score in zip(made, (85.5, 78.0), strict=True):
        if created:
            await create_sample_airscore(user_id, air_score=score)
    return Samples([user_id for _, user_id, _ in made], sum(created for _, _, created in made))


async def lab_users() -> list[UserRow]:
    """The sandbox's users a learner picks from (the strategy lab's own users left out)."""
    return [u for u in await users.list_users() if not u.email.endswith(EMAIL_DOMAIN)]


# -- cached reads, audited ------------------------------------------------------------------
@dataclass(frozen=True)
class Fetched(Generic[T]):
    """A cached read, and what the database said right after it (outside the timed part)."""

    value: T | None
    lookup: Lookup
    stale: bool
    verdict: str

    def row(self, action: str) -> dict[str, object]:
        """One line of the page's read log."""
        lk = self.lookup
        return {
            "action": action,
            "outcome": f"{OUTCOME_MARK[lk.outcome]} {lk.outcome.upper()}",
            "total (ms)": round(lk.total_ms, 3),
            "Redis (ms)": round(lk.cache_ms, 3),
            "database (ms)": round(lk.db_ms, 3),
            "checked against the database": self.verdict,
            "value": _summary(self.value),
        }

    def message(self, action: str) -> str:
        lk = self.lookup
        why = f" ({lk.reason})" if lk.reason else ""
        return f"{action}: **{lk.outcome.upper()}** in {lk.total_ms:.2f} ms — {self.verdict}{why}"

    def outcome(self, action: str) -> Outcome:
        """The message; a warning when the value was stale or Redis could not be used (error, bypassed)."""
        kind = OUTCOME_KIND[self.lookup.outcome]
        return Outcome(self.message(action), "warning" if self.stale else kind)


def judge(cache: RedisCache, value: Any, truth: Any, lookup: Lookup | None, what: str) -> Fetched[Any]:
    """Compare what the cache served with the database's ``truth``; a stale answer is counted."""
    if lookup is None:
        raise RuntimeError("a cached read always records its lookup")
    stale = value != truth
    if stale:
        cache.metrics.record("stale")
        if lookup.sample is not None:  # and in the window of reads the page's figures use
            lookup.sample.stale = True
        verdict = (
            f"STALE: the database has no such {what} any more"
            if truth is None
            else f"STALE: the database holds a newer {what} than the one served"
        )
    else:
        verdict = f"matches the database's {what}" if value is not None else f"no such {what}"
    return Fetched(value, lookup, stale, verdict)


def _summary(value: object) -> str:
    if isinstance(value, UserRow):
        return f"{value.name} (updated {value.updated_at:%H:%M:%S.%f})"
    if isinstance(value, ScoreRow):
        return f"AI-R {value.air_score:g} (created {value.created_at:%H:%M:%S.%f})"
    return "none"


async def fetch_user(user_id: str) -> Fetched[UserRow]:
    """Read the user through the cache, then compare with the database to catch a stale hit."""
    cache = _cache()
    async with get_session() as session:
        repo = CachedUserRepository(session, cache.client, cache=cache)
        value = await repo.get_by_id_cached(user_id)
        lookup = repo.last
    async with get_session() as session:  # the audit: a fresh session, after the timed read
        row = await UserRepository(session).get_by_id(user_id)
        truth = UserRow.model_validate(row) if row is not None else None
    await record.cache_reads(cache)  # for the knowledge check and the class view
    return judge(cache, value, truth, lookup, "user")


async def fetch_latest_score(user_id: str) -> Fetched[ScoreRow]:
    cache = _cache()
    async with get_session() as session:
        repo = CachedUserRepository(session, cache.client, cache=cache)
        value = await repo.get_latest_score_cached(user_id)
        lookup = repo.last
    async with get_session() as session:
        row = await UserRepository(session).get_latest_score(user_id)
        truth = ScoreRow.model_validate(row) if row is not None else None
    await record.cache_reads(cache)  # for the knowledge check and the class view
    return judge(cache, value, truth, lookup, "latest score")


# -- writes -----------------------------------------------------------------------------------
#: What the page says about an invalidation Redis has not confirmed: never that it was done.
PENDING = (
    "Invalidation pending: Redis has not taken it yet. It is kept, and sent before the cache serves this user again."
)


async def invalidate(user_id: str) -> Outcome:
    async with get_session() as session:
        cache = _cache()
        if await CachedUserRepository(session, cache.client, cache=cache).invalidate_user_cache(user_id):
            return Outcome("Deleted both keys.", "info")
    return Outcome(PENDING, "warning")


def _taken_since(mark: int, user_id: str) -> bool:
    """Whether Redis confirmed deleting both of the user's keys since ``mark`` (else the invalidation is pending).

    Positive evidence only: a delete that failed, timed out, never ran or is still on its way
    all read as pending.
    """
    return _cache().taken_since(mark, user_key(user_id), latest_score_key(user_id))


async def save_name(user_id: str, name: str) -> Outcome:
    """Lab 1's write path: the current profile with a new name, saved by ``update_user``.

    ``update_user`` commits, then tells :data:`~source.services.users.AFTER_WRITE`, which
    (wired by the course) deletes the user's cached keys.
    """
    async with get_session() as session:
        current = await UserRepository(session).get_by_id(user_id)
        if current is None:
            raise NotFound(f"No user has the id {user_id} (it may have been deleted).")
        change = parse(
            UserUpdate,
            name=name,
            occupation_code=current.occupation_code,
            education_level=current.education_level,
            years_experience=current.years_experience,
        )
    mark = _cache().deletes_confirmed
    await users.update_user(user_id, change)
    if _taken_since(mark, user_id):
        return Outcome("Saved, and the cached user was invalidated: the next fetch is a miss with the new name.")
    return Outcome(f"Saved. {PENDING}", "warning")


async def rename_without_invalidating(user_id: str, name: str) -> Outcome:
    """The classic bug, on purpose: change the row and forget the cache."""
    name = parse(UserUpdate, name=name).name  # the same checks as Save: 1 to 255 characters, no control character
    async with get_session() as session:
        result = await session.execute(update(User).where(User.id == user_id).values(name=name))
        await session.commit()
    if getattr(result, "rowcount", 1) == 0:
        raise NotFound(f"No user has the id {user_id} (it may have been deleted).")
    return Outcome(
        "Saved to the database only. Fetch the user: the cache still serves the old name (stale).", "warning"
    )


async def add_score(user_id: str, air_score: float) -> Outcome:
    """A new score path: INSERT, commit, then invalidate the cached latest score."""
    if not 0 <= air_score <= 100:
        raise InvalidInput("An AI-R score is between 0 and 100.")
    async with get_session() as session:
        if await UserRepository(session).get_by_id(user_id) is None:
            raise NotFound(f"No user has the id {user_id} (it may have been deleted).")
    await create_sample_airscore(user_id, air_score=air_score)
    async with get_session() as session:
        cache = _cache()
        invalidated = await CachedUserRepository(session, cache.client, cache=cache).invalidate_user_cache(user_id)
    if invalidated:
        return Outcome(f"Added AI-R {air_score:g}; the cached latest score was invalidated.")
    return Outcome(f"Added AI-R {air_score:g}. {PENDING}", "warning")


async def delete_user(user_id: str) -> Outcome:
    """Lab 1's ``delete_user``: the cascade removes the children, ``AFTER_WRITE`` the cached keys."""
    mark = _cache().deletes_confirmed
    report = await users.delete_user(user_id)
    removed = (
        f"Deleted {report.user_email} with {report.assessments_removed} assessment(s) and {report.scores_removed} "
        "score(s)"
    )
    if _taken_since(mark, user_id):
        return Outcome(f"{removed}; the user's cached keys were invalidated.")
    return Outcome(f"{removed}. {PENDING}", "warning")


async def watch_ttl(user_id: str) -> Outcome:
    """The TTL demo: cache the user and their latest score for :data:`DEMO_TTL_S`, a TTL one can watch run out."""
    cache = _cache()
    async with get_session() as session:
        repo = UserRepository(session)
        user, score = await repo.get_by_id(user_id), await repo.get_latest_score(user_id)
        if user is None:
            raise NotFound(f"No user has the id {user_id} (it may have been deleted).")
        rows: list[tuple[str, UserRow | ScoreRow]] = [(user_key(user_id), UserRow.model_validate(user))]
        if score is not None:
            rows.append((latest_score_key(user_id), ScoreRow.model_validate(score)))
    stored = [await cache.store(logical, row, DEMO_TTL_S) for logical, row in rows]
    if not all(stored):
        return Outcome(f"Redis did not take it: nothing is cached to watch. {PENDING}", "warning")
    return Outcome(
        f"Cached for {DEMO_TTL_S:g} s (`SET … PX {DEMO_TTL_S * 1000:.0f}`): watch the bars run out. A fetch after "
        "that is a miss.",
        "info",
    )


# -- what Redis holds, and the counters ----------------------------------------------------------
@dataclass(frozen=True)
class KeyState:
    label: str
    key: str
    ttl_ms: int | None
    configured_s: float
    value: str | None
    unavailable: str | None = None

    @property
    def fraction(self) -> float:
        """How much of the configured TTL is left, 0 to 1."""
        return min(1.0, (self.ttl_ms or 0) / 1000 / self.configured_s)

    def describe(self) -> str:
        left = f"{self.ttl_ms / 1000:.1f} s left of {self.configured_s:g} s" if self.ttl_ms else "not cached"
        return f"`{self.key}`: {self.unavailable or left}"


async def key_states(user_id: str) -> list[KeyState]:
    """Both of the user's cache keys as Redis holds them now (or why Redis cannot say)."""
    cache = _cache()
    out = []
    for label, logical, ttl in (
        ("user", user_key(user_id), cache.settings.user_ttl_s),
        ("latest score", latest_score_key(user_id), cache.settings.score_ttl_s),
    ):
        written = cache.written_ttl_s.get(cache.key(logical), ttl)  # the TTL it was written with, if we wrote it
        try:
            raw, pttl = await cache.peek(logical)
        except CacheUnavailable as exc:
            out.append(KeyState(label, logical, None, written, None, str(exc)))
            continue
        out.append(KeyState(label, logical, pttl, written, raw))
    return out


@dataclass(frozen=True)
class CacheStatus:
    counts: CacheCounts
    #: The learner's last reads since the reset: the tiles, the formula and the knowledge check use these.
    window: ReadWindow
    settings: CacheSettings
    breaker: str
    last_error: str | None
    outage: str | None
    pending_invalidations: int

    @property
    def formula(self) -> Formula | None:
        return self.window.formula()

    def window_note(self) -> str:
        """Which reads the tiles and the formula are about, and how H counts a read that could not use Redis."""
        if not self.window.reads:
            return "No reads since the counters were reset: fetch a user or a latest score above."
        return (
            f"**{self.window.name()}** (this process keeps the last {SAMPLES_KEPT}): the tiles, the formula and the "
            "knowledge check below all use these reads. H = hits / reads; an error or a bypassed read went to the "
            "database, like a miss."
        )

    def pending(self) -> str | None:
        """The invalidations Redis has not taken yet, while there are any."""
        if not self.pending_invalidations:
            return None
        return (
            f"{self.pending_invalidations} invalidation(s) pending: Redis has not taken them yet. They are sent "
            "before the cache serves those keys again."
        )

    def bypassed(self) -> str | None:
        """The warning while the cache is switched off or skipped; ``None`` while it works."""
        if not self.outage and self.breaker == "closed":
            return None
        return (
            f"Cache bypassed: reads come from the database. Breaker {self.breaker}; last error: "
            f"{self.last_error or '—'}; {self.pending_invalidations} invalidation(s) pending until Redis takes them."
        )

    def timings(self) -> str:
        """How long the cache waits for Redis and how long it then leaves it alone, as it runs now."""
        s = self.settings
        return (
            f"Each cache call gives up after {s.op_timeout_s * 1000:g} ms; after a failure the cache is skipped for "
            f"{s.cooldown_s:g} s, then tried again, so caching resumes by itself. Switch Redis back and fetch: no "
            "stale value returns. When the app's Redis itself stops answering, the first call that finds it out makes "
            "every other Redis call of a click (the cache, its counters, your progress) skip it at once: a click "
            "waits once, not once per call."
        )


async def status() -> CacheStatus:
    sandbox = current_sandbox()
    cache = cache_for(sandbox)
    outage = outage_of(sandbox)
    return CacheStatus(
        counts=await cache.metrics.counts(),
        window=cache.metrics.window(),
        settings=cache.settings,
        breaker=cache.breaker.state,
        last_error=cache.breaker.last_error,
        outage=outage.mode if outage else None,
        pending_invalidations=len(cache.pending_invalidations),
    )


async def reset_counts() -> Outcome:
    await _cache().metrics.reset()
    return Outcome("The counters are back to zero.", "info")


# -- settings and the outage switch -------------------------------------------------------------
def settings_from(**values: Any) -> CacheSettings:
    """Validate the page's settings; a TTL of 0 or less is refused with the field's name."""
    try:
        return CacheSettings(**values)
    except ValidationError as exc:
        problems = [f"{LABELS.get(str(e['loc'][0]), str(e['loc'][0]))}: {e['msg'].lower()}" for e in exc.errors()]
        raise InvalidInput("Please fix: " + "; ".join(problems) + ". The previous settings are kept.") from None


def current_settings(sandbox: Sandbox) -> CacheSettings:
    """The settings this learner's cache runs with now."""
    return cache_for(sandbox).settings


async def configure(settings: CacheSettings) -> CacheSettings:
    _cache().configure(settings)
    return settings


async def apply_settings(**values: Any) -> Outcome:
    """The settings form: ``values`` over the cache's current settings (the others are kept)."""
    cache = _cache()
    cache.configure(settings_from(**{**cache.settings.model_dump(), **values}))
    return Outcome("Applied. Keys already cached keep the TTL they were written with.")


def outage_choice(sandbox: Sandbox) -> str:
    """The outage switch's label for what this learner's cache talks to now."""
    outage = outage_of(sandbox)
    mode = outage.mode if outage else None
    return next(label for label, m in OUTAGES.items() if m == mode)


async def set_outage_mode(choice: str) -> Outcome:
    """Point this learner's cache at a dead Redis (``choice`` as the page labels it), or back at Redis."""
    if choice not in OUTAGES:
        raise InvalidInput(f"Choose one of: {', '.join(OUTAGES)}.")
    mode = OUTAGES[choice]
    await set_outage(current_sandbox(), mode)
    if mode is None:
        return Outcome("Your cache talks to Redis again: the next read tries it.", "info")
    return Outcome(f"{choice}, for your cache only: reads come from the database until you switch back.", "info")


# -- the data structures ---------------------------------------------------------------------
async def build_structures(user_id: str) -> list[structures.Structure]:
    """The learner's data written into six Redis structures, each with the commands that built it."""
    return await structures.build_structures(user_id)
