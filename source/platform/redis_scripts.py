"""Lua in a sandbox: a script may run only if the app has vouched for it.

Lua runs on the server and may build any key name it likes, or call FLUSHALL: prefixing its
KEYS is not enough. So a script may run in a sandbox only if the app has vouched for it (it
touches only the KEYS it is given). redis-py's Lock scripts are vouched for here.
"""

from __future__ import annotations

import hashlib

from redis.asyncio.lock import Lock

_TRUSTED_SCRIPTS: set[str] = set()


def _sha1(body: bytes) -> str:
    return hashlib.sha1(body, usedforsecurity=False).hexdigest()


def trust_script(script: str | bytes) -> str:
    """Allow a Lua script (that only touches the KEYS it is passed) in every sandbox; returns its SHA1."""
    body = script.encode("utf-8") if isinstance(script, str) else bytes(script)
    sha = _sha1(body)
    _TRUSTED_SCRIPTS.add(sha)
    return sha


def is_trusted_body(body: bytes) -> bool:
    """Whether this script text was vouched for (EVAL, SCRIPT LOAD)."""
    return _sha1(body) in _TRUSTED_SCRIPTS


def is_trusted_sha(sha: str) -> bool:
    """Whether the script with this lower-case SHA1 was vouched for (EVALSHA)."""
    return sha in _TRUSTED_SCRIPTS


for _lock_script in (Lock.LUA_RELEASE_SCRIPT, Lock.LUA_EXTEND_SCRIPT, Lock.LUA_REACQUIRE_SCRIPT):
    trust_script(_lock_script)
