"""The instructor's side of a class: start one (a name, a join code, an expiry, a member cap), list, end.

Several classes may run at once (at most :data:`~source.learning.classroom.rules.MAX_CLASSES` on one
Redis, every app process together). A class ends by itself at its expiry: every key of it carries
that expiry, so Redis deletes it then. :func:`end_class` deletes it at once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from source.domain.errors import InvalidInput, LabError
from source.learning.classroom import keys, rules, scripts
from source.learning.classroom.keys import ClassKeys
from source.learning.classroom.store import ClassStore

#: How long the instructor's calls may wait for Redis (seconds): longer than a learner's click, still bounded.
INSTRUCTOR_TIMEOUT_S = 3.0
#: Codes tried before giving up on finding a free one (a clash is one in tens of millions).
CODE_TRIES = 8
#: Keys deleted per round trip when a class ends.
DELETE_BATCH = 500


@dataclass(frozen=True)
class ClassInfo:
    """One running class, as the instructor's list shows it."""

    code: str
    name: str
    created: float
    expires: float
    cap: int
    members: int

    def minutes_left(self, now: float | None = None) -> int:
        return max(0, math.floor((self.expires - (time.time() if now is None else now)) / 60))

    @classmethod
    def from_meta(cls, meta: dict[str, str], members: int) -> ClassInfo:
        return cls(
            code=meta["code"],
            name=meta["name"],
            created=float(meta["created"]),
            expires=float(meta["expires"]),
            cap=int(meta["cap"]),
            members=members,
        )


async def start_class(
    store: ClassStore, name: object, hours: object, cap: object, *, now: float | None = None
) -> ClassInfo:
    """A new class with a fresh join code; :class:`InvalidInput` names the first thing wrong with the form.

    ``hours`` and ``cap`` are checked against :data:`~source.learning.classroom.rules.HOURS` and
    :data:`~source.learning.classroom.rules.MEMBERS`.
    """
    title = rules.class_name(name)
    lasts = rules.bounded(hours, rules.HOURS, "how long the class runs (hours)")
    seats = round(rules.bounded(cap, rules.MEMBERS, "the number of learners"))
    return await open_class(store, title, lasts * 3600, seats, now=now)


async def open_class(store: ClassStore, name: str, seconds: float, cap: int, *, now: float | None = None) -> ClassInfo:
    """Start a class that lasts ``seconds`` (already checked values; tests use short classes)."""
    now = time.time() if now is None else now
    expires = math.ceil(now + seconds)
    index_ttl = math.ceil(rules.HOURS[1] * 3600) + 60  # outlives every class it lists
    for _ in range(CODE_TRIES):
        code = rules.new_code()
        args = [code, name, f"{now:.3f}", expires, cap, rules.MAX_CLASSES, index_ttl]
        said = await store.script(
            scripts.CREATE,
            [ClassKeys(code).meta, keys.INDEX, ClassKeys(code).version],
            args,
            timeout_s=INSTRUCTOR_TIMEOUT_S,
        )
        if said == "created":
            return ClassInfo(code, name, now, expires, cap, 0)
        if said == "full":
            raise LabError(
                f"{rules.MAX_CLASSES} classes are running on this lab already, the most it keeps at once: "
                "end one that is over, or wait until one expires."
            )
    raise LabError("No free join code was found just now; try again.")  # pragma: no cover - astronomically rare


async def running(store: ClassStore, *, now: float | None = None) -> list[ClassInfo]:
    """Every class that has not expired or ended, newest first."""
    now = time.time() if now is None else now

    async def codes(client: Any) -> list[str]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(keys.INDEX, "-inf", now)
            pipe.zrange(keys.INDEX, 0, -1)
            return list((await pipe.execute())[1])

    found = await store.call(codes, timeout_s=INSTRUCTOR_TIMEOUT_S)
    if not found:
        return []

    async def read(client: Any) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            for code in found:
                pipe.hgetall(ClassKeys(code).meta)
                pipe.hlen(ClassKeys(code).members)
            return list(await pipe.execute())

    answers = await store.call(read, timeout_s=INSTRUCTOR_TIMEOUT_S)
    classes = [
        ClassInfo.from_meta(meta, int(members))
        for meta, members in zip(answers[::2], answers[1::2], strict=True)
        if meta and float(meta["expires"]) > now
    ]
    return sorted(classes, key=lambda c: c.created, reverse=True)


async def find(store: ClassStore, code: str, *, now: float | None = None) -> ClassInfo | None:
    """The running class ``code``, or None when there is none (never was, expired or ended)."""
    now = time.time() if now is None else now
    k = ClassKeys(code)

    async def read(client: Any) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hgetall(k.meta)
            pipe.hlen(k.members)
            return list(await pipe.execute())

    meta, members = await store.call(read, timeout_s=INSTRUCTOR_TIMEOUT_S)
    if not meta or float(meta["expires"]) <= now:
        return None
    return ClassInfo.from_meta(meta, int(members))


async def end_class(store: ClassStore, code: str) -> str:
    """Delete the class and everything it holds now; its learners' next click finds it gone. One sentence."""
    k = ClassKeys(code)
    info = await find(store, code)
    seats = await store.call(lambda client: client.hkeys(k.members), timeout_s=INSTRUCTOR_TIMEOUT_S)
    if seats:
        await store.script(scripts.UNSEAT, [keys.seat(s) for s in seats], [code], timeout_s=INSTRUCTOR_TIMEOUT_S)

    async def delete(client: Any) -> int:
        gone, batch = 0, []
        async for key in client.scan_iter(match=k.pattern, count=DELETE_BATCH):
            batch.append(key)
            if len(batch) >= DELETE_BATCH:
                gone += int(await client.unlink(*batch))
                batch = []
        if batch:
            gone += int(await client.unlink(*batch))
        await client.zrem(keys.INDEX, code)
        return gone

    await store.call(delete, timeout_s=4 * INSTRUCTOR_TIMEOUT_S)
    if info is None:
        return f"The class {code} had already ended; nothing of it is left."
    return f"The class *{info.name}* ({code}) has ended: its {info.members} learner(s)' class data is deleted."


def parse_code(raw: object) -> str:
    """A code from an address (``?board=``): canonical, or :class:`InvalidInput`."""
    try:
        return rules.join_code(raw)
    except InvalidInput:
        raise InvalidInput("The class in this page's address is not a join code this lab hands out.") from None
