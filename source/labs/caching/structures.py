"""Redis's data structures, filled with the learner's own data: a profile as a hash, a leaderboard
as a sorted set, recent events as a list and as a stream, tags as a set, and the cached user
as a string with a TTL. Each comes back with the commands that built it, as they were sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from source.domain.errors import NotFound
from source.domain.models import AIRScore, User
from source.labs.caching.cache import user_key
from source.labs.caching.sandbox_cache import cache_for
from source.platform.context import current_sandbox
from source.platform.session import get_session

RECENT = 20  # events kept in the list and the stream
WHEN = {
    "hash": "One object with named fields you read or change one at a time (HGET, HINCRBY) without "
    "rewriting the whole value. Choose it for a profile or a settings record.",
    "sorted set": "Members ordered by a score, kept sorted on every write: top-N, rank of one member, "
    "ranges by score, all in O(log N). Choose it for leaderboards and time-ordered indexes.",
    "list": "A sequence you push to and trim: LPUSH + LTRIM keeps the newest N in O(1). Choose it for "
    "a simple recent-activity feed read as a whole.",
    "stream": "An append-only log with ids, ranges by time, and consumer groups that track who read what "
    "(XREADGROUP, XACK). Choose it when several readers must each process every event: Lab 5's outbox.",
    "set": "Unique members, no order; membership and intersections are cheap (SISMEMBER, SINTER). Choose it "
    "for tags and 'who has X' questions.",
    "string": "One opaque value, here a DTO's JSON, with a TTL. Choose it for a cache entry read and written "
    "whole: GET + parse is the cheapest read Redis has.",
}


@dataclass
class Structure:
    kind: str
    key: str
    commands: list[str] = field(default_factory=list)
    contents: Any = None
    ttl_ms: int | None = None

    @property
    def when(self) -> str:
        return WHEN[self.kind]


def _show(*parts: object) -> str:
    return " ".join(f'"{p}"' if isinstance(p, str) and (" " in p or not p) else str(p) for p in parts)


async def build_structures(user_id: str) -> list[Structure]:  # noqa: PLR0915 - one block per structure reads best
    """Write the learner's data into six structures, read each back, and return what was sent."""
    sandbox = current_sandbox()
    cache = cache_for(sandbox)
    r, k = cache.client, cache.key
    async with get_session() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound(f"No user has the id {user_id} (it may have been deleted).")
        everyone = (await session.execute(select(User.id, User.name, User.email))).all()
        scores = (await session.execute(select(AIRScore).order_by(AIRScore.created_at))).scalars().all()
    out: list[Structure] = []

    profile = Structure("hash", f"ds:user:{user_id}")
    fields = {
        "name": user.name,
        "email": user.email,
        "occupation_code": user.occupation_code or "",
        "education_level": user.education_level or "",
        "years_experience": str(user.years_experience if user.years_experience is not None else ""),
    }
    await r.delete(k(profile.key))
    await r.hset(k(profile.key), mapping=fields)
    profile.commands = [_show("HSET", profile.key, *(x for kv in fields.items() for x in kv))]
    profile.contents = await r.hgetall(k(profile.key))
    out.append(profile)

    board = Structure("sorted set", "ds:leaderboard")
    latest: dict[str, float] = {}
    for score in scores:  # oldest first, so the newest score of each user wins
        latest[score.user_id] = score.air_score
    names = {uid: f"{name} <{email}>" for uid, name, email in everyone}
    members = {names[uid]: value for uid, value in latest.items() if uid in names}
    await r.delete(k(board.key))
    if members:
        await r.zadd(k(board.key), members)
        board.commands = [_show("ZADD", board.key, *(x for m, s in members.items() for x in (s, m)))]
    board.commands.append(_show("ZREVRANGE", board.key, 0, 9, "WITHSCORES"))
    board.contents = await r.zrevrange(k(board.key), 0, 9, withscores=True)
    out.append(board)

    events = [f"score {s.air_score:g} for {names.get(s.user_id, s.user_id)}" for s in scores][-RECENT:]
    events = [f"user created: {name}" for _, name, _ in everyone][-RECENT:] + events
    feed = Structure("list", "ds:events:list")
    await r.delete(k(feed.key))
    for event in events:
        await r.lpush(k(feed.key), event)
    await r.ltrim(k(feed.key), 0, RECENT - 1)
    feed.commands = [_show("LPUSH", feed.key, e) for e in events[-3:]] + [
        f"… ({len(events)} LPUSH in all)",
        _show("LTRIM", feed.key, 0, RECENT - 1),
        _show("LRANGE", feed.key, 0, -1),
    ]
    feed.contents = await r.lrange(k(feed.key), 0, -1)
    out.append(feed)

    stream = Structure("stream", "ds:events:stream")
    await r.delete(k(stream.key))
    for event in events:
        await r.xadd(k(stream.key), {"event": event}, maxlen=RECENT, approximate=False)
    stream.commands = [_show("XADD", stream.key, "MAXLEN", RECENT, "*", "event", e) for e in events[-3:]]
    stream.commands += [f"… ({len(events)} XADD in all)", _show("XRANGE", stream.key, "-", "+")]
    stream.contents = [{"id": i, **f} for i, f in await r.xrange(k(stream.key), "-", "+")]
    out.append(stream)

    tags = Structure("set", f"ds:tags:{user_id}")
    chosen = {t for t in (user.occupation_code, user.education_level) if t}
    if user.years_experience is not None:
        chosen.add("senior" if user.years_experience >= 5 else "early-career")
    chosen.add("scored" if user_id in latest else "not-yet-scored")
    await r.delete(k(tags.key))
    await r.sadd(k(tags.key), *sorted(chosen))
    tags.commands = [_show("SADD", tags.key, *sorted(chosen)), _show("SMEMBERS", tags.key)]
    tags.contents = sorted(await r.smembers(k(tags.key)))
    out.append(tags)

    cached = Structure("string", user_key(user_id))
    text, cached.ttl_ms = await cache.peek(cached.key)
    cached.commands = [_show("GET", cached.key), _show("PTTL", cached.key)]
    cached.contents = text if text is not None else "(not cached now: fetch the user in section 1 first)"
    out.append(cached)
    return out
