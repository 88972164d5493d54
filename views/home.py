"""Home: what the lab is, the story, and how the five labs fit together."""

import streamlit as st

from source import web
from source.web.learning import objectives_and_progress

st.title("🗄️ Persistence Lab")
st.markdown(
    """
InnovateAI runs an AI-powered assessment platform: **users** take **assessments**, receive
**AI-R scores**, and every important change is announced to other services as a **domain event**.
In these labs you build and probe that platform's data layer yourself, with real evidence for
every claim: counted queries, timed calls and Redis counters, never made-up numbers.

| Lab | You will… |
|---|---|
| 1 · Data models | create users, hit the UNIQUE email, delete with cascade, read the DDL |
| 2 · Async connectivity & pooling | load a real connection pool and watch it queue, overflow and time out |
| 3 · Repository & N+1 | count the queries of an N+1 loop and fix it with eager loading |
| 4 · Caching with Redis | measure cache hits and misses, TTLs and invalidation |
| 5 · Outbox pattern | publish events reliably, even when the publisher crashes |

**Your sandbox.** Everything you do happens in a sandbox of your own (see the sidebar): your own
database (a SQLite file, or your own PostgreSQL schema) and your own Redis keys. Looking around
takes none: your first action opens it. Other learners never see your data, and *Reset my sandbox*
empties it whenever you like.
"""
)
ok, b = web.attempt(web.backends)
if ok and b is not None:
    status, now = b.status, web.health()
    if status.is_embedded:
        st.info(
            "This lab is running on its embedded defaults: SQLite (through aiosqlite) and fakeredis, an "
            "in-process Redis. Set `DATABASE_URL` and `REDIS_URL` to run it on PostgreSQL and Redis.",
            icon="ℹ️",
        )
    elif status.database_note or status.redis_note:  # a server could not be used (budget notes are the sidebar's)
        st.warning(
            f"This lab is configured for its own servers but is running on {status.database} and {status.redis}: "
            "the sidebar says which server could not be used and why. Your work is kept in your sandbox all the "
            "same; the lab's host can check the server and restart the lab.",
            icon="⚠️",
        )
    else:
        st.success(f"Running on {status.database} and {status.redis}.", icon="✅")
    if now is not None and not now.ok:
        down = [name for name, up in ((status.database, now.database_ok), (status.redis, now.redis_ok)) if not up]
        st.error(
            f"{' and '.join(down)} {'is' if len(down) == 1 else 'are'} not answering right now. Pages that need "
            "it will say so instead of showing data; this is checked again every few seconds.",
            icon="🔴",
        )
objectives_and_progress()
