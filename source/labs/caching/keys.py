"""The cache's logical key names. A namespaced client (or the cache's prefix) places them in a sandbox."""

from __future__ import annotations


def user_key(user_id: str) -> str:
    return f"cache:user:{user_id}"


def latest_score_key(user_id: str) -> str:
    return f"cache:latest_score:{user_id}"
