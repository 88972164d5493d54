"""How a sandbox's Redis command is named ("GET", "XGROUP CREATE"), and what a refused one is told."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError


class NamespaceError(RedisError):
    """Raised, before anything is sent, for a command that could reach outside the sandbox."""


# Commands that have subcommands: "CONFIG GET" is judged as a whole, not as "CONFIG".
_CONTAINERS = frozenset(
    {"ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG", "FUNCTION", "LATENCY", "MEMORY", "MODULE", "OBJECT"}
    | {"PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO"}
)

_HINTS = {
    "KEYS": "use scan_iter(match=...), which stays inside the sandbox's prefix",
    "FLUSHDB": "use drop_all(), which deletes only this sandbox's keys",
    "FLUSHALL": "use drop_all(), which deletes only this sandbox's keys",
    "SELECT": "all sandboxes share one database; the key prefix is the boundary",
    "SWAPDB": "all sandboxes share one database; the key prefix is the boundary",
    "MOVE": "all sandboxes share one database; the key prefix is the boundary",
}


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def command_name(args: Sequence[Any]) -> tuple[str, int]:
    """The command's name ("GET", "XGROUP CREATE") and how many arguments spell it.

    redis-py sends some subcommands as one argument ("XGROUP CREATE", "SCRIPT LOAD") and a
    caller may send them as two ("XGROUP", "CREATE"); both spell the same command.
    """
    if not args:
        raise NamespaceError("an empty command is not allowed in a sandbox")
    first = text_of(args[0]).upper()
    if " " in first.strip():
        return " ".join(first.split()), 1
    if first in _CONTAINERS and len(args) > 1:
        return f"{first} {text_of(args[1]).upper()}", 2
    return first, 1


def refusal(name: str) -> NamespaceError:
    base = name.split(" ")[0]
    hint = _HINTS.get(base, "only commands whose keys the namespace knows how to prefix may run")
    return NamespaceError(f"{name} is not allowed in a sandbox: {hint}")
