"""Home: what the lab is, the story, and how the five labs fit together."""

import streamlit as st

from source import web

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
database (a SQLite file, or your own PostgreSQL schema) and your own Redis keys. Other learners
never see your data, and *Reset my sandbox* empties it whenever you like.
"""
)
status = web.backends().status
if status.is_embedded:
    st.info(
        "This lab is running on its embedded defaults: SQLite (through aiosqlite) and fakeredis, an "
        "in-process Redis. Set `DATABASE_URL` and `REDIS_URL` to run it on PostgreSQL and Redis.",
        icon="ℹ️",
    )
else:
    st.success(f"Running on {status.database} and {status.redis}.", icon="✅")
