"""Which class a sandbox is in: joined by code with a display name, left at will, remembered with the sandbox.

Membership is kept in Redis with the class (``members``, and the sandbox's seat key), so the
instructor's dashboard sees it from any app process. The sandbox itself keeps a copy (one small
object among its services), so a learner's click never asks Redis "am I in a class?" more than once
per sandbox: a learner who joined nothing costs one lookup when their sandbox is first used (and
after a reset), then nothing. The copy is corrected by the class itself: a write for a class that
has ended answers "gone", and the copy forgets it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from source.domain.errors import LabError
from source.learning.classroom import keys, rules, scripts
from source.learning.classroom.keys import ClassKeys
from source.learning.classroom.store import ClassStore

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

#: The sandbox service that keeps the copy (cleared with the sandbox's other services on a reset).
SERVICE = "classroom.seat"
#: Joining or leaving is one deliberate click the learner waits for: it may wait longer than a hook (seconds).
JOIN_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Seat:
    """A learner's place in a class: the class's code and name, their number in it and their display name."""

    code: str
    class_name: str
    n: int
    name: str
    expires: float

    def open(self, now: float | None = None) -> bool:
        return self.expires > (time.time() if now is None else now)


class _Remembered:
    """The sandbox's copy: unknown until looked up once, then the seat or None."""

    def __init__(self) -> None:
        self.known = False
        self.seat: Seat | None = None


def _copy(sandbox: Sandbox) -> _Remembered:
    return sandbox.service(SERVICE, lambda _: _Remembered())


def may_be_seated(sandbox: Sandbox) -> bool:
    """False when the sandbox is known to be in no (open) class: a hook can return without any call at all."""
    copy = _copy(sandbox)
    return not copy.known or (copy.seat is not None and copy.seat.open())


def remembered(sandbox: Sandbox) -> Seat | None:
    """The seat as the sandbox remembers it (no Redis call; None before the first lookup)."""
    copy = _copy(sandbox)
    return copy.seat if copy.seat is not None and copy.seat.open() else None


def forget(sandbox: Sandbox) -> None:
    """The class answered that this seat is gone (ended, expired, left elsewhere): remember no class."""
    copy = _copy(sandbox)
    copy.known, copy.seat = True, None


async def seat_of(sandbox: Sandbox, *, timeout_s: float | None = None) -> Seat | None:
    """The sandbox's seat, looked up in Redis the first time only (one ``GET`` for a learner in no class)."""
    copy = _copy(sandbox)
    if not copy.known:
        copy.seat = await look_up(ClassStore.of(sandbox), sandbox.id, timeout_s=timeout_s)
        copy.known = True
    if copy.seat is not None and not copy.seat.open():
        copy.seat = None
    return copy.seat


async def look_up(store: ClassStore, sandbox_id: str, *, timeout_s: float | None = None) -> Seat | None:
    code = await store.call(lambda client: client.get(keys.seat(sandbox_id)), timeout_s=timeout_s)
    if not code:
        return None
    k = ClassKeys(str(code))

    async def read(client: Any) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hmget(k.meta, ["name", "expires"])
            pipe.hget(k.members, sandbox_id)
            return list(await pipe.execute())

    (name, expires), record = await store.call(read, timeout_s=timeout_s)
    if not (name and expires and record):
        return None
    n, _, display = record.split("|", 2)
    return Seat(str(code), name, int(n), display, float(expires))


async def join(sandbox: Sandbox, code_typed: object, name_typed: object, *, now: float | None = None) -> str:
    """Join the class ``code_typed`` as ``name_typed`` (leaving any other class first); one sentence.

    Bad input, an unknown or ended code and a full class each raise a :class:`LabError` with its sentence;
    nothing is changed then.
    """
    code = rules.join_code(code_typed)
    name = rules.display_name(name_typed)
    now = time.time() if now is None else now
    store = ClassStore.of(sandbox)
    before = await seat_of(sandbox, timeout_s=JOIN_TIMEOUT_S)
    k = ClassKeys(code)
    said = await store.script(
        scripts.JOIN,
        [k.meta, k.members, k.version, keys.seat(sandbox.id)],
        [sandbox.id, name, f"{now:.3f}", code],
        timeout_s=JOIN_TIMEOUT_S,
    )
    outcome = str(said[0])
    if outcome == "gone":
        raise LabError(
            f"No class with the code {code} is running: check the code with your instructor (the class may have ended)."
        )
    if outcome == "full":
        raise LabError(f"The class {code} is full ({int(said[1])} learners): ask your instructor.")
    seat = Seat(code, str(said[2]), int(said[1]), name, float(said[3]))
    if before is not None and before.code != code:
        await _leave(store, sandbox.id, before)
    copy = _copy(sandbox)
    copy.known, copy.seat = True, seat
    if outcome == "again":
        return f"You are in *{seat.class_name}* as **{name}**."
    left = f"You left *{before.class_name}* and joined" if before is not None and before.code != code else "You joined"
    return (
        f"{left} *{seat.class_name}* as **{name}**. Your instructor sees your display name, which page you are on, "
        "your progress and your measurements; nobody else in the class sees them."
    )


async def leave(sandbox: Sandbox) -> str:
    """Leave the sandbox's class: the class forgets this learner; their own work stays in their sandbox."""
    seat = await seat_of(sandbox, timeout_s=JOIN_TIMEOUT_S)
    forget(sandbox)
    if seat is None:
        return "You are not in a class."
    await _leave(ClassStore.of(sandbox), sandbox.id, seat)
    return f"You left *{seat.class_name}*. Your own work stays in your sandbox."


async def _leave(store: ClassStore, sandbox_id: str, seat: Seat) -> None:
    k = ClassKeys(seat.code)
    labs = await store.call(lambda client: client.smembers(k.labs), timeout_s=JOIN_TIMEOUT_S)
    keys_ = [k.meta, k.members, k.version, keys.seat(sandbox_id), k.learner(seat.n), k.marks(seat.n)]
    keys_ += [k.latest(lab) for lab in sorted(labs)]
    await store.script(scripts.LEAVE, keys_, [sandbox_id, seat.n, seat.code], timeout_s=JOIN_TIMEOUT_S)
