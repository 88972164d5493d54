"""A key namespace: one sandbox's prefix and the rules for applying it to commands and replies (no connection)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from redis.exceptions import DataError

from source.platform.redis_command_names import command_name, refusal, text_of
from source.platform.redis_commands import PUBSUB_NAME_POSITIONS, PUBSUB_RULES, RULES

_S = TypeVar("_S", str, bytes)


class KeyNamespace:
    """A prefix and the rules for applying it: pure functions, no connection."""

    def __init__(self, prefix: str, *, encoding: str = "utf-8") -> None:
        # The prefix also goes in front of SCAN and PSUBSCRIBE patterns, so it must not contain
        # glob characters: otherwise "a*:" would match another sandbox's keys.
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("a namespace needs a non-empty str prefix, e.g. 'plab:3fa2c1d09b7e:'")
        if any(char in prefix for char in "*?[]\\") or any(char.isspace() for char in prefix):
            raise ValueError(f"prefix {prefix!r} must not contain glob characters (* ? [ ] \\) or spaces")
        self.prefix = prefix
        self.encoding = encoding
        self._prefix_bytes = prefix.encode(encoding)

    def __repr__(self) -> str:
        return f"KeyNamespace({self.prefix!r})"

    def key(self, name: Any) -> str | bytes:
        """The real key (or channel) for a name used inside the sandbox."""
        if isinstance(name, str):
            return self.prefix + name
        if isinstance(name, bytes | bytearray | memoryview):
            return self._prefix_bytes + bytes(name)
        if isinstance(name, int | float) and not isinstance(name, bool):
            return self.prefix + repr(name)
        raise DataError(f"Invalid key name of type {type(name).__name__!r}: use str, bytes, int or float")

    def strip(self, name: _S) -> _S:
        """The name as the sandbox knows it: the real name without the prefix."""
        if isinstance(name, str):
            return name[len(self.prefix) :] if name.startswith(self.prefix) else name
        return name[len(self._prefix_bytes) :] if name.startswith(self._prefix_bytes) else name

    def rewrite(self, args: Sequence[Any], *, pubsub: bool = False) -> tuple[str, list[Any]]:
        """Check one command against the allow-list and put the prefix on its keys.

        Returns the command's name and the arguments to send. Raises :class:`NamespaceError`
        for a command that is not in the table, before anything reaches the server.
        """
        name, rewritten, _ = self.rewrite_keys(args, pubsub=pubsub)
        return name, rewritten

    def rewrite_keys(self, args: Sequence[Any], *, pubsub: bool = False) -> tuple[str, list[Any], list[Any]]:
        """:meth:`rewrite`, and the real keys the command names (what a lease puts an expiry on)."""
        name, spelled_by = command_name(args)
        rule = (PUBSUB_RULES if pubsub else RULES).get(name)
        if rule is None:
            raise refusal(name)
        operands = list(args[spelled_by:])
        if rule.vet is not None:
            rule.vet(self, operands)
        keys = []
        for position in rule.keys(operands):
            operands[position] = self.key(operands[position])
            keys.append(operands[position])
        return name, [*args[:spelled_by], *operands], keys

    def unprefix_reply(self, name: str, reply: Any) -> Any:
        """Take the prefix off the key names in a reply (SCAN's keys, XREAD's stream names)."""
        rule = RULES.get(name)
        if rule is None or rule.reply is None or reply is None or isinstance(reply, BaseException):
            return reply
        return rule.reply(self, reply)

    def unprefix_message(self, response: Any) -> Any:
        """Take the prefix off the channel and pattern names in a raw Pub/Sub reply."""
        if not isinstance(response, list | tuple) or len(response) < 2:
            return response
        positions = PUBSUB_NAME_POSITIONS.get(text_of(response[0]).lower(), ())
        cleaned = list(response)
        for position in positions:
            if position < len(cleaned) and isinstance(cleaned[position], str | bytes):
                cleaned[position] = self.strip(cleaned[position])
        return cleaned

    def rewrite_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The keyword options of a command, with the prefix on any ``keys=[...]`` among them."""
        # redis-py passes keys=[...] alongside some commands (for client-side caching); keep them honest.
        if options.get("keys"):
            options = {**options, "keys": [self.key(name) for name in options["keys"]]}
        return options
