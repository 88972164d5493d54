"""The real server sends each learner's replies at once: TCP_NODELAY is on for their websocket.

Streamlit 1.67 leaves Nagle's algorithm on for the sockets it accepts (see source/web/transport.py),
which made every click wait about 40 ms for the browser's delayed ACK. Only a real ``streamlit run``
has those sockets, so this starts one, opens the app over its websocket as a browser would, and
reads the server's log for what the learner's socket reports after the app set the option. If a
Streamlit upgrade moves what the fix relies on, the log says "not set" and this fails.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench._common import backend_env
from bench._streamlit_ws import FINISHED, Session
from source.web.transport import SET_TEXT
from tests.test_browser import in_own_thread, streamlit_server
from tests.waiting import eventually


def test_a_learners_websocket_sends_without_delay(tmp_path: Path) -> None:
    env = {**backend_env("embedded"), "STREAMLIT_LOGGER_LEVEL": "info"}
    with streamlit_server(env, tmp_path / "server.log") as server:

        async def open_the_app() -> int | None:
            session = Session(server.url, "", 60.0)
            try:
                return (await session.open()).status
            finally:
                await session.close()

        assert in_own_thread(lambda: asyncio.run(open_the_app())) in FINISHED
        eventually(lambda: SET_TEXT in server.log_text(), "the server to log that TCP_NODELAY is on")
        assert "TCP_NODELAY not set" not in server.log_text()
