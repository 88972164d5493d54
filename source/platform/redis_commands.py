"""Where the keys sit in each Redis command a sandbox may send: the allow-list behind the namespace."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from source.platform.redis_command_names import NamespaceError, text_of
from source.platform.redis_scripts import is_trusted_body, is_trusted_sha


class Keys(Protocol):
    """What a rule needs from a namespace: its encoding and how it prefixes one name."""

    encoding: str
    prefix: str

    def key(self, name: Any) -> str | bytes: ...

    def strip(self, name: Any) -> Any: ...


# ---------------------------------------------------------------------------------------------
# Where are the keys? Redis itself answers this per command ("key specs"); we keep our own
# explicit table, because anything we cannot place precisely must be refused, not guessed.
# A "key finder" gets the operands (the arguments after the command name) and returns the
# positions that hold key names.
# ---------------------------------------------------------------------------------------------
KeyFinder = Callable[[Sequence[Any]], Iterable[int]]


def _no_keys(operands: Sequence[Any]) -> Iterable[int]:
    return ()


def _first(operands: Sequence[Any]) -> Iterable[int]:
    # GET key, HSET key field value, XADD key * field value, ...
    return (0,) if operands else ()


def _every(operands: Sequence[Any]) -> Iterable[int]:
    # DEL k1 k2 ..., MGET k1 k2 ..., WATCH k1 k2 ...
    return range(len(operands))


def _every_other(operands: Sequence[Any]) -> Iterable[int]:
    # MSET k1 v1 k2 v2 ...
    return range(0, len(operands), 2)


def _numkeys(operands: Sequence[Any]) -> Iterable[int]:
    # EVAL script numkeys k1 .. kn arg1 ..., and the same shape for EVALSHA and FCALL.
    try:
        count = int(text_of(operands[1]))
    except (IndexError, ValueError):
        raise NamespaceError("numkeys must be an integer: it says how many of the arguments are keys") from None
    if not 0 <= count <= len(operands) - 2:
        raise NamespaceError(f"numkeys is {count}, but {len(operands) - 2} arguments follow it")
    return range(2, 2 + count)


def _streams_from(start: int) -> KeyFinder:
    # XREAD [COUNT n] [BLOCK ms] STREAMS k1 k2 id1 id2: the first half after STREAMS are keys.
    # Like the server, look for the first STREAMS token at or after ``start``.
    def find(operands: Sequence[Any]) -> Iterable[int]:
        for index in range(start, len(operands)):
            if text_of(operands[index]).upper() == "STREAMS":
                rest = len(operands) - index - 1
                if rest == 0 or rest % 2:
                    raise NamespaceError("STREAMS must be followed by as many ids as stream names")
                return range(index + 1, index + 1 + rest // 2)
        raise NamespaceError("no STREAMS argument: cannot tell which arguments are stream names")

    return find


# A Lua script may reach any key, so only scripts the app vouched for may run (see redis_scripts).
def _require_trusted_body(namespace: Keys, operands: list[Any]) -> None:
    # EVAL <body> ... and SCRIPT LOAD <body>
    body = operands[0] if operands else b""
    raw = body.encode(namespace.encoding) if isinstance(body, str) else bytes(body)
    if not is_trusted_body(raw):
        raise NamespaceError(
            "this Lua script is not allowed in a sandbox: a script can reach any key, so only scripts "
            "registered with trust_script() may run"
        )


def _require_trusted_sha(namespace: Keys, operands: list[Any]) -> None:
    # EVALSHA <sha> ...
    sha = text_of(operands[0]).lower() if operands else ""
    if not is_trusted_sha(sha):
        raise NamespaceError(
            f"script {sha or '(none)'} is not allowed in a sandbox: only scripts registered with trust_script() may run"
        )


def _confine_match(namespace: Keys, operands: list[Any]) -> None:
    # SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: every MATCH gets the prefix in front, and a
    # SCAN without MATCH gets one, so the cursor only ever reports this sandbox's keys.
    found = False
    for index in range(1, len(operands) - 1, 2):
        if text_of(operands[index]).upper() == "MATCH":
            operands[index + 1] = namespace.key(operands[index + 1])
            found = True
    if not found:
        operands.extend(["MATCH", namespace.prefix + "*"])


# Replies that carry key names get the prefix taken off again, so lab code sees the names it used.
def _scan_reply(namespace: Keys, reply: Any) -> Any:
    cursor, names = reply
    return type(reply)((cursor, [namespace.strip(name) for name in names]))


def _streams_reply(namespace: Keys, reply: Any) -> Any:
    # legacy shape: [[stream, entries], ...]; RESP3 / unified shape: {stream: entries}
    if isinstance(reply, dict):
        return {namespace.strip(stream): entries for stream, entries in reply.items()}
    if isinstance(reply, list):
        return [type(item)((namespace.strip(item[0]), *item[1:])) for item in reply]
    return reply


@dataclass(frozen=True, slots=True)
class _Rule:
    """What the namespace does to one command: prefix its keys, vet or adjust it, clean its reply."""

    keys: KeyFinder = _no_keys
    vet: Callable[[Keys, list[Any]], None] | None = None
    reply: Callable[[Keys, Any], Any] | None = None


_ONE = _Rule(keys=_first)
_ALL = _Rule(keys=_every)
_NONE = _Rule()


def _rules(names: str, rule: _Rule) -> dict[str, _Rule]:
    return dict.fromkeys(names.split(","), rule)


# The whole allow-list. Anything not named here is refused with NamespaceError.
RULES: dict[str, _Rule] = {
    # connection
    **_rules("PING,ECHO", _NONE),
    # keys of any type
    **_rules("DEL,UNLINK,EXISTS,TOUCH", _ALL),
    **_rules("TYPE,EXPIRE,PEXPIRE,EXPIREAT,PEXPIREAT,TTL,PTTL,PERSIST", _ONE),
    "SCAN": _Rule(vet=_confine_match, reply=_scan_reply),
    # strings
    **_rules("GET,SET,SETNX,SETEX,PSETEX,GETSET,GETDEL,GETEX,APPEND,STRLEN", _ONE),
    **_rules("INCR,INCRBY,INCRBYFLOAT,DECR,DECRBY", _ONE),
    "MGET": _ALL,
    **_rules("MSET,MSETNX", _Rule(keys=_every_other)),
    # hashes
    **_rules("HSET,HSETNX,HMSET,HGET,HMGET,HGETALL,HDEL,HINCRBY,HINCRBYFLOAT", _ONE),
    **_rules("HLEN,HEXISTS,HKEYS,HVALS,HSTRLEN", _ONE),
    # sorted sets
    **_rules("ZADD,ZINCRBY,ZSCORE,ZMSCORE,ZRANK,ZREVRANK,ZRANGE,ZREVRANGE,ZRANGEBYSCORE", _ONE),
    **_rules("ZREVRANGEBYSCORE,ZCARD,ZREM,ZCOUNT,ZPOPMIN,ZPOPMAX", _ONE),
    # lists
    **_rules("LPUSH,RPUSH,LRANGE,LTRIM,LLEN,LPOP,RPOP,LINDEX,LREM,LSET", _ONE),
    # sets
    **_rules("SADD,SMEMBERS,SISMEMBER,SMISMEMBER,SREM,SCARD", _ONE),
    # streams
    **_rules("XADD,XLEN,XRANGE,XREVRANGE,XACK,XPENDING,XAUTOCLAIM,XCLAIM,XTRIM,XDEL", _ONE),
    **_rules("XGROUP CREATE,XGROUP DESTROY,XGROUP CREATECONSUMER,XGROUP DELCONSUMER,XGROUP SETID", _ONE),
    **_rules("XINFO GROUPS,XINFO STREAM,XINFO CONSUMERS", _ONE),
    "XREAD": _Rule(keys=_streams_from(0), reply=_streams_reply),
    "XREADGROUP": _Rule(keys=_streams_from(3), reply=_streams_reply),  # after GROUP group consumer
    # Pub/Sub: a channel name is not a key, but it gets the same prefix
    "PUBLISH": _ONE,
    # optimistic transactions (MULTI and EXEC are sent by the pipeline itself)
    "WATCH": _ALL,
    **_rules("UNWATCH,DISCARD", _NONE),
    # scripts and functions: keys by numkeys; scripts must be trusted (functions are loaded by
    # the operator, since FUNCTION LOAD is refused)
    **_rules("EVAL,EVAL_RO", _Rule(keys=_numkeys, vet=_require_trusted_body)),
    **_rules("EVALSHA,EVALSHA_RO", _Rule(keys=_numkeys, vet=_require_trusted_sha)),
    **_rules("FCALL,FCALL_RO", _Rule(keys=_numkeys)),
    "SCRIPT LOAD": _Rule(vet=_require_trusted_body),
    "SCRIPT EXISTS": _NONE,
}

# A Pub/Sub connection speaks a smaller language: every argument is a channel or a pattern.
PUBSUB_RULES: dict[str, _Rule] = {
    **_rules("SUBSCRIBE,UNSUBSCRIBE,PSUBSCRIBE,PUNSUBSCRIBE", _ALL),
    "PING": _NONE,
}

#: Every command a namespaced client will send (subcommands written as "XGROUP CREATE").
ALLOWED_COMMANDS: frozenset[str] = frozenset(RULES)

# Where channel and pattern names sit in a Pub/Sub reply, by message type.
PUBSUB_NAME_POSITIONS: dict[str, tuple[int, ...]] = {
    "message": (1,),
    "pmessage": (1, 2),
    "subscribe": (1,),
    "unsubscribe": (1,),
    "psubscribe": (1,),
    "punsubscribe": (1,),
}
