"""Any process serves any learner: three app processes behind HAProxy, round robin, no sticky sessions.

The setup is the one ``deploy/haproxy.cfg`` describes, run for real (``bench/_balanced.py``): three
``streamlit run app.py`` on one PostgreSQL database and one Redis of their own, Debian's HAProxy
in front. Learners speak Streamlit's own websocket protocol (``bench/_streamlit_ws.py``), as a
browser does; the balancer names the process that accepted each websocket (``X-Served-By``).

A refresh or a reconnect is a new websocket, and round robin sends it to the next process: a
learner must find their sandbox, and every user they created, wherever they land. A process that
dies (SIGKILL: nothing of it runs again) costs its learners one reconnect, and a background job it
was running is reported as interrupted, with its start button there to run it again.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from bench._balanced import Balanced, Unavailable, balanced
from bench._streamlit_ws import ALERT_SUCCESS, FINISHED, Run, Session
from tests.conftest import unavailable
from tests.test_browser import in_own_thread
from tests.waiting import eventually, eventually_async

#: Lab 1's address and widget keys; Lab 3's seed.
LAB1, EMAIL, NAME, CREATE, USER = "data-models", "lab1_email", "lab1_name", "lab1_create", "lab1_user"
LAB3, SEED_N, SEED_M, SEED, SEED_STOP = "repository", "lab3_n", "lab3_m", "lab3_seed", "lab3_seed_stop"
#: How long one page run may take on a loaded machine before the client gives up on it (seconds).
RUN_TIMEOUT_S = 60.0
#: Streamlit's Alert.Format for st.warning.
ALERT_WARNING = 2
#: Class mode's passcode for these processes (the instructor's QR code is a media file).
PASSCODE = "balanced-instructor-passcode"


@pytest.fixture(scope="module")
def setup() -> Iterator[Balanced]:
    try:
        with balanced(3, {"PLAB_INSTRUCTOR_PASSCODE": PASSCODE}) as running:
            yield running
    except Unavailable as exc:
        unavailable(str(exc))


@pytest.fixture(autouse=True)
def every_process_up(setup: Balanced) -> None:
    """Each test starts with all three processes running and HAProxy sending to each."""
    for app in setup.apps:
        if app.proc is None:
            setup.start(app)
    setup.wait_servers({a.name for a in setup.apps})


def token(query: str) -> str:
    return next((part[4:] for part in query.split("&") if part.startswith("lab=")), "")


def users_listed(session: Session) -> list[str]:
    """The emails in Lab 1's *User* select box, as the last run drew it (read from the database)."""
    return [option.split(" ")[0] for option in session.run.options.get(USER, [])]


async def opened(url: str, page: str, query: str = "") -> Session:
    session = Session(url, page, RUN_TIMEOUT_S)
    run = await session.open(query)
    assert_good(run)
    assert session.served_by, "the balancer did not say which process answered"
    return session


async def create_user(session: Session, email: str) -> None:
    run = await session.click(CREATE, {EMAIL: email, NAME: "Roaming learner"})
    assert_good(run)
    assert any(f"Created `{email}`" in body for kind, body in run.alerts if kind == ALERT_SUCCESS), run.alerts
    assert email in users_listed(session)


def assert_good(run: Run) -> None:
    assert run.status in FINISHED, run.status
    assert not run.exceptions, run.exceptions
    assert not run.errors(), run.errors()


# -- a reconnect lands anywhere ------------------------------------------------------------------
def test_a_learner_keeps_their_sandbox_and_data_on_every_process(setup: Balanced) -> None:
    async def roam() -> list[str]:
        session = await opened(setup.url, LAB1)
        created: list[str] = []
        served = [session.served_by]
        try:
            for n in range(4):  # the first page and three refreshes: round robin visits every process
                email = f"roaming.{n}@example.com"
                await create_user(session, email)
                created.append(email)
                link = session.query  # a visit has no link yet: the first action takes a seat and names it
                assert token(link), "the first action gave the learner a link"
                await session.close()
                session = await opened(setup.url, LAB1, link)
                served.append(session.served_by)
                assert token(session.query) == token(link), "the refresh was given another sandbox"
                assert sorted(users_listed(session)) == sorted(created), (session.served_by, users_listed(session))
                assert not any("does not exist here" in body for _, body in session.run.alerts)
        finally:
            await session.close()
        return served

    served = in_own_thread(lambda: asyncio.run(roam()))
    assert set(served) == {a.name for a in setup.apps}, served


# -- a process dies ----------------------------------------------------------------------------
def test_killing_a_process_costs_its_learners_one_reconnect(setup: Balanced) -> None:
    async def class_of_six() -> None:
        learners = [await opened(setup.url, LAB1) for _ in range(6)]
        try:
            by_process = {s.served_by for s in learners}
            assert by_process == {a.name for a in setup.apps}, "round robin left a process without learners"
            for n, s in enumerate(learners):
                await create_user(s, f"before.{n}@example.com")
            victim = learners[0].served_by
            await asyncio.to_thread(setup.kill, setup.app(victim))
            hit = [s for s in learners if s.served_by == victim]
            # the browser sees its websocket close
            await eventually_async(lambda: _all_closed(hit), f"{victim}'s learners to see their websocket close")
            for n, s in enumerate(learners):
                if s in hit:  # one reconnect, through the balancer, to the same address
                    await s.close()
                    again = await opened(setup.url, LAB1, s.query)
                    assert again.served_by != victim
                    assert token(again.query) == token(s.query), "the reconnect was given another sandbox"
                    assert users_listed(again) == [f"before.{n}@example.com"], users_listed(again)
                    learners[n] = s = again
                assert not s.closed
                await create_user(s, f"after.{n}@example.com")
                assert sorted(users_listed(s)) == [f"after.{n}@example.com", f"before.{n}@example.com"]
        finally:
            await asyncio.gather(*(s.close() for s in learners))

    in_own_thread(lambda: asyncio.run(class_of_six()))


async def _closed(session: Session) -> bool:
    return session.closed is not None


async def _all_closed(sessions: list[Session]) -> bool:
    return all(s.closed is not None for s in sessions)


def test_a_job_on_a_killed_process_is_reported_stopped_with_its_start_button(setup: Balanced) -> None:
    """Until the dead process's heartbeat is older than the grace, the page may say the run is still
    going elsewhere (a process cannot tell a dead peer from a slow one sooner); then it says the run
    was interrupted, once, with Seed there to run it again, and never shows a Stop for it."""

    async def seed_then_kill() -> list[str]:
        session = await opened(setup.url, LAB3)
        try:
            run = await session.click(SEED, {SEED_N: 2000, SEED_M: 20})
            assert_good(run)
            assert SEED_STOP in session.widgets, "the seed is not running (no Stop)"
            victim = session.served_by
            await asyncio.to_thread(setup.kill, setup.app(victim))
            await eventually_async(lambda: _closed(session), "the learner's websocket to close")
            link = session.query
            await session.close()
            session = await opened(setup.url, LAB3, link)
            assert session.served_by != victim
            assert token(session.query) == token(link)

            async def reported() -> list[str]:
                run = await session.rerun(list(session.values.values()))
                assert_good(run)
                assert SEED_STOP not in session.widgets, "a job of a dead process is shown as running"
                return [body for kind, body in run.alerts if kind == ALERT_WARNING and "interrupted" in body]

            warnings = await eventually_async(
                reported, "the seed to be reported interrupted", within_s=150, every_s=1.0
            )
            assert not session.widgets[SEED].disabled, "Seed should be there to run it again"
            return warnings
        finally:
            await session.close()

    warnings = in_own_thread(lambda: asyncio.run(seed_then_kill()))
    assert any("start it again" in body for body in warnings), warnings


def test_the_balancer_stops_sending_to_a_dead_process_and_takes_it_back(setup: Balanced) -> None:
    victim = setup.apps[-1]
    setup.kill(victim)
    setup.wait_servers({a.name for a in setup.apps} - {victim.name})

    async def three_pages() -> set[str]:
        served = set()
        for _ in range(3):
            session = await opened(setup.url, LAB1)
            served.add(session.served_by)
            await session.close()
        return served

    assert victim.name not in in_own_thread(lambda: asyncio.run(three_pages()))
    setup.start(victim)
    setup.wait_servers({a.name for a in setup.apps})
    eventually(
        lambda: victim.name in in_own_thread(lambda: asyncio.run(three_pages())), "pages from the restarted process"
    )


# -- media live in the process that drew them --------------------------------------------------
def test_an_image_drawn_by_one_process_loads_through_the_balancer_every_time(setup: Balanced) -> None:
    """The QR code of a class is a media file in the memory of the process that drew the page; the
    browser fetches it with a plain GET, which round robin sends anywhere: the balancer's media
    backend tries the next process on a 404 (deploy/haproxy.cfg)."""

    async def fetch_qr() -> tuple[str, list[tuple[int, str, bytes]]]:
        session = await opened(setup.url, "instructor")
        try:
            assert_good(await session.click("ins_passcode_submit", {"ins_passcode": PASSCODE}))
            run = await session.click("ins_class_start", {"ins_class_name": "A balanced class"})
            assert_good(run)
            assert len(run.images) == 1, run.images
            path = run.images[0]
            fetched = [await asyncio.to_thread(_get, setup.url + path) for _ in range(2 * len(setup.apps))]
            for app in setup.apps:  # asked directly, only the process that drew it has it
                expected = 200 if app.name == session.served_by else 404
                assert await asyncio.to_thread(_status, app.url + path) == expected, app.name
            return session.served_by, fetched
        finally:
            await session.close()

    drawn_by, fetched = in_own_thread(lambda: asyncio.run(fetch_qr()))
    assert [status for status, _, _ in fetched] == [200] * len(fetched)
    assert {served for _, served, _ in fetched} == {drawn_by}
    assert len({body for _, _, body in fetched}) == 1, "the same image every time"
    assert fetched[0][2].startswith(b"\x89PNG\r\n\x1a\n"), fetched[0][2][:16]  # the QR code, lossless


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return int(response.status), response.headers.get("X-Served-By", ""), response.read()


def _status(url: str) -> int:
    try:
        return _get(url)[0]
    except urllib.error.HTTPError as exc:
        return int(exc.code)
