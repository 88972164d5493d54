"""A click redraws the panels it changed, wherever they are on the page: Labs 2, 4 and 5's main clicks.

Each click's panel and the panels it changes further down the page are fragments with keys; the click
reruns exactly those (``source.web.seats.redraw``), not the whole page. As in ``test_fragment_clicks.py``,
only a real ``streamlit run`` shows which part a click reran: the pages are opened over the websocket as a
browser does, and each click's run is read. A fragment run ends ``FINISHED_FRAGMENT_RUN_SUCCESSFULLY``, a
whole page ``FINISHED_SUCCESSFULLY``; a test fails if a click falls back to the whole page. The first action
takes the learner's seat and redraws the whole page once; the clicks after it are the ones checked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState

from bench._common import backend_env, backend_kinds
from bench._streamlit_ws import Run, Session
from tests.conftest import unavailable
from tests.test_browser import in_own_thread, streamlit_server
from tests.test_fragment_clicks import FRAGMENT, WHOLE_PAGE

PUBLISHED = re.compile(r"(\d+) of (\d+) events published")


@pytest.fixture(scope="module", params=["embedded", "services"])
def app_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    kind = str(request.param)
    if kind == "services" and "services" not in backend_kinds():
        unavailable("PostgreSQL or Redis is unreachable")
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with streamlit_server(backend_env(kind), log) as server:
        yield server.url


def said(run: Run, text: str) -> bool:
    return any(text in body for _, body in run.alerts)


def drew(run: Run, text: str) -> bool:
    return any(text in t for t in run.texts)


def published(run: Run) -> tuple[int, int] | None:
    for label in run.labels:
        if found := PUBLISHED.search(label):
            return int(found[1]), int(found[2])
    return None


def test_lab4_a_read_redraws_its_panel_the_ttl_bars_the_counts_and_the_check(app_url: str) -> None:
    async def clicks() -> tuple[Run, Run, Run, Run]:
        session = Session(app_url, "caching", 60.0)
        try:
            await session.open()
            seated = await session.click("lab4_samples")  # the first action takes a seat: the whole page
            assert "lab=" in session.query, "the first action took a seat"
            invalidated = await session.click("lab4_invalidate")
            miss = await session.click("lab4_fetch_user")
            hit = await session.click("lab4_fetch_user")
            return seated, invalidated, miss, hit
        finally:
            await session.close()

    seated, invalidated, miss, hit = in_own_thread(lambda: asyncio.run(clicks()))
    assert seated.status == WHOLE_PAGE
    assert invalidated.status == FRAGMENT, "an invalidation redraws its panels, not the page"
    assert invalidated.alerts
    assert not invalidated.errors()
    assert any(label.startswith("`") and "not cached" in label for label in invalidated.labels), invalidated.labels
    assert not drew(invalidated, "cached reads since the counters were reset"), "nothing was measured: no check"
    for run, outcome, hits in ((miss, "**MISS**", 0), (hit, "**HIT**", 1)):
        assert run.status == FRAGMENT, f"a {outcome} fell back to the whole page"
        assert said(run, outcome), run.alerts
        assert f"Hits: {hits}" in run.labels, run.labels  # section 4's tiles, counted with this read
        assert any("left of" in label for label in run.labels), run.labels  # section 2's TTL bars: now cached
        reads = hits + 1
        assert drew(run, f"Your last {reads:,} cached reads since the counters were reset"), "the check's numbers"
        # Nothing else: the page's headings are not sent again.
        assert not any(label.startswith(("1 · ", "8 · ")) for label in run.labels), run.labels


def test_lab5_a_write_redraws_its_panel_the_live_counts_and_the_table_then_its_drain_the_check(app_url: str) -> None:
    async def clicks() -> tuple[Run, list[Run], list[Run]]:
        session = Session(app_url, "outbox", 60.0)
        try:
            await session.open()
            seated = await session.click("lab5_samples")  # the first action takes a seat: the whole page
            assert "lab=" in session.query, "the first action took a seat"
            await session.click("lab5_start")
            writes, drains = [], []
            for _ in range(2):
                writes.append(await session.click("lab5_calc"))
                run = writes[-1]
                for _ in range(60):  # the live panel's timer, as a browser runs it, until the check is drawn again
                    fragment_id, every = next(iter(session.auto_reruns.items()))
                    await asyncio.sleep(every)
                    run = await session.tick(fragment_id)
                    if drew(run, "Computed from your publisher's run at"):
                        break
                drains.append(run)
            await session.click("lab5_stop")
            return seated, writes, drains
        finally:
            await session.close()

    seated, writes, drains = in_own_thread(lambda: asyncio.run(clicks()))
    assert seated.status == WHOLE_PAGE
    for number, (write, drain) in enumerate(zip(writes, drains, strict=True), 1):
        assert write.status == FRAGMENT, "a write fell back to the whole page"
        assert said(write, "committed"), write.alerts
        counts = published(write)  # section 2's live panel, drawn with the write
        assert counts is not None, write.labels
        assert counts[1] == number, "the new event is counted"
        assert drew(write, "Up to 50 rows, next to go first."), "section 4's outbox table"
        assert not any(label.startswith(("1 · ", "3 · ", "5 · ")) for label in write.labels), write.labels
        # The drain, once recorded, redraws the live panel and the knowledge check: its rate is the new drain's.
        assert drain.status == FRAGMENT, "the drain fell back to the whole page"
        assert published(drain) == (number, number), drain.labels
        assert drew(drain, "Your publisher published 1 events"), drain.texts
        assert not any(label.startswith(("1 · ", "3 · ", "5 · ")) for label in drain.labels), drain.labels


def test_lab2_an_experiment_ends_by_redrawing_its_section_and_the_check(app_url: str) -> None:
    async def clicks() -> tuple[Run, Run, Run, dict[str, float]]:
        session = Session(app_url, "pooling", 60.0)
        try:
            await session.open()
            seated = await session.click("lab2_init")  # the first action takes a seat: the whole page
            assert "lab=" in session.query, "the first action took a seat"
            for key, value in (("lab2_k", 20.0), ("lab2_d", 1.0)):
                widget = session.widgets[key].id
                session.values[widget] = WidgetState(id=widget, double_value=value)
            compare = session.widgets["lab2_compare"].id
            session.values[compare] = WidgetState(id=compare, bool_value=False)
            started = await session.click("lab2_run")
            run = started
            for _ in range(240):  # the progress panel's timer, as a browser runs it, until the result shows
                if "plotly_chart" in run.kinds or not session.auto_reruns:
                    break
                fragment_id, every = next(iter(session.auto_reruns.items()))
                await asyncio.sleep(every)
                run = await session.tick(fragment_id)
            return seated, started, run, dict(session.auto_reruns)
        finally:
            await session.close()

    seated, started, ended, timers = in_own_thread(lambda: asyncio.run(clicks()))
    assert seated.status == WHOLE_PAGE
    assert started.status == FRAGMENT
    assert "plotly_chart" in ended.kinds, "the result was drawn"
    assert ended.status == FRAGMENT, "the experiment's end fell back to the whole page"
    assert any(label.startswith("Wall time: ") for label in ended.labels), ended.labels
    assert drew(ended, "Computed from your pooled run at"), "the check's questions, from the run just recorded"
    assert not any(label.startswith(("1 · ", "2 · ")) for label in ended.labels), ended.labels
    assert not timers, "the progress panel is gone, and its timer with it"
